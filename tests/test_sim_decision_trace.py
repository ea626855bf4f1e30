"""Decision-trace equality on the simulated backend: speed work must not change one decision.

Every plan the runner receives (layout, pad tokens, and per chunk: request id, token ids,
start_pos, block table, sample, pad_len), every event and the final state of every request
are hashed, step by step, for the four schedulers on a few seeded workloads under memory
pressure (preemptions, OOM failures, under-predictions, bucket splits). The golden digests
in tests/data/sim_decision_trace.json were produced by the code before any optimisation.
Each case runs twice: step by step, and with decode runs (several decode steps per runner
call, `execute_decode_run`), whose steps are hashed as the single steps they replace.

A deliberate change of policy behaviour regenerates them:
`PYTHONPATH=. python tests/test_sim_decision_trace.py --regenerate` (and say so in the commit).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bsbench.engine.block_manager import BlockManager
from bsbench.engine.decode_runs import DecodeRunOutput
from bsbench.engine.events import EventLog
from bsbench.engine.loop import Engine
from bsbench.engine.plan import SeqChunk, StepOutput, StepPlan
from bsbench.schedulers.base import SchedulerContext
from bsbench.schedulers.registry import get_scheduler
from bsbench.sim.backend import open_sim
from bsbench.workloads.request import SLO, RequestSpec

GOLDEN = Path(__file__).parent / "data" / "sim_decision_trace.json"
CHECKPOINT_EVERY = 500  # steps between stored running digests (locates the first divergence)
KV_BYTES_PER_TOKEN = 2 * 40 * 40 * 128 * 2  # llama2-13b, bf16


def sharegpt_like(n: int, rate: float, seed: int, burst: int = 0) -> list[RequestSpec]:
    """ShareGPT-shaped lengths (log-normal prompts and outputs, vllm-filter caps); Poisson arrivals at `rate`,
    or with `burst`, bursts of that many requests 10 ms apart every 40 s (queues that fill and drain)."""
    rng = random.Random(seed)
    out, t = [], 0.0
    for i in range(n):
        prompt = min(1024, max(4, int(rng.lognormvariate(4.8, 1.1))))
        output = min(2048 - prompt, max(2, int(rng.lognormvariate(3.6, 1.0))))
        if burst:
            t = (i // burst) * 40.0 + (i % burst) * 0.01
        elif math.isfinite(rate):
            t += rng.expovariate(rate)
        slo = SLO(e2e_ms=rng.choice([None, 30_000.0, 120_000.0]))
        priority = "offline" if rng.random() < 0.3 else "online"
        ids = tuple((i * 7919 + k * 31) % 31000 + 3 for k in range(prompt))
        out.append(RequestSpec(f"r{i:04d}", ids, output, t, slo=slo, priority=priority))
    return out


@dataclass(frozen=True)
class Case:
    name: str
    scheduler: str
    n: int
    rate: float
    kv_tokens: int
    burst: int = 0
    options: dict[str, Any] = field(default_factory=dict)


def cases() -> list[Case]:
    found = []
    for scheduler in ("static", "continuous", "uellm", "bucket"):
        found.append(Case(f"{scheduler}-inf", scheduler, 300, math.inf, 6_000))
        found.append(Case(f"{scheduler}-rate10", scheduler, 250, 10.0, 4_000))
    found += [
        Case("static-split", "static", 200, math.inf, 3_000, options={"oom_policy": "split", "max_batch_size": 16}),
        Case("continuous-chunked", "continuous", 200, 20.0, 2_500,
             options={"chunked_prefill": True, "max_num_batched_tokens": 512}),
        Case("uellm-noisy-extend", "uellm", 200, math.inf, 4_000,
             options={"predictor": "noisy", "generation_cap": True, "cap_margin": 4}),
        Case("uellm-noisy-preempt", "uellm", 200, 6.0, 3_000,
             options={"predictor": "noisy", "on_underpredict": "preempt", "slo_expired": "reject"}),
        Case("bucket-actual-ljf", "bucket", 300, math.inf, 5_000,
             options={"bucket_nmax_mode": "actual", "bucket_priority": "ljf"}),
        Case("bucket-quantile", "bucket", 250, 8.0, 4_000,
             options={"bucket_boundaries": "quantile", "max_num_seqs": 32}),
        Case("bucket-bursts-merges", "bucket", 240, math.inf, 6_000, 40, options={"bucket_interval": 0.2}),
        Case("continuous-bursts", "continuous", 240, math.inf, 3_000, 60),
        Case("bucket-fixed-cap", "bucket", 200, math.inf, 4_000,
             options={"bucket_boundaries": "128,512", "bucket_max_prefill_tokens": 2048}),
    ]
    return found


class TraceRunner:
    """Wraps the sim runner: hashes every plan as the runner receives it, chains the step digests."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.chain = hashlib.sha256()
        self.steps = 0
        self.checkpoints: list[str] = []

    def execute(self, plan: StepPlan) -> StepOutput:
        self.hash_plan(plan)
        return self.inner.execute(plan)

    def hash_plan(self, plan: StepPlan) -> None:
        rows = [(c.req_id, tuple(c.token_ids), c.start_pos, tuple(c.block_table), c.sample, c.pad_len)
                for c in plan.chunks]
        self.chain.update(repr((plan.layout, plan.pad_tokens, rows)).encode())
        self.steps += 1
        if self.steps % CHECKPOINT_EVERY == 0:
            self.checkpoints.append(self.chain.hexdigest()[:16])


