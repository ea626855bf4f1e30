"""The per-request latency breakdown the engine keeps (engine/phases.py) and the record carries.

The exact checks run on a virtual clock whose every time is a multiple of 2**-12 s (arrivals, clock ticks,
step costs), so float sums are exact and "adds up to E2E" is tested with ==, not approximately.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from bsbench.backends.record_build import request_row
from bsbench.engine.clock import VirtualClock
from bsbench.engine.events import PREEMPTION
from bsbench.engine.loop import Engine, EngineResult
from bsbench.engine.phases import Phase, PhaseTimer
from bsbench.engine.plan import StepOutput, StepPlan
from bsbench.engine.request_state import RequestState, Status
from bsbench.metrics import build_record
from bsbench.record import (
    SCHEMA_VERSION,
    LatencyBreakdown,
    Outcome,
    RecordConfig,
    RequestRow,
    WorkloadInfo,
    read_record,
    save_record,
)
from bsbench.schedulers.continuous import ContinuousOptions, ContinuousScheduler
from bsbench.schedulers.registry import get_scheduler
from bsbench.schedulers.uellm import UellmOptions, UellmScheduler
from bsbench.workloads.request import RequestSpec
from tests.fakes import BudgetCheckingRunner, ScaledPredictor, make_context

TICK = 2.0 ** -12


class DyadicCostRunner(BudgetCheckingRunner):
    """The checksum runner on a virtual clock: each step costs (tokens + 4) / 1024 s, an exact binary fraction."""

    def __init__(self, ctx, clock: VirtualClock) -> None:
        super().__init__(ctx)
        self.clock = clock

    def execute(self, plan: StepPlan) -> StepOutput:
        self.clock.advance((plan.num_tokens + 4) / 1024)
        return super().execute(plan)


def dyadic_requests(n: int, seed: int, max_prompt: int = 40, max_out: int = 16, spread_s: float = 0.5):
    rng = random.Random(seed)
    return [RequestSpec(f"r{i:03d}", tuple(rng.randrange(4, 900) for _ in range(rng.randint(1, max_prompt))),
                        rng.randint(1, max_out), round(rng.uniform(0, spread_s) * 256) / 256) for i in range(n)]


def run_exact(policy, ctx, requests) -> EngineResult:
    clock = VirtualClock(tick_s=TICK)
    return Engine(policy, DyadicCostRunner(ctx, clock), events=ctx.events, blocks=ctx.block_manager,
                  clock=clock).run(requests)


def rows(result: EngineResult) -> list[RequestRow]:
    return [request_row(s, False) for s in result.states]


def check_partition(row: RequestRow) -> None:
    """The parts are what the record's own timestamps say, and completed requests add up to E2E exactly."""
    parts = row.breakdown
    assert parts is not None
    assert min(parts.queue_s, parts.prefill_s, parts.decode_s, parts.preempted_s) >= 0
    if row.first_scheduled_s is not None:
        assert parts.queue_s == row.first_scheduled_s - row.arrival_s
    if row.status is Outcome.COMPLETED:
        assert row.finish_s is not None and row.first_token_s is not None
        assert parts.total_s == row.finish_s - row.arrival_s, row.id
        if row.preemptions == 0:
            assert parts.preempted_s == 0
            assert parts.queue_s + parts.prefill_s == row.first_token_s - row.arrival_s  # TTFT
            assert parts.decode_s == row.finish_s - row.first_token_s
        else:
            assert parts.preempted_s > 0


@pytest.mark.parametrize("name", ["static", "continuous", "uellm", "bucket"])
def test_parts_add_up_to_e2e_exactly_for_every_scheduler(name):
    ctx = make_context(num_blocks=120, block_size=4)
    cls = get_scheduler(name)
    result = run_exact(cls(cls.Options(), ctx), ctx, dyadic_requests(30, seed=11))
    done = [r for r in rows(result) if r.status is Outcome.COMPLETED]
    assert len(done) >= 20
    for row in rows(result):
        check_partition(row)
    # the requests really queued, prefilled and decoded: no part is identically zero across the run
    for part in ("queue_s", "prefill_s", "decode_s"):
        assert sum(getattr(r.breakdown, part) for r in done) > 0, part


def test_continuous_under_memory_pressure_adds_up_and_charges_preemption():
    ctx = make_context(num_blocks=40, block_size=4)
    reqs = dyadic_requests(24, seed=3, max_prompt=30, max_out=30, spread_s=0.1)
    result = run_exact(ContinuousScheduler(ContinuousOptions(max_num_seqs=16), ctx), ctx, reqs)
    assert all(s.status is Status.COMPLETED for s in result.states)
    assert result.events.count(PREEMPTION) > 0
    for row in rows(result):
        check_partition(row)


