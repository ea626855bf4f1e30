"""Capacity search on deterministic fake attainment curves."""

from __future__ import annotations

import pytest

from bsbench.experiments.capacity import find_capacity


def curve(capacity: float):
    """Attainment 1 up to `capacity`, then falling linearly: exactly 0.8 at capacity * 1.25."""
    def f(rate: float) -> float:
        return 1.0 if rate <= capacity else max(0.0, 1.0 - 0.2 * (rate - capacity) / (0.25 * capacity))
    return f


def test_doubling_then_bisection_finds_the_knee():
    true_capacity = 10.0 * 1.25  # attainment 0.8 at 12.5 req/s
    result = find_capacity(curve(10.0), target=0.8, start_rate=1.0, tol=0.01, max_rate=1000)
    assert result.rate == pytest.approx(true_capacity, rel=0.01)
    assert result.rate <= true_capacity
    lo, hi = result.bracket
    assert hi - lo <= 0.01 * lo
    rates = [p.rate for p in result.probes]
    assert rates[:6] == [1, 2, 4, 8, 16, 12]  # doubling to the first failure, then bisection
    assert all(p.passed == (p.attainment >= 0.8) for p in result.probes)
    assert len(rates) == len(set(rates))


def test_start_above_capacity_halves_first():
    result = find_capacity(curve(3.0), target=0.8, start_rate=32, tol=0.05)
    assert [p.rate for p in result.probes][:4] == [32, 16, 8, 4]
    assert result.rate == pytest.approx(3.75, rel=0.05) and result.rate <= 3.75


def test_capped_at_max_rate():
    result = find_capacity(lambda r: 1.0, start_rate=1, max_rate=20)
    assert result.capped and result.rate == 20
    assert [p.rate for p in result.probes] == [1, 2, 4, 8, 16, 20]


def test_nothing_passes():
    result = find_capacity(lambda r: 0.1, start_rate=1, min_rate=0.1)
    assert result.rate is None and [p.rate for p in result.probes] == [1, 0.5, 0.25, 0.125]


def test_failed_probe_and_absolute_tolerance_and_info():
    calls = []

    def f(rate):
        calls.append(rate)
        return (None if rate > 6 else 0.9), {"path": f"r{rate}.json"}

    result = find_capacity(f, start_rate=1, tol=0.5, relative=False)
    assert result.rate >= 5.5 and result.bracket[1] - result.bracket[0] <= 0.5
    assert result.probes[0].info == {"path": "r1.json"}
    assert result.to_dict()["probes"][0]["path"] == "r1.json"


def test_bad_arguments():
    with pytest.raises(ValueError):
        find_capacity(lambda r: 1.0, target=0)
    with pytest.raises(ValueError):
        find_capacity(lambda r: 1.0, start_rate=float("inf"))


def test_real_capacity_run(tmp_path):
    """A short real search: a generous SLO passes at the start rate, which is also the max rate: it says the SLO
    is too loose and names it, instead of '>= 8'."""
    import json
    import re

    from click.testing import CliRunner

    from bsbench.commands.capacity import command

    result = CliRunner().invoke(command, [
        "--schedulers", "continuous", "-w", "smoke", "-n", "3", "--max-output-len", "4", "--device", "cpu",
        "--e2e-slo", "600000", "--start-rate", "8", "--max-rate", "8", "--duration", "0.3s", "--out", str(tmp_path),
        "--quiet"])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "capacity_summary.json").read_text())
    found = summary["schedulers"]["continuous"]
    (search,) = found["repeats"]
    assert search["rate"] == 8 and search["capped"] and len(search["probes"]) == 1
    assert not found["found"] and found["capacity"] is None
    assert found["problem"].startswith("SLO too loose: E2E <= 600000")
    text = " ".join(result.output.split())
    assert "SLO too loose: E2E <= 600000" in text and not re.search(r">= 8(?![0-9])", text)
    page = (tmp_path / "report.html").read_text()
    # a probe is sized by time: 8 req/s x 0.3 s / 0.8 + 1 = 4 requests
    assert "<h2 id='capacity'>Capacity</h2>" in page and "E2E &lt;= 600,000 ms (4 of 4 requests)" in page
    assert page.count("<img ") == 1 + 4 and "report: " in result.output  # attainment at probes + one group


def test_capacity_without_an_slo_is_refused_before_any_run(bsbench, tmp_path, monkeypatch):
    import bsbench.backends.run as bench

    def no_model(*args, **kwargs):
        raise AssertionError("the model was opened before the SLO check")

    monkeypatch.setattr(bench, "open_session", no_model)
    out = tmp_path / "cap"
    result = bsbench("capacity", "--schedulers", "continuous,bucket", "-w", "synthetic", "-n", "4", "--device", "cpu",
                     "--out", out, "--quiet")
    assert result.code == 2 and len(result.err.strip().splitlines()) == 1 and "Traceback" not in result.err
    assert "needs an SLO" in result.err and "--e2e-slo" in result.err
    assert not out.exists() or not any(out.rglob("*"))