class DecodeRunTraceRunner(TraceRunner):
    """Also runs decode runs, hashing each of their steps as the plan a single step would have received
    (a sampled row feeds back the token it produced the step before; a block table the policy grows during
    the run holds, at step j, the blocks it had at the start plus those covering slot start_pos + j)."""

    def __init__(self, inner: Any, blocks: BlockManager) -> None:
        super().__init__(inner)
        self.blocks = blocks
        self.runs = 0
        self.cut = 0  # runs that ended before the promised length (an arrival, a deadline)

    def execute_decode_run(self, plan: StepPlan, steps: int, until: float | None = None) -> DecodeRunOutput | None:
        held = {c.req_id: len(self.blocks.block_table(c.req_id)) for c in plan.chunks}  # nothing allocated yet
        run = self.inner.execute_decode_run(plan, steps, until)
        if run is not None:
            self.runs += 1
            self.cut += len(run.end_s) < steps
            for j in range(len(run.end_s)):
                self.hash_plan(StepPlan(plan.layout, [
                    SeqChunk(c.req_id, [run.next_tokens[c.req_id][j - 1]] if j and c.sample else c.token_ids,
                             c.start_pos + j,
                             c.block_table[:max(held[c.req_id], self.blocks.blocks_for_tokens(c.start_pos + j + 1))],
                             c.sample, c.pad_len) for c in plan.chunks],
                    plan.pad_tokens))
        return run


WALL_TIME_KEYS = {"controller_s", "controller_mean_us", "controller_share", "decision_mean_us"}


