"""Grouped `--help` for commands with many flags (click has no option groups of its own).

An option joins help groups through its `help_groups` attribute: {group title:
help text, or None for the option's own help}. One option may sit in several
groups with a different text in each: a scheduler flag shared by two policies
shows each policy's own default in that policy's group. `GroupedCommand`
prints the options in no group first (under "Options"), then each group in the
order its first option was declared.

    @click.command("run", cls=GroupedCommand)
    @some_options            # declares --model, --device, ...
    def command(...): ...
    group_options(command, "Model and memory", ["model", "device"])  # or on the function, before @click.command
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import click

HelpGroups = Mapping[str, str | None]


def declared_params(func: Any) -> list[click.Parameter]:
    """The parameters declared so far on a click command, or on a function its decorators are being applied to."""
    if isinstance(func, click.Command):
        return func.params
    return getattr(func, "__click_params__", [])


def set_help_groups(func: Any, name: str, groups: HelpGroups) -> None:
    """Put the declared option `name` (its Python name) into `groups` (replacing any it was in)."""
    for param in declared_params(func):
        if param.name == name:
            param.help_groups = dict(groups)  # type: ignore[attr-defined]
            return
    raise KeyError(f"no option {name!r} declared")


def group_options(title: str, names: Iterable[str]) -> Callable[[Any], Any]:
    """A decorator putting the already-declared options `names` into the help group `title`."""

    def decorate(func: Any) -> Any:
        for name in names:
            set_help_groups(func, name, {title: None})
        return func

    return decorate


class GroupedCommand(click.Command):
    """A click command whose --help lists its options in groups (see the module docstring)."""

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        plain: list[tuple[str, str]] = []
        groups: dict[str, list[tuple[str, str]]] = {}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            tagged: HelpGroups | None = getattr(param, "help_groups", None)
            if not tagged:
                plain.append(record)
                continue
            for title, text in tagged.items():
                groups.setdefault(title, []).append(record if text is None else (record[0], text))
        for title, rows in ([("Options", plain)] if plain else []) + list(groups.items()):
            with formatter.section(title):
                formatter.write_dl(rows)
