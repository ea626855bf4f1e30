"""The `real` backend: the model runner on this device, timed by the wall clock."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from bsbench.backends.config import RunConfig
from bsbench.backends.session import ModelSession
from bsbench.engine.kv_budget import default_kv_budget_for_model, num_blocks_for_budget
from bsbench.engine.plan import SeqChunk, StepPlan
from bsbench.model.threads import cpu_threads
from bsbench.progress import Progress
from bsbench.record.backend_part import RealPart

if TYPE_CHECKING:
    from bsbench.model.runner import ModelRunner


@dataclass(slots=True)
class RealBackend:
    """Loads the model (real or dummy weights), allocates the KV cache and warms the runner up."""

    config: RunConfig
    kind: ClassVar[str] = "real"

    def open_session(self, progress: Progress) -> ModelSession:
        with progress.task(f"loading model {self.config.model}"):
            return self._open()

    def describe(self, session: ModelSession) -> str:
        return session.device

    def _open(self) -> ModelSession:
        import torch  # heavy (torch, transformers): imported only when a model is loaded

        # lazy: loads huggingface_hub, numpy, torch, transformers
        from bsbench.model.loader import load_model, resolve_device, resolve_dtype

        # lazy: loads numpy, torch
        from bsbench.model.runner import ModelRunner

        config = self.config
        device = resolve_device(config.device)
        threads = cpu_threads(config.threads, device.type)  # on CPU without --threads: half the cores
        if threads is not None:
            torch.set_num_threads(threads)
        dtype = resolve_dtype(config.dtype, device)
        model, info = load_model(config.model, weights=config.weights, device=device, dtype=dtype,
                                 seed=config.weights_seed, kv_bytes=config.kv_memory)
        budget = config.kv_memory or default_kv_budget_for_model(model, info, device)
        num_blocks = num_blocks_for_budget(budget, info, config.block_size)
        runner = ModelRunner(model, info, device, dtype)
        runner.allocate_kv(num_blocks, config.block_size)
        warm_up(runner, config.block_size)
        session = ModelSession(config.session_key(), runner, info, str(device), str(dtype).replace("torch.", ""),
                               num_blocks, config.block_size, budget, RealPart(config.weights, config.weights_seed),
                               banner="", threads=torch.get_num_threads())
        session.banner = self.describe(session)
        return session


def warm_up(runner: ModelRunner, block_size: int) -> None:
    """One prefill and one batched decode step, so lazy initialisation is not timed in the first run."""
    prompt = list(range(4, 4 + block_size))
    runner.execute(StepPlan("packed", [SeqChunk("warmup", prompt, 0, [0])]))
    decode = [SeqChunk(f"warmup{i}", [5], block_size - 1, [0], pad_len=0) for i in range(4)]
    runner.execute(StepPlan("packed", decode))