def trace(case: Case, decode_runs: bool = False) -> dict[str, Any]:
    sim = open_sim("llama2-13b", "a100-40gb", kv_memory=case.kv_tokens * KV_BYTES_PER_TOKEN)
    ctx = SchedulerContext(BlockManager(sim.num_blocks, sim.block_size), sim.shape.info, EventLog(), seed=0)
    cls = get_scheduler(case.scheduler)
    policy = cls(cls.Options(**case.options), ctx)
    runner = DecodeRunTraceRunner(sim.runner, ctx.block_manager) if decode_runs else TraceRunner(sim.runner)
    result = Engine(policy, runner, events=ctx.events, blocks=ctx.block_manager, clock=sim.clock).run(
        sharegpt_like(case.n, case.rate, seed=len(case.name), burst=case.burst))
    states = [(s.id, s.status.value, None if s.reason is None else s.reason.to_json(), s.token_times, s.output_ids,
               s.first_scheduled_s, s.finish_s, s.preemptions, s.pad_tokens, s.truncated,
               json.dumps(s.notes, sort_keys=True, default=repr)) for s in result.states]
    steps = [(st.start_s, st.duration_s, st.layout, st.num_seqs, st.num_tokens, st.pad_tokens, st.kv_blocks_used)
             for st in result.steps]
    events = [e.to_json() for e in result.events.events]
    summary = {k: v for k, v in policy.summary().items() if k not in WALL_TIME_KEYS}
    statuses: dict[str, int] = {}
    for s in result.states:
        statuses[s.status.value] = statuses.get(s.status.value, 0) + 1
    kinds: dict[str, int] = {}
    for e in result.events.events:
        kinds[e.kind] = kinds.get(e.kind, 0) + 1

    def digest(obj: Any) -> str:
        return hashlib.sha256(json.dumps(obj, sort_keys=True, default=repr).encode()).hexdigest()[:16]

    return {
        "steps": runner.steps,
        "plans": runner.chain.hexdigest()[:16],
        "checkpoints": runner.checkpoints,
        "events": digest(events),
        "event_kinds": dict(sorted(kinds.items())),
        "states": digest(states),
        "step_rows": digest(steps),
        "statuses": dict(sorted(statuses.items())),
        "duration_s": result.duration_s,
        "summary": json.loads(json.dumps(summary, sort_keys=True, default=repr)),
        "decode_runs": getattr(runner, "runs", 0),
        "decode_runs_cut": getattr(runner, "cut", 0),
        "breakdowns": digest([s.phases.breakdown().to_json() for s in result.states]),
    }


def golden() -> dict[str, Any]:
    return json.loads(GOLDEN.read_text())


@pytest.mark.parametrize("decode_runs", [False, True], ids=["single-steps", "decode-runs"])
@pytest.mark.parametrize("case", cases(), ids=lambda c: c.name)
def test_decision_trace_matches_golden(case, decode_runs):
    expected = golden()[case.name]
    got = trace(case, decode_runs)
    runs = got.pop("decode_runs")
    cut = got.pop("decode_runs_cut")
    got.pop("breakdowns")
    if decode_runs:  # every policy promises decode runs
        assert runs > 0
        if case.scheduler in ("continuous", "bucket") and math.isfinite(case.rate):
            assert cut > 0  # arrivals landed inside promised runs and ended them
    if got["plans"] != expected["plans"]:
        first = next((i for i, (a, b) in enumerate(zip(got["checkpoints"], expected["checkpoints"])) if a != b), None)
        where = (f"before step {(first + 1) * CHECKPOINT_EVERY}" if first is not None
                 else f"after the last checkpoint ({len(expected['checkpoints']) * CHECKPOINT_EVERY} steps)")
        pytest.fail(f"{case.name}: the plans differ {where}; steps {got['steps']} vs {expected['steps']}")
    assert got == expected


@pytest.mark.parametrize("case", cases(), ids=lambda c: c.name)
def test_decode_runs_give_the_same_latency_breakdown(case):
    """The breakdown is not in the golden digests (it came later), so single steps are its reference."""
    assert trace(case, decode_runs=True)["breakdowns"] == trace(case, decode_runs=False)["breakdowns"]


def test_golden_cases_exercise_the_hard_paths():
    """The fixture covers preemption, OOM, under-prediction and bucket reshaping, or it proves little."""
    data = golden()
    assert set(data) == {c.name for c in cases()}
    kinds = {k for entry in data.values() for k in entry["event_kinds"]}
    assert {"oom", "preemption", "bucket", "kv_extend"} <= kinds
    assert any(entry["statuses"].get("failed") for entry in data.values())
    assert any(entry["summary"].get("splits") for entry in data.values())
    assert any(entry["summary"].get("merges") for entry in data.values())
    assert any(entry["summary"].get("quantile_recuts") for entry in data.values())


if __name__ == "__main__" and "--regenerate" in sys.argv:
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    traces = {c.name: trace(c) for c in cases()}
    for entry in traces.values():
        del entry["decode_runs"], entry["decode_runs_cut"], entry["breakdowns"]
    GOLDEN.write_text(json.dumps(traces, indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}")
