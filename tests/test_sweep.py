"""Sweep logic with a fake engine: pairing, resume, summary, plots; rate parsing."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from bsbench.errors import BsbenchError
from bsbench.experiments.sweep import (
    SUMMARY_FILE,
    SweepPlan,
    load_summary,
    parse_names,
    parse_rates,
    run_sweep,
    sweep_plots,
)
from bsbench.record import save_record
from bsbench.record.backend_part import ClusterPart, RealPart, SimPart, VirtualTimePart
from bsbench.workloads.request import RequestSpec
from bsbench.workloads.workload import Workload

try:
    from record_factory import make_record
except ImportError:
    from tests.record_factory import make_record


def test_parse_rates():
    assert parse_rates("1,2,4") == [1, 2, 4]
    assert parse_rates("1:16:x2") == [1, 2, 4, 8, 16]
    assert parse_rates("2:10:+2") == [2, 4, 6, 8, 10]
    assert parse_rates("0.5:1.5:0.5,inf") == [0.5, 1.0, 1.5, math.inf]
    for bad in ("", "0", "a:b:c", "4:1:x2", "1:4:x1", "1:inf:x2"):
        with pytest.raises(BsbenchError):
            parse_rates(bad)


def test_parse_names():
    assert parse_names("static, continuous,static", ["static", "continuous"]) == ["static", "continuous"]
    with pytest.raises(BsbenchError, match="unknown scheduler 'x'"):
        parse_names("x", ["static"])


def make_workload(rate, seed):
    reqs = [RequestSpec(id=f"q{i}", prompt_ids=(seed, i, 7), output_len=4,
                        arrival_s=0.0 if math.isinf(rate) else i / rate) for i in range(4)]
    return Workload(name="fake", requests=reqs, tokenizer="t", spec={"rate": rate, "seed": seed})


def config_of(scheduler, workload, rate, seed, **config_extra):
    """The RecordConfig FakeEngine's record of this run carries (make_record's)."""
    return make_record(scheduler, rate, seed=seed, **config_extra).config


class FakeEngine:
    def __init__(self, out, fail_at=None):
        self.out, self.calls, self.workloads, self.fail_at = out, [], {}, fail_at

    def __call__(self, task):
        scheduler, workload, rate, seed = task.scheduler, task.workload, task.rate, task.seed
        if self.fail_at is not None and len(self.calls) == self.fail_at:
            raise KeyboardInterrupt
        self.calls.append((scheduler, rate, seed))
        self.workloads.setdefault((rate, seed), set()).add(id(workload))
        speed = {"static": 2.0, "continuous": 1.0}[scheduler] * (1 + (0 if math.isinf(rate) else rate / 10))
        return make_record(scheduler, rate, speed=speed, seed=seed, fingerprint=workload.fingerprint())


def test_sweep_pairs_schedulers_and_writes_summary_and_plots(tmp_path):
    plan = SweepPlan(["static", "continuous"], [1.0, 2.0, math.inf], [0, 1])
    engine = FakeEngine(tmp_path)
    result = run_sweep(plan, make_workload, engine, tmp_path, config_of=config_of)
    assert len(engine.calls) == plan.size == 12 and result.executed == 12
    # paired: one workload object per (rate, seed), shared by both schedulers
    assert all(len(ids) == 1 for ids in engine.workloads.values())
    by_cell = {}
    for run in result.runs:
        by_cell.setdefault((run.rate, run.seed), set()).add(run.fingerprint)
    assert all(len(fps) == 1 for fps in by_cell.values())
    assert len({next(iter(f)) for f in by_cell.values()}) == 6  # different rates/seeds: different lists
    summary = load_summary(tmp_path)
    assert summary["finished_runs"] == 12 and len(summary["runs"]) == 12
    assert summary["runs"][0]["path"].startswith("runs/")
    assert json.loads((tmp_path / SUMMARY_FILE).read_text())["rates"] == [1.0, 2.0, "inf"]
    pngs = sweep_plots(result, target=0.8)
    assert all(p.exists() and p.stat().st_size > 1000 for p in pngs)


def test_resume_skips_finished_runs(tmp_path):
    plan = SweepPlan(["static", "continuous"], [1.0, 4.0], [0])
    first = FakeEngine(tmp_path, fail_at=3)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(plan, make_workload, first, tmp_path, config_of=config_of)
    assert len(first.calls) == 3
    interrupted = load_summary(tmp_path)
    assert interrupted["interrupted"] and interrupted["finished_runs"] == 3
    second = FakeEngine(tmp_path)
    result = run_sweep(plan, make_workload, second, tmp_path, config_of=config_of)
    assert second.calls == [("continuous", 4.0, 0)]
    assert (result.resumed, result.executed) == (3, 1)
    third = FakeEngine(tmp_path)
    run_sweep(plan, make_workload, third, tmp_path, config_of=config_of)
    assert third.calls == []
    # a different workload (another seed) is new work, not a resumed run
    fourth = FakeEngine(tmp_path)
    run_sweep(SweepPlan(["static"], [1.0], [5]), make_workload, fourth, tmp_path, config_of=config_of)
    assert fourth.calls == [("static", 1.0, 5)]


def test_engine_that_ignores_the_workload_is_caught(tmp_path):
    def wrong(task):
        return make_record(task.scheduler, task.rate, seed=task.seed, fingerprint="not-the-sweeps")

    with pytest.raises(BsbenchError, match="did not run the sweep.s workload and configuration"):
        run_sweep(SweepPlan(["static"], [1.0], [0]), make_workload, wrong, tmp_path, config_of=config_of)


def test_real_sweep_is_paired_and_resumes(tmp_path):
    """The tiny model on CPU through `bsbench sweep`: paired records, then a resume that runs nothing."""
    from click.testing import CliRunner

    from bsbench.commands.sweep import command
    from bsbench.record import read_records

    args = ["--schedulers", "static,continuous", "--rates", "4,inf", "-w", "smoke", "-n", "3",
            "--max-output-len", "4", "--device", "cpu", "--out", str(tmp_path), "--quiet"]
    first = CliRunner().invoke(command, args)
    assert first.exit_code == 0, first.output
    records = read_records([str(tmp_path / "runs")])
    assert len(records) == 4
    by_rate = {}
    for rec in records:
        by_rate.setdefault(rec.config.rate, set()).add(rec.workload.fingerprint)
        assert rec.summary["completed"] == 3
    assert all(len(fps) == 1 for fps in by_rate.values()) and len(by_rate) == 2
    page = tmp_path / "report.html"
    assert page.read_text().count("<img ") == 3 + 2 * 4  # sweep plots (no attainment: no SLOs), 2 groups x 4
    page.unlink()
    again = CliRunner().invoke(command, [*args, "--no-html"])
    assert again.exit_code == 0 and "0 runs done, 4 resumed" in again.output
    assert not page.exists()
    # the smoke workload sets no SLO: attainment would be vacuous, so no attainment plot, and the output says so
    assert not (tmp_path / "attainment_vs_rate.png").exists() and "no SLOs set" in again.output
    # smoke has no SLOs: the table says so, and there is no attainment plot to draw
    assert "; no SLOs set" in again.output and "attainment 100" not in again.output
    assert (tmp_path / "throughput_vs_rate.png").stat().st_size > 0
    assert not (tmp_path / "attainment_vs_rate.png").exists()
    summary = load_summary(tmp_path)
    assert all(r["slos"] == "no SLOs set" and r["slo_attainment"] is None and r["goodput"] is None
               for r in summary["runs"])


@pytest.mark.parametrize("command", [["sweep", "--rates", "inf"], ["capacity", "--e2e-slo", "1000"]])
def test_a_scheduler_flag_no_chosen_scheduler_has_is_an_error(bsbench, tmp_path, command):
    """Never silently ignored: --max-num-seqs belongs to continuous/bucket, not static."""
    result = bsbench(*command, "--schedulers", "static", "--max-num-seqs", "4", "-w", "smoke", "-n", "2",
                     "--out", tmp_path)
    assert result.code == 2
    assert result.err.strip() == "bsbench: error: --max-num-seqs does not apply to any of the schedulers static"
    assert not any(tmp_path.iterdir())  # refused before any run


def test_run_key_covers_the_full_configuration(tmp_path):
    """Any change to what a run was configured with gives another key; a record read back keeps its key."""
    from bsbench.experiments.sweep import record_key, run_key
    from bsbench.record import read_record

    base = make_record("continuous", scheduler_options={"max_num_seqs": 64}, kv_memory_bytes=64 << 20,
                       block_size=16, backend={"kind": "real", "weights": "dummy"}, dtype="float32", threads=2)
    sim = SimPart("a100-40gb", "uncalibrated")
    changes = {"scheduler_options": {"max_num_seqs": 2}, "kv_memory_bytes": 4 << 20, "block_size": 32,
               "model": "other", "backend": RealPart("/ckpt"), "dtype": "float16", "device": "cuda", "threads": 1,
               "record_tokens": True, "percentiles": [50, 95], "seed": 3, "rate": 8.0}
    for part in (sim, SimPart("h100-sxm", "uncalibrated"), SimPart("a100-40gb", "calibrated", "abc"),
                 VirtualTimePart("a100-40gb", "uncalibrated", None, "dummy"), ClusterPart("a100-40gb", "uncalibrated")):
        assert run_key(dataclasses.replace(base.config, backend=part), "fp") != run_key(base.config, "fp"), part
    key = run_key(base.config, "fp")
    for name, value in changes.items():
        changed = dataclasses.replace(base.config, **{name: value})
        assert run_key(changed, "fp") != key, name
    assert run_key(base.config, "fp2") != key
    save_record(base, tmp_path)
    assert record_key(read_record(base.path)) == record_key(base)
    # host threads do not change a virtual-clock run's results
    simulated = dataclasses.replace(base.config, backend=sim)
    assert run_key(dataclasses.replace(simulated, threads=8), "fp") == run_key(simulated, "fp")


def test_changed_configuration_never_resumes(tmp_path):
    """A re-sweep into the same folder with another KV budget or other scheduler options is refused, naming
    the difference, before anything runs; nothing is resumed."""
    plan = SweepPlan(["static", "continuous"], [1.0, 4.0], [0])
    run_sweep(plan, make_workload, FakeEngine(tmp_path), tmp_path, config_of=config_of)
    for extra, why in (({"kv_memory_bytes": 4 << 20}, "kv memory bytes: None there, 4194304 now"),
                       ({"scheduler_options": {"max_num_seqs": 2}}, "continuous option max num seqs")):
        engine = FakeEngine(tmp_path)
        with pytest.raises(BsbenchError, match=why):
            run_sweep(plan, make_workload, engine, tmp_path,
                      config_of=lambda s, w, r, seed, extra=extra: config_of(s, w, r, seed, **extra))
        assert engine.calls == []


def test_smaller_rerun_keeps_every_run_in_the_summary(tmp_path):
    plan = SweepPlan(["static", "continuous"], [1.0, 2.0, 4.0], [0])
    run_sweep(plan, make_workload, FakeEngine(tmp_path), tmp_path, config_of=config_of)
    smaller = run_sweep(SweepPlan(["continuous"], [1.0], [0]), make_workload, FakeEngine(tmp_path), tmp_path,
                        config_of=config_of)
    assert (smaller.executed, smaller.resumed) == (0, 1)
    summary = load_summary(tmp_path)
    assert summary["finished_runs"] == 6 and len(summary["runs"]) == 6
    assert sorted((r["scheduler"], r["rate"], r["this_sweep"]) for r in summary["runs"]) == [
        ("continuous", 1.0, True), ("continuous", 2.0, False), ("continuous", 4.0, False),
        ("static", 1.0, False), ("static", 2.0, False), ("static", 4.0, False)]
    assert summary["rates"] == [1.0] and summary["planned_runs"] == 1


def test_cli_resweep_with_repeats_resumes_every_run(tmp_path, bsbench):
    """A --repeats sweep run again into its folder resumes all its runs: the repeat index differs run to run
    within one sweep, so it is not part of the folder's shared setting (it once refused: 'repeat: 0 there,
    1 now')."""
    args = ["sweep", "--schedulers", "static,continuous", "--rates", "4", "-w", "smoke", "-n", "3", "--repeats",
            "2", "--backend", "sim", "--gpu", "a100-40gb", "--no-html", "--out", str(tmp_path), "--quiet"]
    first = bsbench(*args)
    assert first.code == 0, first.err
    again = bsbench(*args)
    assert again.code == 0, again.err
    assert "0 runs done, 4 resumed" in " ".join(again.out.split()), again.out


