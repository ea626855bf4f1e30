"""Decode-run promises of continuous and bucket, and the runner's part: each promise is checked against what
single steps actually do (the step at which a request finishes, a preemption happens, the controller looks)."""

from __future__ import annotations

import random

from bsbench.engine.block_manager import BlockManager
from bsbench.engine.clock import VirtualClock
from bsbench.engine.events import EventLog
from bsbench.engine.model_shape import model_shape
from bsbench.engine.plan import SeqChunk, StepPlan
from bsbench.engine.request_state import RequestState
from bsbench.engine.step_layout import attention_calls, forward_order, next_decode_change
from bsbench.schedulers.base import Scheduler, SchedulerContext
from bsbench.schedulers.registry import get_scheduler
from bsbench.sim.cost_model import RooflineCostModel
from bsbench.sim.gpus import gpu_preset
from bsbench.sim.sim_runner import SimRunner
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
    r = SimRunner(L13B, A100, RooflineCostModel(L13B, A100), VirtualClock())
    r.allocate_kv(100, 16)
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

