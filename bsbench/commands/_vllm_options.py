"""vLLM's `vllm bench serve` flags, spelled as vLLM spells them, translated into bsbench's own flags.

`vllm_workload_options` (run and sweep) adds the dataset, ramp-up and percentile flags;
`vllm_run_options` (run) adds the server, request and result-file flags. `take_vllm_workload` and
`take_vllm_run` pop them from click's kwargs before the bsbench flags are read, and write their meaning into
the bsbench keys (`--dataset-name random --random-input-len 128` becomes `--workload synthetic --input-len 128`),
so that there is one implementation of each thing. Giving both spellings of one setting is a user error, and so
is a vLLM flag bsbench cannot honour: one line saying why.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from bsbench.commands._help import group_options
from bsbench.commands._types import KeyValuesOption, param_type
from bsbench.errors import BsbenchError
from bsbench.values import Integer, Real

VLLM_GROUP = "vLLM bench serve spellings"
# vLLM's dataset names -> bsbench's workload source; the others are refused with the reason
DATASETS = {"random": "synthetic", "sharegpt": "sharegpt"}
_NOT_HERE = {
    "burstgpt": "BurstGPT's CSV is not read here; give a trace CSV with --workload trace --dataset-path FILE",
    "sonnet": "the sonnet dataset is not shipped with bsbench",
    "custom": "prompts are taken as text there; save a bsbench request list (.jsonl) and give it with --workload",
}
# vLLM's defaults of the random dataset (vllm/benchmarks/datasets.py) and of --num-prompts
RANDOM_INPUT_LEN, RANDOM_OUTPUT_LEN, NUM_PROMPTS = 1024, 128, 1000
PERCENTILE_METRICS = ("ttft", "tpot", "itl", "e2el")
VLLM_WORKLOAD_KEYS = ("dataset_name", "random_input_len", "random_output_len", "random_range_ratio", "ignore_eos",
                      "ramp_up_strategy", "ramp_up_start_rps", "ramp_up_end_rps", "metric_percentiles",
                      "percentile_metrics")
VLLM_RUN_KEYS = ("host", "port", "header", "extra_body", "temperature", "num_warmups", "save_result",
                 "save_detailed", "result_dir", "result_filename", "metadata", "label")
_CLIENT_ONLY = ("host", "port", "header", "extra_body", "temperature", "num_warmups")
_RATE = param_type(Real(low=0, high=1e9))


@dataclass(slots=True)
class VllmWorkload:
    """What the vLLM workload flags leave for after the workload is built."""

    ramp: tuple[str, float, float] | None = None  # (strategy, start rps, end rps)
    percentile_metrics: tuple[str, ...] = PERCENTILE_METRICS


@dataclass(slots=True)
class VllmSave:
    """--save-result and its companions: where and how to write vLLM's result file."""

    save: bool = False
    detailed: bool = False
    result_dir: Path | None = None  # None: beside the bsbench record
    filename: str | None = None
    label: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    percentile_metrics: tuple[str, ...] = PERCENTILE_METRICS


def _options(specs: list[tuple[tuple[str, ...], str, dict[str, Any]]]) -> Callable:
    def decorate(func: Callable) -> Callable:
        for names, key, extra in reversed(specs):
            func = click.option(*names, key, **extra)(func)
        return func
    return decorate


def vllm_workload_options(func: Callable) -> Callable:
    """vLLM's dataset, ramp-up and percentile flags (run and sweep); None when not given."""
    func = _options([
        (("--dataset-name",), "dataset_name", dict(default=None, metavar="NAME", help=(
            "vLLM's dataset: random (= -w synthetic, vLLM's lengths 1024/128 and 1000 prompts unless given) or "
            "sharegpt (= -w sharegpt with --dataset-path)."))),
        (("--random-input-len",), "random_input_len", dict(type=param_type(Integer(1, 10_000_000)), default=None,
                                                          metavar="N", help="--dataset-name random: prompt length.")),
        (("--random-output-len",), "random_output_len", dict(type=param_type(Integer(1, 10_000_000)),
                                                            default=None, metavar="N",
                                                            help="--dataset-name random: output length.")),
        (("--random-range-ratio",), "random_range_ratio", dict(type=param_type(Real(low=0, high=1, high_open=True)),
                                                              default=None, metavar="R", help=(
            "--dataset-name random: lengths uniform in [L(1-R), L(1+R)] (= --length-dist uniform --range-ratio)."))),
        (("--ignore-eos",), "ignore_eos", dict(is_flag=True, default=None, help=(
            "Generate every request's full output length. bsbench always does (--backend openai sends "
            "ignore_eos unless --strict-openai)."))),
        (("--ramp-up-strategy",), "ramp_up_strategy", dict(type=click.Choice(["linear", "exponential"]),
                                                          default=None, help=(
            "Ramp the request rate from --ramp-up-start-rps to --ramp-up-end-rps over the requests (as vLLM)."))),
        (("--ramp-up-start-rps",), "ramp_up_start_rps", dict(type=_RATE, default=None, metavar="RPS")),
        (("--ramp-up-end-rps",), "ramp_up_end_rps", dict(type=_RATE, default=None, metavar="RPS")),
        (("--metric-percentiles",), "metric_percentiles", dict(default=None, metavar="P,P", help=(
            "vLLM's spelling of --percentiles, e.g. 25,50,99."))),
        (("--percentile-metrics",), "percentile_metrics", dict(default=None, metavar="M,M", help=(
            "Metrics whose percentiles --save-result writes: ttft, tpot, itl, e2el [default: all four]."))),
    ])(func)
    return group_options(VLLM_GROUP, VLLM_WORKLOAD_KEYS)(func)


