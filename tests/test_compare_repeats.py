"""compare over repeats: cells of seeds, intervals over requests or seeds, paired ratios, 'no clear difference'."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from bsbench.commands.compare import command
from bsbench.record import save_record
from bsbench.report import comparison as report
from bsbench.report.cell_stats import group_stats, ratio_interval, request_samples
from bsbench.stats import ACROSS_SEEDS, PAIRED_OVER_REQUESTS, PAIRED_OVER_SEEDS, WITHIN_RUN

try:
    from record_factory import make_record, req
except ImportError:
    from tests.record_factory import make_record, req


def _requests(seed: int, n: int = 40, slow: float = 1.0, noise: float = 0.0, fail: int = 0, noise_seed: int = 0):
    """n requests of seed `seed`: ids r0..r{n-1}, TTFT and token gaps drawn from the seed, times x `slow` (plus
    independent noise of sd `noise` per request when given); the last `fail` requests fail."""
    rng = np.random.default_rng(seed)
    extra = np.random.default_rng([seed, noise_seed])
    rows = []
    for i in range(n):
        arrival = 0.05 * i
        ttft = rng.exponential(0.2) * slow + (abs(extra.normal(0, noise)) if noise else 0.0)
        gaps = rng.uniform(0.01, 0.03, 3) * slow
        times = list(arrival + ttft + np.concatenate([[0.0], np.cumsum(gaps)]))
        if i >= n - fail:
            rows.append(req(f"r{i}", arrival, [], status="failed", slo_e2e_ms=400.0))
        else:
            rows.append(req(f"r{i}", arrival, times, slo_e2e_ms=400.0, prompt_len=10 + i % 7))
    return rows


def _record(scheduler: str, seed: int, base: int | None = 0, **kwargs):
    extra = {} if base is None else {"base_seed": base, "repeat": seed - base}
    noise = kwargs.pop("noise", 0.0)
    rows = _requests(seed, slow=kwargs.pop("slow", 1.0), noise=noise, fail=kwargs.pop("fail", 0),
                     noise_seed=len(scheduler))  # schedulers' noise independent
    return make_record(scheduler, seed=seed, fingerprint=kwargs.pop("fingerprint", f"fp-seed{seed}"),
                       requests=rows, **extra, **kwargs)


@pytest.mark.parametrize("metric", ["median_ttft_ms", "p99_ttft_ms", "mean_tpot_ms", "p90_e2el_ms",
                                    "median_queue_ms", "slo_attainment", "output_throughput", "request_throughput",
                                    "total_token_throughput", "goodput"])
def test_request_sample_statistic_is_the_summary_figure(metric):
    record = _record("continuous", 3, fail=5)
    sample = request_samples(record, metric)
    assert sample is not None
    values = np.array([list(sample.values.values())])
    assert float(sample.statistic(values)[0]) == pytest.approx(record.summary[metric])


def test_run_level_figures_have_no_request_sample():
    assert request_samples(_record("continuous", 0), "padding_ratio") is None
    assert request_samples(_record("continuous", 0), "p99_itl_ms") is None


def test_repeats_of_one_experiment_form_one_group_with_one_column_per_scheduler():
    records = [_record(s, seed) for seed in (0, 1, 2) for s in ("continuous", "static")]
    records.append(_record("static", 7, base=7))  # another experiment (base seed 7)
    records.append(_record("static", 1, fingerprint="fp-changed"))  # seed 1 again, another request list
    groups, notes = report.group_records(records)
    assert [[(r.label, len(r.repeats)) for r in g.runs] for g in groups] == [
        [("continuous", 3), ("static", 3)], [("static", 1)], [("static", 1)]]
    assert [r.config.seed for r in groups[0].runs[1].repeats] == [0, 1, 2]
    assert len(notes) == 2
    assert "3 repeats: workload seeds 0, 1, 2" in groups[0].details()


def test_records_without_repeat_information_still_group_by_request_list():
    records = [_record("continuous", 0, base=None), _record("continuous", 1, base=None)]
    groups, _ = report.group_records(records)
    assert [len(g.runs) for g in groups] == [1, 1]


def test_a_column_shows_the_mean_over_its_repeats():
    records = [_record("continuous", seed) for seed in (0, 1, 2)]
    groups, _ = report.group_records(records)
    means = groups[0].runs[0].summary
    assert means["p99_ttft_ms"] == pytest.approx(np.mean([r.summary["p99_ttft_ms"] for r in records]))


def test_a_fixed_slowdown_gives_that_ratio_exactly_and_a_winner():
    fast = [_record("continuous", seed) for seed in (0, 1, 2)]
    slow = [_record("static", seed, slow=1.5) for seed in (0, 1, 2)]
    ratio = ratio_interval(slow, fast, "p99_ttft_ms")
    # with repeats every ratio is paired over seeds (issue 33): it must see seed-to-seed variation
    assert ratio is not None and ratio.method == PAIRED_OVER_SEEDS
    assert (ratio.point, ratio.low, ratio.high) == pytest.approx((1.5, 1.5, 1.5))
    assert ratio_interval(slow[:1], fast[:1], "p99_ttft_ms").method == PAIRED_OVER_REQUESTS  # one seed: requests
    per_seed = ratio_interval(slow, fast, "p99_itl_ms")  # run-level: one ratio per repeat
    assert per_seed is not None and per_seed.method == PAIRED_OVER_SEEDS
    assert per_seed.point == pytest.approx(1.5)
    stats = group_stats([("continuous", fast), ("static", slow)], ["p99_ttft_ms"], "continuous")
    assert stats.verdicts[("p99_ttft_ms", "static")] == "continuous better"
    assert stats.figures[("p99_ttft_ms", "static")].method == ACROSS_SEEDS


def test_pairs_are_matched_by_seed_and_request_id():
    fast = [_record("continuous", seed) for seed in (0, 1)]
    slow = [_record("static", seed, slow=2.0, fail=4) for seed in (1, 0)]  # other order, 4 requests failed
    ratio = ratio_interval(slow, fast, "median_e2el_ms")
    assert ratio is not None and ratio.n == 2  # one ratio per seed, both seeds paired whatever their order
    assert ratio.point == pytest.approx(2.0, rel=0.01)  # medians of the runs' own completed requests
    one = ratio_interval(slow[1:], fast[:1], "median_e2el_ms")  # seed 0 alone: requests paired by id
    assert one is not None and one.n == 36  # the requests both completed


def _folder(tmp_path: Path, repeats: int, slow: float, noise: float = 0.0) -> Path:
    runs = tmp_path / "runs"
    for seed in range(repeats):
        save_record(_record("continuous", seed, noise=noise), runs)
        save_record(_record("static", seed, slow=slow, noise=noise), runs)
    return runs


def test_compare_prints_no_clear_difference_and_marks_no_best_when_runs_match(tmp_path):
    runs = _folder(tmp_path, 1, slow=1.0, noise=0.05)
    result = CliRunner().invoke(command, [str(runs), "--reference", "continuous", "--format", "json"])
    assert result.exit_code == 0, result.output
    group = json.loads(result.stdout)["groups"][0]
    assert group["metrics"]["p99_ttft_ms"]["static"] != group["metrics"]["p99_ttft_ms"]["continuous"]
    assert group["verdicts"]["p99_ttft_ms"]["static / continuous"] == "no clear difference"
    assert group["intervals"]["p99_ttft_ms"]["continuous"]["method"] == WITHIN_RUN
    assert "bootstrap over requests (within one run)" in group["intervals_method"]
    table = CliRunner().invoke(command, [str(runs), "--reference", "continuous"])
    assert "no clear difference" in table.output
    md = CliRunner().invoke(command, [str(runs), "--reference", "continuous", "--format", "markdown"]).stdout
    ttft_row = next(line for line in md.splitlines() if line.startswith("| TTFT p99"))
    assert "**" not in ttft_row and "no clear difference (" in ttft_row


def test_compare_over_repeats_gives_intervals_over_seeds_and_a_clear_winner(tmp_path):
    runs = _folder(tmp_path, 3, slow=1.5)
    result = CliRunner().invoke(command, [str(runs), "--reference", "continuous", "--format", "json"])
    group = json.loads(result.stdout)["groups"][0]
    assert [(r["label"], len(r["repeats"])) for r in group["runs"]] == [("continuous", 3), ("static", 3)]
    assert group["intervals"]["p99_ttft_ms"]["static"]["method"] == ACROSS_SEEDS
    ratio = group["intervals"]["p99_ttft_ms"]["static / continuous"]
    assert (ratio["low"], ratio["high"]) == pytest.approx((1.5, 1.5))
    assert group["verdicts"]["p99_ttft_ms"]["static / continuous"] == "continuous better"
    md = CliRunner().invoke(command, [str(runs), "--reference", "continuous", "--format", "markdown"]).stdout
    ttft_row = next(line for line in md.splitlines() if line.startswith("| TTFT p99"))
    assert ttft_row.split("|")[2].strip().startswith("**")  # continuous marked best: the paired interval excludes 1
    assert "t-interval over seeds (across runs)" in md
    csv = CliRunner().invoke(command, [str(runs), "--reference", "continuous", "--format", "csv"]).stdout
    assert "continuous low" in csv.splitlines()[0] and "static / continuous high" in csv.splitlines()[0]
