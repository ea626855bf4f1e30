"""Engine loop + static/continuous policies on the checksum runner: correctness, memory, accounting."""

from __future__ import annotations

import random

import pytest

from bsbench.engine.clock import VirtualClock
from bsbench.engine.events import OOM, PREEMPTION
from bsbench.engine.loop import Engine
from bsbench.engine.request_state import RequestState, Status
from bsbench.record import EndKind
from bsbench.schedulers.continuous import ContinuousOptions, ContinuousScheduler
from bsbench.schedulers.static import StaticOptions, StaticScheduler
from bsbench.workloads.request import RequestSpec
from tests.fakes import BudgetCheckingRunner, ChecksumRunner, make_context, reference_generate


def make_requests(n: int, seed: int = 0, max_prompt: int = 40, max_out: int = 12, spread: float = 0.0):
    rng = random.Random(seed)
    return [
        RequestSpec(
            id=f"r{i:03d}",
            prompt_ids=tuple(rng.randrange(4, 900) for _ in range(rng.randint(1, max_prompt))),
            output_len=rng.randint(1, max_out),
            arrival_s=rng.uniform(0, spread) if spread else 0.0,
        )
        for i in range(n)
    ]


def run(scheduler_cls, options, requests, num_blocks=64, block_size=4):
    ctx = make_context(num_blocks, block_size)
    scheduler = scheduler_cls(options, ctx)
    runner = BudgetCheckingRunner(ctx)
    result = Engine(scheduler, runner, events=ctx.events, blocks=ctx.block_manager,
                    clock=VirtualClock(tick_s=1e-4)).run(requests)
    return result, runner, ctx


def assert_outputs_match(result):
    for state in result.states:
        if state.status is Status.COMPLETED:
            assert state.output_ids == reference_generate(list(state.spec.prompt_ids), state.spec.output_len), state.id


def assert_accounted(result, n):
    statuses = [s.status for s in result.states]
    assert len(statuses) == n
    assert all(s.is_final for s in statuses)
    for s in result.states:
        if s.status is not Status.COMPLETED:
            assert s.reason
        else:
            assert len(s.output_ids) == s.spec.output_len == len(s.token_times)


@pytest.mark.parametrize("chunked", [False, True])
def test_continuous_matches_reference_with_ample_memory(chunked):
    reqs = make_requests(30, spread=0.01)
    options = ContinuousOptions(max_num_batched_tokens=64, chunked_prefill=chunked)
    result, runner, ctx = run(ContinuousScheduler, options, reqs, num_blocks=400)
    assert_accounted(result, 30)
    assert all(s.status is Status.COMPLETED for s in result.states)
    assert_outputs_match(result)
    assert ctx.block_manager.num_used == 0
    # prefill and decode really mixed in one step
    assert any(len({c.num_tokens > 1 for c in p.chunks}) == 2 for p in runner.steps)
    if chunked:
        assert any(not c.sample and c.num_tokens > 1 for p in runner.steps for c in p.chunks)


def test_continuous_preempts_by_recompute_under_memory_pressure():
    reqs = make_requests(24, seed=3, max_prompt=30, max_out=30)
    result, runner, ctx = run(ContinuousScheduler, ContinuousOptions(max_num_seqs=16), reqs, num_blocks=40)
    assert_accounted(result, 24)
    assert all(s.status is Status.COMPLETED for s in result.states)
    assert result.events.count(PREEMPTION) > 0
    assert sum(s.preemptions for s in result.states) == result.events.count(PREEMPTION)
    assert_outputs_match(result)  # recomputed requests still produce the right tokens
    assert runner.peak <= 40


def test_static_pads_and_matches_reference():
    reqs = make_requests(20, seed=1)
    result, runner, ctx = run(StaticScheduler, StaticOptions(max_batch_size=4), reqs, num_blocks=400)
    assert all(s.status is Status.COMPLETED for s in result.states)
    assert_outputs_match(result)
    assert all(p.layout == "padded" for p in runner.steps)
    assert sum(p.pad_tokens for p in runner.steps) == sum(s.pad_tokens for s in result.states) > 0
    assert ctx.block_manager.num_used == 0
    # a batch decodes until its longest output: finished rows keep computing without sampling
    assert any(not c.sample for p in runner.steps for c in p.chunks)


