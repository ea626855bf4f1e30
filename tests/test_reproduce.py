"""`bsbench reproduce PAPER --quick` as a smoke test: the verdict table's structure, and figures computed from
the runs (a claim's measured factor is the ratio of the two runs' figures read back from their records)."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math
from collections.abc import Callable
from pathlib import Path

import pytest

from bsbench.cli import main
from bsbench.experiments.reproduce import experiments_bucketserve
from bsbench.experiments.reproduce.claims import BUCKETSERVE_CLAIMS, UELLM_CLAIMS
from bsbench.experiments.reproduce.params import Params
from bsbench.experiments.reproduce.verdict import NOT_COMPARABLE, verdict_kind
from bsbench.record import read_records
from bsbench.schedulers.registry import all_schedulers


def reproduce(paper: str, out: Path) -> dict:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), pytest.raises(SystemExit) as ended:
        main(["reproduce", paper, "--quick", "--out", str(out)])
    assert ended.value.code == 0, buffer.getvalue()[-2000:]
    (out / "console.txt").write_text(buffer.getvalue())  # what the user saw, for the tests below
    return json.loads((out / "reproduce_summary.json").read_text())


def smaller_quick_params(params: Callable[[bool, str], Params]) -> Callable[[bool, str], Params]:
    """bucketserve's --quick setup with 10 s windows (not 100 s) and capacity searches to 50% (not 25%). The tests
    below check how the table is made from the runs, which needs no size."""

    def smaller(quick: bool, backend: str) -> Params:
        changes = {"window_s": 10.0, "capacity_search": [1.0, 64.0, 0.5]}
        setup = params(quick, backend)
        assert set(changes) <= {p.name for p in setup}
        return Params([dataclasses.replace(p, value=changes.get(p.name, p.value)) for p in setup])

    return smaller


@pytest.fixture(scope="module")
def bucketserve(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("reproduce-bucketserve")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(experiments_bucketserve, "params", smaller_quick_params(experiments_bucketserve.params))
        return out, reproduce("bucketserve", out)


@pytest.fixture(scope="module")
def uellm(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("reproduce-uellm")
    return out, reproduce("uellm", out)


def claim(summary: dict, key: str) -> dict:
    return next(c for c in summary["claims"] if c["claim"]["key"] == key)


def check_structure(summary: dict, claims: tuple, out: Path) -> None:
    assert summary["kind"] == "bsbench-reproduce-summary" and summary["repeats"] == 2
    # --quick says plainly, in the console, the summary and the page, that its verdicts are a smoke test
    assert summary["smoke_test"] is True and "not the papers' verdict" in summary["smoke_test_note"]
    console = " ".join((out / "console.txt").read_text().split())
    assert console.count("SMOKE TEST") >= 2 and "not the papers' verdict" in console
    assert "SMOKE TEST" in (out / "report.html").read_text()
    assert [c["claim"]["key"] for c in summary["claims"]] == [c.key for c in claims]
    for entry in summary["claims"]:
        kind = verdict_kind(entry["verdict"])
        measured = entry["measured"]
        if measured["point"] is None:
            assert kind == NOT_COMPARABLE and measured["missing"]
        else:
            assert measured["interval"]["low"] <= measured["point"] <= measured["interval"]["high"]
    assert all(p["reason"] for p in summary["params"])
    page = (out / "report.html").read_text()
    for entry in summary["claims"]:
        assert entry["claim"]["text"] in page
    assert all(p["name"] in page for p in summary["params"])
    assert "<img" in page


def by_seed(records: list) -> dict[int, dict]:
    return {int(r.config.seed): r.summary for r in records}


def test_bucketserve_quick_verdict_table(bucketserve: tuple[Path, dict]) -> None:
    out, summary = bucketserve
    check_structure(summary, BUCKETSERVE_CLAIMS, out)
    distserve = claim(summary, "load_at_80_vs_distserve")
    if "distserve" not in all_schedulers():
        assert distserve["verdict"].startswith(f"{NOT_COMPARABLE} (needs distserve")
    for name in ("attainment_vs_rate_mixed.png", "throughput_vs_rate_mixed.png", "capacity_bars.png"):
        assert (out / "figures" / name).stat().st_size > 0


def test_bucketserve_throughput_factor_is_the_ratio_at_the_claims_rate(bucketserve: tuple[Path, dict]) -> None:
    """The factor that decides is the window's output throughput at the claim's own rate (throughput_rate);
    the best of the rates is shown beside it, labelled, and is not the point."""
    out, summary = bucketserve
    records = read_records([str(out / "mixed-sweep" / "runs")])
    rate = float(next(p["value"] for p in summary["params"] if p["name"] == "throughput_rate"))
    ours = by_seed([r for r in records if r.config.scheduler == "bucket" and float(r.config.rate) == rate])
    base = by_seed([r for r in records if r.config.scheduler == "uellm" and float(r.config.rate) == rate])
    assert ours.keys() == base.keys() and len(ours) == 2
    ratio = sum(ours[s]["steady_output_throughput"] / base[s]["steady_output_throughput"] for s in ours) / len(ours)
    measured = claim(summary, "throughput_vs_uellm")["measured"]
    assert measured["point"] == pytest.approx(ratio, rel=1e-12)
    assert "claim's rate" in measured["source"] and "for information only" in measured["best_of_rates"]


def test_bucketserve_capacity_factor_is_the_ratio_of_the_searches(bucketserve: tuple[Path, dict]) -> None:
    out, summary = bucketserve
    checked = 0
    for c in BUCKETSERVE_CLAIMS:
        if c.metric != "capacity" or (c.baseline == "distserve" and "distserve" not in all_schedulers()):
            continue
        label = c.workload + ("-2gpu" if c.baseline == "distserve" else "")
        rates = {}
        for name in (c.ours, c.baseline):
            rates[name] = []
            for search in summary["capacities"][label][name]["repeats"]:
                passing = [p for p in search["probes"] if p["passed"]]
                assert search["rate"] == (max(p["rate"] for p in passing) if passing else None)
                for probe in search["probes"]:  # each probe's attainment is its record's
                    record = read_records([probe["path"]])[0]
                    assert record.summary["steady_slo_attainment"] == probe["attainment"]
                    assert probe["passed"] == (probe["attainment"] >= 0.8 and not record.summary["overloaded"])
                    assert (record.config.scheduler, record.config.seed) == (name, search["seed"])
                    # two GPUs: bucket disaggregated as distserve; one GPU: bucket on one instance as uellm
                    expected = "prefill=1,decode=1" if c.baseline == "distserve" else None
                    assert getattr(record.config.backend, "instances", None) == expected
                rates[name].append(search["rate"])
        measured = claim(summary, c.key)["measured"]
        if measured["point"] is not None:
            expected = sum(a / b for a, b in zip(rates[c.ours], rates[c.baseline])) / 2
            assert measured["point"] == pytest.approx(expected, rel=1e-12)
            checked += 1
        else:
            assert "SLO too" in measured["missing"]
    assert checked >= 1


def test_uellm_quick_verdict_table_and_factors(uellm: tuple[Path, dict]) -> None:
    out, summary = uellm
    check_structure(summary, UELLM_CLAIMS, out)
    records = read_records([str(out / "alpaca-t0" / "runs")])
    assert all(math.isinf(float(r.config.rate)) for r in records)
    assert all(req.arrival_s == 0 for r in records for req in r.requests)
    first = [r for r in records if r.config.scheduler == "uellm"][0]
    slos = [req.slo_e2e_ms for req in sorted(first.requests, key=lambda q: q.id)]
    assert all(220_000 <= s <= 250_000 for s in slos[:20]) and all(90_000 <= s <= 100_000 for s in slos[80:])
    cells = {name: by_seed([r for r in records if r.config.scheduler == name]) for name in ("uellm", "static",
                                                                                            "continuous")}
    for entry in summary["claims"]:
        c = entry["claim"]
        ours, base = cells[c["ours"]], cells[c["baseline"]]
        if c["metric"] == "mean_e2el_ms":  # lower is better: the factor is baseline / ours
            # a t-interval over seeds of ours / baseline, inverted: its point is 1 / mean(ours / baseline)
            expected = 1 / (sum(ours[s][c["metric"]] / base[s][c["metric"]] for s in ours) / len(ours))
        else:
            expected = sum(ours[s][c["metric"]] / base[s][c["metric"]] for s in ours) / len(ours)
        assert entry["measured"]["point"] == pytest.approx(expected, rel=1e-12)
        assert entry["verdict"].startswith(f"{NOT_COMPARABLE} (baseline differs")


@pytest.mark.parametrize("args", [["reproduce", "nosuchpaper"], ["reproduce", "uellm", "--repeats", "0"],
                                  ["reproduce", "uellm", "--workers", "2"]])
def test_bad_flags_are_one_line_errors(bsbench, args: list[str]) -> None:
    got = bsbench(*args)
    assert got.code == 2 and len(got.err.strip().splitlines()) == 1 and "Traceback" not in got.err


@pytest.mark.slow
def test_uellm_on_the_real_runner_small_scale(tmp_path: Path) -> None:
    """--backend real: the same experiment on the tiny model, 12 requests; the records are measured, not
    simulated, and the table says what ran."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), pytest.raises(SystemExit) as ended:
        main(["reproduce", "uellm", "--backend", "real", "--repeats", "1", "--out", str(tmp_path)])
    assert ended.value.code == 0, buffer.getvalue()[-2000:]
    summary = json.loads((tmp_path / "reproduce_summary.json").read_text())
    assert summary["backend"] == "real" and summary["timing"] == "measured" and summary["smoke_test"] is False
    records = read_records([str(tmp_path / "alpaca-t0" / "runs")])
    assert {r.config.backend for r in records} == {"real"} and all(len(r.requests) == 12 for r in records)
    assert [c["claim"]["key"] for c in summary["claims"]] == [c.key for c in UELLM_CLAIMS]
