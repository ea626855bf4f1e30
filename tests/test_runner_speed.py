"""Speed check of the runner (not a correctness test; deselected by default).

    pytest -m slow -s tests/test_runner_speed.py

prints the tiny model's packed decode step time for batch 1, 8, 32, 64 at a
context of ~300 tokens on this machine, and the share of the step's wall time
spent outside the model forward (plan checks, index tensors, token lists).
"""

from __future__ import annotations

import time

import pytest
import torch

from bsbench.engine.block_manager import BlockManager
from bsbench.engine.plan import SeqChunk, StepPlan
from bsbench.model.loader import load_model
from bsbench.model.runner import ModelRunner

CONTEXT = 300
BLOCK = 16


def measure(runner: ModelRunner, batch: int, steps: int = 30) -> tuple[float, float]:
    bm = BlockManager(runner.cache.num_blocks, BLOCK)
    for i in range(batch):
        assert bm.ensure(str(i), CONTEXT + steps + 8)
    prefill = StepPlan("packed", [SeqChunk(str(i), [7] * CONTEXT, 0, bm.block_table(str(i)), sample=False)
                                  for i in range(batch)])
    runner.execute(prefill)
    walls, fwds = [], []
    for s in range(steps + 3):
        plan = StepPlan("packed", [SeqChunk(str(i), [11], CONTEXT + s, bm.block_table(str(i))) for i in range(batch)])
        t0 = time.perf_counter()
        out = runner.execute(plan)
        wall = time.perf_counter() - t0
        if s >= 3:
            walls.append(wall)
            fwds.append(out.forward_s)
    walls.sort()
    fwds.sort()
    return walls[len(walls) // 2], 1 - sum(fwds) / max(sum(walls), 1e-12)


@pytest.mark.slow
def test_decode_step_time():
    model, info = load_model("tiny", "dummy", "auto", "auto", 0)
    device = next(model.parameters()).device
    runner = ModelRunner(model, info, device, next(model.parameters()).dtype)
    runner.allocate_kv(64 * ((CONTEXT + 64) // BLOCK + 2), BLOCK)
    print(f"\ntiny model, packed decode, context {CONTEXT}, device {device}, threads {torch.get_num_threads()}")
    for batch in (1, 8, 32, 64):
        step, outside = measure(runner, batch)
        print(f"  batch {batch:3d}: {step * 1e3:7.2f} ms/step (median)  {batch / step:8.0f} tok/s  "
              f"outside forward {outside:5.1%}")
