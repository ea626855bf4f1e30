"""Calibration on the real tiny runner (CPU): fit quality on the grid, the file round trip, tier (c), virtual time."""

from __future__ import annotations

import json
import random

import pytest
import torch

from bsbench.engine.block_manager import BlockManager
from bsbench.engine.clock import VirtualClock
from bsbench.engine.events import EventLog
from bsbench.engine.loop import Engine
from bsbench.errors import BsbenchError
from bsbench.model.loader import load_model, loaded_model_shape
from bsbench.model.runner import ModelRunner
from bsbench.model.shape import model_shape
from bsbench.schedulers.base import SchedulerContext
from bsbench.schedulers.continuous import ContinuousOptions, ContinuousScheduler
from bsbench.sim.accuracy import error_stats
from bsbench.sim.backend import measured_device, open_sim
from bsbench.sim.calib_grid import default_grid, synthetic_plan
from bsbench.sim.calibrate import calibrate
from bsbench.sim.calibration import (
    SCHEMA_VERSION,
    CalibratedCostModel,
    content_hash,
    load_calibration,
    save_calibration,
)
from bsbench.sim.linear_fit import FEATURES, fit_nonnegative
from bsbench.sim.op_tables import LM_HEAD_MAX_ROWS, ROW_KNOTS, TABLES, tables_from_dict
from bsbench.sim.settings import SimSettings
from bsbench.sim.virtual_time import VirtualTimeRunner
from bsbench.sim.work import step_work
from bsbench.workloads.request import RequestSpec

BLOCKS, BS = 256, 16
SHAPE = model_shape("tiny", "float32")
GRID = default_grid()[::2]  # every kind of step, half the points: a few seconds on 2 CPU cores


@pytest.fixture(scope="module")
def tiny_runner():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # 2 shared cores: one thread per process avoids OpenMP stalls under load
    model, info = load_model("tiny", "dummy", "cpu", "float32", 0)
    runner = ModelRunner(model, info, "cpu", torch.float32)
    runner.allocate_kv(BLOCKS, BS)
    yield model, info, runner
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def calibration(tiny_runner):
    return calibrate(tiny_runner[2], SHAPE, "float32", grid=GRID, warmups=1, repeats=2)


def test_fit_quality_on_the_grid(calibration):
    points = calibration.points
    assert len(points) == len(GRID) and not calibration.settings["skipped"]
    assert all(c >= 0 for c in calibration.coefficients.values())
    measured = [p["measured_s"] for p in points]
    # far better than the best single number for every step (the grid spans milliseconds to a few 100 ms)
    constant = fit_nonnegative([[1.0]] * len(measured), measured)[0]
    baseline = error_stats(measured, [constant] * len(measured))["mape"]
    assert calibration.residuals["mape"] < 0.3 and calibration.residuals["mape"] < 0.5 * baseline
    assert calibration.residuals == error_stats(measured, [p["predicted_s"] for p in points])
    # the grid covers every kind of work the runner does
    assert {p["layout"] for p in points} == {"packed", "padded"}


def test_round_trip_hash_and_tier_c(calibration, tmp_path):
    path = tmp_path / "cal.json"
    digest = save_calibration(calibration, path)
    loaded = load_calibration(path)
    assert loaded == calibration and loaded.to_dict()["content_hash"] == digest
    assert json.loads(path.read_text())["schema_version"] == SCHEMA_VERSION == 4
    cost = CalibratedCostModel(loaded, str(path))
    for point, grid_point in zip(loaded.points, GRID, strict=True):
        work = step_work(synthetic_plan(grid_point, BS, BLOCKS, SHAPE.vocab_size), BS)
        assert cost.step_time(work) == pytest.approx(point["predicted_s"], rel=1e-12)
    described = cost.describe()
    assert (described["tier"], described["content_hash"], described["file"]) == ("calibrated", digest, str(path))


def test_damaged_or_foreign_files_are_user_errors(calibration, tmp_path):
    path = tmp_path / "cal.json"
    save_calibration(calibration, path)
    data = json.loads(path.read_text())
    data["coefficients"]["tokens"] += 1e-3  # (doubling a coefficient the fit left at 0 would change nothing)
    path.write_text(json.dumps(data))
    with pytest.raises(BsbenchError, match="content hash mismatch"):
        load_calibration(path)
    data["schema_version"] = 99
    path.write_text(json.dumps(data))
    with pytest.raises(BsbenchError, match="schema version 99"):
        load_calibration(path)
    # a version-1 file (seven features) is refused in one line that says what to do, even with a good hash
    old = {k: v for k, v in data.items() if k != "content_hash"} | {"schema_version": 1}
    old["coefficients"] = dict.fromkeys(("step", "tokens", "sampled", "attn_pairs", "kv_read_slots", "attn_calls",
                                         "seqs"), 1e-3)
    path.write_text(json.dumps(old | {"content_hash": content_hash(old)}))
    with pytest.raises(BsbenchError, match=r"schema version 1; this bsbench reads 4: run `bsbench calibrate` again"):
        load_calibration(path)
    path.write_text("[]")
    with pytest.raises(BsbenchError, match="not a bsbench calibration"):
        load_calibration(path)
    with pytest.raises(BsbenchError, match="does not exist"):
        load_calibration(tmp_path / "missing.json")
    with pytest.raises(BsbenchError, match="calibrate for it first"):
        calibration.check_applies(model_shape("llama2-13b", "bfloat16"), "bfloat16", BS)


