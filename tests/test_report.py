"""Report building blocks: grouping, labels, the frame, best-of-row, formats, plots, HTML."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from bsbench.errors import BsbenchError
from bsbench.report import comparison as report
from bsbench.report import plots, plots_sweep

try:
    from record_factory import make_record
except ImportError:
    from tests.record_factory import make_record


def _loaded(*records):
    for i, record in enumerate(records):
        record.path = Path(f"/r/{i}.json")
    return list(records)


def test_grouping_by_fingerprint_model_device():
    recs = _loaded(
        make_record("continuous"), make_record("static"),
        make_record("static", 8.0, fingerprint="fp-other"),
        make_record("continuous", model="llama2-7b"),
        make_record("continuous", device_name="NVIDIA H100"),
    )
    groups, notes = report.group_records(recs)
    assert [len(g.runs) for g in groups] == [2, 1, 1, 1]
    assert [r.label for r in groups[0].runs] == ["continuous", "static"]
    text = "\n".join(notes)
    assert ("group 1 (continuous, static) and group 2 (static) are not comparable: "
            "different request lists (rate 4 vs 8)") in text
    assert "different model (tiny vs llama2-7b)" in text
    assert "different device (Test CPU vs NVIDIA H100)" in text


def test_duplicate_labels_are_disambiguated():
    groups, _ = report.group_records(_loaded(make_record("static"), make_record("static"),
                                             make_record("continuous", complete=False)))
    assert [r.label for r in groups[0].runs] == ["static #1", "static #2", "continuous (incomplete)"]


def test_frame_ratios_and_best():
    groups, _ = report.group_records(_loaded(make_record("continuous", speed=1.0),
                                             make_record("static", speed=2.0, pad=2)))
    frame = report.comparison_frame(groups[0].runs, reference="continuous")
    assert list(frame.columns) == ["continuous", "static", "static / continuous"]
    assert frame.at["median_ttft_ms", "static / continuous"] == pytest.approx(2.0)
    assert report.best_labels(frame, "median_ttft_ms", ["continuous", "static"]) == {"continuous"}
    assert report.best_labels(frame, "padding_ratio", ["continuous", "static"]) == {"continuous"}
    assert report.best_labels(frame, "request_throughput", ["continuous", "static"]) == {"continuous"}
    assert report.best_labels(frame, "failed", ["continuous", "static"]) == set()  # tie: nothing stands out
    assert report.best_labels(frame, "peak_kv_usage", ["continuous", "static"]) == set()  # no direction


def test_reference_checks():
    groups, _ = report.group_records(_loaded(make_record("continuous"), make_record("bucket"),
                                             make_record("static", fingerprint="x")))
    notes = report.check_reference(groups, "bucket")
    assert groups[0].runs[0].label == "bucket"  # reference first
    assert notes == ["group 2 has no run of 'bucket': no ratios there"]
    with pytest.raises(BsbenchError, match="matches no run"):
        report.check_reference(groups, "nope")


def test_text_formats():
    groups, notes = report.group_records(_loaded(make_record("continuous"), make_record("static", speed=2)))
    frames = [report.comparison_frame(g.runs, "continuous") for g in groups]
    md = report.frame_to_markdown(groups[0].runs, frames[0])
    assert md.splitlines()[0] == "| metric | continuous | static | static / continuous |"
    assert "| TTFT median (ms) | **250.0** | 500.0 | 2.00x |" in md
    csv = report.groups_to_csv(groups, frames)
    assert csv.splitlines()[0] == "metric,group,timing,continuous,static,static / continuous"
    data = report.groups_to_json(groups, frames, notes)
    assert data["groups"][0]["metrics"]["median_ttft_ms"]["static"] == pytest.approx(500.0)
    assert data["not_comparable"] == []


def test_format_value():
    assert report.format_value(None, "ms") == "—"
    assert report.format_value(float("nan"), "ms") == "—"
    assert report.format_value(0.8512, "pct") == "85.1%"
    assert report.format_value(3.0, "int") == "3"
    assert report.format_value(1.234, "ratio") == "1.23x"


def test_plots_and_html_written(tmp_path):
    groups, notes = report.group_records(_loaded(make_record("continuous"), make_record("static", speed=2),
                                                 make_record("bucket", fingerprint="other")))
    frames = [report.comparison_frame(g.runs) for g in groups]
    sets = [plots.comparison_plots([(r.label, r.record) for r in g.runs], tmp_path / "plots", prefix=f"g{i}_")
            for i, g in enumerate(groups)]
    pngs = [p for s in sets for p in s]
    assert len(pngs) == 8
    for png in pngs:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 1000
    page = report.write_html(tmp_path / "report.html", groups, frames, notes, sets, embed=False)
    text = page.read_text()
    assert "src='plots/g0_latency_cdf.png'" in text and "src='plots/g1_batch_size.png'" in text
    assert "not comparable" in text and "<table>" in text
    embedded = report.write_html(tmp_path / "one.html", groups, frames, notes, sets).read_text()  # the default
    assert embedded.count("src='data:image/png;base64,") == 8 and "src='plots/" not in embedded


def test_versus_rate_plot(tmp_path):
    points = [{"scheduler": s, "rate": r, "slo_attainment": a}
              for s, off in (("a", 0.0), ("b", 0.1)) for r, a in ((1, 1.0), (2, 0.9), (math.inf, 0.2))]
    path = plots_sweep.versus_rate(points, "slo_attainment", "SLO attainment", tmp_path / "x.png", target=0.8)
    assert path.stat().st_size > 1000


def test_empty_metrics_show_as_dash():
    rec = make_record("static", requests=[])
    groups, _ = report.group_records(_loaded(rec))
    frame = report.comparison_frame(groups[0].runs)
    assert pd.isna(frame.at["median_ttft_ms", "static"])
    shown = report.display_frame(groups[0].runs, frame)
    assert shown.at["TTFT median (ms)", "static"] == "—"
