"""`bsbench demo`: the four policies on the simulated paper-scale setup, one table labelled simulated, records."""

from __future__ import annotations

from pathlib import Path

from bsbench.record import read_records

SCHEDULERS = ("static", "continuous", "uellm", "bucket")


def test_demo_prints_four_simulated_policies_and_writes_records_that_add_up(bsbench, tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = bsbench("demo", "-n", "40", "--rate", "2", "--out", out, "--quiet")
    assert result.code == 0, result.err
    header = next(line for line in result.out.splitlines() if "metric" in line)
    assert [name for name in SCHEDULERS if name in header] == list(SCHEDULERS)
    assert "SIMULATED" in result.out and "simulated (sim, a100-40gb" in result.out and "llama2-13b" in result.out
    assert "SLO attainment" in result.out and "Goodput" in result.out and "Padding ratio" in result.out
    lines = result.out.strip().splitlines()
    assert lines[-2].startswith("next: bsbench run") and lines[-1].startswith("next: bsbench sweep --help")

    records = read_records([str(out / "runs")])
    assert sorted(r.config.scheduler for r in records) == sorted(SCHEDULERS)
    assert (out / "sweep_summary.json").is_file()
    for record in records:
        assert record.config.backend.kind == "sim" and record.config.backend.gpu == "a100-40gb"
        assert record.config.model == "llama2-13b" and record.config.rate == 2.0
        assert record.workload.num_requests == 40
        summary = record.summary
        assert summary["completed"] + summary["failed"] + summary["rejected"] == 40
        # a policy whose queue grew without bound is named under the table with its evidence; the others are not
        named = any(line.startswith(f"{record.config.scheduler}: overloaded: backlog") for line in lines)
        assert named == bool(summary["overloaded"]), (record.config.scheduler, summary["overload"])
    assert any(r.summary["overloaded"] for r in records) and not all(r.summary["overloaded"] for r in records)
    assert "SLO attainment in window" in result.out
    assert len({r.workload.fingerprint for r in records}) == 1  # paired: one request list for all four


def test_demo_again_reuses_its_records(bsbench, tmp_path: Path) -> None:
    out = tmp_path / "demo"
    assert bsbench("demo", "-n", "20", "--out", out, "--quiet").code == 0
    files = sorted((out / "runs").rglob("*.json"))
    again = bsbench("demo", "-n", "20", "--out", out, "--quiet")
    assert again.code == 0 and "continuous" in again.out
    assert sorted((out / "runs").rglob("*.json")) == files


def test_demo_refuses_a_bad_rate_in_one_line(bsbench, tmp_path: Path) -> None:
    result = bsbench("demo", "--rate", "0", "--out", tmp_path / "demo")
    assert result.code == 2 and len(result.err.strip().splitlines()) == 1
    assert not (tmp_path / "demo").exists()
