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

DEFAULTS: dict[str, Any] = {
    "name": None, "description": "",
    "source": "sharegpt", "num_requests": 100, "seed": 0,
    "rate": "inf", "arrival": "poisson", "burstiness": None, "cv": None,
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


def read_spec(path: str) -> dict[str, Any]:
    """A spec file's options, with relative dataset paths made absolute (relative to the spec's real folder)."""
    try:
        with open(path, "rb") as handle:
            options = tomllib.load(handle)
    except FileNotFoundError:
        raise BsbenchError(f"workload spec not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise BsbenchError(f"workload spec {path} is not valid TOML: {exc}") from None
    check_keys(options, path)
    base = os.path.dirname(os.path.realpath(path))
    options.setdefault("name", os.path.splitext(os.path.basename(path))[0])
    _absolutise(options, base)
    for comp_name, comp in (options.get("components") or {}).items():
        if not isinstance(comp, dict):
            raise BsbenchError(f"[components.{comp_name}] in {path} must be a table")
        check_keys(comp, f"{path} [components.{comp_name}]")
        _absolutise(comp, base)
    return options


def _absolutise(options: dict[str, Any], base: str) -> None:
    """A relative dataset path that exists next to the spec becomes absolute; anything else (a hub id) stays."""
    path = options.get("dataset_path")
    if isinstance(path, str) and path and not os.path.isabs(os.path.expanduser(path)):
        candidate = os.path.join(base, path)
        if os.path.exists(candidate):
            options["dataset_path"] = candidate
