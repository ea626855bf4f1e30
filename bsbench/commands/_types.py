"""click parameter types made from the value rules of bsbench/values.py, so a flag and a spec key obey one rule.

A refused flag is a one-line usage error in the same words as a refused spec
key: "--rate must be a number > 0 (or inf), got 'nan'".
"""

from __future__ import annotations

import re
from typing import Any

import click

from bsbench.values import (
    MAX_INT_FLAG,
    MAX_MAGNITUDE,
    ByteSize,
    Choice,
    Flag,
    Integer,
    Invalid,
    Real,
    Rule,
    Text,
)

_NAMES = {Real: "number", Integer: "integer", ByteSize: "size", Text: "text"}


class RuleType(click.ParamType):
    """A click type whose conversion is `rule.check`."""

    def __init__(self, rule: Rule, name: str | None = None) -> None:
        self.rule = rule
        self.name = name or _NAMES.get(type(rule), "value")

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return self.rule.check(value)
        except Invalid as exc:
            name = param.opts[0] if param is not None and param.opts else "value"
            raise click.UsageError(f"{name} {exc}", ctx) from None


def param_type(rule: Rule, name: str | None = None) -> click.ParamType:
    """The click type of a rule: click.Choice for a Choice (so help lists the choices), else RuleType."""
    if isinstance(rule, Choice):
        return click.Choice(list(rule.options))
    if isinstance(rule, Flag):
        return click.BOOL
    return RuleType(rule, name)


# A flag generated from a policy's options dataclass: only the type is known here, not the meaning, so the
# check is generic (a finite number of sane magnitude); each policy validates its own ranges.
GENERIC_FLOAT = RuleType(Real(low=-MAX_MAGNITUDE, high=MAX_MAGNITUDE), "number")
GENERIC_INT = RuleType(Integer(-MAX_INT_FLAG, MAX_INT_FLAG), "integer")


_PAIR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*:[^:]+$")


class PairsOption(click.Option):
    """An option taking one or more KEY:VALUE words the way argparse's nargs='+' does, so that vLLM's spelling
    `--goodput ttft:500 tpot:50` works: the words after the option that look like KEY:VALUE join its value
    (space-separated). `--goodput "ttft:500 tpot:50"` and repeating the option work too (multiple=True)."""

    pattern: re.Pattern[str] = _PAIR  # what a following word must look like to join the value

    def add_to_parser(self, parser: Any, ctx: click.Context) -> None:
        super().add_to_parser(parser, ctx)
        for opt in self.opts:
            target = parser._long_opt.get(opt) or parser._short_opt.get(opt)
            original = target.process

            def process(value: Any, state: Any, original: Any = original) -> None:
                words = [value]
                while state.rargs and self.pattern.match(state.rargs[0]):
                    words.append(state.rargs.pop(0))
                original(" ".join(words), state)

            target.process = process


class KeyValuesOption(PairsOption):
    """PairsOption for KEY=VALUE words (vLLM's `--metadata tp=4 engine=x`)."""

    pattern = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*=\S*$")
