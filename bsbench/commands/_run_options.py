"""Shared flags of commands that run the engine (`run`, `sweep`, `capacity`).

Scheduler flags are generated from every registered policy's options
dataclass: a field `max_num_seqs` becomes `--max-num-seqs`, its metadata gives
the help text and choices, and a field name shared by several policies is one
flag. Flags default to None so that each policy's own default applies; in
--help (GroupedCommand) each policy's group lists its flags with its own
default (`--max-batch-size`: 8 under static, 10 under uellm).
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from bsbench.backends.config import RunConfig
from bsbench.backends.policy_build import build_scheduler_options
from bsbench.backends.words import is_remote
from bsbench.commands._help import group_options, set_help_groups
from bsbench.commands._types import GENERIC_FLOAT, GENERIC_INT, param_type
from bsbench.errors import BsbenchError
from bsbench.model.presets import PRESETS
from bsbench.paths import check_output_dir
from bsbench.record.window import SHARE, Amount, WindowSpec
from bsbench.schedulers.registry import all_schedulers, get_scheduler
from bsbench.sim.engine_overhead import DEFAULT_ENGINE_OVERHEAD, engine_overhead
from bsbench.sim.settings import TIERS, SimSettings
from bsbench.sim.vllm_memory import DEFAULT_GPU_MEMORY_UTILIZATION
from bsbench.values import SEED, ByteSize, Integer

if TYPE_CHECKING:
    from bsbench.backends.config import RunConfig

_PREFIX = "sched_"  # keeps generated option names apart from other commands' parameters
_GENERIC = {float: GENERIC_FLOAT, int: GENERIC_INT}  # NaN, inf, non-numbers refused at parse time


def _scheduler_fields() -> dict[str, list[tuple[str, dataclasses.Field, type]]]:
    """field name -> [(scheduler, its field, resolved type)] for every scheduler that has it; in the order
    the schedulers (by name) declare them, so that --help lists each policy's flags as its dataclass does."""
    found: dict[str, list[tuple[str, dataclasses.Field, type]]] = {}
    for name, cls in all_schedulers().items():
        hints = typing.get_type_hints(cls.Options)
        for f in dataclasses.fields(cls.Options):
            found.setdefault(f.name, []).append((name, f, hints[f.name]))
    return found


def _default_text(f: dataclasses.Field) -> str | None:
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return None
    if isinstance(value, bool):
        return "on" if value else "off"
    return None if value in ("", None) else str(value)


def _with_default(help_text: str, default: str | None) -> str:
    return f"{help_text}  [default: {default}]" if default is not None else help_text


def _scheduler_option(name: str, owners: list[tuple[str, dataclasses.Field, type]]) -> Callable:
    """One flag for a field name; in --help it appears in each owner's group with that owner's help and default."""
    flag = "--" + name.replace("_", "-")
    _, first, kind = owners[0]
    defaults = [(scheduler, _default_text(f)) for scheduler, f, _ in owners]
    shared = ", ".join(f"{s} {d}" for s, d in defaults if d is not None)
    help_text = _with_default(first.metadata.get("help", ""), shared or None) if len(owners) > 1 else \
        _with_default(first.metadata.get("help", ""), defaults[0][1])
    groups = {scheduler_group(scheduler): _with_default(f.metadata.get("help", ""), _default_text(f))
              for scheduler, f, _ in owners}
    if kind is bool:
        option = click.option(f"{flag}/--no-{flag[2:]}", _PREFIX + name, default=None, help=help_text)
    else:
        choices = first.metadata.get("choices")
        click_type: Any = click.Choice(list(choices)) if choices else _GENERIC.get(kind, kind)
        option = click.option(flag, _PREFIX + name, type=click_type, default=None, help=help_text)

    def decorate(func: Callable) -> Callable:
        func = option(func)
        set_help_groups(func, _PREFIX + name, groups)
        return func

    return decorate


def scheduler_group(scheduler: str) -> str:
    """The --help group of one scheduler's flags."""
    return f"Scheduler {scheduler} (--scheduler {scheduler})"


MODEL_GROUP = "Model and memory"
RECORD_GROUP = "Run record"
_MODEL_FLAGS = ("backend", "clock", "gpu", "cost_model", "calibration", "engine_overhead", "tensor_parallel",
                "gpu_memory_utilization", "instances", "link", "decode_gpu", "model", "weights",
                "weights_seed", "device", "dtype", "kv_memory", "block_size", "threads")
_RECORD_FLAGS = ("repeats", "out_dir", "record_tokens", "percentiles", "warmup", "duration")
_SERVE_FLAGS = ("model", "weights", "weights_seed", "device", "dtype", "kv_memory", "block_size", "threads")


