"""UELLM: SLO-ODBS ordering/grouping rule, predicted-length reservations, under-prediction, cap, slo-expired."""

from __future__ import annotations

import math
import random

import pytest

from bsbench.engine.clock import VirtualClock
from bsbench.engine.events import OOM, PREEMPTION, REJECTION, TRUNCATION
from bsbench.engine.loop import Engine
from bsbench.engine.request_state import Status
from bsbench.predictor import (
    NoisyPredictor,
    OraclePredictor,
    memory_estimate_bytes,
)
from bsbench.record import EndKind
from bsbench.schedulers.registry import get_scheduler
from bsbench.schedulers.uellm import (
    KV_EXTEND,
    UNDERPREDICT_FAIL,
    UellmOptions,
    UellmScheduler,
    joins,
    plan_batches,
)
from bsbench.workloads.request import SLO, RequestSpec
from tests.fakes import (
    BudgetCheckingRunner,
    ScaledPredictor,
    make_context,
    reference_generate,
)


def make_requests(n, seed=0, max_prompt=30, max_out=20, slo_ms=None):
    rng = random.Random(seed)
    return [RequestSpec(f"r{i:03d}", tuple(rng.randrange(4, 900) for _ in range(rng.randint(1, max_prompt))),
                        rng.randint(1, max_out), 0.0, SLO(e2e_ms=slo_ms)) for i in range(n)]


def run(requests, fixed=None, num_blocks=400, block_size=4, **opts):
    ctx = make_context(num_blocks, block_size)
    sched = UellmScheduler(UellmOptions(**opts), ctx)
    if fixed is not None:
        sched.predictor = fixed
    runner = BudgetCheckingRunner(ctx)
    result = Engine(sched, runner, events=ctx.events, blocks=ctx.block_manager,
                    clock=VirtualClock(tick_s=1e-4)).run(requests)
    return result, runner, ctx, sched


def check(result, n, ctx):
    assert len(result.states) == n and all(s.status.is_final for s in result.states)
    assert ctx.block_manager.num_used == 0
    for s in result.states:
        if s.status is Status.COMPLETED:
            assert not s.truncated
            assert s.output_ids == reference_generate(list(s.spec.prompt_ids), s.spec.output_len), s.id
        else:
            assert s.reason


# --- the rule as a pure function ------------------------------------------------

def test_sort_key_orders_by_slo_plus_half_pred():
    items = [("a", 200.0, 100), ("b", 150.0, 300), ("c", 150.0, 10), ("d", 300.0, 0)]
    # keys: a 250, b 300, c 155, d 300 -> c, a, b, d (stable between b and d)
    assert plan_batches(items, max_batch_size=1) == [["c"], ["a"], ["b"], ["d"]]
    assert plan_batches(items) == [["c", "a", "b", "d"]]


def test_threshold_edge_exactly_equal_joins_one_more_does_not():
    # batch [pred 100], size 1: (p - 100) * 2 * 1.2 <= 15000  <=>  p <= 6350
    assert joins(6350, 100, 1, 10, 1.2, 15000.0)
    assert not joins(6351, 100, 1, 10, 1.2, 15000.0)
    edge = [("x", 0.0, 100), ("y", 0.0, 6350)]
    assert plan_batches(edge, a=0.0, b=1.0) == [["x", "y"]]
    over = [("x", 0.0, 100), ("y", 0.0, 6351)]
    assert plan_batches(over, a=0.0, b=1.0) == [["x"], ["y"]]
    # a request predicted shorter than the batch max always passes the growth rule
    assert joins(1, 5000, 5, 10, 1.2, 15000.0)


def test_growth_rule_uses_current_size_and_batch_max():
    # sizes 1, 2: the third request (pred 1400 vs max 100, size 2): 1300*3*1.2 = 4680 <= 5000 joins; a fourth
    # at 1500 vs max 1400, size 3: 100*4*1.2 = 480 joins; then 2600 vs 1500, size 4: 1100*5*1.2 = 6600 > 5000 closes
    items = [("a", 0.0, 100), ("b", 0.0, 100), ("c", 0.0, 1400), ("d", 0.0, 1500), ("e", 0.0, 2600), ("f", 0.0, 2600)]
    assert plan_batches(items, a=0.0, b=1.0, threshold=5000.0) == [["a", "b", "c", "d"], ["e", "f"]]


def test_max_batch_size_edge():
    items = [(i, 0.0, 10) for i in range(21)]
    assert [len(b) for b in plan_batches(items)] == [10, 10, 1]
    assert [len(b) for b in plan_batches(items[:10])] == [10]
    assert not joins(10, 10, 10, 10, 1.2, 15000.0) and joins(10, 10, 9, 10, 1.2, 15000.0)