def vllm_run_options(func: Callable) -> Callable:
    """vLLM's server, request and result-file flags (run)."""
    func = _options([
        (("--host",), "host", dict(default=None, help="Server host; with --port it makes --base-url "
                                                     "http://HOST:PORT [vLLM's default 127.0.0.1]")),
        (("--port",), "port", dict(type=param_type(Integer(1, 65535)), default=None,
                                   help="Server port [vLLM's default 8000].")),
        (("--header",), "header", dict(cls=KeyValuesOption, multiple=True, default=None, metavar="KEY=VALUE",
                                       help="Not supported yet (see the message).")),
        (("--extra-body",), "extra_body", dict(default=None, metavar="JSON",
                                               help="A JSON object merged into every request body.")),
        (("--temperature",), "temperature", dict(type=param_type(Real(low=0, high=100)), default=None,
                                                 help="Sampling temperature [default: 0, greedy].")),
        (("--num-warmups",), "num_warmups", dict(type=param_type(Integer(0, 1_000_000)), default=None,
                                                 metavar="K", help="vLLM's spelling of --warmup-requests.")),
        (("--save-result",), "save_result", dict(is_flag=True, default=None, help=(
            "Also write vLLM's result JSON (beside the record unless --result-dir)."))),
        (("--save-detailed",), "save_detailed", dict(is_flag=True, default=None, help=(
            "With --save-result: add the per-request lists (input_lens, ttfts, itls, errors, ...)."))),
        (("--result-dir",), "result_dir", dict(type=click.Path(file_okay=False, path_type=Path), default=None,
                                               help="Folder of the --save-result file [default: --out].")),
        (("--result-filename",), "result_filename", dict(default=None, metavar="NAME",
                                                         help="Name of the --save-result file [vLLM's pattern].")),
        (("--metadata",), "metadata", dict(cls=KeyValuesOption, multiple=True, default=None, metavar="KEY=VALUE",
                                           help="Written into the --save-result file (repeat, or list them).")),
        (("--label",), "label", dict(default=None, help="Label (file-name prefix) of the --save-result file.")),
    ])(func)
    return group_options(VLLM_GROUP, VLLM_RUN_KEYS)(func)


def _given(ctx: click.Context, key: str) -> bool:
    return ctx.get_parameter_source(key) is click.core.ParameterSource.COMMANDLINE


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def _set(kwargs: dict[str, Any], key: str, value: Any, vllm_flag: str) -> None:
    """Write a vLLM flag's value into its bsbench key; the bsbench flag given too is a user error."""
    if kwargs.get(key) is not None:
        raise BsbenchError(f"{vllm_flag} and {_flag(key)} set the same thing; give one")
    kwargs[key] = value


def take_vllm_workload(ctx: click.Context, kwargs: dict[str, Any]) -> VllmWorkload:
    """Pop the vLLM workload flags and write their meaning into the bsbench workload keys of `kwargs`."""
    values = {key: kwargs.pop(key, None) for key in VLLM_WORKLOAD_KEYS}
    name = values["dataset_name"]
    random_keys = [k for k in ("random_input_len", "random_output_len", "random_range_ratio") if values[k] is not None]
    if name is not None:
        if name in _NOT_HERE:
            raise BsbenchError(f"--dataset-name {name}: {_NOT_HERE[name]}")
        if name not in DATASETS:
            raise BsbenchError(f"--dataset-name {name!r:.40}: bsbench has {', '.join(DATASETS)} (vLLM's other "
                               "datasets are multimodal, hub or speculative-decoding sets it does not read)")
        _set(kwargs, "workload", DATASETS[name], f"--dataset-name {name}")
        if kwargs.get("num_requests") is None:
            kwargs["num_requests"] = NUM_PROMPTS
    if random_keys and name != "random":
        raise BsbenchError(f"{_flag(random_keys[0])} applies to --dataset-name random")
    if name == "random":
        _set(kwargs, "input_len", values["random_input_len"] or RANDOM_INPUT_LEN, "--random-input-len")
        _set(kwargs, "output_len", values["random_output_len"] or RANDOM_OUTPUT_LEN, "--random-output-len")
        if values["random_range_ratio"]:
            _set(kwargs, "length_dist", "uniform", "--random-range-ratio")
            _set(kwargs, "range_ratio", values["random_range_ratio"], "--random-range-ratio")
    if values["metric_percentiles"] is not None:
        if _given(ctx, "percentiles"):
            raise BsbenchError("--metric-percentiles and --percentiles set the same thing; give one")
        kwargs["percentiles"] = values["metric_percentiles"]
    out = VllmWorkload(percentile_metrics=_percentile_metrics(values["percentile_metrics"]))
    ramp = [values[k] for k in ("ramp_up_strategy", "ramp_up_start_rps", "ramp_up_end_rps")]
    if any(v is not None for v in ramp):
        if any(v is None for v in ramp):
            raise BsbenchError("--ramp-up-strategy needs --ramp-up-start-rps and --ramp-up-end-rps (all three)")
        out.ramp = (str(ramp[0]), float(ramp[1]), float(ramp[2]))
    return out


