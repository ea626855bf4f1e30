"""Decode-run promises of continuous and bucket, and the runner's part: each promise is checked against what
single steps actually do (the step at which a request finishes, a preemption happens, the controller looks)."""

from __future__ import annotations

import random

import pytest

from bsbench.engine.block_manager import BlockManager
from bsbench.engine.clock import VirtualClock
from bsbench.engine.events import EventLog
from bsbench.engine.plan import SeqChunk, StepPlan
from bsbench.engine.request_state import RequestState
from bsbench.engine.step_layout import (
    DECODE_MIN_GROUP,
    DECODE_SPLIT_RATIO,
    attention_calls,
    forward_order,
    next_decode_change,
    split_ends,
)
from bsbench.model.shape import model_shape
from bsbench.schedulers.base import Scheduler, SchedulerContext
from bsbench.schedulers.registry import get_scheduler
from bsbench.sim.cost_model import RooflineCostModel
from bsbench.sim.gpus import gpu_preset
from bsbench.sim.sim_runner import SimRunner
from bsbench.sim.work import decode_step_work, step_work
from bsbench.workloads.request import RequestSpec

L13B = model_shape("llama2-13b", "float16")
A100 = gpu_preset("a100-40gb")
BLOCK = 4


def policy(name: str, num_blocks: int, **options) -> Scheduler:
    ctx = SchedulerContext(BlockManager(num_blocks, BLOCK), L13B.info, EventLog(), seed=0)
    cls = get_scheduler(name)
    return cls(cls.Options(**options), ctx)


def request(i: int, prompt: int, output: int) -> RequestState:
    return RequestState(RequestSpec(f"r{i}", tuple(range(3, 3 + prompt)), output, 0.0))


class SingleSteps:
    """Drives a policy one step at a time (token 0 each, one second per step), as the engine would."""

    def __init__(self, sched: Scheduler, states: list[RequestState]) -> None:
        self.sched = sched
        self.now = 0.0
        for s in states:
            sched.add_request(s, 0.0)
        self.by_id = {s.id: s for s in states}

    def plan(self) -> StepPlan:
        plan = self.sched.schedule(self.now)
        assert plan is not None
        return plan

    def book(self, plan: StepPlan) -> None:
        self.now += 1.0
        for c in plan.chunks:
            if c.sample:
                self.by_id[c.req_id].append_token(0, self.now)
        self.sched.update(plan, self.now)


def decoding(name: str, num_blocks: int, outputs: list[int], **options) -> tuple[SingleSteps, StepPlan]:
    """Every request prefilled (3-token prompts, one step); returns the first plan in which they all decode."""
    drive = SingleSteps(policy(name, num_blocks, **options), [request(i, 3, n) for i, n in enumerate(outputs)])
    while True:
        plan = drive.plan()
        if plan.layout == "packed" and all(c.num_tokens == 1 for c in plan.chunks):
            return drive, plan
        drive.book(plan)


def test_continuous_run_ends_with_the_first_finish():
    drive, plan = decoding("continuous", 100, [10, 6, 8])
    length = drive.sched.decode_run_length(plan)
    assert length == 5  # the 6-token request has 1 token: its 5th decode step samples its last
    for step in range(length):
        assert not drive.sched.take_ended()
        drive.book(plan if step == 0 else drive.plan())
    assert [s.id for s in drive.sched.take_ended()] == ["r1"]


def test_continuous_run_ends_before_the_step_that_would_preempt():
    # 3 + 1 slots fill each request's first block; every 4 steps each needs another; 8 blocks, 3 held: 5 free
    drive, plan = decoding("continuous", 8, [40, 40, 40], watermark=0.0)
    assert drive.sched.blocks.num_free == 5
    length = drive.sched.decode_run_length(plan)
    assert length == 5  # steps 1 and 5 allocate 3 blocks each: the 6th block, at step 5, is not there
    terms = drive.sched.decode_run_terms(plan, length)
    assert terms.blocks_used == [3, 6, 6, 6, 6]
    grown = {c.req_id: tuple(c.block_table) for c in terms.plan.chunks}
    for step in range(length):
        drive.book(plan if step == 0 else drive.plan())
    assert not drive.sched.ctx.events.events  # no preemption inside the promised run
    assert {r: drive.sched.blocks.block_table(r) for r in grown} == grown  # the ids single steps handed out
    drive.plan()
    assert [e.kind for e in drive.sched.ctx.events.events] == ["preemption"]


def test_continuous_arrivals_matter_only_when_admission_is_open():
    room, plan = decoding("continuous", 100, [10, 10])
    assert room.sched.decode_run_terms(plan, 2).arrivals_matter  # an arrival would be admitted next step
    full, plan = decoding("continuous", 100, [10, 10], max_num_seqs=2)
    assert not full.sched.decode_run_terms(plan, 2).arrivals_matter  # no seat frees before the run's last step
    blocked, plan = decoding("continuous", 4, [10, 10], watermark=0.0)
    blocked.sched.add_request(request(9, 30, 5), blocked.now)  # 8 blocks needed, 2 free: it waits
    plan = blocked.plan()
    assert [c.req_id for c in plan.chunks] == ["r0", "r1"]
    assert not blocked.sched.decode_run_terms(plan, 2).arrivals_matter  # the head stays blocked behind it