# --- predictors -------------------------------------------------------------------

def test_oracle_and_noisy_predictors():
    spec = RequestSpec("q", (5, 6), 300, 0.0)
    assert OraclePredictor().predict(spec).length == 300
    specs = [RequestSpec(f"q{i}", (5,), 1000, 0.0) for i in range(3000)]
    a = [NoisyPredictor(0.5, seed=1).predict(s).length for s in specs]
    assert a == [NoisyPredictor(0.5, seed=1).predict(s).length for s in specs]  # seeded
    assert a != [NoisyPredictor(0.5, seed=2).predict(s).length for s in specs]
    logs = [math.log(p / 1000) for p in a]
    mean = sum(logs) / len(logs)
    std = math.sqrt(sum((x - mean) ** 2 for x in logs) / len(logs))
    assert abs(mean) < 0.04 and abs(std - 0.5) < 0.04
    assert all(NoisyPredictor(0.0).predict(s).length == 1000 for s in specs[:5])
    assert min(NoisyPredictor(3.0).predict(RequestSpec(f"t{i}", (5,), 1, 0.0)).length for i in range(200)) == 1


# --- the policy on the checksum runner ----------------------------------------------

def test_registered_and_oracle_run_matches_reference():
    assert get_scheduler("uellm") is UellmScheduler
    reqs = make_requests(37, seed=1)
    result, runner, ctx, sched = run(reqs)
    check(result, 37, ctx)
    assert all(s.status is Status.COMPLETED for s in result.states)
    assert all(p.layout == "padded" for p in runner.steps)
    assert max(len(p.chunks) for p in runner.steps) == 10 and sched.batches_run == 4
    assert result.events.count(KV_EXTEND) == 0  # the oracle never under-predicts
    kv = ctx.model.kv_bytes_per_token
    for s in result.states:
        assert s.notes["predicted_len"] == s.spec.output_len
        assert s.notes["kv_estimate_bytes"] == memory_estimate_bytes(kv, s.prompt_len, s.spec.output_len)
    summary = sched.summary()
    assert summary["predictor_class_accuracy"] == 1.0 and summary["predictor_mean_abs_error"] == 0


def test_batches_follow_slo_odbs_order():
    reqs = [RequestSpec("slow", (5, 6, 7), 10, 0.0, SLO(e2e_ms=300_000)),
            RequestSpec("urgent", (8, 9), 12, 0.0, SLO(e2e_ms=10_000)),
            RequestSpec("nolimit", (10,), 3, 0.0)]  # no SLO: default_slo_s = 225
    result, runner, ctx, sched = run(reqs, max_batch_size=1)
    batch = {s.id: s.notes["batch"] for s in result.states}
    assert batch == {"urgent": 0, "nolimit": 1, "slow": 2}
    check(result, 3, ctx)


def test_memory_reserved_from_predictions_and_batch_cut_to_fit():
    reqs = [RequestSpec(f"m{i}", tuple(range(5, 17)), 20, 0.0) for i in range(6)]
    # per row: 12 + 20 - 1 = 31 slots = 8 blocks; 20 blocks hold two rows at a time
    result, runner, ctx, sched = run(reqs, num_blocks=20)
    check(result, 6, ctx)
    assert all(s.status is Status.COMPLETED for s in result.states)
    assert sched.batch_sizes == [2, 2, 2] and runner.peak == 16


def test_single_request_over_budget_fails_with_oom():
    reqs = [RequestSpec("big", tuple(range(5, 45)), 40, 0.0), RequestSpec("ok", (5, 6), 3, 0.0)]
    result, runner, ctx, sched = run(reqs, num_blocks=10, max_batch_size=1)
    big = next(s for s in result.states if s.id == "big")
    assert big.status is Status.FAILED and big.reason.kind is EndKind.OOM
    assert result.events.count(OOM) == 1
    check(result, 2, ctx)


def test_underprediction_extends_when_memory_allows():
    reqs = make_requests(24, seed=2, max_out=30)
    result, runner, ctx, sched = run(reqs, fixed=ScaledPredictor(0.5))
    check(result, 24, ctx)
    assert all(s.status is Status.COMPLETED for s in result.states)
    extended = [s for s in result.states if s.notes.get("underpredict") == "extended"]
    assert extended and all(s.notes["kv_extend_blocks"] > 0 for s in extended)
    assert result.events.count(KV_EXTEND) == sched.counts["kv_extend_events"] > 0
    ids = {i for e in result.events.events if e.kind == KV_EXTEND for i in e.request_ids}
    assert ids == {s.id for s in extended}


