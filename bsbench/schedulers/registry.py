"""Scheduler registry: policies register by name; every public module in this package is discovered.

To add a policy, drop one file into `bsbench/schedulers/` with a `Scheduler`
subclass decorated by `@register`; `bsbench run --scheduler NAME` finds it.
Discovery imports every module whose name does not start with `_` (helpers
such as base.py or chunks.py are imported too and simply register nothing);
a private module (`_buckets.py`) is imported only by the policy that uses it.
"""

from __future__ import annotations

import importlib
import pkgutil

import bsbench.schedulers as package
from bsbench.errors import BsbenchError, did_you_mean
from bsbench.schedulers.base import Scheduler

_REGISTRY: dict[str, type[Scheduler]] = {}


def register(cls: type[Scheduler]) -> type[Scheduler]:
    name = cls.name
    if name in _REGISTRY and _REGISTRY[name] is not cls:
        raise ValueError(f"scheduler name {name!r} registered twice")
    _REGISTRY[name] = cls
    return cls


def _discover() -> None:

    for module in pkgutil.iter_modules(package.__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{package.__name__}.{module.name}")


def all_schedulers() -> dict[str, type[Scheduler]]:
    _discover()
    return dict(sorted(_REGISTRY.items()))


def get_scheduler(name: str) -> type[Scheduler]:
    schedulers = all_schedulers()
    if name not in schedulers:
        hint = did_you_mean(name, schedulers)
        raise BsbenchError(f"unknown scheduler {name!r}{f' ({hint})' if hint else ''}; choose one of: "
                           f"{', '.join(schedulers)}")
    return schedulers[name]
