"""Build a disaggregated run's instances from a RunConfig (`bench.run_benchmark` calls it when a run has a
ClusterSetting): one simulated backend per instance (same model, GPU preset, calibration, KV budget and block
size), the scheduler's own policy on prefill instances and the continuous policy with the scheduler's
`decode_options` on decode instances, each with its own block manager and event log."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from bsbench.backends.cluster.coordinator import Instance, TransferCoordinator
from bsbench.backends.cluster.setting import ClusterSetting
from bsbench.backends.fit_checks import check_workload_fits
from bsbench.backends.host_timing import without_host_timed
from bsbench.backends.policy_build import build_scheduler_options
from bsbench.engine.block_manager import BlockManager
from bsbench.engine.clock import VirtualClock
from bsbench.engine.events import EventLog
from bsbench.engine.instance import Instance as LoopInstance
from bsbench.engine.loop import Loop, ProgressFn
from bsbench.schedulers.base import Scheduler, SchedulerContext
from bsbench.schedulers.continuous import ContinuousScheduler
from bsbench.schedulers.registry import get_scheduler
from bsbench.workloads.workload import Workload


@dataclass(slots=True)
class Cluster:
    setting: ClusterSetting
    instances: list[Instance]
    kv_bytes_per_token: int
    options: Any  # the scheduler's options (effective), for the record
    coordinator: TransferCoordinator | None = None

    def make_engine(self, on_progress: ProgressFn | None) -> Loop:
        """The engine loop over every instance on one virtual timeline, joined by a fresh transfer coordinator."""
        self.coordinator = TransferCoordinator(self.instances, self.setting.link, self.kv_bytes_per_token)
        return Loop([instance.unit for instance in self.instances], VirtualClock(), coordinator=self.coordinator,
                    on_progress=on_progress)

    def summary(self) -> dict[str, Any]:
        """The record's scheduler summary: the first prefill policy's own figures, then the topology, the link,
        the transfers and one entry per instance (role, KV blocks, steps, busy seconds, its policy's figures)."""
        first = self.instances[0].policy.summary()
        per_instance = {}
        for instance in self.instances:
            figures = without_host_timed(instance.policy.summary())
            per_instance[instance.name] = {"role": instance.role, "gpu": instance.gpu, "policy": instance.policy.name,
                                           "num_kv_blocks": instance.policy.blocks.num_blocks,
                                           "steps": instance.unit.steps, "busy_s": instance.unit.busy_s, **figures}
        return {**first, "topology": self.setting.note(), "link": self.setting.link.describe(),
                "transfers": self.coordinator.transfers if self.coordinator else 0, "instances": per_instance}


def build_cluster(config: Any, setting: ClusterSetting, workload: Workload, progress: Any = None) -> Cluster:
    """The instances of `config` (a bench.RunConfig on the sim backend), each policy checked against the
    workload (bench.check_workload_fits: a request one instance could never hold is a user error)."""
    # lazy: loads numpy
    from bsbench.sim.backend import open_sim

    scheduler_cls = get_scheduler(config.scheduler)
    options = build_scheduler_options(scheduler_cls, config.scheduler_options)
    decode_options = scheduler_cls.decode_options(options)
    instances = []
    kv_bytes = 0
    for name, role in setting.topology.names():
        gpu = setting.decode_gpu if role == "decode" and setting.decode_gpu is not None else config.gpu
        sim = open_sim(config.model, gpu, dtype=config.dtype, kv_memory=config.kv_memory,
                       block_size=config.block_size, settings=config.sim_settings())
        kv_bytes = sim.shape.info.kv_bytes_per_token
        ctx = SchedulerContext(BlockManager(sim.num_blocks, sim.block_size), sim.shape.info, EventLog(),
                               seed=config.seed, progress=progress, role=role)
        policy: Scheduler = scheduler_cls(options, ctx) if role == "prefill" else \
            ContinuousScheduler(dataclasses.replace(decode_options), ctx)
        check_workload_fits(workload, sim.shape.info, policy)
        unit = LoopInstance(policy, sim.runner, ctx.block_manager, ctx.events, sim.clock, name)
        instances.append(Instance(role, policy, unit, sim.device.name))
    return Cluster(setting, instances, kv_bytes, options)