def test_open_sim_with_a_calibration_on_the_measured_device(calibration, tmp_path):
    path = tmp_path / "cal.json"
    save_calibration(calibration, path)
    device = measured_device(calibration, 8 * 2**30)
    sim = open_sim("tiny", device, dtype="float32", kv_memory=64 * 2**20, settings=SimSettings(calibration=path))
    assert sim.describe()["cost_model"]["tier"] == "calibrated" and sim.num_blocks == 1024
    with pytest.raises(BsbenchError, match="needs a calibration"):
        open_sim("tiny", device, dtype="float32", kv_memory=64 * 2**20)
    with pytest.raises(BsbenchError, match="calibrate for it first"):
        # not the dtype that was measured
        open_sim("tiny", "a100-40gb", dtype="bfloat16", settings=SimSettings(calibration=path))
    # `auto`: the calibrated dtype (a --cost-model word that is no tier names a calibration file)
    assert open_sim("tiny", "a100-40gb", settings=SimSettings(path.as_posix())).dtype == "float32"


def test_nonnegative_fit_recovers_coefficients_and_never_goes_negative():
    rng = random.Random(0)
    # one column per feature: the fixed cost, counts of several magnitudes, and 0/1 indicators
    rows = [[1.0, rng.randint(1, 2000), rng.randint(1, 64), rng.randint(0, 1), rng.randint(0, 1),
             rng.randint(0, 10**6), rng.randint(0, 10**5), rng.randint(0, 3), rng.randint(0, 4), rng.randint(0, 2),
             rng.randint(1, 64), rng.randint(0, 10**4)] for _ in range(60)]
    truth = [2e-3, 1e-5, 5e-5, 4e-3, 0.0, 3e-8, 0.0, 1e-4, 3e-4, 2e-4, 2e-6, 1e-7]
    y = [sum(c * x for c, x in zip(truth, row)) for row in rows]
    assert fit_nonnegative(rows, y) == pytest.approx(truth, rel=1e-6, abs=1e-12)
    y_neg = [t - 4e-9 * row[5] + 0.01 for t, row in zip(y, rows)]  # a cost that shrinks with work: not allowed
    assert all(c >= 0 for c in fit_nonnegative(rows, [max(v, 1e-4) for v in y_neg]))
    assert len(FEATURES) == len(rows[0])


def test_real_runner_on_the_virtual_clock(tiny_runner, calibration):
    model, info, _ = tiny_runner
    assert loaded_model_shape(model, info) == SHAPE  # the loaded model's shape is the config's
    cost = CalibratedCostModel(calibration)
    rng = random.Random(1)
    reqs = [RequestSpec(f"r{i}", tuple(rng.randrange(4, 30000) for _ in range(rng.randint(4, 40))),
                        rng.randint(1, 6), rng.uniform(0, 0.05)) for i in range(6)]

    def run():
        runner = ModelRunner(model, info, "cpu", torch.float32)
        runner.allocate_kv(64, BS)
        clock = VirtualClock()
        wrapped = VirtualTimeRunner(runner, SHAPE, cost, clock)
        ctx = SchedulerContext(BlockManager(64, BS), info, EventLog())
        policy = ContinuousScheduler(ContinuousOptions(max_num_seqs=4), ctx)
        outputs = []
        original = wrapped.execute

        def spy(plan):
            out = original(plan)
            outputs.append(out)
            return out

        wrapped.execute = spy
        return Engine(policy, wrapped, events=ctx.events, blocks=ctx.block_manager, clock=clock).run(reqs), outputs

    (first, outs), (second, _) = run(), run()
    timeline = [(s.id, s.token_times, s.output_ids) for s in first.states]
    assert timeline == [(s.id, s.token_times, s.output_ids) for s in second.states]  # real tokens, same schedule
    assert [(st.start_s, st.num_tokens) for st in first.steps] == [(st.start_s, st.num_tokens) for st in second.steps]
    assert all(o.measured_forward_s > 0 and o.measured_step_s >= o.measured_forward_s for o in outs)
    assert [st.duration_s for st in first.steps] == pytest.approx([o.forward_s for o in outs], abs=1e-12)


def test_calibration_measures_the_operator_tables_of_the_real_runner(calibration, tmp_path):
    tables = tables_from_dict(calibration.tables)
    assert set(tables) == set(TABLES)
    assert tables["linear"].knots == ROW_KNOTS
    assert tables["lm_head"].knots == tuple(k for k in ROW_KNOTS if k <= LM_HEAD_MAX_ROWS)
    assert all(s > 0 for t in tables.values() for s in t.seconds)
    # the fit reads the tables: a step's table features are the interpolated seconds
    point = calibration.points[0]
    work = step_work(synthetic_plan(GRID[0], BS, BLOCKS, SHAPE.vocab_size), BS)
    assert point["features"]["linear_table"] == pytest.approx(tables["linear"].at(work.tokens))
    assert point["features"]["lm_head_table"] == pytest.approx(tables["lm_head"].at(work.sampled))
    path = tmp_path / "cal.json"
    save_calibration(calibration, path)
    data = json.loads(path.read_text())
    data["tables"]["linear"]["knots"] = [4, 2, 1] + data["tables"]["linear"]["knots"][3:]
    data = {k: v for k, v in data.items() if k != "content_hash"}
    path.write_text(json.dumps(data | {"content_hash": content_hash(data)}))
    with pytest.raises(BsbenchError, match="malformed operator tables"):
        load_calibration(path)
