"""A run's policy: its options validated (the one place they are checked) and the policy built over a fresh block
manager and event log of a session's KV cache."""

from __future__ import annotations

import dataclasses
from typing import Any

from bsbench.backends.config import RunConfig
from bsbench.backends.session import ModelSession
from bsbench.engine.block_manager import BlockManager
from bsbench.engine.events import EventLog
from bsbench.errors import BsbenchError, OptionsError
from bsbench.progress import Progress
from bsbench.schedulers.base import Scheduler, SchedulerContext
from bsbench.schedulers.registry import all_schedulers, get_scheduler


def build_scheduler_options(scheduler_cls: type[Scheduler], values: dict[str, Any]) -> Any:
    """The policy's options dataclass from user-given values, validated: the one place a policy's options are
    checked. An unknown name or a value out of range is a user error (OptionsError naming the flag)."""
    names = {f.name for f in dataclasses.fields(scheduler_cls.Options)}
    unknown = sorted(set(values) - names)
    if unknown:
        flags = ", ".join("--" + n.replace("_", "-") for n in unknown)
        raise OptionsError(f"{flags} does not apply to scheduler {scheduler_cls.name!r}")
    options = scheduler_cls.Options(**values)
    options.validate()
    return options


def build_policy(config: RunConfig, session: ModelSession, progress: Progress) -> Scheduler:
    """The configured policy over a fresh block manager and event log for `session`'s KV cache."""
    scheduler_cls = get_scheduler(config.scheduler)
    options = build_scheduler_options(scheduler_cls, config.scheduler_options)
    ctx = SchedulerContext(BlockManager(session.num_blocks, session.block_size), session.info, EventLog(),
                           seed=config.seed, progress=progress)
    return scheduler_cls(options, ctx)


def options_for(scheduler: str, values: dict[str, Any]) -> dict[str, Any]:
    """The subset of `values` that `scheduler` has as options."""
    fields = {f.name for f in dataclasses.fields(all_schedulers()[scheduler].Options)}
    return {k: v for k, v in values.items() if k in fields}

def check_flags_apply(schedulers: list[str], values: dict[str, Any]) -> None:
    """A scheduler flag none of `schedulers` has would be silently ignored: make it a user error."""
    for name in sorted(values):
        if not any(options_for(s, {name: values[name]}) for s in schedulers):
            raise BsbenchError(f"--{name.replace('_', '-')} does not apply to any of the schedulers "
                               f"{', '.join(schedulers)}")
