"""Whether a run is disaggregated, and how: its topology and link, resolved once from the run's configuration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bsbench.backends.cluster.links import DEFAULT_LINK, LinkPreset, link_preset
from bsbench.backends.cluster.topology import Topology, parse_instances
from bsbench.errors import BsbenchError
from bsbench.schedulers.registry import get_scheduler
from bsbench.sim.gpus import gpu_preset


@dataclass(slots=True, frozen=True)
class ClusterSetting:
    topology: Topology
    link: LinkPreset
    defaulted: bool  # the topology is the scheduler's default (distserve given no --instances)
    decode_gpu: str | None = None  # the decode instances' GPU preset (canonical name); None: the run's --gpu

    def note(self) -> str:
        """What the record says about where the topology came from."""
        if self.defaulted:
            return f"{self.topology} (the default of a disaggregated-only scheduler: no --instances given)"
        return f"{self.topology} (--instances)"


def cluster_setting(scheduler: str, instances: str | None, link: str | None, simulated: bool,
                    scheduler_options: dict[str, Any] | None = None,
                    decode_gpu: str | None = None) -> ClusterSetting | None:
    """The disaggregated setting of a run, or None for one instance; user errors (a bad topology, link or GPU
    name, a scheduler without a disaggregated form, a backend that is not `simulated`, --link or --decode-gpu
    alone) are BsbenchError."""

    cls = get_scheduler(scheduler)
    if instances is None and not cls.disaggregated_only:
        for flag, value in (("--link", link), ("--decode-gpu", decode_gpu)):
            if value is not None:
                raise BsbenchError(f"{flag} applies to disaggregated runs: give --instances prefill=N,decode=M too")
        return None
    topology = parse_instances(instances) if instances is not None else Topology()
    preset = link_preset(link if link is not None else DEFAULT_LINK)
    if not simulated:
        what = f"--instances {instances}" if instances is not None else f"scheduler {scheduler} (disaggregated)"
        raise BsbenchError(f"{what} runs on the simulated backend only: use --backend sim --gpu NAME")
    if cls.decode_options(cls.Options(**(scheduler_options or {}))) is None:
        raise BsbenchError(f"--instances: scheduler {scheduler!r} has no disaggregated form (distserve and bucket do)")
    if decode_gpu is not None:

        decode_gpu = gpu_preset(decode_gpu).name
    return ClusterSetting(topology, preset, instances is None, decode_gpu)