def test_cli_resweep_with_another_config_never_resumes(tmp_path, bsbench):
    """`bsbench sweep` again into the same folder with --max-num-seqs 2 or --kv-memory 4MiB: exit 2 naming
    the difference, no run resumed or added; the same command again resumes every run."""
    args = ["sweep", "--schedulers", "static,continuous", "--rates", "4,inf", "-w", "smoke", "-n", "3",
            "--backend", "sim", "--gpu", "a100-40gb", "--no-html", "--out", str(tmp_path), "--quiet"]
    first = bsbench(*args)
    assert first.code == 0, first.err
    for extra, why in ((["--max-num-seqs", "2"], "continuous option max num seqs: 64 there, 2 now"),
                       (["--kv-memory", "4MiB"], "kv memory bytes: ")):
        again = bsbench(*args, *extra)
        assert again.code == 2 and "resumed" not in again.out, again.out
        assert len(again.err.strip().splitlines()) == 1
        assert "holds runs of another configuration" in again.err and why in again.err, again.err
    assert len(list((tmp_path / "runs").glob("*.json"))) == 4
    same = bsbench(*args)
    assert same.code == 0 and "0 runs done, 4 resumed" in " ".join(same.out.split()), same.out


def test_cli_resweep_with_distserve_beside_one_instance_schedulers_resumes(tmp_path, bsbench):
    """distserve always runs disaggregated; uellm on one instance: their topologies differ run to run within one
    sweep, so a second run of the same sweep resumes both (it once refused: 'instances: None there, ...')."""
    args = ["sweep", "--schedulers", "distserve,uellm", "--rates", "4", "-w", "smoke", "-n", "3", "--backend",
            "sim", "--gpu", "a100-40gb", "--model", "llama2-13b", "--no-html", "--out", str(tmp_path), "--quiet"]
    assert bsbench(*args).code == 0
    again = bsbench(*args)
    assert again.code == 0, again.err
    assert "0 runs done, 2 resumed" in " ".join(again.out.split()), again.out


