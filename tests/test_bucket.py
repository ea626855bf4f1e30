"""BucketServe policy: bucket rules, N_max, priority, boundary modes, and runs on the checksum runner."""

from __future__ import annotations

import pytest

from bsbench.engine.clock import VirtualClock
from bsbench.engine.events import OOM, PREEMPTION, REJECTION
from bsbench.engine.loop import Engine
from bsbench.engine.request_state import RequestState, Status
from bsbench.errors import BsbenchError
from bsbench.record import EndKind
from bsbench.schedulers._buckets import (
    BucketManager,
    DecayedHistogram,
    MemoryModel,
    parse_boundaries,
    priority_key,
)
from bsbench.schedulers.bucket import BucketOptions, BucketScheduler
from bsbench.schedulers.registry import get_scheduler
from bsbench.schedulers.static import StaticOptions, StaticScheduler
from bsbench.workloads.request import RequestSpec
from tests.fakes import BudgetCheckingRunner, make_context
from tests.test_engine_schedulers import (
    assert_accounted,
    assert_outputs_match,
    make_requests,
    run,
)

FIFO = priority_key("sjf")


def req(i: int, prompt_len: int, out: int = 4, arrival: float = 0.0, priority: str = "online") -> RequestState:
    return RequestState(RequestSpec(f"q{i:03d}", tuple([5] * prompt_len), out, arrival, priority=priority))


def manager(lengths, l_max=100, **kw) -> BucketManager:
    m = BucketManager(l_max, **kw)
    for i, n in enumerate(lengths):
        m.add(req(i, n, arrival=i))
    return m


def const(n):
    return lambda rows: n


# ----------------------------------------------------------------------------- split / merge


def test_split_needs_total_over_nmax():
    m = manager([10] * 6)  # all below the midpoint 50, bucket holds 6
    assert m.rebalance(const(6), FIFO) == (0, 0)  # total 6 is not > 6
    assert m.boundaries() == []
    splits, _ = m.rebalance(const(5), FIFO)
    assert splits > 0 and 50 in m.boundaries()


def test_split_needs_bucket_over_nmax():
    m = manager([10] * 6)
    calls = []

    def n_max(rows):  # N_max(all) = 5, so total 6 > 5; but the bucket's own N_max is 6: it holds 6, not more
        calls.append(len(rows))
        return 5 if len(calls) == 1 else 6

    assert m.rebalance(n_max, FIFO) == (0, 0)
    assert calls == [6, 6] and m.boundaries() == []


def test_split_at_exactly_theta_does_not_split_and_just_above_does():
    m = manager([10, 10, 60, 60])  # exactly 50% below the midpoint 50
    assert m.buckets[0].share_below_mid() == 0.5
    assert m.rebalance(const(1), FIFO) == (0, 0)
    m.add(req(9, 20))  # 3 of 5 below
    splits, _ = m.rebalance(const(1), FIFO)
    assert splits >= 1 and 50 in m.boundaries()


def test_split_repeats_while_the_rule_holds():
    m = manager([3] * 10 + [90], max_buckets=99)
    splits, merges = m.rebalance(const(2), FIFO)
    # [0,100) -> [0,50) -> [0,25) -> [0,12) -> [0,6) -> [0,3) holds none of them: the 3s sit in [3,6)
    assert merges == 0 and splits >= 4
    low = m.bucket_for(3)
    assert low.up - low.low <= 6 and len(low.requests) == 10
    assert sorted(b.low for b in m.buckets) == [0, *m.boundaries()]
    assert m.total() == 11  # nobody lost or duplicated
    for b in m.buckets:
        assert all(b.holds(r.prompt_len) for r in b.requests)


def test_split_respects_max_nonempty_buckets():
    m = manager([1, 2, 3, 5, 9, 17, 33, 60], l_max=64, max_buckets=3, theta=0.0)
    m.rebalance(const(1), FIFO)
    assert m.occupied() <= 3


def test_merge_when_total_below_nmax_and_requests_keep_their_length_bucket():
    m = manager([3] * 10 + [90])
    m.rebalance(const(2), FIFO)
    assert len(m.buckets) > 1
    assert m.rebalance(const(11), FIFO) == (0, 0)  # total == N_max: neither rule
    assert m.rebalance(const(12), FIFO) == (0, 1)
    assert m.boundaries() == [] and m.total() == 11 and m.merges == 1