def test_bucket_run_stops_at_a_finish_and_at_the_controller_unless_it_is_quiet():
    drive, plan = decoding("bucket", 200, [12, 9, 30], bucket_interval=2.5)
    length = drive.sched.decode_run_length(plan)
    assert length == 8  # r1 has 1 of 9 tokens
    terms = drive.sched.decode_run_terms(plan, length)
    assert terms.arrivals_matter and terms.blocks_used == [drive.sched.blocks.num_used] * length
    quiet = drive.sched._controller_quiet()
    assert terms.until == (None if quiet else drive.sched._next_eval)
    evaluations = drive.sched.evaluations
    drive.book(plan)
    drive.plan()  # the controller looks again (now 2 s past the prefill) only when its interval has passed
    assert (drive.sched.evaluations > evaluations) == (drive.now >= 2.5)


def test_bucket_makes_no_promise_while_a_prefill_is_due():
    drive = SingleSteps(policy("bucket", 200), [request(i, 3, 10) for i in range(2)])
    plan = drive.plan()
    assert plan.layout == "padded" and drive.sched.decode_run_length(plan) == 1


def runner() -> SimRunner:
    return runner_with(100)


def runner_with(num_blocks: int) -> SimRunner:
    r = SimRunner(L13B, A100, RooflineCostModel(L13B, A100), VirtualClock())
    r.allocate_kv(num_blocks, 16)
    return r


def test_runner_stops_a_run_at_until_with_the_times_of_single_steps():
    plan = StepPlan("packed", [SeqChunk(f"r{i}", [7], 10 + 5 * i, tuple(range(4 * i, 4 * i + 4))) for i in range(4)])
    singles = runner()
    ends = []
    for j in range(12):
        singles.execute(StepPlan("packed", [SeqChunk(c.req_id, c.token_ids, c.start_pos + j, c.block_table)
                                            for c in plan.chunks]))
        ends.append(singles.clock.t)
    run = runner().execute_decode_run(plan, 12, until=ends[6] - 1e-9)
    assert run is not None and run.end_s == ends[:7]
    assert runner().execute_decode_run(plan, 12).end_s == ends


def test_decode_work_stays_the_same_until_next_decode_change():
    rng = random.Random(3)
    for _ in range(200):
        starts = sorted(rng.randrange(0, 300) for _ in range(rng.randrange(1, 40)))
        shift = rng.randrange(0, 50)

        def calls(k: int, starts: list[int] = starts) -> list:
            chunks = [SeqChunk(f"r{i}", [1], s + k, ()) for i, s in enumerate(starts)]
            return attention_calls("packed", forward_order("packed", chunks), 16)

        change = next_decode_change(starts, shift, 16)
        assert change > shift
        assert all(calls(k) == calls(shift) for k in range(shift, change))



def test_runner_checks_the_last_step_of_a_run_against_the_table_and_max_model_len():
    # 4 blocks of 16 slots: positions 0..63; the chunk writes slot 60 at step 0, slot 63 at step 3, slot 64 at step 4
    plan = StepPlan("packed", [SeqChunk("r0", [7], 60, (0, 1, 2, 3))])
    assert runner().execute_decode_run(plan, 4) is not None
    with pytest.raises(ValueError, match="does not cover slot 64"):
        runner().execute_decode_run(plan, 5)
    plan = StepPlan("packed", [SeqChunk("r0", [7], 40, (0, 1, 2, 3)), SeqChunk("r1", [7], 5, (4,))])
    assert runner().execute_decode_run(plan, 11) is not None
    with pytest.raises(ValueError, match=r"block table of r1 \(1 blocks of 16\) does not cover slot 16"):
        runner().execute_decode_run(plan, 12)  # r1 outgrows its one block at the 12th step, r0 does not
    long = L13B.info.max_model_len
    table = tuple(range(-(-long // 16)))
    near_end = StepPlan("packed", [SeqChunk("r0", [7], long - 3, table)])
    assert runner_with(len(table)).execute_decode_run(near_end, 3) is not None
    with pytest.raises(ValueError, match="max_model_len"):
        runner_with(len(table)).execute_decode_run(near_end, 4)


def test_decode_step_work_equals_step_work_of_the_shifted_plan():
    rng = random.Random(5)
    for _ in range(200):
        n = rng.randrange(1, 40)
        starts = [rng.randrange(1, 300) for _ in range(n)]
        shift = rng.randrange(0, 50)
        samples = [rng.random() < 0.8 for _ in range(n)]
        for layout in ("packed", "padded"):
            def plan(k: int, layout: str = layout, starts: list[int] = starts, samples: list[bool] = samples):
                chunks = [SeqChunk(f"r{i}", [1], (starts[0] if layout == "padded" else s) + k, (), sample)
                          for i, (s, sample) in enumerate(zip(starts, samples))]
                return StepPlan(layout, chunks, pad_tokens=samples.count(False))

            run_starts = sorted(c.start_pos for c in plan(0).chunks)
            assert decode_step_work(plan(0), shift, 16, run_starts) == step_work(plan(shift), 16)


def test_split_ends_bisection_follows_the_row_by_row_rule():
    def row_by_row(contexts: list[int]) -> list[int]:  # the rule as stated: scan every row
        ends, lo = [], 0
        for j in range(len(contexts)):
            if j - lo >= DECODE_MIN_GROUP and contexts[j] > DECODE_SPLIT_RATIO * contexts[lo]:
                ends.append(j)
                lo = j
        return ends + [len(contexts)] if contexts else ends

    rng = random.Random(11)
    for _ in range(3000):
        starts = sorted(rng.randrange(0, rng.choice([10, 100, 3000])) for _ in range(rng.randrange(0, 80)))
        shift = rng.randrange(0, 60)
        assert split_ends(starts, shift) == row_by_row([s + shift + 1 for s in starts])
