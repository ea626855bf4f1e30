"""Shared workload flags for every command that needs a workload (`run`, `sweep`, `workload show`).

    @click.command()
    @workload_options
    def command(**kwargs):
        workload = workload_from_cli(kwargs)   # pops the workload keys, leaves the rest

Every flag defaults to None, so a spec file's values hold unless a flag is
given. For a sweep, pop the options once with `workload_overrides(kwargs)`,
then call `load_workload(target, {**overrides, "rate": r})` per rate, or build
once and call `bsbench.workloads.build.with_rate(workload, r)`: same seed,
same requests, arrivals rescaled from the same unit-rate draws (paired).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import click

from bsbench.commands._help import group_options
from bsbench.commands._types import PairsOption, param_type
from bsbench.errors import BsbenchError
from bsbench.values import Invalid
from bsbench.workloads.build import load_workload
from bsbench.workloads.specs import OPTION_RULES

if TYPE_CHECKING:
    from bsbench.workloads.workload import Workload

# (flag names, option key, help); the key is the load_workload option name, and the flag's type is the
# rule of that option (specs.OPTION_RULES), the same rule a spec file's key is checked by.
_OPTIONS: list[tuple[tuple[str, ...], str, str]] = [
    (("--workload", "-w"), "workload",
     "Spec name (smoke, sharegpt-vllm, mixed-longtail, longbench), a .toml spec, a saved .jsonl request list, "
     "or a source: sharegpt | sharegpt-multiturn | longbench | synthetic | trace | mixed:SRC=SHARE,...  "
     "[default: sharegpt-vllm]"),
    (("--num-requests", "-n", "--num-prompts"), "num_requests", "Number of requests [spec; default 100]."),
    (("--seed",), "seed", "Seed for sampling, arrivals, SLOs and priorities [default 0]."),
    (("--rate", "--request-rate"), "rate",
     "Request rate in req/s, or 'inf' for every request at t = 0 [default inf]."),
    (("--arrival",), "arrival", "Arrival process [default poisson]."),
    (("--burstiness",), "burstiness", "Gamma shape k (1 = Poisson, < 1 burstier); implies --arrival gamma."),
    (("--cv",), "cv", "Gamma coefficient of variation (k = 1/cv^2); implies --arrival gamma."),
    (("--dataset-path",), "dataset_path",
     "Dataset file or folder: ShareGPT JSON/JSONL, LongBench JSONL file/folder, trace CSV."),
    (("--tokenizer",), "tokenizer", "Tokenizer folder, tokenizer.json or hub id [default: shipped bsbench-bpe-32k]."),
    (("--filter",), "filter", "Length filter preset [default vllm]."),
    (("--min-prompt-len", "--filter-min-prompt"), "filter_min_prompt", "Drop prompts shorter than N tokens."),
    (("--min-output-len", "--filter-min-output"), "filter_min_output", "Drop outputs shorter than N tokens."),
    (("--filter-max-prompt",), "filter_max_prompt", "Drop prompts longer than N tokens (after truncation)."),
    (("--filter-max-output",), "filter_max_output", "Drop outputs longer than N tokens (after capping)."),
    (("--filter-max-total",), "filter_max_total", "Drop requests whose prompt + output exceeds N tokens."),
    (("--max-prompt-len",), "max_prompt_len", "Truncate longer prompts from the middle to N tokens (counted)."),
    (("--max-output-len",), "max_output_len", "Cap output lengths at N tokens (counted)."),
    (("--ttft-slo",), "ttft_slo", "TTFT SLO in ms, or LOW..HIGH to draw one per request uniformly."),
    (("--tpot-slo",), "tpot_slo", "TPOT SLO in ms, or LOW..HIGH."),
    (("--e2e-slo",), "e2e_slo", "End-to-end SLO in ms, or LOW..HIGH (UELLM: 150000..300000)."),
    (("--online-share",), "online_share", "Share of requests in the 'online' priority class [default 1]."),
    (("--time-scale",), "time_scale", "Trace time scale: arrival gaps are multiplied by it [default 1]."),
    (("--input-len",), "input_len", "Synthetic: mean prompt length [default 512]."),
    (("--output-len",), "output_len", "Synthetic: mean output length [default 128]."),
    (("--length-dist",), "length_dist", "Synthetic: length distribution [default fixed]."),
    (("--range-ratio",), "range_ratio", "Synthetic uniform: lengths in [L(1-r), L(1+r)]."),
]
_FLAGS: list[tuple[tuple[str, ...], str, str]] = [
    (("--strict",), "strict", "Malformed records are fatal instead of counted and skipped."),
    (("--oversample",), "oversample", "Resample with replacement when fewer requests exist than asked for."),
    (("--normalise-arrivals", "--normalize-arrivals"), "normalise_arrivals",
     "Scale the arrival gaps so that the realised rate, (n-1) / (last - first arrival), equals --rate exactly."),
]
WORKLOAD_KEYS = tuple(key for _, key, _ in _OPTIONS) + tuple(key for _, key, _ in _FLAGS)
GOODPUT_HELP = ("vLLM's spelling of the SLOs: --goodput ttft:MS tpot:MS e2el:MS (any of them) sets --ttft-slo, "
                "--tpot-slo, --e2e-slo.")
_GOODPUT_KEYS = {"ttft": "ttft_slo", "tpot": "tpot_slo", "e2el": "e2e_slo"}
# when requests arrive and what they must meet; commands that only look at the requests (profile-predictor) omit them
ARRIVAL_KEYS = ("rate", "arrival", "burstiness", "cv", "normalise_arrivals", "time_scale", "ttft_slo", "tpot_slo",
                "e2e_slo", "goodput", "online_share")
WORKLOAD_GROUP = "Workload"
ARRIVAL_GROUP = "Arrivals and SLOs"


def _add_workload_flags(func: Callable, arrivals: bool) -> Callable:
    for names, key, _help in reversed(_FLAGS):
        if arrivals or key not in ARRIVAL_KEYS:
            func = click.option(*names, key, is_flag=True, default=None, help=_help)(func)
    if arrivals:
        func = click.option("--goodput", "goodput", cls=PairsOption, multiple=True, metavar="KEY:MS...",
                            help=GOODPUT_HELP)(func)
    for names, key, _help in reversed(_OPTIONS):
        if arrivals or key not in ARRIVAL_KEYS:
            kind = param_type(OPTION_RULES[key]) if key in OPTION_RULES else str  # --workload: a name or a path
            func = click.option(*names, key, type=kind, default=None, help=_help)(func)
    func = group_options(WORKLOAD_GROUP, [k for k in WORKLOAD_KEYS if k not in ARRIVAL_KEYS])(func)
    return group_options(ARRIVAL_GROUP, ARRIVAL_KEYS)(func) if arrivals else func


def workload_options(func: Callable) -> Callable:
    """Add every workload flag to a click command (values arrive in **kwargs under WORKLOAD_KEYS)."""
    return _add_workload_flags(func, arrivals=True)


def workload_request_options(func: Callable) -> Callable:
    """The workload flags without arrivals and SLOs, for commands that only look at the request list."""
    return _add_workload_flags(func, arrivals=False)


def workload_overrides(kwargs: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """Pop the workload keys from kwargs: (the --workload target, the overrides that were given)."""
    values = {key: kwargs.pop(key, None) for key in WORKLOAD_KEYS}
    values.update(goodput_slos(kwargs.pop("goodput", None) or (), values))
    if values["arrival"] is None and (values["burstiness"] is not None or values["cv"] is not None):
        values["arrival"] = "gamma"  # as vLLM's --burstiness: a shape means gamma arrivals (over a spec's process)
    target = values.pop("workload")
    return target, {k: v for k, v in values.items() if v is not None}


def goodput_slos(words: Sequence[str], given: dict[str, Any]) -> dict[str, Any]:
    """vLLM's `--goodput ttft:MS tpot:MS e2el:MS` as SLO overrides {ttft_slo: MS, ...}, each checked by the rule
    of the flag it stands for; a bad key or value, or an SLO also given by its own flag, is a one-line error."""
    out: dict[str, Any] = {}
    for pair in " ".join(words).replace(",", " ").split():
        name, _, value = pair.partition(":")
        key = _GOODPUT_KEYS.get(name.lower())
        if key is None or not value:
            raise BsbenchError(f"--goodput takes ttft:MS, tpot:MS or e2el:MS (vLLM's keys), got {pair!r:.40}")
        if given.get(key) is not None or key in out:
            raise BsbenchError(f"--goodput {name} and --{key.replace('_slo', '-slo')} both set the {name} SLO; "
                               "give one")
        try:
            out[key] = OPTION_RULES[key].check(value)
        except Invalid as exc:
            raise BsbenchError(f"--goodput {name}: {exc}") from None
    return out


def workload_from_cli(kwargs: dict[str, Any]) -> Workload:
    """Pop the workload flags from a command's kwargs and load the workload they describe."""

    target, overrides = workload_overrides(kwargs)
    return load_workload(target, overrides)