def run_options(func: Callable, backends: tuple[str, ...] = ("real", "sim")) -> Callable:
    """Add engine, model and every scheduler's flags to a command (grouped in --help by GroupedCommand).
    `backends`: the --backend choices (`run` adds openai, a remote server: commands/_openai_options.py)."""
    return _engine_options(func, _MODEL_FLAGS + _RECORD_FLAGS, backends)


def serve_options(func: Callable) -> Callable:
    """run_options for `bsbench serve`: the scheduler and model flags, without the backend, clock and record
    flags (a server runs the real model on the wall clock and writes no record)."""
    return _engine_options(func, _SERVE_FLAGS, ("real",))


def _engine_options(func: Callable, names: tuple[str, ...], backends: tuple[str, ...]) -> Callable:
    for name, owners in reversed(_scheduler_fields().items()):
        func = _scheduler_option(name, owners)(func)
    for decorator in reversed([d for name, d in _flag_decorators(backends).items() if name in names]):
        func = decorator(func)
    func = group_options(MODEL_GROUP, [n for n in _MODEL_FLAGS if n in names])(func)
    record = [n for n in _RECORD_FLAGS if n in names]
    return group_options(RECORD_GROUP, record)(func) if record else func


def _flag_decorators(backends: tuple[str, ...]) -> dict[str, Callable]:
    """Each engine flag's click option, by its Python name, in --help order."""
    decorators = [
        click.option("--backend", type=click.Choice(list(backends)), default="real", show_default=True,
                     help="real: the model runner computes every step; sim: the same engine, schedulers and KV "
                          "manager with step times from a cost model on a virtual clock (no torch, no weights)"
                          + ("; openai: replay against an OpenAI-compatible server (--base-url); vllm and "
                             "openai-chat: vLLM's words for it (openai-chat: --endpoint chat)."
                             if any(is_remote(b) for b in backends) else ".")),
        click.option("--clock", type=click.Choice(["wall", "virtual"]), default=None,
                     help="Real runner only: wall (measured time) or virtual (real tokens, time from the cost "
                          "model: deterministic scheduling). [default: wall; sim is always virtual]"),
        click.option("--gpu", default=None, metavar="NAME",
                     help="Device preset of the cost model (a100-40gb, a100-80gb, h100-sxm, h200, l4, rtx4090). "
                          "Needed by --backend sim and --clock virtual unless --cost-model FILE is given."),
        click.option("--cost-model", default=None, metavar="roofline|profiled|FILE",
                     help="roofline: the preset's peaks with efficiency factors fitted to published GPU "
                          "measurements; profiled: Vidur's published CUDA operator timings where they cover the "
                          "model, GPU and tensor-parallel degree (A100-80GB, H100; Llama-2-7B/70B, Llama-3-8B/70B), "
                          "the roofline elsewhere; FILE: a calibration (bsbench calibrate) of the device it was "
                          "measured on. docs/simulation.md says which to trust where. [default: roofline]"),
        click.option("--calibration", type=click.Path(dir_okay=False, path_type=Path), default=None,
                     help="Same as --cost-model FILE (a calibration file from bsbench calibrate)."),
        click.option("--engine-overhead", default=None, metavar="PRESET|SECONDS",
                     help="Per-step engine overhead of the cost model: eager (a Python engine launching every "
                          "kernel, 6.2 ms), cuda-graphs (2.6 ms), none, or a duration such as 0.8ms; sources in "
                          "bsbench/sim/engine_overhead.py. [default: eager]"),
        click.option("--tensor-parallel", type=param_type(Integer(1, 64)), default=None,
                     help="Sim only: GPUs of the preset per instance; weights, heads and KV split across them and "
                          "each layer adds two all-reduces. [default: 1]"),
        click.option("--gpu-memory-utilization", type=GENERIC_FLOAT, default=None,
                     help="Sim only: vLLM's share of each GPU's memory; the KV cache gets it minus the weights, "
                          "peak activations and non-torch memory (vLLM's rule). [default: 0.9]"),
        click.option("--instances", default=None, metavar="prefill=N,decode=M",
                     help="Sim only: disaggregate prefill and decode onto N + M instances of the simulated GPU on "
                          "one virtual clock, KV moved over --link (schedulers distserve and bucket; distserve "
                          "always runs so, prefill=1,decode=1 by default). The KV budget is per instance."),
        click.option("--link", default=None, metavar="NAME",
                     help="KV-transfer link of --instances: nvlink (300 GB/s one way), pcie4-x16 (31.5 GB/s) or "
                          "ib-200g (25 GB/s). [default: nvlink]"),
        click.option("--decode-gpu", default=None, metavar="NAME",
                     help="Device preset of the decode instances of --instances. [default: --gpu]"),
        click.option("--model", default="tiny", show_default=True,
                     help="Preset (tiny, llama2-7b, llama2-13b, llama2-70b, llama3-8b, llama3-70b, qwen2.5-7b), "
                          "a local checkpoint folder, or a hub id when online."),
        click.option("--weights", type=click.Choice(["dummy", "checkpoint"]), default=None,
                     help="dummy: seeded random weights (default for presets); checkpoint: load real weights "
                          "(default for folders and hub ids)."),
        click.option("--weights-seed", type=param_type(SEED), default=0, show_default=True,
                     help="Seed of dummy weights."),
        click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True),
        click.option("--dtype", type=click.Choice(["auto", "float32", "float16", "bfloat16"]), default="auto",
                     show_default=True),
        click.option("--kv-memory", type=param_type(ByteSize()), default=None,
                     help="KV cache budget, e.g. 512MiB. Default: 0.9 of free GPU memory after the weights; on CPU "
                          "the token capacity of Llama-2-13B on a 40 GB A100 (16k tokens)."),
        click.option("--block-size", type=param_type(Integer(1, 4096)), default=16, show_default=True,
                     help="Tokens per KV block."),
        click.option("--threads", type=param_type(Integer(1, 4096)), default=None,
                     help="torch intra-op threads on CPU [default: half the usable cores, at least 1: 1 on a "
                          "2-core machine; torch's own default on a GPU]. Fewer threads than cores keep a busy "
                          "machine from collapsing; the count is recorded in the run's config."),
        click.option("--repeats", type=param_type(Integer(1, 1000)), default=1, show_default=True,
                     help="Runs of each configuration, repeat i with workload seed SEED + i (arrivals and "
                          "sampling); every scheduler replays the same requests within a repeat. Records carry "
                          "the repeat index and base seed; compare shows the mean and a 95% interval over repeats."),
        click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("results"),
                     show_default=True, help="Folder for run records."),
        click.option("--record-tokens", is_flag=True, help="Store every request's generated token ids in the record."),
        click.option("--percentiles", default="50,90,99", show_default=True, help="Latency percentiles to report."),
        click.option("--warmup", type=WINDOW_AMOUNT, default=None, metavar="30s|200|10%",
                     help="Warm-up left out of the sustained-load figures (steady_*): seconds from the first "
                          "arrival, a request count or a share of the arrivals [default: 10% of the arrivals]."),
        click.option("--duration", type=WINDOW_AMOUNT, default=None, metavar="120s|1000",
                     help="Length of the measurement window after the warm-up, in seconds or requests; later "
                          "arrivals are cool-down. capacity and reproduce size their runs by it (seconds). "
                          "--backend openai also stops submitting once the window (seconds) has passed "
                          "[default: the window ends where the last 10% of arrivals begin]."),
    ]
    return dict(zip(_MODEL_FLAGS + _RECORD_FLAGS, decorators, strict=True))


