"""Test doubles for the engine: a checksum runner that exercises block tables exactly as the real one."""

from __future__ import annotations

import time

from bsbench.engine.block_manager import BlockManager
from bsbench.engine.events import EventLog
from bsbench.engine.model_info import ModelInfo
from bsbench.engine.plan import StepOutput, StepPlan
from bsbench.schedulers.base import SchedulerContext

VOCAB = 997
PAD = 0


def next_token(context: list[int]) -> int:
    """Order-sensitive function of the visible (unpadded) context, like a model would be."""
    return (sum((i + 1) * t for i, t in enumerate(context)) + 7 * len(context)) % VOCAB + 4


def reference_generate(prompt: list[int], n: int) -> list[int]:
    tokens = list(prompt)
    out = []
    for _ in range(n):
        tok = next_token(tokens)
        out.append(tok)
        tokens.append(tok)
    return out


class ChecksumRunner:
    """Stores every written token in a slot array addressed through block tables, and reads the
    context back through the same tables, skipping `pad_len` slots. A policy that hands out a wrong
    block table, position or pad length gets wrong tokens, exactly as with a real KV cache."""

    def __init__(self, num_blocks: int, block_size: int) -> None:
        self.block_size = block_size
        self.slots: list[int | None] = [None] * (num_blocks * block_size)
        self.steps: list[StepPlan] = []

    def _slot(self, table: list[int], pos: int) -> int:
        block = pos // self.block_size
        if block >= len(table):
            raise AssertionError(f"position {pos} not covered by block table of {len(table)} blocks")
        return table[block] * self.block_size + pos % self.block_size

    def execute(self, plan: StepPlan) -> StepOutput:
        self.steps.append(plan)
        if plan.layout == "padded":
            lengths = {(c.num_tokens, c.start_pos) for c in plan.chunks}
            assert len(lengths) == 1, f"padded plan is not rectangular: {lengths}"
        out = StepOutput()
        for chunk in plan.chunks:
            for i, tok in enumerate(chunk.token_ids):
                self.slots[self._slot(chunk.block_table, chunk.start_pos + i)] = tok
            if chunk.sample:
                end = chunk.start_pos + chunk.num_tokens
                context = [self.slots[self._slot(chunk.block_table, p)] for p in range(chunk.pad_len, end)]
                assert None not in context, f"{chunk.req_id} reads a slot never written"
                out.next_tokens[chunk.req_id] = next_token(context)  # type: ignore[arg-type]
        return out


class BudgetCheckingRunner(ChecksumRunner):
    """A checksum runner that also asserts, at every step, that KV usage stays within the budget."""

    def __init__(self, ctx: SchedulerContext) -> None:
        super().__init__(ctx.block_manager.num_blocks, ctx.block_manager.block_size)
        self.blocks = ctx.block_manager
        self.peak = 0

    def execute(self, plan: StepPlan) -> StepOutput:
        self.peak = max(self.peak, self.blocks.num_used)
        assert self.blocks.num_used <= self.blocks.num_blocks
        return super().execute(plan)


def make_context(num_blocks: int = 64, block_size: int = 4, max_model_len: int = 4096) -> SchedulerContext:
    info = ModelInfo("fake", num_layers=2, num_kv_heads=2, head_dim=8, dtype_bytes=4,
                     max_model_len=max_model_len, pad_token_id=PAD, vocab_size=VOCAB + 4)
    return SchedulerContext(BlockManager(num_blocks, block_size), info, EventLog(), seed=0)


class ScaledPredictor:
    """An output-length predictor that predicts a fixed share of the true length (under-prediction on demand)."""

    name = "scaled"

    def __init__(self, share: float) -> None:
        self.share = share

    def predict(self, spec):
        from bsbench.predictor import Prediction

        return Prediction(max(1, int(spec.output_len * self.share)))


class RecordingRunner:
    """A stand-in for a real runner in calibration: answers every plan at once (after 0.1 ms, so times are
    positive) and remembers each plan's first request id and block tables, in call order."""

    def __init__(self, block_size: int, num_blocks: int) -> None:
        self.cache = type("Cache", (), {"block_size": block_size, "num_blocks": num_blocks})()
        self.device = "cpu"
        self.malloc_tuning = {"top_pad": 1}
        self.tables: list[tuple[str, tuple]] = []

    def execute(self, plan: StepPlan) -> StepOutput:
        self.tables.append((plan.chunks[0].req_id, tuple(tuple(c.block_table) for c in plan.chunks)))
        time.sleep(1e-4)
        return StepOutput(next_tokens={}, forward_s=0.0)
