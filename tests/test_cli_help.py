"""--help that fits the command: grouped flags, each policy's own defaults, no flags that do not apply."""

from __future__ import annotations

import dataclasses
import re

import pytest

from bsbench.commands._run_options import scheduler_group
from bsbench.schedulers.registry import all_schedulers


def _sections(text: str) -> dict[str, str]:
    """Section title -> its body, for the 'Title:' headings click writes at column 0."""
    sections: dict[str, str] = {}
    title = None
    for line in text.splitlines():
        if line and not line[0].isspace() and line.endswith(":"):
            title = line[:-1]
            sections[title] = ""
        elif title is not None:
            sections[title] += line + "\n"
    return sections


def _flags(body: str) -> set[str]:
    return set(re.findall(r"(?m)^\s{2}(?:-[a-z], )?(--[a-z0-9-]+)", body))


def _help(bsbench, *command: str) -> str:
    result = bsbench(*command, "--help")
    assert result.code == 0, result.err
    return result.out


@pytest.mark.parametrize("command", [["run"], ["sweep"], ["capacity"]])
def test_engine_commands_group_their_flags(bsbench, command):
    sections = _sections(_help(bsbench, *command))
    groups = ["Workload", "Arrivals and SLOs", "Model and memory", "Run record"]
    groups += [scheduler_group(name) for name in all_schedulers()]
    assert [s for s in sections if s in groups] == groups
    assert {"--workload", "--num-requests", "--dataset-path", "--filter"} <= _flags(sections["Workload"])
    assert {"--rate", "--arrival", "--e2e-slo", "--online-share"} <= _flags(sections["Arrivals and SLOs"])
    assert not {"--rate", "--e2e-slo"} & _flags(sections["Workload"])
    assert {"--model", "--device", "--kv-memory", "--threads"} <= _flags(sections["Model and memory"])
    assert {"--out", "--percentiles"} <= _flags(sections["Run record"])
    assert "--quiet" in _flags(sections["Options"])


def _default_shown(f: dataclasses.Field) -> str | None:
    value = f.default if f.default is not dataclasses.MISSING else f.default_factory()
    if isinstance(value, bool):
        return "on" if value else "off"
    return None if value in ("", None) else str(value)


def test_each_scheduler_group_lists_exactly_its_flags_with_its_own_defaults(bsbench):
    sections = _sections(_help(bsbench, "run"))
    for name, cls in all_schedulers().items():
        body = sections[scheduler_group(name)]
        fields = dataclasses.fields(cls.Options)
        assert _flags(body) == {"--" + f.name.replace("_", "-") for f in fields}
        entries = re.split(r"(?m)^\s{2}(?=--)", body)
        for f in fields:
            entry = next(e for e in entries if e.startswith("--" + f.name.replace("_", "-") + " "))
            shown = re.search(r"\[default:\s+([^\]]+)\]", " ".join(entry.split()))
            expected = _default_shown(f)
            assert (shown.group(1) if shown else None) == expected, (name, f.name)


def test_max_batch_size_shows_static_and_uellm_defaults_each_in_its_own_group(bsbench):
    """Issue 9: --max-batch-size showed static's default (8) for uellm (10)."""
    sections = _sections(_help(bsbench, "run"))
    static = " ".join(sections[scheduler_group("static")].split())
    uellm = " ".join(sections[scheduler_group("uellm")].split())
    assert re.search(r"--max-batch-size INTEGER .*?\[default: 8\]", static)
    assert re.search(r"--max-batch-size INTEGER .*?\[default: 10\]", uellm)


def test_profile_predictor_offers_no_arrival_or_slo_flags(bsbench):
    text = _help(bsbench, "profile-predictor")
    flags = _flags(text)
    assert {"--workload", "--num-requests", "--max-output-len", "--predictor"} <= flags
    assert not {"--rate", "--arrival", "--burstiness", "--cv", "--ttft-slo", "--tpot-slo", "--e2e-slo",
                "--online-share", "--time-scale"} & flags
    result = bsbench("profile-predictor", "--rate", "4")
    assert result.code == 2 and "--rate" in result.err


def test_workload_show_groups_its_flags(bsbench):
    sections = _sections(_help(bsbench, "workload", "show"))
    assert "--rate" in _flags(sections["Arrivals and SLOs"]) and "--filter" in _flags(sections["Workload"])
    assert "--save" in _flags(sections["Options"])


@pytest.mark.parametrize("command", ["run", "sweep", "capacity", "serve", "demo", "compare", "reproduce", "calibrate",
                                     "validate-sim", "gate", "export", "profile-predictor"])
def test_help_text_has_no_doubled_punctuation(bsbench, command):
    text = " ".join(_help(bsbench, command).split())
    found = re.search(r".{0,30}[.;:,] ?[;,].{0,10}", text)  # a sentence's end run into the next one: ".;"
    assert found is None, found.group(0)