class _AmountType(click.ParamType):
    """A window length: '30s', '200' (requests) or '10%' (record/window.py: Amount.parse)."""

    name = "amount"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, Amount):
            return value
        try:
            return Amount.parse(value)
        except ValueError as exc:
            name = param.opts[0] if param is not None and param.opts else "value"
            raise click.UsageError(f"{name}: {exc}", ctx) from None


WINDOW_AMOUNT = _AmountType()


def window_spec(warmup: Amount | None, duration: Amount | None) -> WindowSpec | None:
    """The run's WindowSpec of --warmup and --duration; None when neither was given (the default window)."""
    if warmup is None and duration is None:
        return None
    if duration is not None and duration.unit == SHARE:
        raise BsbenchError("--duration takes seconds (120s) or a request count (1000), not a share")
    return WindowSpec(warmup or WindowSpec().warmup, duration)


def parse_percentiles(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise BsbenchError(f"--percentiles must be comma-separated numbers, got {text!r}") from None
    if not values or any(not 0 < p < 100 for p in values):
        raise BsbenchError(f"--percentiles must lie strictly between 0 and 100, got {text!r}")
    return values


def scheduler_values(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Pop the scheduler flags the user gave (non-None) from click's kwargs."""
    values = {}
    for key in [k for k in kwargs if k.startswith(_PREFIX)]:
        value = kwargs.pop(key)
        if value is not None:
            values[key[len(_PREFIX):]] = value
    return values


def run_config_from_cli(kwargs: dict[str, Any], scheduler: str, scheduler_options: dict[str, Any]) -> RunConfig:
    """Pop the engine flags from click's kwargs and build a RunConfig: its scheduler options are validated
    and --out is checked writable here, before any model is loaded (paths.check_output_dir). A command
    without the backend or record flags (serve_options) gets their defaults."""

    build_scheduler_options(get_scheduler(scheduler), scheduler_options)
    backend, clock, gpu, calibration = _backend_flags(kwargs)
    sim = _sim_flags(kwargs, backend, clock, calibration)
    instances, link, decode_gpu = _cluster_flags(kwargs)
    model = kwargs.pop("model")
    weights = kwargs.pop("weights")
    if weights is None:

        weights = "dummy" if model in PRESETS else "checkpoint"
    return RunConfig(
        scheduler=scheduler,
        scheduler_options=scheduler_options,
        model=model,
        weights=weights,
        weights_seed=kwargs.pop("weights_seed"),
        device=kwargs.pop("device"),
        dtype=kwargs.pop("dtype"),
        kv_memory=kwargs.pop("kv_memory"),  # bytes (ByteSize) or None
        block_size=kwargs.pop("block_size"),
        threads=kwargs.pop("threads"),
        out_dir=check_output_dir(kwargs.pop("out_dir"), "--out") if "out_dir" in kwargs else Path("results"),
        record_tokens=kwargs.pop("record_tokens", False),
        percentiles=parse_percentiles(kwargs.pop("percentiles", "50,90,99")),
        window=window_spec(kwargs.pop("warmup", None), kwargs.pop("duration", None)),
        backend=backend,
        clock=clock,
        gpu=gpu,
        calibration=calibration,
        cost_model=sim.cost_model if calibration is None else "calibrated",
        engine_overhead=sim.engine_overhead,
        tensor_parallel=sim.tensor_parallel,
        gpu_memory_utilization=sim.gpu_memory_utilization,
        instances=instances,
        link=link,
        decode_gpu=decode_gpu,
    )


def _cluster_flags(kwargs: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    """Pop --instances, --link and --decode-gpu; backends.factory.cluster_setting_of checks them with the scheduler
    (the run command and sweep's check_schedulers call it before anything loads)."""
    return kwargs.pop("instances", None), kwargs.pop("link", None), kwargs.pop("decode_gpu", None)


def _backend_flags(kwargs: dict[str, Any]) -> tuple[str, str, str | None, Path | None]:
    """Pop and check --backend, --clock, --gpu, --cost-model / --calibration: (backend, clock, GPU preset name,
    calibration file); the checks are the backend factory's (backends/factory.py: check_backend_words)."""
    from bsbench.backends.factory import check_backend_words  # the engine's world: imported when a run is built

    calibration = cost_model_file(kwargs.get("cost_model"), kwargs.pop("calibration", None))
    backend, clock, gpu = check_backend_words(kwargs.pop("backend", "real"), kwargs.pop("clock", None),
                                              kwargs.pop("gpu", None), calibration, kwargs.get("device"))
    return backend, clock, gpu, calibration


def cost_model_file(cost_model: str | None, calibration: Path | None) -> Path | None:
    """The calibration file of --cost-model FILE or its alias --calibration FILE; BsbenchError when both name
    different things."""
    named = Path(cost_model) if cost_model is not None and cost_model not in TIERS else None
    if named is not None and calibration is not None and named != calibration:
        raise BsbenchError("--calibration FILE is --cost-model FILE: give one of them")
    if cost_model in TIERS and calibration is not None:
        raise BsbenchError(f"--cost-model {cost_model} and --calibration name two cost models: give one")
    return named or calibration


def _sim_flags(kwargs: dict[str, Any], backend: str, clock: str, calibration: Path | None) -> SimSettings:
    """Pop --cost-model, --engine-overhead, --tensor-parallel, --gpu-memory-utilization and check that they apply:
    the cost-model flags to a virtual clock, the last two to --backend sim."""
    given = {name: kwargs.pop(name, None) for name in ("cost_model", "engine_overhead", "tensor_parallel",
                                                         "gpu_memory_utilization")}
    from bsbench.backends.factory import check_cost_model_flags  # the engine's world: imported when a run is built

    check_cost_model_flags(backend, clock, {name: v for name, v in given.items() if v is not None})
    settings = SimSettings(cost_model=given["cost_model"] if given["cost_model"] in TIERS else "roofline",
                           calibration=calibration,
                           engine_overhead=given["engine_overhead"] or DEFAULT_ENGINE_OVERHEAD,
                           tensor_parallel=given["tensor_parallel"] or 1,
                           gpu_memory_utilization=given["gpu_memory_utilization"] or DEFAULT_GPU_MEMORY_UTILIZATION)
    engine_overhead(settings.engine_overhead)  # a bad word: exit 2 before anything loads
    if not 0 < settings.gpu_memory_utilization <= 1:
        raise BsbenchError(f"--gpu-memory-utilization must lie in (0, 1], got {settings.gpu_memory_utilization}")
    if settings.tensor_parallel > 1 and calibration is not None:
        raise BsbenchError("a calibration file describes one device: --tensor-parallel needs --cost-model roofline "
                           "or profiled")
    return settings