def test_no_reshaping_when_nothing_fits():
    m = manager([3] * 10)
    assert m.rebalance(const(0), FIFO) == (0, 0)


# ----------------------------------------------------------------------------- boundary modes


def test_parse_boundaries():
    assert parse_boundaries("bisect", 100) == ("bisect", [])
    assert parse_boundaries(" Quantile ", 100) == ("quantile", [])
    assert parse_boundaries("10,40", 100) == ("fixed", [10, 40])
    for bad in ("10,5", "0,10", "10,100", "abc", ""):
        with pytest.raises(BsbenchError):
            parse_boundaries(bad, 100)


def test_fixed_boundaries_never_move():
    m = manager([5, 15, 45, 95, 150], l_max=100, mode="fixed", fixed_cuts=[10, 40])
    assert [len(b.requests) for b in m.buckets] == [1, 1, 3]  # >= L_max goes to the top bucket
    assert m.rebalance(const(1), FIFO) == (0, 0)
    assert m.rebalance(const(100), FIFO) == (0, 0)
    assert m.boundaries() == [10, 40]


def test_decayed_histogram_follows_recent_lengths():
    h = DecayedHistogram(l_max=1000, halflife=10, num_bins=100)
    for _ in range(200):
        h.add(900)
    for _ in range(200):
        h.add(100)
    assert h.quantile_cuts(2) == [110]  # the old 900s have decayed to nothing
    even = DecayedHistogram(l_max=1000, halflife=0, num_bins=100)  # 0: no decay
    for n in range(0, 1000, 10):
        even.add(n)
    assert even.quantile_cuts(4) == [250, 500, 750]


def test_quantile_mode_cuts_equal_counts():
    lengths = [10] * 30 + [20] * 30 + [400] * 30 + [900] * 30
    m = manager(lengths, l_max=1000, mode="quantile", halflife=0)
    splits, _ = m.rebalance(const(30), FIFO)  # k = 120 / 30 = 4 buckets
    assert splits == 1 and m.occupied() == 4
    assert [len(b.requests) for b in m.buckets if b.requests] == [30, 30, 30, 30]
    assert m.rebalance(const(121), FIFO) == (0, 1)  # merge as in bisect


# ----------------------------------------------------------------------------- N_max


