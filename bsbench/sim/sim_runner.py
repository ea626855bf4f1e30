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

`execute_decode_run(plan, steps, until)` is `execute` applied to `steps` consecutive decode
steps of one plan (every chunk one position further each step) in one call, with the
same checks (in one pass: `validate_plan(run_steps=...)`), work, prices, clock additions and
tokens, so a run gives the record that single steps give, to the bit; it stops after the
first step that ends at or after `until`. Its work changes only when a gathered context
crosses a block boundary (or, packed, when two decode groups join), so it is priced once
per change, not once per step, from the run's plan (`work.decode_step_work`: no shifted plan is built).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from itertools import repeat

from bsbench.engine.clock import VirtualClock
from bsbench.engine.decode_runs import DecodeRunOutput
from bsbench.engine.kv_budget import kv_cache_too_large
from bsbench.engine.plan import ActivationOOM, StepOutput, StepPlan
from bsbench.engine.plan_check import validate_plan
from bsbench.engine.step_layout import next_decode_change, whole_blocks
from bsbench.model.shape import ModelShape
from bsbench.sim.cost_model import CostModel
from bsbench.sim.gpus import DevicePreset
from bsbench.sim.memory import free_after_weights, step_activation_bytes
from bsbench.sim.work import StepWork, decode_step_work, step_work
from bsbench.units import format_bytes
from bsbench.workloads.token_ids import TABLE_SIZE, shared_table


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
        self._position_texts: list[bytes] = []  # sim_token's text after the id: position -> its digits

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
        chunks = validate_plan(plan, self.block_size, self.num_blocks, self.shape.info.max_model_len,
                               self._checked_tables)
        work = step_work(plan, self.block_size)
        self._check_activations(work)
        seconds = self.cost_model.step_time(work)
        self.clock.advance(seconds)
        tokens = {}
        id_crc = self._id_crc
        texts = self._position_texts
        vocab = self.shape.vocab_size
        shared = shared_table() if vocab <= TABLE_SIZE else range(vocab)  # workloads/token_ids.py
        for c in chunks:  # sim_token, inlined: this runs once per sampled request per step
            if c.sample:
                rid = c.req_id
                prefix = id_crc.get(rid)
                if prefix is None:
                    prefix = self._id_prefix(rid)
                position = c.start_pos - c.pad_len + len(c.token_ids)
                if position >= len(texts):
                    texts = self._texts_through(position)
                tokens[rid] = shared[zlib.crc32(texts[position], prefix) % vocab]
        return StepOutput(next_tokens=tokens, forward_s=seconds)

    def execute_decode_run(self, plan: StepPlan, steps: int, until: float | None = None) -> DecodeRunOutput | None:
        """`steps` decode steps of `plan` (1-token chunks, one position further each step), or fewer: the run
        ends with the first step that ends at or after `until`. None, with nothing charged, when a clock that
        ticks per reading or a step's activations rule out a run (the caller then executes single steps, which
        fail where they must)."""
        if not self.num_blocks:
            raise RuntimeError("allocate_kv() must be called before execute()")
        if self.clock.tick_s or any(len(c.token_ids) != 1 for c in plan.chunks):
            return None
        bs = self.block_size
        chunks = validate_plan(plan, bs, self.num_blocks, self.shape.info.max_model_len, self._checked_tables,
                               run_steps=steps)
        padded = plan.layout == "padded"
        first = chunks[0].start_pos
        starts = [] if padded else sorted([c.start_pos for c in chunks])
        forward: list[float] = []
        ends: list[float] = []
        start = t = self.clock.t
        stop = math.inf if until is None else until
        change = 0  # the next step whose work may differ from the step before
        seconds = 0.0
        for j in range(steps):
            if j == change:
                work = decode_step_work(plan, j, bs, starts)
                if step_activation_bytes(work, self.shape) > self.activation_room:
                    return None  # nothing charged: single steps fail where they must
                seconds = self.cost_model.step_time(work)
                # padded: the gathered context grows by a block; packed: see next_decode_change
                change = whole_blocks(first + j + 1, bs) - first if padded else next_decode_change(starts, j, bs)
            forward.append(seconds)
            t += seconds  # the clock's own additions, in order (`advance`), kept local until the run ends
            ends.append(t)
            if t >= stop:
                break
        self.clock.t = t
        tokens = {}
        vocab = self.shape.vocab_size
        shared = shared_table() if vocab <= TABLE_SIZE else range(vocab)  # range: ids made as they are read
        crc32 = zlib.crc32
        texts = self._position_texts
        done = len(ends)
        for c in chunks:  # sim_token for each step, the id's checksum read once
            if c.sample:
                position = c.start_pos - c.pad_len + 1
                if position + done > len(texts):
                    texts = self._texts_through(position + done)
                crcs = map(crc32, texts[position:position + done], repeat(self._id_prefix(c.req_id)))
                tokens[c.req_id] = [shared[crc % vocab] for crc in crcs]
        return DecodeRunOutput(start_s=start, forward_s=forward, end_s=ends, next_tokens=tokens)

    def _check_activations(self, work: StepWork) -> None:
        need = step_activation_bytes(work, self.shape)
        if need > self.activation_room:
            raise ActivationOOM(f"simulated out of memory on {self.device.name}: the step needs "
                                f"{format_bytes(need)} of activations, {format_bytes(self.activation_room)} are free")

    def _texts_through(self, position: int) -> list[bytes]:
        """The position texts, made up to `position` at least (positions stay below max_model_len + 2)."""
        texts = self._position_texts
        texts.extend(str(p).encode() for p in range(len(texts), position + 1))
        return texts

    def _id_prefix(self, req_id: str) -> int:
        prefix = self._id_crc.get(req_id)
        if prefix is None:
            prefix = self._id_crc[req_id] = _id_checksum(req_id)
        return prefix

