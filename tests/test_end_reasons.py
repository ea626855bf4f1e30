"""End reasons counted by kind in the summary, each produced by the real policy or engine path.

Every case runs real schedulers through the real engine loop on the checksum
runner, turns the states into record rows with the same `bench.request_row`
a run uses, and summarises them with the real `metrics.build_record`.
"""

from __future__ import annotations

import pytest

from bsbench.backends.record_build import request_row
from bsbench.engine.clock import VirtualClock
from bsbench.engine.loop import Engine, EngineResult
from bsbench.engine.plan import StepPlan
from bsbench.engine.request_state import RequestState
from bsbench.metrics import build_record
from bsbench.record import EndKind, Outcome, RecordConfig, RunRecord, WorkloadInfo
from bsbench.schedulers.base import Scheduler
from bsbench.schedulers.bucket import BucketOptions, BucketScheduler
from bsbench.schedulers.static import StaticOptions, StaticScheduler
from bsbench.schedulers.uellm import UellmOptions, UellmScheduler
from bsbench.workloads.request import SLO, RequestSpec
from tests.fakes import BudgetCheckingRunner, ScaledPredictor, make_context


def _run(policy: Scheduler, ctx, requests, runner=None) -> RunRecord:
    runner = runner or BudgetCheckingRunner(ctx)
    result: EngineResult = Engine(policy, runner, events=ctx.events, blocks=ctx.block_manager,
                                  clock=VirtualClock(tick_s=1e-4)).run(requests)
    return build_record(
        config=RecordConfig(policy.name, float("inf"), "checksum", "cpu"), environment={},
        workload=WorkloadInfo("t", "fp", len(requests)),
        requests=[request_row(s, False) for s in result.states], steps=result.steps, events=result.events.events,
        scheduler={}, duration_s=result.duration_s, complete=result.complete)


def _by_kind(record: RunRecord) -> dict[str, int]:
    counts = record.summary["ended_by_reason"]
    rows = {}
    for row in record.requests:
        if row.reason is not None:
            rows[row.reason.kind.value] = rows.get(row.reason.kind.value, 0) + 1
    assert {k: v for k, v in counts.items() if v} == rows  # the summary counts what the rows say
    s = record.summary
    assert s["completed"] + s["failed"] + s["rejected"] == s["num_requests"] == len(record.requests)
    return rows


def _specs(n, prompt=6, out=4, slo=None):
    return [RequestSpec(f"r{i}", tuple(range(5 + i, 5 + i + prompt)), out, 0.0, SLO(e2e_ms=slo)) for i in range(n)]


def test_static_oom_is_counted_as_oom_failed():
    ctx = make_context(num_blocks=12, block_size=4)
    record = _run(StaticScheduler(StaticOptions(max_batch_size=8, batch_timeout=0.0), ctx), ctx, _specs(8, 10, 6))
    failed_oom = [r for r in record.requests if r.status is Outcome.FAILED and r.reason.kind is EndKind.OOM]
    assert failed_oom and record.summary["oom_failed"] == len(failed_oom)
    assert _by_kind(record) == {"oom": len(failed_oom)}


def test_bucket_rejection_is_kv_rejected():
    ctx = make_context(num_blocks=40, block_size=4)
    reqs = [RequestSpec("big", tuple([5] * 200), 10, 0.0), RequestSpec("ok", (5, 6, 7), 3, 0.0)]
    record = _run(BucketScheduler(BucketOptions(), ctx), ctx, reqs)
    assert _by_kind(record) == {"kv-rejected": 1} and record.summary["rejected"] == 1


def test_uellm_kinds():
    ctx = make_context(num_blocks=400, block_size=4)
    policy = UellmScheduler(UellmOptions(generation_cap=True, cap_margin=1), ctx)
    policy.predictor = ScaledPredictor(0.3)
    record = _run(policy, ctx, _specs(6, out=20))
    assert _by_kind(record).get("truncated", 0) == record.summary["truncated"] > 0

    ctx = make_context(num_blocks=400, block_size=4)
    policy = UellmScheduler(UellmOptions(on_underpredict="fail"), ctx)
    policy.predictor = ScaledPredictor(0.25)
    record = _run(policy, ctx, _specs(4, out=40))
    assert _by_kind(record).get("underpredicted", 0) > 0

    ctx = make_context(num_blocks=400, block_size=4)
    reqs = [RequestSpec("long", (5, 6, 7), 30, 0.0, SLO(e2e_ms=1e6)),
            RequestSpec("late", (8, 9), 4, 0.0005, SLO(e2e_ms=0.1))]
    record = _run(UellmScheduler(UellmOptions(max_batch_size=1, slo_expired="reject"), ctx), ctx, reqs)
    assert _by_kind(record) == {"slo-expired": 1}


def test_interrupt_and_stall_come_from_the_engine():
    class StopsOnThirdStep(BudgetCheckingRunner):
        calls = 0

        def execute(self, plan):
            self.calls += 1
            if self.calls == 3:
                raise KeyboardInterrupt
            return super().execute(plan)

    ctx = make_context(num_blocks=200, block_size=4)
    record = _run(StaticScheduler(StaticOptions(max_batch_size=2, batch_timeout=0.0), ctx), ctx,
                  _specs(6, out=8), runner=StopsOnThirdStep(ctx))
    assert not record.complete and _by_kind(record) == {"interrupted": record.summary["failed"]}

    class NeverSchedules(StaticScheduler):
        def _schedule(self, now: float) -> StepPlan | None:
            return None

        def next_wakeup(self, now: float) -> float | None:
            return None

    ctx = make_context(num_blocks=200, block_size=4)
    record = _run(NeverSchedules(StaticOptions(), ctx), ctx, _specs(3))
    assert _by_kind(record) == {"stalled": 3}


@pytest.mark.parametrize("kind", list(EndKind))
def test_every_kind_has_a_summary_count(kind):
    ctx = make_context(num_blocks=40, block_size=4)
    record = _run(StaticScheduler(StaticOptions(batch_timeout=0.0), ctx), ctx, _specs(2))
    assert record.summary["ended_by_reason"][kind.value] == 0


def test_requests_state_keeps_the_typed_reason():
    state = RequestState(_specs(1)[0])
    with pytest.raises(ValueError):
        state.finish(state.status.FAILED, 0.0, None)
