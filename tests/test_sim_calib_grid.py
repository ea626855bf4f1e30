"""The calibration grid (sampled scheduler-like steps, per-pass block tables laid out as a run's), the features."""

from __future__ import annotations

import pytest

from bsbench.engine.plan import SeqChunk, StepPlan
from bsbench.engine.plan_check import validate_plan
from bsbench.model.shape import model_shape
from bsbench.sim.calib_grid import default_grid, fixed_points, sampled_points, synthetic_plan
from bsbench.sim.calibrate import calibrate
from bsbench.sim.linear_fit import FEATURES, features
from bsbench.sim.op_tables import RowTable
from bsbench.sim.work import step_work
from tests.fakes import RecordingRunner

BS, BLOCKS, VOCAB = 16, 1024, 32000


# made-up operator tables: 1 ms per linear row up to 4 rows, then 0.5 ms; the LM head slower at 2 rows than at 4
TABLES = {"linear": RowTable((1, 4, 64), (1e-3, 4e-3, 34e-3)), "lm_head": RowTable((1, 2, 4), (1e-3, 3e-3, 2e-3))}


def test_features_price_rows_through_the_operator_tables_and_count_attention_calls_by_kind():
    def chunk(i: int, tokens: int, start: int, sample: bool = True, pad: int = 0) -> SeqChunk:
        return SeqChunk(f"r{i}", [5] * tokens, start, list(range(-(-(start + tokens) // BS))), sample, pad)

    one_decode = StepPlan("packed", [chunk(0, 1, 40)])
    f = dict(zip(FEATURES, features(step_work(one_decode, BS), TABLES)))
    assert (f["sampled"], f["decode_calls"], f["seqs"]) == (1, 1, 1)
    assert (f["linear_table"], f["lm_head_table"]) == pytest.approx((1e-3, 1e-3))
    # 3 decodes (one group), a whole prompt (causal), a left-padded prompt and a later unsampled chunk (masked)
    mixed = StepPlan("packed", [chunk(0, 1, 40), chunk(1, 1, 41), chunk(2, 1, 45), chunk(3, 10, 0),
                                chunk(4, 6, 0, pad=2), chunk(5, 32, 64, sample=False)])
    f = dict(zip(FEATURES, features(step_work(mixed, BS), TABLES)))
    assert (f["tokens"], f["sampled"]) == (51, 5)
    # 51 rows: between the knots 4 and 64; 5 sampled rows: past the last knot, on the last slope (never downwards)
    assert (f["linear_table"], f["lm_head_table"]) == pytest.approx((4e-3 + 47 * 0.5e-3, 2e-3))
    assert (f["decode_calls"], f["causal_calls"], f["masked_calls"], f["seqs"], f["step"]) == (1, 1, 2, 6, 1)
    assert f["kv_read_slots"] == 3 * 48 + 96  # the decode group padded to its longest context, the chunk's context
    # pairs by kind: the causal prompt's triangle; the left-padded prompt's square and the chunk over its context
    assert (f["causal_pairs"], f["masked_pairs"]) == (10 * 11 // 2, 6 * 6 + 32 * 96)
    # a padded decode step: one masked gather over its rows' contexts, the work of a decode group, so priced as one
    padded_decode = StepPlan("padded", [chunk(0, 1, 40, pad=3), chunk(1, 1, 40)])
    f = dict(zip(FEATURES, features(step_work(padded_decode, BS), TABLES)))
    assert (f["decode_calls"], f["masked_calls"], f["masked_pairs"], f["kv_read_slots"]) == (1, 0, 0, 2 * 48)
    # a padded step of later multi-token chunks stays a masked call
    padded_chunks = StepPlan("padded", [chunk(0, 4, 40), chunk(1, 4, 40)])
    f = dict(zip(FEATURES, features(step_work(padded_chunks, BS), TABLES)))
    assert (f["decode_calls"], f["masked_calls"], f["masked_pairs"]) == (0, 1, 2 * 4 * 48)
    nothing_sampled = StepPlan("packed", [chunk(0, 32, 0, sample=False)])
    f = dict(zip(FEATURES, features(step_work(nothing_sampled, BS), TABLES)))
    assert (f["sampled"], f["lm_head_table"], f["causal_calls"]) == (0, 0, 1)
    assert features(step_work(nothing_sampled, BS), {})[2:4] == (0.0, 0.0)  # no tables (a test double): no cost


def test_sampled_points_are_deterministic_valid_and_cover_small_and_every_kind_of_step():
    points = sampled_points(60, 7)
    assert points == sampled_points(60, 7) and points != sampled_points(60, 8)
    works = [step_work(synthetic_plan(p, BS, BLOCKS, VOCAB), BS) for p in points]
    for p in points:
        validate_plan(synthetic_plan(p, BS, BLOCKS, VOCAB), BS, BLOCKS, 4096)
    kinds = {p.name.split("-", 2)[2] for p in points}
    assert kinds == {"decode", "mixed", "prefill", "padded-prefill", "padded-decode"}
    assert {w.layout for w in works} == {"packed", "padded"}
    assert any(w.sampled == 1 for w in works) and any(w.sampled >= 8 for w in works)
    assert any(w.tokens <= 8 for w in works) and any(w.tokens >= 512 for w in works)
    assert any(w.sampled < w.num_seqs for w in works if w.layout == "padded")  # finished rows in a padded decode
    assert any({c.kind for c in w.calls} >= {"decode", "fresh_causal"} for w in works)  # mixed steps
    assert len(default_grid()) == len(fixed_points()) + 80
    assert default_grid()[len(fixed_points()):] == sampled_points(80, 20261122)


def test_block_tables_are_laid_out_as_a_run_lays_them_out_from_a_start_per_seed():
    point = next(p for p in default_grid() if p.name == "decode-16x256")
    a, b = synthetic_plan(point, BS, BLOCKS, VOCAB, 1), synthetic_plan(point, BS, BLOCKS, VOCAB, 2)
    ids_a = [i for c in a.chunks for i in c.block_table]
    assert len(set(ids_a)) == len(ids_a)  # they fit: no two rows share a block
    # consecutive ids (modulo the cache), one table after another, as a fresh block manager hands them out
    assert all((y - x) % BLOCKS == 1 for x, y in zip(ids_a, ids_a[1:]))
    assert [len(c.block_table) for c in a.chunks] == [-(-257 // BS)] * 16
    assert ids_a != [i for c in b.chunks for i in c.block_table]  # another start per seed
    assert step_work(a, BS) == step_work(b, BS)
    assert synthetic_plan(point, BS, BLOCKS, VOCAB, 1) == a
    wrapped = synthetic_plan(point, BS, 20, VOCAB, 1)  # needs 272 blocks of 20: consecutive ids wrapping around
    validate_plan(wrapped, BS, 20, 4096)


def test_calibration_draws_fresh_block_tables_every_pass_and_records_the_allocator_settings():
    grid = fixed_points()
    runner = RecordingRunner(BS, BLOCKS)
    calibration = calibrate(runner, model_shape("tiny", "float32"), "float32", grid=grid, warmups=1, repeats=2)
    n = len(grid)
    passes = [runner.tables[k * n:(k + 1) * n] for k in range(3)]
    assert len(runner.tables) == 3 * n and [name for name, _ in passes[0]] == [name for name, _ in passes[2]]
    changed = sum(a != b for (_, a), (_, b) in zip(passes[0], passes[1]))
    assert changed >= n - 2  # a one-block plan may draw the same block again
    assert calibration.settings["malloc_tuning"] == {"top_pad": 1}
    assert [p["name"] for p in calibration.points] == [p.name for p in grid]
    with pytest.raises(ValueError):
        calibrate(runner, model_shape("tiny", "float32"), "float32", grid=grid, warmups=0, repeats=0)


def test_the_fixed_grid_covers_the_rectangles_a_burst_makes_of_a_static_or_bucket_batch():
    """benchmarks/sim_accuracy.py's burst (24 prompts up to 256 tokens at rate inf) forms padded rectangles up to
    24x256; a fit that never saw one under-priced it by 16% (the matmuls and scores outgrow the caches)."""
    from bsbench.backends.config import RunConfig
    from bsbench.backends.run import run_benchmark
    from bsbench.workloads.build import load_workload

    burst = load_workload("sharegpt-vllm", {"num_requests": 24, "max_output_len": 16, "max_prompt_len": 256,
                                            "seed": 0, "rate": float("inf")})
    rectangles = []
    for scheduler in ("static", "bucket"):
        config = RunConfig(scheduler=scheduler, backend="sim", clock="virtual", gpu="a100-40gb", model="tiny")
        record = run_benchmark(burst, config, progress=False, save=False)
        rectangles += [s.num_tokens for s in record.steps if s.layout == "padded" and s.num_tokens > s.num_seqs]
    covered = max(sum(r.tokens for r in p.rows) for p in fixed_points() if p.layout == "padded")
    assert rectangles and max(rectangles) <= covered
    sampled = max(sum(r.tokens for r in p.rows) for p in sampled_points(80, 20261122) if p.layout == "padded")
    assert max(rectangles) > sampled  # beyond the sampled points' largest: the fixed points must cover it


def test_a_pass_taken_plan_by_plan_times_the_same_plans_as_a_whole_pass():
    from bsbench.experiments.calib_between_runs import due_before
    from bsbench.sim.calibrate import CalibrationTimer

    grid, shape = fixed_points(), model_shape("tiny", "float32")
    whole, spread = RecordingRunner(BS, BLOCKS), RecordingRunner(BS, BLOCKS)
    by_pass = CalibrationTimer(whole, shape, "float32", grid)
    for keep in (False, True, True):
        by_pass.run_pass(keep)
    by_plan = CalibrationTimer(spread, shape, "float32", grid)
    by_plan.run_pass(False)
    units, slots = 2 * len(grid), 7  # two passes spread over 7 real runs, a few plans before each
    for slot in range(slots):
        for unit in due_before(slot, units, slots):
            if unit % len(grid) == 0:
                by_plan.begin_pass()
            by_plan.time_plan(unit % len(grid), keep=True)
    assert spread.tables == whole.tables  # the same plans with the same per-pass block tables, in the same order
    assert by_plan.passes == by_pass.passes == 3
    assert [len(s) for s in by_plan.samples] == [2] * len(grid)