def test_nmax_paper_matches_formula():
    model = MemoryModel(kv_bytes_per_token=2 * 2 * 2 * 8 * 4, block_size=4, safety=0.9)
    rows = [req(0, 10, out=6), req(1, 3, out=2)]  # S_max = 10 + 6 = 16 tokens = 4 blocks
    free = 100
    s_max, layers, heads, dim, nbytes = 16, 2, 2, 8, 4
    per_request = 2 * layers * heads * dim * s_max * nbytes
    m_safe = 0.9 * free * model.block_bytes
    assert model.n_max_paper(rows, free) == int(m_safe // per_request) == 22
    # S_max rounded up to whole blocks: 17 tokens cost 5 blocks each
    assert model.n_max_paper([req(0, 11, out=6)], free) == int(0.9 * 100 // 5)


def test_nmax_actual_uses_real_lengths_and_never_exceeds_budget():
    model = MemoryModel(kv_bytes_per_token=64, block_size=4, safety=0.9)
    rows = [req(0, 4, out=30)] + [req(i, 30, out=1) for i in range(1, 10)]
    free = 40  # 36 blocks safe
    # paper: S_max = 30 + 30 = 60 tokens = 15 blocks per request -> 2
    assert model.n_max_paper(rows, free) == 2
    # actual: the first row alone 9 blocks; with the 30-token prompts the width is 30:
    # row 0 needs blocks(30 + 30 - 1) = 15, each other row blocks(30) = 8
    assert model.prefix_blocks(rows)[:4] == [9, 23, 31, 39]
    assert model.n_max_actual(rows, free) == 3
    for free in range(0, 120, 7):
        n = model.n_max_actual(rows, free)
        assert n >= min(model.n_max_paper(rows, free), len(rows))
        if n:
            assert model.prefix_blocks(rows)[n - 1] * model.block_bytes <= model.safe_bytes(free)


def test_nmax_shrinks_with_live_free_blocks():
    ctx = make_context(num_blocks=100, block_size=4)
    sched = BucketScheduler(BucketOptions(), ctx)
    rows = [req(i, 12, out=4) for i in range(50)]  # 15 slots -> 4 blocks each
    before = sched._n_max(rows)
    assert before == int(0.9 * 100 // 4)
    ctx.block_manager.allocate("someone-else", 60)
    assert sched._n_max(rows) == int(0.9 * 40 // 4) < before
    sched.options.bucket_nmax_mode = "actual"
    assert sched._n_max(rows) == int(0.9 * 40 // 4)  # 15 slots: the same 4 blocks per row


# ----------------------------------------------------------------------------- priority


def test_priority_modes():
    a = req(0, 10, out=50, arrival=2.0, priority="offline")
    b = req(1, 10, out=5, arrival=3.0, priority="offline")
    c = req(2, 90, out=5, arrival=5.0, priority="online")
    d = req(3, 5, out=5, arrival=1.0, priority="online")
    assert sorted([a, b, c, d], key=priority_key("sjf")) == [d, c, b, a]
    assert sorted([a, b, c, d], key=priority_key("ljf")) == [d, c, a, b]


def test_bucket_choice_oldest_online_then_fullest():
    ctx = make_context(num_blocks=1000, block_size=4, max_model_len=100)
    sched = BucketScheduler(BucketOptions(bucket_boundaries="50"), ctx)
    for i in range(3):
        sched.add_request(req(i, 10, arrival=1.0 + i, priority="offline"), 0)
    sched.add_request(req(7, 70, arrival=0.5, priority="offline"), 0)
    assert sched._pick_bucket().low == 0  # offline only: the fullest
    sched.add_request(req(8, 80, arrival=0.9, priority="online"), 0)
    assert sched._pick_bucket().low == 50  # the oldest online request's bucket
    plan = sched.schedule(1.0)
    assert plan.layout == "padded" and [c.req_id for c in plan.chunks] == ["q008", "q007"]


@pytest.mark.parametrize("mode, expected", [("sjf", {"q000", "q001"}), ("ljf", {"q004", "q005"})])
def test_offline_order_decides_the_first_batch(mode, expected):
    ctx = make_context(num_blocks=1000, block_size=4, max_model_len=100)
    sched = BucketScheduler(BucketOptions(max_num_seqs=2, bucket_priority=mode), ctx)
    for i in range(6):  # one bucket; jobs grow with i (prompt 10 + i, output 2 + 3i)
        sched.add_request(req(i, 10 + i, out=2 + 3 * i, arrival=5 - i, priority="offline"), 0)
    plan = sched.schedule(0.0)
    assert {c.req_id for c in plan.chunks} == expected


# ----------------------------------------------------------------------------- on the checksum runner


@pytest.mark.parametrize("nmax", ["paper", "actual"])
@pytest.mark.parametrize("boundaries", ["bisect", "quantile", "12,24"])
def test_runs_match_reference_without_oom_under_pressure(nmax, boundaries):
    reqs = make_requests(40, seed=3, max_prompt=40, max_out=30, spread=0.01)
    opts = BucketOptions(bucket_nmax_mode=nmax, bucket_boundaries=boundaries, bucket_interval=0.0)
    result, runner, ctx = run(BucketScheduler, opts, reqs, num_blocks=60)
    assert_accounted(result, 40)
    assert all(s.status is Status.COMPLETED for s in result.states)
    assert_outputs_match(result)  # padded prefill, then packed decode over the pads
    assert result.events.count(OOM) == 0 and result.events.count(PREEMPTION) == 0
    assert runner.peak <= 60 and ctx.block_manager.num_used == 0
    layouts = {p.layout for p in runner.steps}
    assert layouts == {"padded", "packed"}
    assert any(c.pad_len > 0 for p in runner.steps if p.layout == "packed" for c in p.chunks)
    assert sum(p.pad_tokens for p in runner.steps) == sum(s.pad_tokens for s in result.states)


def test_fewer_pads_than_static_and_no_oom_where_static_has_some():
    reqs = make_requests(48, seed=2, max_prompt=40, max_out=20)
    s_result, s_runner, _ = run(StaticScheduler, StaticOptions(max_batch_size=8), reqs, num_blocks=100)
    b_result, b_runner, _ = run(BucketScheduler, BucketOptions(max_num_seqs=8, bucket_l_max=64), reqs, num_blocks=100)
    assert s_result.events.count(OOM) > 0
    assert b_result.events.count(OOM) == 0
    assert all(s.status is Status.COMPLETED for s in b_result.states)

    def ratio(runner):
        return sum(p.pad_tokens for p in runner.steps) / sum(p.num_tokens for p in runner.steps)

    assert ratio(b_runner) < ratio(s_runner)


def test_too_large_request_is_rejected_not_oom():
    reqs = [RequestSpec("big", tuple([5] * 200), 10, 0.0), RequestSpec("ok", (5, 6, 7), 3, 0.0)]
    result, runner, ctx = run(BucketScheduler, BucketOptions(), reqs, num_blocks=40)  # 160 slots, 144 safe
    by_id = {s.id: s for s in result.states}
    assert by_id["big"].status is Status.REJECTED and by_id["big"].reason.kind is EndKind.KV_REJECTED
    assert by_id["ok"].status is Status.COMPLETED
    assert result.events.count(REJECTION) == 1 and result.events.count(OOM) == 0


def test_decode_cap_and_prefill_token_cap():
    reqs = make_requests(30, seed=5, max_prompt=20, max_out=10)
    opts = BucketOptions(max_num_seqs=5, bucket_max_prefill_tokens=40)
    result, runner, _ = run(BucketScheduler, opts, reqs, num_blocks=400)
    assert all(s.status is Status.COMPLETED for s in result.states)
    for plan in runner.steps:
        assert len(plan.chunks) <= 5
        if plan.layout == "padded" and len(plan.chunks) > 1:
            assert plan.num_tokens <= 40


def test_controller_triggers_and_summary():
    ctx = make_context(num_blocks=30, block_size=4, max_model_len=64)
    opts = BucketOptions(bucket_interval=1e9, bucket_queue_threshold=5)
    sched = BucketScheduler(opts, ctx)
    reqs = make_requests(40, seed=7, max_prompt=30, max_out=8, spread=2.0)
    result = Engine(sched, BudgetCheckingRunner(ctx), events=ctx.events, blocks=ctx.block_manager,
                    clock=VirtualClock(tick_s=1e-4)).run(reqs)
    assert all(s.status is Status.COMPLETED for s in result.states)
    summary = sched.summary()
    assert summary["controller_evaluations"] >= 2  # the first look, then the queue-growth trigger
    assert summary["decisions"] > 0 and summary["decision_mean_us"] > 0
    assert 0 < summary["controller_share"] and 0 < summary["controller_s"] <= sched.decision_s
    assert summary["batches"] >= 1 and summary["mean_prefill_batch"] >= 1
    assert summary["splits"] == result.events.count("bucket") or summary["merges"] > 0


def test_registered_and_options_validated():
    assert get_scheduler("bucket") is BucketScheduler
    with pytest.raises(BsbenchError):
        BucketScheduler(BucketOptions(bucket_boundaries="5,3"), make_context())
    with pytest.raises(BsbenchError, match="must lie below L_max = 64"):
        BucketScheduler(BucketOptions(bucket_boundaries="10,64", bucket_l_max=64), make_context())


def test_failed_step_ends_its_requests_and_frees_their_blocks():
    from bsbench.engine.plan import ActivationOOM

    class FailsFirstPrefill(BudgetCheckingRunner):
        failed = False

        def execute(self, plan):
            if plan.layout == "padded" and not self.failed:
                self.failed = True
                raise ActivationOOM("simulated")
            return super().execute(plan)

    ctx = make_context(num_blocks=200, block_size=4)
    reqs = make_requests(20, seed=9, max_prompt=20, max_out=6, spread=0.01)
    result = Engine(BucketScheduler(BucketOptions(max_num_seqs=4), ctx), FailsFirstPrefill(ctx), events=ctx.events,
                    blocks=ctx.block_manager,
                    clock=VirtualClock(tick_s=1e-4)).run(reqs)
    assert_accounted(result, 20)
    failed = [s for s in result.states if s.status is Status.FAILED]
    assert 1 <= len(failed) <= 4 and all(s.reason.kind is EndKind.OOM for s in failed)
    assert_outputs_match(result)
    assert ctx.block_manager.num_used == 0
