"""The EngineRunner of `sweep` and `capacity`, built from their flags (experiments/engine_runner.py runs it)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from bsbench.commands._run_options import run_config_from_cli, scheduler_values
from bsbench.commands._workload_options import workload_overrides
from bsbench.errors import BsbenchError
from bsbench.experiments.engine_runner import EngineRunner
from bsbench.paths import check_output_dir
from bsbench.progress import Progress

if TYPE_CHECKING:
    from bsbench.experiments.engine_runner import EngineRunner


def engine_runner_from_cli(ctx: click.Context, kwargs: dict[str, Any], default_out: str, quiet: bool) -> EngineRunner:
    """Pop the workload, engine and scheduler flags from click's kwargs; --out defaults to results/`default_out`
    and is checked writable now. --rate is refused: these commands choose the rates."""

    if kwargs.get("rate") is not None:
        raise BsbenchError(f"bsbench {ctx.info_name} chooses the rates itself; drop --rate"
                           + (" and use --rates" if ctx.info_name == "sweep" else ""))
    scheduler_flags = scheduler_values(kwargs)
    target, overrides = workload_overrides(kwargs)
    overrides.pop("rate", None)
    out_given = ctx.get_parameter_source("out_dir") is not click.core.ParameterSource.DEFAULT
    config = run_config_from_cli(kwargs, "continuous", {})
    if not out_given:
        config = dataclasses.replace(config, out_dir=Path(config.out_dir) / default_out)
    check_output_dir(Path(config.out_dir), "--out")
    return EngineRunner(config, target, overrides, scheduler_flags, Progress(enabled=not quiet))