def test_chunked_prefill_gaps_count_as_prefill():
    ctx = make_context(num_blocks=400, block_size=4)
    long = RequestSpec("long", tuple(range(4, 4 + 100)), 3, 0.0)
    short = [RequestSpec(f"s{i}", (5, 6, 7), 20, 0.0) for i in range(6)]
    options = ContinuousOptions(max_num_batched_tokens=16, chunked_prefill=True)
    result = run_exact(ContinuousScheduler(options, ctx), ctx, short + [long])
    row = next(r for r in rows(result) if r.id == "long")
    check_partition(row)
    # the 100-token prompt took several 16-token steps shared with decodes: prefill spans all of them
    assert row.breakdown is not None and row.first_scheduled_s is not None and row.first_token_s is not None
    assert row.breakdown.prefill_s == row.first_token_s - row.first_scheduled_s
    assert row.breakdown.prefill_s > 6 * (16 + 4) / 1024


def test_constructed_preemption_is_charged_from_preemption_to_recompute():
    # 6 blocks of 4 slots: two requests of 6 + 12 tokens fit at first, then the older one needs a block and the
    # newer is preempted by recompute; it comes back when the older one ends, and recomputes its KV in one step
    ctx = make_context(num_blocks=6, block_size=4)
    reqs = [RequestSpec("a", tuple(range(10, 16)), 12, 0.0), RequestSpec("b", tuple(range(20, 26)), 12, 1 / 256)]
    result = run_exact(ContinuousScheduler(ContinuousOptions(watermark=0.0), ctx), ctx, reqs)
    a, b = (request_row(s, False) for s in result.states)
    assert a.status is b.status is Outcome.COMPLETED
    assert (a.preemptions, b.preemptions) == (0, 1)
    event = next(e for e in result.events.events if e.kind == PREEMPTION)
    assert event.request_ids == ["b"]
    # lost: from the preemption to the token its recompute step produced (the first token after the event)
    resumed = next(t for t in b.token_times if t > event.t_s)
    assert b.breakdown is not None and b.breakdown.preempted_s == resumed - event.t_s > 0
    assert a.breakdown is not None and a.breakdown.preempted_s == 0
    # b was preempted while decoding: its TTFT has no preemption in it, and the rest is decode
    assert b.first_token_s is not None and b.finish_s is not None and b.first_token_s < event.t_s
    assert b.breakdown.queue_s + b.breakdown.prefill_s == b.first_token_s - b.arrival_s
    assert b.breakdown.decode_s == b.finish_s - b.first_token_s - b.breakdown.preempted_s
    check_partition(a)
    check_partition(b)


def test_uellm_underprediction_preemption_is_charged():
    ctx = make_context(num_blocks=24, block_size=4)
    reqs = [RequestSpec(f"p{i}", tuple(range(5 + i, 13 + i)), 40, 0.0) for i in range(4)]
    policy = UellmScheduler(UellmOptions(), ctx)
    policy.predictor = ScaledPredictor(0.25)
    result = run_exact(policy, ctx, reqs)
    preempted = [r for r in rows(result) if r.preemptions]
    assert preempted and all(r.status is Outcome.COMPLETED for r in rows(result))
    for row in rows(result):
        check_partition(row)


def test_requests_failed_in_the_engine_carry_their_time_up_to_the_failure():
    # static batching over a 12-block cache: the 8-row padded batch cannot fit, its rows fail while queued (OOM)
    ctx = make_context(num_blocks=12, block_size=4)
    reqs = [RequestSpec(f"r{i}", tuple(range(5 + i, 15 + i)), 6, i / 64) for i in range(8)]
    policy = get_scheduler("static")(get_scheduler("static").Options(max_batch_size=8, batch_timeout=0.0), ctx)
    failed = [r for r in rows(run_exact(policy, ctx, reqs)) if r.status is Outcome.FAILED]
    assert failed
    for row in failed:
        assert row.breakdown is not None and row.finish_s is not None
        assert row.breakdown.total_s == row.finish_s - row.arrival_s > 0
        if row.first_scheduled_s is None:  # never ran: all of it was queueing
            assert row.breakdown.queue_s == row.breakdown.total_s


