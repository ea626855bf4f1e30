"""The simulated runner: the real runner's contract, no tensors, time from a cost model.

`execute(plan)` checks the plan exactly as the real runner does (`plan_check`), prices
the work the real runner would do for it (`work.step_work`), raises `ActivationOOM`
when that step's activations would not fit the device memory left after weights and
KV (`memory.py`), advances the virtual clock by the predicted step time, and returns
a deterministic next token per sampled chunk: a hash of the request id and the new
token's position, inside the vocabulary. Nothing depends on host state or host time,
so the same plans give the same tokens and the same timeline, to the bit.

A step that fails with ActivationOOM is not charged to the clock (the real step would
have stopped part way; we do not guess how far).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

from bsbench.engine.clock import VirtualClock
from bsbench.engine.kv_budget import kv_cache_too_large
from bsbench.engine.model_shape import ModelShape
from bsbench.engine.plan import ActivationOOM, StepOutput, StepPlan
from bsbench.engine.plan_check import validate_plan
from bsbench.sim.cost_model import CostModel
from bsbench.sim.gpus import DevicePreset
from bsbench.sim.memory import free_after_weights, step_activation_bytes
from bsbench.sim.work import step_work
from bsbench.units import format_bytes


def sim_token(req_id: str, position: int, vocab_size: int) -> int:
    """The simulated next token of `req_id` at `position` (counted from its first real token)."""
    return zlib.crc32(f"{req_id}\x00{position}".encode()) % vocab_size


def _id_checksum(req_id: str) -> int:
    """crc32 of `sim_token`'s text up to the position: crc32(a + b) == crc32(b, crc32(a))."""
    return zlib.crc32(f"{req_id}\x00".encode())


class SimRunner:
    def __init__(self, shape: ModelShape, device: DevicePreset, cost_model: CostModel, clock: VirtualClock) -> None:
        self.shape = shape
        self.device = device
        self.cost_model = cost_model
        self.clock = clock
        self.free_after_weights = free_after_weights(shape, device)
        self.num_blocks = 0
        self.block_size = 0
        self._checked_tables: dict[str, Sequence[int]] = {}  # validate_plan's memo of tables already checked
        self._id_crc: dict[str, int] = {}  # _id_checksum per request id, so a token costs one short crc32

    def allocate_kv(self, num_blocks: int, block_size: int) -> None:
        """Reserve `num_blocks` KV blocks of device memory; a budget beyond the device is a user error."""
        if num_blocks <= 0 or block_size <= 0:
            raise ValueError("num_blocks and block_size must be positive")
        need = num_blocks * block_size * self.shape.info.kv_bytes_per_token
        if need > self.free_after_weights:
            where = f"{self.device.name} ({format_bytes(self.free_after_weights)} free after the weights)"
            raise kv_cache_too_large(self.shape.info, num_blocks, block_size, where)
        self.num_blocks = num_blocks
        self.block_size = block_size
        self._checked_tables = {}

    @property
    def kv_bytes(self) -> int:
        return self.num_blocks * self.block_size * self.shape.info.kv_bytes_per_token

    @property
    def activation_room(self) -> int:
        """Bytes left for one step's activations after weights and KV."""
        return self.free_after_weights - self.kv_bytes

    def execute(self, plan: StepPlan) -> StepOutput:
        if not self.num_blocks:
            raise RuntimeError("allocate_kv() must be called before execute()")
        info = self.shape.info
        chunks = validate_plan(plan, self.block_size, self.num_blocks, info.max_model_len, self._checked_tables)
        work = step_work(plan, self.block_size)
        need = step_activation_bytes(work, self.shape)
        if need > self.activation_room:
            raise ActivationOOM(f"simulated out of memory on {self.device.name}: the step needs "
                                f"{format_bytes(need)} of activations, {format_bytes(self.activation_room)} are free")
        seconds = self.cost_model.step_time(work)
        self.clock.advance(seconds)
        vocab = self.shape.vocab_size
        id_crc = self._id_crc
        crc32 = zlib.crc32
        tokens = {}
        for c in chunks:  # sim_token, with the id's checksum computed once per request
            if c.sample:
                rid = c.req_id
                prefix = id_crc.get(rid)
                if prefix is None:
                    prefix = id_crc[rid] = _id_checksum(rid)
                tokens[rid] = crc32(str(c.start_pos - c.pad_len + len(c.token_ids)).encode(), prefix) % vocab
        return StepOutput(next_tokens=tokens, forward_s=seconds)
