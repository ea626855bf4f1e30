"""The `cluster` backend: several simulated instances (prefill and decode) of one GPU preset on one virtual
clock, joined by a KV-transfer link. Its session is one instance's (the model, its KV budget per instance);
`cluster/run.py` builds the instances of each run. A session is shared by the runs of a sweep whatever their
scheduler, so the topology goes into each run's record part (`cluster_part`), not into the session."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from bsbench.backends.cluster.setting import ClusterSetting
from bsbench.backends.config import RunConfig
from bsbench.backends.session import ModelSession
from bsbench.backends.sim import SimulatedBackend
from bsbench.progress import Progress
from bsbench.record.backend_part import BackendPart, ClusterPart, SimPart


@dataclass(slots=True)
class ClusterBackend:
    """Opens one instance's simulated session; each run's record part says the topology (`cluster_part`)."""

    config: RunConfig
    setting: ClusterSetting
    kind: ClassVar[str] = "cluster"

    def open_session(self, progress: Progress) -> ModelSession:
        session = SimulatedBackend(self.config).open_session(progress)
        session.banner = self.describe(session)
        return session

    def describe(self, session: ModelSession) -> str:
        return (f"simulated {session.part.gpu} ({session.cost_model.tier} cost model, virtual clock); instances "
                f"{self.setting.topology}, KV over {self.setting.link.name}")


def cluster_part(one: BackendPart, setting: ClusterSetting) -> ClusterPart:
    """The record part of a disaggregated run whose instances are simulated as `one` (a session's SimPart)."""
    if not isinstance(one, SimPart):
        raise TypeError(f"a cluster's instances are simulated; got a {one.kind} session")
    return ClusterPart(one.device_preset, one.cost_model, one.calibration_hash, instances=str(setting.topology),
                       tensor_parallel=one.tensor_parallel,
                       link=setting.link.name, decode_gpu=setting.decode_gpu)