def test_phase_timer_recompute_inside_a_chunked_prefill_resumes_prefill():
    timer = PhaseTimer(since_s=0.0)
    timer.scheduled(1.0)
    timer.preempted(2.0, num_computed=50)  # lost 50 prompt tokens of KV before any token
    timer.computed(2.5, num_computed=30, has_token=False)  # recompute under way
    timer.preempted(2.75, num_computed=30)  # preempted again: still owes the 50
    timer.computed(3.0, num_computed=40, has_token=False)
    assert timer.phase is Phase.PREEMPTED
    timer.computed(3.5, num_computed=50, has_token=False)  # caught up: back to prefill
    assert timer.phase is Phase.PREFILL
    timer.token(4.0)
    timer.token(5.0)
    timer.ended(6.0)
    assert timer.breakdown() == LatencyBreakdown(queue_s=1.0, prefill_s=1.5, decode_s=2.0, preempted_s=1.5)


def test_rejected_and_failed_requests_carry_what_they_accrued():
    timer = PhaseTimer(since_s=2.0)
    timer.ended(5.0)  # rejected while waiting
    assert timer.breakdown() == LatencyBreakdown(queue_s=3.0)
    late = PhaseTimer(since_s=9.0)
    late.ended(4.0)  # interrupted before it arrived: nothing accrued
    assert late.breakdown() == LatencyBreakdown()
    state = RequestState(RequestSpec("x", (5, 6), 4, 0.5))
    state.mark_scheduled(1.0)
    state.append_token(7, 2.0)
    state.finish(Status.FAILED, 3.5, _reason())
    assert state.phases.breakdown() == LatencyBreakdown(queue_s=0.5, prefill_s=1.0, decode_s=1.5)


def _reason():
    from bsbench.record import EndKind, EndReason

    return EndReason(EndKind.OOM, "test")


# --- the record ---------------------------------------------------------------------------------------------

V2_RECORD = Path(__file__).parent / "data" / "record_v2.json"  # written by bsbench before schema version 3


def test_version_2_records_still_load_without_a_breakdown():
    record = read_record(V2_RECORD)
    assert record.schema_version == 2
    assert record.requests and all(r.breakdown is None for r in record.requests)
    assert record.to_json()["schema_version"] == 2  # read as what it is, never relabelled


def test_breakdown_round_trips_and_is_checked(tmp_path):
    ctx = make_context(num_blocks=40, block_size=4)
    result = run_exact(ContinuousScheduler(ContinuousOptions(max_num_seqs=16), ctx), ctx,
                       dyadic_requests(12, seed=3, max_prompt=30, max_out=30, spread_s=0.1))
    record = build_record(
        config=RecordConfig("continuous", 4.0, "checksum", "cpu"), environment={},
        workload=WorkloadInfo("t", "fp", 12), requests=rows(result), steps=result.steps,
        events=result.events.events, scheduler={}, duration_s=result.duration_s, complete=True)
    path = save_record(record, tmp_path)
    again = read_record(path)
    assert again.schema_version == SCHEMA_VERSION == 7
    assert [r.breakdown for r in again.requests] == [r.breakdown for r in record.requests]
    assert all(r.breakdown is not None for r in again.requests)
    row = record.requests[0].to_json()
    for bad, message in (("nope", "'breakdown' must be an object"),
                         ({"queue_s": 1, "prefill_s": 0, "decode_s": 0}, "breakdown: missing field 'preempted_s'"),
                         ({"queue_s": "1", "prefill_s": 0, "decode_s": 0, "preempted_s": 0}, "'queue_s' must be"),
                         ({"queue_s": -1, "prefill_s": 0, "decode_s": 0, "preempted_s": 0}, "must not be negative")):
        with pytest.raises(ValueError, match=re.escape(message)):
            RequestRow.from_json({**row, "breakdown": bad})


@pytest.mark.parametrize("record_tokens", [False, True])
def test_rows_made_as_requests_end_equal_rows_made_after_the_run(record_tokens):
    from bsbench.backends.record_build import EndedRows

    def run(on_ended):
        ctx = make_context(num_blocks=40, block_size=4)
        clock = VirtualClock(tick_s=TICK)
        policy = ContinuousScheduler(ContinuousOptions(max_num_seqs=16), ctx)
        return Engine(policy, DyadicCostRunner(ctx, clock), events=ctx.events, blocks=ctx.block_manager,
                      clock=clock, on_ended=on_ended).run(dyadic_requests(24, seed=5, max_prompt=30, max_out=30))

    ended = EndedRows(record_tokens)
    streamed = run(ended)
    assert len(ended.rows) == 24  # every request's row was made as it ended
    after = run(None)
    assert ended.of(streamed.states) == [request_row(s, record_tokens) for s in after.states]
    assert all(s.num_output > 0 for s in streamed.states)
    assert all(bool(s.output_ids) == record_tokens for s in streamed.states)  # not recorded: let go as it ended
