"""The `virtual` backend: the model runner computes real tokens; a cost model prices every step on a virtual
clock, so scheduling is deterministic. With a GPU preset the activation-OOM decision is the preset's estimate."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

from bsbench.backends.config import RunConfig
from bsbench.backends.real import RealBackend
from bsbench.backends.session import ModelSession
from bsbench.engine.clock import VirtualClock
from bsbench.progress import Progress
from bsbench.record.backend_part import VirtualTimePart
from bsbench.sim.backend import load_cost_model
from bsbench.sim.gpus import gpu_preset
from bsbench.sim.memory import free_after_weights
from bsbench.sim.virtual_time import VirtualTimeRunner


@dataclass(slots=True)
class VirtualTimeBackend:
    """The real backend's session, its runner wrapped so that time comes from the cost model."""

    config: RunConfig
    kind: ClassVar[str] = "virtual"

    def open_session(self, progress: Progress) -> ModelSession:
        from bsbench.model.loader import loaded_model_shape  # heavy (torch): imported only when a model is loaded

        config = self.config
        session = RealBackend(config).open_session(progress)
        runner = session.runner
        shape = loaded_model_shape(runner.model, session.info)
        preset = gpu_preset(config.gpu) if config.gpu else None
        cost, device = load_cost_model(shape, preset, session.dtype, session.block_size, config.sim_settings())
        room = None
        if preset is not None:
            kv_bytes = session.num_blocks * session.block_size * session.info.kv_bytes_per_token
            room = free_after_weights(shape, preset) - kv_bytes
        clock = VirtualClock()
        part = VirtualTimePart(device.name, cost.tier, cost.describe().get("content_hash"), config.weights,
                               config.weights_seed)
        opened = dataclasses.replace(session, runner=VirtualTimeRunner(runner, shape, cost, clock, room), part=part,
                                     clock=clock, cost_model=cost)
        opened.banner = self.describe(opened)
        return opened

    def describe(self, session: ModelSession) -> str:
        return f"{session.device}, virtual clock ({session.cost_model.tier} cost model of {session.part.gpu})"