def test_cli_resweep_with_another_topology_never_resumes(tmp_path, bsbench):
    """The topology of a scheduler is part of its setting in the folder: bucket disaggregated, then on one
    instance, is refused naming it."""
    args = ["sweep", "--schedulers", "bucket", "--rates", "4", "-w", "smoke", "-n", "3", "--backend", "sim",
            "--gpu", "a100-40gb", "--model", "llama2-13b", "--no-html", "--out", str(tmp_path), "--quiet"]
    assert bsbench(*args, "--instances", "prefill=1,decode=1").code == 0
    again = bsbench(*args)
    assert again.code == 2 and "bucket option instances: 'prefill=1,decode=1' there, None now" in again.err, again.err


def test_a_truncated_run_file_is_set_aside_reported_and_its_run_redone(tmp_path):
    """A record cut short (a crash mid-write by another tool, a full disk) is renamed *.json.damaged with one
    reported line, and only its run is done again; the next sweep finds nothing to redo or report."""
    plan = SweepPlan(["static", "continuous"], [1.0], [0])
    run_sweep(plan, make_workload, FakeEngine(tmp_path), tmp_path, config_of=config_of)
    victim = sorted((tmp_path / "runs").glob("*continuous*.json"))[0]
    victim.write_bytes(victim.read_bytes()[:200])
    lines: list[str] = []
    again = FakeEngine(tmp_path)
    result = run_sweep(plan, make_workload, again, tmp_path, config_of=config_of, report=lines.append)
    assert again.calls == [("continuous", 1.0, 0)] and (result.resumed, result.executed) == (1, 1)
    assert len(lines) == 1 and victim.name in lines[0] and "not valid JSON" in lines[0] and "\n" not in lines[0]
    aside = victim.with_name(victim.name + ".damaged")
    assert aside.stat().st_size == 200
    assert len(list((tmp_path / "runs").glob("*.json"))) == 2
    lines.clear()
    third = FakeEngine(tmp_path)
    run_sweep(plan, make_workload, third, tmp_path, config_of=config_of, report=lines.append)
    assert third.calls == [] and lines == []


def test_cli_sweep_reports_a_damaged_run_file_on_stderr(tmp_path, bsbench):
    args = ["sweep", "--schedulers", "static", "--rates", "4", "-w", "smoke", "-n", "3", "--backend", "sim",
            "--gpu", "a100-40gb", "--no-html", "--out", str(tmp_path), "--quiet"]
    assert bsbench(*args).code == 0
    (record,) = (tmp_path / "runs").glob("*.json")
    record.write_text(record.read_text()[:-40])
    again = bsbench(*args)
    assert again.code == 0, again.err
    warnings = [line for line in again.err.splitlines() if "damaged" in line]
    assert len(warnings) == 1 and f"{record.name}.damaged" in warnings[0], again.err
    assert (tmp_path / "runs" / f"{record.name}.damaged").exists()
    assert "1 runs done, 0 resumed" in " ".join(again.out.split()), again.out