def test_underprediction_falls_back_to_preemption_and_recomputes():
    reqs = [RequestSpec(f"p{i}", tuple(range(5 + i, 13 + i)), 40, 0.0) for i in range(4)]
    # predicted 10: reservation 8 + 10 - 1 = 17 slots = 5 blocks/row; 4 rows = 20 of 24 blocks: cannot extend
    result, runner, ctx, sched = run(reqs, fixed=ScaledPredictor(0.25), num_blocks=24)
    check(result, 4, ctx)
    assert all(s.status is Status.COMPLETED for s in result.states)
    assert sched.counts["underpredict_preempted"] > 0
    pre = [e for e in result.events.events if e.kind == PREEMPTION]
    assert pre and all(e.detail["cause"] == "underpredict" for e in pre)
    assert sum(s.preemptions for s in result.states) == len(pre)
    assert runner.peak <= 24


@pytest.mark.parametrize("mode", ["fail", "extend"])
def test_underprediction_fail_variant(mode):
    reqs = [RequestSpec(f"f{i}", tuple(range(5 + i, 13 + i)), 40 if i % 2 else 6, 0.0) for i in range(4)]
    opts = {"on_underpredict": "fail"} if mode == "fail" else {"extend_fallback": "fail"}
    result, runner, ctx, sched = run(reqs, fixed=ScaledPredictor(0.25), num_blocks=24 if mode == "extend" else 400,
                                     **opts)
    check(result, 4, ctx)
    failed = [s for s in result.states if s.status is Status.FAILED]
    assert {s.id for s in failed} == {"f1", "f3"}
    assert all(s.reason.kind is EndKind.UNDERPREDICTED and s.notes["underpredict"] == "failed" for s in failed)
    assert result.events.count(UNDERPREDICT_FAIL) == 1
    assert sum(s.status is Status.COMPLETED for s in result.states) == 2


def test_generation_cap_truncates_counts_and_never_completes():
    reqs = make_requests(20, seed=5, max_out=40)
    result, runner, ctx, sched = run(reqs, fixed=ScaledPredictor(0.3), generation_cap=True, cap_margin=3)
    check(result, 20, ctx)
    cut = [s for s in result.states if s.truncated]
    assert cut and all(s.status is Status.FAILED and s.reason.kind is EndKind.TRUNCATED for s in cut)
    assert sched.counts["truncated"] == len(cut)
    assert sum(len(e.request_ids) for e in result.events.events if e.kind == TRUNCATION) == len(cut)
    for s in cut:  # what was generated is still a correct prefix, shorter than asked
        assert len(s.output_ids) < s.spec.output_len
        assert s.output_ids == reference_generate(list(s.spec.prompt_ids), len(s.output_ids))
    completed = [s for s in result.states if s.status is Status.COMPLETED]
    assert len(completed) + len(cut) == 20


def test_generation_cap_off_by_default():
    reqs = make_requests(10, seed=5, max_out=40)
    result, runner, ctx, sched = run(reqs, fixed=ScaledPredictor(0.3))
    assert not any(s.truncated for s in result.states) and result.events.count(TRUNCATION) == 0
    check(result, 10, ctx)


@pytest.mark.parametrize("policy", ["serve", "reject"])
def test_slo_expired(policy):
    reqs = [RequestSpec("long", (5, 6, 7), 30, 0.0, SLO(e2e_ms=1e6)),
            RequestSpec("late", (8, 9), 4, 0.0005, SLO(e2e_ms=0.1)),  # deadline passes while "long" runs
            RequestSpec("free", (10, 11), 4, 0.0005)]
    result, runner, ctx, sched = run(reqs, max_batch_size=1, slo_expired=policy)
    check(result, 3, ctx)
    late = next(s for s in result.states if s.id == "late")
    if policy == "reject":
        assert late.status is Status.REJECTED and late.reason.kind is EndKind.SLO_EXPIRED
        assert result.events.count(REJECTION) == 1
    else:
        assert late.status is Status.COMPLETED and result.events.count(REJECTION) == 0
    assert next(s for s in result.states if s.id == "free").status is Status.COMPLETED


def test_noisy_mode_through_options_and_counts_add_up():
    reqs = make_requests(40, seed=7, max_out=30)
    result, runner, ctx, sched = run(reqs, num_blocks=120, predictor="noisy", predictor_sigma=0.8)
    check(result, 40, ctx)
    assert sched.predictor.name == "noisy"
    assert any(s.notes["predicted_len"] != s.spec.output_len for s in result.states)
    statuses = [s.status for s in result.states]
    assert sum(st.is_final for st in statuses) == 40
