"""--executor / --workers / --ray-address: how sweep and capacity spread their runs (bsbench.experiments.executors)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from bsbench.commands._types import param_type
from bsbench.experiments.executors import EXECUTORS
from bsbench.values import Integer


def executor_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option("--ray-address", default=None, metavar="auto|HOST:PORT",
                        help="Ray cluster to join (--executor ray): auto, or the head's HOST:PORT "
                             "[default: a local Ray instance].")(func)
    func = click.option("--workers", type=param_type(Integer(low=1)), default=None,
                        help="Runs at once with --executor process (default: the cores here) or ray "
                             "(default: the cluster's CPUs, or GPUs for CUDA runs).")(func)
    func = click.option("--executor", type=click.Choice(EXECUTORS), default="serial", show_default=True,
                        help="Where the runs go: serial (one after another, here), process (a local process "
                             "pool) or ray (a Ray cluster; pip install -e '.[ray]').")(func)
    return func
