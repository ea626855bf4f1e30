"""Workload options: their defaults, spec files (TOML) and how a bare name finds its spec.

Spec files live in ONE place, `bsbench/data/workloads/*.toml` (package data,
so they work from an installed wheel); the repository's top-level
`workloads/` folder holds symlinks to them and is where users drop their own
specs. A bare name NAME resolves to the first NAME.toml found in: ./workloads/
(the current directory), the repository's workloads/ folder, the packaged
specs. A spec is flat `key = value` pairs using the option names below, plus
optional `[components.<source>]` tables that give a mixed workload's
components their own options. Relative paths in a spec are relative to the
spec file.
"""

from __future__ import annotations

import os
import tomllib
from importlib import resources
from typing import Any

from bsbench.errors import BsbenchError
from bsbench.safe_json import read_text
from bsbench.values import (
    RATE,
    REQUEST_COUNT,
    SEED,
    SHARE,
    TOKEN_BOUND,
    TOKEN_COUNT,
    Choice,
    Flag,
    Real,
    Rule,
    Text,
    validate_all,
)
from bsbench.workloads.arrivals import PROCESSES
from bsbench.workloads.filters import PRESETS as FILTER_PRESETS
from bsbench.workloads.slo import SloBound
from bsbench.workloads.synthetic import DISTRIBUTIONS

DEFAULTS: dict[str, Any] = {
    "name": None, "description": "",
    "source": "sharegpt", "num_requests": 100, "seed": 0,
    "rate": "inf", "arrival": "poisson", "burstiness": None, "cv": None, "normalise_arrivals": False,
    "dataset_path": None, "tokenizer": None,
    "filter": "vllm", "filter_min_prompt": None, "filter_min_output": None,
    "filter_max_prompt": None, "filter_max_output": None, "filter_max_total": None,
    "max_prompt_len": None, "max_output_len": None,
    "ttft_slo": None, "tpot_slo": None, "e2e_slo": None, "online_share": 1.0,
    "strict": False, "oversample": False, "time_scale": 1.0,
    # synthetic source
    "input_len": 512, "output_len": 128, "length_dist": "fixed", "range_ratio": 0.0, "std_ratio": 0.25,
    "zipf_a": 2.5,
    # mixed source: per-component option tables
    "components": None,
}
OPTION_KEYS = frozenset(DEFAULTS)
# What each option may be, wherever it comes from (flag, spec file, API call); `components` is checked apart.
OPTION_RULES: dict[str, Rule] = {
    "name": Text(), "description": Text(), "source": Text(nonempty=True),
    "num_requests": REQUEST_COUNT, "seed": SEED,
    "rate": RATE, "arrival": Choice(PROCESSES), "normalise_arrivals": Flag(),
    "burstiness": Real(low=1e-4, high=1e4), "cv": Real(low=0.01, high=100),  # k = 1/cv^2: the same range
    "dataset_path": Text(nonempty=True), "tokenizer": Text(nonempty=True),
    "filter": Choice(tuple(FILTER_PRESETS)),
    "filter_min_prompt": TOKEN_BOUND, "filter_min_output": TOKEN_BOUND,
    "filter_max_prompt": TOKEN_BOUND, "filter_max_output": TOKEN_BOUND, "filter_max_total": TOKEN_BOUND,
    "max_prompt_len": TOKEN_COUNT, "max_output_len": TOKEN_COUNT,
    "ttft_slo": SloBound(), "tpot_slo": SloBound(), "e2e_slo": SloBound(), "online_share": SHARE,
    "strict": Flag(), "oversample": Flag(), "time_scale": Real(low=0, low_open=True, high=1e6),
    "input_len": TOKEN_COUNT, "output_len": TOKEN_COUNT, "length_dist": Choice(DISTRIBUTIONS),
    "range_ratio": Real(low=0, high=1, high_open=True), "std_ratio": Real(low=0, high=10),
    "zipf_a": Real(low=1, low_open=True, high=100),
}
DEFAULT_WORKLOAD = "sharegpt-vllm"


def packaged_spec_dir() -> str:
    return str(resources.files("bsbench").joinpath("data", "workloads"))


def spec_dirs() -> list[str]:
    repo_dir = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "workloads")
    dirs = [os.path.join(os.getcwd(), "workloads"), repo_dir, packaged_spec_dir()]
    seen: list[str] = []
    for d in dirs:
        if os.path.isdir(d) and os.path.realpath(d) not in [os.path.realpath(s) for s in seen]:
            seen.append(d)
    return seen


def available_specs() -> list[str]:
    names = {f[:-5] for d in spec_dirs() for f in os.listdir(d) if f.endswith(".toml")}
    return sorted(names)


def find_spec(name: str) -> str | None:
    for d in spec_dirs():
        path = os.path.join(d, f"{name}.toml")
        if os.path.isfile(path):
            return path
    return None


def check_keys(options: dict[str, Any], where: str) -> None:
    unknown = sorted(set(options) - OPTION_KEYS)
    if unknown:
        raise BsbenchError(f"unknown workload option(s) {', '.join(unknown)} in {where}")


def validate_options(options: dict[str, Any], where: str) -> dict[str, Any]:
    """Known keys only, every value checked by its rule (OPTION_RULES), `components` a table of such tables.

    Returns the options with values converted ('8' -> 8.0); a refusal is one line: 'WHERE: KEY must be ...'."""
    check_keys(options, where)
    checked = validate_all(OPTION_RULES, options, where, skip=("components",))
    components = options.get("components")
    if components is not None:
        if not isinstance(components, dict) or not all(isinstance(c, dict) for c in components.values()):
            raise BsbenchError(f"{where}: components must be tables such as [components.sharegpt]")
        checked["components"] = {}
        for name, component in components.items():
            if "components" in component:
                raise BsbenchError(f"{where}: [components.{name}] cannot hold components itself")
            checked["components"][name] = validate_options(component, f"{where} [components.{name}]")
    return checked


def read_spec(path: str) -> dict[str, Any]:
    """A spec file's options, validated (see validate_options), with relative dataset paths made absolute
    (relative to the spec's real folder). Any problem is one BsbenchError line naming the file (and key)."""
    try:
        options = tomllib.loads(read_text(path, "workload spec"))
    except tomllib.TOMLDecodeError as exc:
        raise BsbenchError(f"workload spec {path} is not valid TOML: {exc}") from None
    except RecursionError:
        raise BsbenchError(f"workload spec {path} is nested too deeply to be a workload spec") from None
    options = validate_options(options, path)
    base = os.path.dirname(os.path.realpath(path))
    options.setdefault("name", os.path.splitext(os.path.basename(path))[0])
    _absolutise(options, base)
    for component in (options.get("components") or {}).values():
        _absolutise(component, base)
    return options


def _absolutise(options: dict[str, Any], base: str) -> None:
    """A relative dataset path that exists next to the spec becomes absolute; anything else (a hub id) stays."""
    path = options.get("dataset_path")
    if isinstance(path, str) and path and not os.path.isabs(os.path.expanduser(path)):
        candidate = os.path.join(base, path)
        if os.path.exists(candidate):
            options["dataset_path"] = candidate
