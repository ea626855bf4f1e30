"""`bsbench calibrate`: time the real runner on this device over the calibration grid and save the fitted cost
model (sim/calibrate.py) as a versioned calibration file for `--backend sim --calibration FILE`."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from bsbench.backends.config import RunConfig
from bsbench.commands._types import param_type
from bsbench.model.presets import PRESETS
from bsbench.model.source import check_model_source
from bsbench.paths import check_output_file
from bsbench.progress import Progress
from bsbench.safe_text import markup
from bsbench.values import SEED, ByteSize, Integer


def real_model_options(func: Callable) -> Callable:
    """The flags that choose a real model session (no scheduler, no backend): calibrate and validate-sim."""
    decorators = [
        click.option("--model", default="tiny", show_default=True, help="Preset, local checkpoint folder or hub id."),
        click.option("--weights", type=click.Choice(["dummy", "checkpoint"]), default=None,
                     help="dummy (default for presets) or checkpoint (default for folders and hub ids)."),
        click.option("--weights-seed", type=param_type(SEED), default=0, show_default=True),
        click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True),
        click.option("--dtype", type=click.Choice(["auto", "float32", "float16", "bfloat16"]), default="auto",
                     show_default=True),
        click.option("--kv-memory", type=param_type(ByteSize()), default=None, help="KV cache budget, e.g. 512MiB."),
        click.option("--block-size", type=param_type(Integer(1, 4096)), default=16, show_default=True),
        click.option("--threads", type=param_type(Integer(1, 4096)), default=None,
                     help="torch intra-op threads on CPU; 1 is steadiest on a busy machine. "
                          "[default: half the usable cores, at least 1]"),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


def real_config(kwargs: dict[str, Any]) -> Any:
    """A real, wall-clock RunConfig from `real_model_options` (popped from kwargs)."""

    model = kwargs.pop("model")
    weights = kwargs.pop("weights") or ("dummy" if model in PRESETS else "checkpoint")
    return RunConfig(model=model, weights=weights, weights_seed=kwargs.pop("weights_seed"),
                     device=kwargs.pop("device"), dtype=kwargs.pop("dtype"), kv_memory=kwargs.pop("kv_memory"),
                     block_size=kwargs.pop("block_size"), threads=kwargs.pop("threads"))


def default_calibration_path(model: str, device: str, dtype: str, block_size: int) -> Path:
    slug = re.sub(r"[^A-Za-z0-9_.+-]+", "_", f"{Path(model).name}-{device}-{dtype}-bs{block_size}")
    return Path("results") / "calibration" / f"{slug}.json"


def run_calibration(config: Any, session: Any, out: Path | None, warmups: int, repeats: int,
                    progress: Any, with_runs: bool = False) -> tuple[Any, Path, str]:
    """Calibrate `session`'s runner (with the steps of synthetic engine runs too when `with_runs`), save the file
    (to `out` or the default path); (calibration, path, hash)."""
    # lazy: loads numpy
    from bsbench.experiments.calib_runs import run_steps

    # lazy: loads huggingface_hub, numpy, torch, transformers
    from bsbench.model.loader import loaded_model_shape

    # lazy: loads numpy
    from bsbench.sim.calibrate import calibrate

    # lazy: loads numpy
    from bsbench.sim.calibration import save_calibration

    shape = loaded_model_shape(session.runner.model, session.info)
    steps, runs = run_steps(config, session, progress) if with_runs else ([], [])
    with progress.task("timing the calibration grid", unit="plans") as task:
        calibration = calibrate(session.runner, shape, session.dtype, warmups=warmups, repeats=repeats,
                                on_progress=lambda done, total: task.update(done, total=total),
                                run_steps=steps, runs=runs)
    path = out or default_calibration_path(config.model, session.device, session.dtype, session.block_size)
    return calibration, path, save_calibration(calibration, path)


@click.command("calibrate")
@real_model_options
@click.option("--warmups", type=param_type(Integer(0, 100)), default=1, show_default=True,
              help="Passes over the grid dropped before measuring.")
@click.option("--repeats", type=param_type(Integer(1, 1000)), default=5, show_default=True,
              help="Measured passes; each plan keeps the median.")
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Calibration file [default: results/calibration/MODEL-DEVICE-DTYPE-bsN.json].")
@click.option("--with-runs", is_flag=True,
              help="Also fit the steps of engine runs of the four schedulers on synthetic workloads (never a "
                   "validation workload): the step mix of real runs, about a minute more on the tiny model. On "
                   "the tiny CPU model this fitted those runs but predicted held-out runs worse than the grid "
                   "alone (benchmarks/README.md).")
@click.option("--quiet", is_flag=True, help="No progress display.")
def command(warmups: int, repeats: int, out_file: Path | None, with_runs: bool, quiet: bool, **kwargs: Any) -> None:
    """Fit the calibrated cost model of this device: time the real runner on ~110 synthetic step plans
    (34 fixed: prefills, chunks, decode batches, padded and mixed steps; 80 drawn like a scheduler's steps),
    fit step time to the work, save it.

    Use the file with `--backend sim --calibration FILE` (the simulated device is then this one) or
    `--clock virtual --calibration FILE`. It holds for this model, dtype and block size only.
    """
    # lazy: loads numpy
    from bsbench.backends.run import open_session

    # lazy: loads numpy
    from bsbench.report.calibration_tables import residuals_table

    # lazy: loads numpy, pandas, pyarrow
    from bsbench.report.comparison import console as make_console

    if out_file is not None:
        check_output_file(out_file, "--out")
    config = real_config(kwargs)
    check_model_source(config.model)
    progress = Progress(enabled=not quiet)
    session = open_session(config, progress)
    calibration, path, digest = run_calibration(config, session, out_file, warmups, repeats, progress, with_runs)
    console = make_console()
    runs = sum(p.get("source") == "run" for p in calibration.points)
    fitted = f"{len(calibration.points) - runs} grid plans" + (f" + {runs} run steps" if runs else "")
    console.print(residuals_table(calibration.points, f"fit residuals ({fitted}, {calibration.device.get('name')}, "
                                                      f"{session.dtype})"))
    skipped = calibration.settings.get("skipped") or {}
    if skipped:
        console.print(f"[yellow]skipped[/] (out of memory): {markup(', '.join(skipped))}", highlight=False)
    coefficients = ", ".join(f"{k} {v:.3g}" for k, v in calibration.coefficients.items())
    console.print(f"coefficients (s per unit): {coefficients}", highlight=False)
    console.print(f"calibration: {markup(path)} (hash {digest[:16]})", highlight=False)
