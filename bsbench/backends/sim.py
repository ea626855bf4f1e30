"""The `sim` backend: a cost model prices exactly the work the real runner would do for each plan; no torch,
no weights. Always on a virtual clock."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from bsbench.backends.config import RunConfig
from bsbench.backends.session import ModelSession
from bsbench.progress import Progress
from bsbench.record.backend_part import SimPart
from bsbench.sim.backend import open_sim


@dataclass(slots=True)
class SimulatedBackend:
    """The simulated runner of `config.model` on the GPU preset (or calibrated device) of `config`."""

    config: RunConfig
    kind: ClassVar[str] = "sim"

    def open_session(self, progress: Progress) -> ModelSession:
        config = self.config
        with progress.task(f"loading model {config.model}"):
            sim = open_sim(config.model, config.gpu, dtype=config.dtype, kv_memory=config.kv_memory,
                           block_size=config.block_size, settings=config.sim_settings())
        part = SimPart(sim.device.name, sim.cost_model.tier, sim.cost_model.describe().get("content_hash"),
                       tensor_parallel=sim.tensor_parallel if sim.tensor_parallel > 1 else None)
        session = ModelSession(config.session_key(), sim.runner, sim.shape.info, "sim", sim.dtype, sim.num_blocks,
                               sim.block_size, sim.kv_budget_bytes, part, banner="", clock=sim.clock,
                               cost_model=sim.cost_model)
        session.banner = self.describe(session)
        return session

    def describe(self, session: ModelSession) -> str:
        return f"simulated {session.part.gpu} ({session.cost_model.tier} cost model, virtual clock)"