def _percentile_metrics(text: str | None) -> tuple[str, ...]:
    if text is None:
        return PERCENTILE_METRICS
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    bad = [n for n in names if n not in PERCENTILE_METRICS]
    if bad or not names:
        raise BsbenchError(f"--percentile-metrics takes {', '.join(PERCENTILE_METRICS)} (comma-separated); "
                           f"bsbench has no {bad[0] if bad else 'empty list'!r:.40}")
    return names


def take_vllm_run(ctx: click.Context, kwargs: dict[str, Any], openai_values: dict[str, Any], remote: bool,
                  workload: VllmWorkload) -> VllmSave:
    """Pop the vLLM server, request and result flags: the client ones go into `openai_values` (the openai
    backend's keys), and on another backend they are user errors; the rest is returned."""
    values = {key: kwargs.pop(key, None) for key in VLLM_RUN_KEYS}
    values = {k: v for k, v in values.items() if v not in (None, ())}
    if not remote:
        client = [k for k in _CLIENT_ONLY if k in values]
        if client:
            raise BsbenchError(f"{_flag(client[0])} applies to --backend openai, not --backend {kwargs['backend']}")
    else:
        _client_values(ctx, kwargs, values, openai_values)
    if workload.percentile_metrics != PERCENTILE_METRICS and not values.get("save_result"):
        raise BsbenchError("--percentile-metrics chooses what --save-result writes (bsbench's tables show all); "
                           "give --save-result")
    extra = [k for k in ("save_detailed", "result_dir", "result_filename", "metadata", "label") if k in values]
    if extra and not values.get("save_result"):
        raise BsbenchError(f"{_flag(extra[0])} applies to --save-result")
    return VllmSave(save=bool(values.get("save_result")), detailed=bool(values.get("save_detailed")),
                    result_dir=values.get("result_dir"), filename=values.get("result_filename"),
                    label=values.get("label"), metadata=_pairs(values.get("metadata", ()), "--metadata"),
                    percentile_metrics=workload.percentile_metrics)


def _client_values(ctx: click.Context, kwargs: dict[str, Any], values: dict[str, Any],
                   openai_values: dict[str, Any]) -> None:
    """--model, --host/--port, --num-warmups, --temperature, --extra-body, --ignore-eos as openai keys."""
    if "header" in values:
        raise BsbenchError("--header is not supported yet: the client sends only its own headers "
                           "(openai_client/run.py builds them); use --api-key-env for a bearer token")
    if _given(ctx, "model"):
        _set(openai_values, "served_model", kwargs["model"], "--model")
    if "host" in values or "port" in values:
        _set(openai_values, "base_url", f"http://{values.get('host', '127.0.0.1')}:{values.get('port', 8000)}",
             "--host/--port")
    if "num_warmups" in values:
        _set(openai_values, "warmup_requests", values["num_warmups"], "--num-warmups")
    if "temperature" in values:
        openai_values["temperature"] = float(values["temperature"])
    if "extra_body" in values:
        openai_values["extra_body"] = _json_object(values["extra_body"])
    if _given(ctx, "ignore_eos") and openai_values.get("strict_openai"):
        raise BsbenchError("--ignore-eos and --strict-openai disagree: strict mode sends no ignore_eos")


def _json_object(text: str) -> tuple[tuple[str, Any], ...]:
    try:
        obj = json.loads(text)
    except ValueError as exc:
        raise BsbenchError(f"--extra-body must be a JSON object: {exc}") from None
    if not isinstance(obj, dict):
        raise BsbenchError(f"--extra-body must be a JSON object, got {type(obj).__name__}")
    return tuple(obj.items())


def _pairs(words: tuple[str, ...], flag: str) -> dict[str, str]:
    """KEY=VALUE words (each word may hold several, space-separated) as a dict; anything else is a user error."""
    out: dict[str, str] = {}
    for word in " ".join(words).split():
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise BsbenchError(f"{flag} takes KEY=VALUE words, got {word!r:.40}")
        out[key] = value
    return out