def test_static_oom_fail_records_events_and_loses_nothing():
    reqs = make_requests(16, seed=2, max_prompt=40, max_out=20)
    result, runner, ctx = run(StaticScheduler, StaticOptions(max_batch_size=8), reqs, num_blocks=60)
    assert_accounted(result, 16)
    failed = [s for s in result.states if s.status is Status.FAILED]
    assert failed and all(s.reason.kind is EndKind.OOM for s in failed)
    oom_ids = {i for e in result.events.events if e.kind == OOM for i in e.request_ids}
    assert oom_ids == {s.id for s in failed}
    assert runner.peak <= 60
    assert_outputs_match(result)


def test_static_oom_split_completes_everything():
    reqs = make_requests(16, seed=2, max_prompt=40, max_out=20)
    result, runner, ctx = run(StaticScheduler, StaticOptions(max_batch_size=8, oom_policy="split"), reqs, num_blocks=60)
    assert all(s.status is Status.COMPLETED for s in result.states)
    assert_outputs_match(result)


def test_static_split_leaves_the_requeued_rows_unpadded():
    """Rows a split sends back to the queue were never admitted: they hold no KV, so no KV padding either."""
    states = [RequestState(RequestSpec(f"r{i}", tuple(range(4, 4 + n)), 4, 0.0)) for i, n in enumerate([2, 30, 2, 2])]
    ctx = make_context(num_blocks=20, block_size=4)  # 4 rows of width 30 need 4 x 9 blocks; 2 rows need 18
    sched = StaticScheduler(StaticOptions(max_batch_size=4, oom_policy="split"), ctx)
    for state in states:
        sched.add_request(state, 0.0)
    plan = sched.schedule(0.0)
    assert [c.req_id for c in plan.chunks] == ["r0", "r1"]
    assert states[0].kv_pad_len == 28 and states[1].kv_pad_len == 0
    assert [(s.kv_pad_len, s.kv_len) for s in states[2:]] == [(0, 0), (0, 0)]


def test_static_partial_batch_waits_for_timeout():
    reqs = make_requests(3, seed=4)
    ctx = make_context(400, 4)
    sched = StaticScheduler(StaticOptions(max_batch_size=8, batch_timeout=2.0), ctx)
    clock = VirtualClock(tick_s=1e-4)
    result = Engine(sched, ChecksumRunner(400, 4), events=ctx.events, blocks=ctx.block_manager, clock=clock).run(reqs)
    first = min(s.first_scheduled_s for s in result.states)
    assert first >= 2.0
    assert all(s.status is Status.COMPLETED for s in result.states)


def test_engine_admits_only_arrived_requests():
    reqs = [RequestSpec("a", (5, 6, 7), 3, 0.0), RequestSpec("b", (8, 9), 2, 5.0)]
    result, runner, ctx = run(ContinuousScheduler, ContinuousOptions(), reqs, num_blocks=100)
    b = next(s for s in result.states if s.id == "b")
    assert b.first_scheduled_s >= 5.0
    assert b.token_times[0] >= 5.0


def test_activation_oom_fails_the_step_records_an_event_and_the_run_goes_on():
    from bsbench.engine.plan import ActivationOOM

    class FailsThirdStep(BudgetCheckingRunner):
        calls = 0

        def execute(self, plan):
            self.calls += 1
            if self.calls == 3:
                raise ActivationOOM("CUDA out of memory (simulated)")
            return super().execute(plan)

    ctx = make_context(200, 4)
    reqs = make_requests(12, seed=5, spread=0.01)
    result = Engine(ContinuousScheduler(ContinuousOptions(), ctx), FailsThirdStep(ctx), events=ctx.events,
                    blocks=ctx.block_manager,
                    clock=VirtualClock(tick_s=1e-4)).run(reqs)
    assert_accounted(result, 12)
    failed = {s.id for s in result.states if s.status is Status.FAILED}
    ooms = [e for e in result.events.events if e.kind == OOM]
    assert len(ooms) == 1 and set(ooms[0].request_ids) == failed and failed
    assert ooms[0].detail["cause"] == "activations"
    assert any(s.status is Status.COMPLETED for s in result.states)
    assert_outputs_match(result)
    assert ctx.block_manager.num_used == 0
