"""Reports of the latency breakdown (bsbench.report.breakdown, compare, run): figures on constructed records with
known answers, the explanation line, and records without a breakdown (schema 2) shown as n/a."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from bsbench.commands.compare import command as compare
from bsbench.record import LatencyBreakdown, RequestRow, save_record
from bsbench.report.breakdown import breakdown_data, explain, run_breakdown, tail_split
from tests.record_factory import make_record, req

V2_RECORD = Path(__file__).parent / "data" / "record_v2.json"


def timed(id: str, arrival: float, queue: float, prefill: float, decode: float, *, lost_before: float = 0.0,
          lost_after: float = 0.0, status: str = "completed") -> RequestRow:
    """A row whose timestamps and breakdown agree: it waits, prefills (losing `lost_before` to a preemption),
    emits its first token, then decodes three more tokens (losing `lost_after`)."""
    first = arrival + queue + prefill + lost_before
    finish = first + decode + lost_after
    times = [first, first + (finish - first) / 3, first + 2 * (finish - first) / 3, finish]
    row = req(id, arrival, times, scheduled=arrival + queue, status=status,
              preemptions=int(lost_before > 0) + int(lost_after > 0))
    row.breakdown = LatencyBreakdown(queue, prefill, decode, lost_before + lost_after)
    return row


def test_tail_split_interpolates_the_parts_like_the_percentile():
    items = [("a", 1.0, {"x": 1.0, "y": 0.0}), ("b", 3.0, {"x": 1.0, "y": 2.0}), ("c", 2.0, {"x": 0.5, "y": 1.5})]
    median = tail_split("ttft", items, 50)  # the middle request: c
    assert (median.value_s, median.parts_s, median.dominant) == (2.0, {"x": 0.5, "y": 1.5}, "y")
    p75 = tail_split("ttft", items, 75)  # half way between c (2.0) and b (3.0)
    assert p75.value_s == 2.5 == np.percentile([1.0, 3.0, 2.0], 75)
    assert p75.parts_s == {"x": 0.75, "y": 1.75}
    assert sum(p75.parts_s.values()) == p75.value_s


def test_run_breakdown_figures_on_a_constructed_record():
    rows = [timed(f"r{i}", 0.25 * i, queue=0.125 * i, prefill=0.25, decode=1.0) for i in range(5)]
    rows.append(timed("slow", 2.0, queue=0.5, prefill=0.25, decode=1.0, lost_before=2.0, lost_after=0.5))
    rows.append(timed("gone", 0.0, queue=9.0, prefill=0.0, decode=0.0, status="failed"))  # not in the figures
    split = run_breakdown("continuous", make_record(requests=rows))
    assert split.missing is None and split.completed == 6
    assert split.mean_s["queue"] == pytest.approx((0.125 * 10 + 0.5) / 6)
    assert split.mean_s["preempted"] == pytest.approx(2.5 / 6)
    assert split.tail_s["preempted"] == pytest.approx(np.percentile([0, 0, 0, 0, 0, 2.5], 99))
    # the slowest TTFT (2.75 s) is mostly the preemption before its first token
    assert split.ttft is not None and split.ttft.dominant == "preempted"
    ttfts = [r.first_token_s - r.arrival_s for r in rows[:-1]]
    assert split.ttft.value_s == pytest.approx(np.percentile(ttfts, 99))
    assert sum(split.ttft.parts_s.values()) == pytest.approx(split.ttft.value_s)
    assert set(split.ttft.parts_s) == {"queue", "prefill", "preempted"}  # nothing decodes before the first token
    assert split.e2e is not None and sum(split.e2e.parts_s.values()) == pytest.approx(split.e2e.value_s)


def test_explanation_names_the_part_that_moved_most():
    base = [timed(f"r{i}", 0.25 * i, queue=0.0, prefill=0.25, decode=2.0) for i in range(8)]
    queued = [timed(f"r{i}", 0.25 * i, queue=0.25 * i, prefill=0.125, decode=2.0) for i in range(8)]
    ref = run_breakdown("continuous", make_record("continuous", requests=base))
    bucket = run_breakdown("bucket", make_record("bucket", requests=queued))
    line = explain(bucket, ref, "ttft")
    assert line is not None
    # p99 TTFT: 0.25 s vs 0.125 + 0.99 * 1.75 (queue at the p99 position) s; the queue grew, the prefill shrank
    assert line == ("bucket vs continuous: p99 TTFT +1.61 s (1.86 s vs 250.0 ms), of which queueing +1.73 s, "
                    "offset by prefill -125.0 ms")
    # decode is the largest part of bucket's p99 E2E, but queueing is what differs
    assert bucket.e2e is not None and bucket.e2e.dominant == "decode"
    assert explain(bucket, ref, "e2e") == ("bucket vs continuous: p99 E2E +1.61 s (3.86 s vs 2.25 s), of which "
                                           "queueing +1.73 s, offset by prefill -125.0 ms")
    # the other way round the difference is negative, and queueing is still what moved it
    back = explain(ref, bucket, "ttft")
    assert back == ("continuous vs bucket: p99 TTFT -1.61 s (250.0 ms vs 1.86 s), of which queueing -1.73 s, "
                    "offset by prefill +125.0 ms")
    # a run that lost its time to preemption after the first token: E2E is explained by it, TTFT is equal
    lost = [timed(f"r{i}", 0.25 * i, queue=0.0, prefill=0.25, decode=2.0, lost_after=0.4 * i) for i in range(8)]
    preempting = run_breakdown("uellm", make_record("uellm", requests=lost))
    assert explain(preempting, ref, "ttft") == "uellm vs continuous: p99 TTFT equal (250.0 ms)"
    # p99 E2E: 2.25 + 0.4 * 6.93 s, all of the difference lost to preemption after the first token
    assert explain(preempting, ref, "e2e") == ("uellm vs continuous: p99 E2E +2.77 s (5.02 s vs 2.25 s), of which "
                                               "preemption + recompute +2.77 s")


def test_breakdown_data_is_plain_json_with_explanations_and_notes():
    rows = [timed(f"r{i}", 0.25 * i, queue=0.125 * i, prefill=0.25, decode=1.0) for i in range(4)]
    old = make_record("static", requests=[req(f"r{i}", 0.0, [0.5, 1.0]) for i in range(4)])
    old.schema_version = 2  # as read from a version-2 file: rows without a breakdown
    data = breakdown_data([("continuous", make_record(requests=rows)), ("bucket", make_record("bucket", requests=rows)),
                           ("static", old)], reference="continuous")
    assert json.loads(json.dumps(data)) == data
    assert [r["label"] for r in data["runs"]] == ["continuous", "bucket", "static"]
    assert data["runs"][0]["mean_ms"]["prefill"] == pytest.approx(250.0)
    assert data["runs"][0]["ttft"]["dominant"] in {"queue", "prefill"}
    assert data["runs"][2]["mean_ms"] == {} and data["runs"][2]["ttft"] is None
    assert data["explanations"] == ["bucket vs continuous: p99 TTFT equal (621.3 ms)",
                                    "bucket vs continuous: p99 E2E equal (1.62 s)"]
    assert data["notes"] == ["static: no latency breakdown (record schema 2 has no breakdown)"]


def test_compare_shows_the_breakdown_and_says_na_for_version_2(tmp_path):
    base = [timed(f"r{i}", 0.25 * i, queue=0.0, prefill=0.25, decode=1.0) for i in range(8)]
    queued = [timed(f"r{i}", 0.25 * i, queue=0.25 * i, prefill=0.125, decode=1.0) for i in range(8)]
    save_record(make_record("continuous", requests=base), tmp_path)
    save_record(make_record("bucket", requests=queued), tmp_path)
    result = CliRunner().invoke(compare, [str(tmp_path), "--reference", "continuous"])
    assert result.exit_code == 0, result.output
    assert "where the time went" in result.output
    assert "p99 TTFT mostly" in result.output and "queueing" in result.output
    assert "bucket vs continuous: p99 TTFT +1.61 s" in result.output
    markdown = CliRunner().invoke(compare, [str(tmp_path), "--reference", "continuous", "--format", "markdown"])
    assert "| where the time went | continuous | bucket |" in markdown.output
    assert "of which queueing +1.73 s" in markdown.output
    as_json = json.loads(CliRunner().invoke(compare, [str(tmp_path), "--format", "json"]).output)
    assert {r["label"] for r in as_json["groups"][0]["breakdown"]["runs"]} == {"continuous", "bucket"}
    assert as_json["groups"][0]["breakdown"]["explanations"] == []  # no reference, no explanation

    old = tmp_path / "old"
    old.mkdir()
    shutil.copy(V2_RECORD, old / "v2.json")
    result = CliRunner().invoke(compare, [str(old)])
    assert result.exit_code == 0, result.output
    assert "n/a" in result.output
    assert "no latency breakdown (record schema 2 has no breakdown)" in result.output


def test_run_summary_table_shows_the_breakdown():
    from rich.console import Console

    from bsbench.commands.run import run_summary_table

    rows = [timed(f"r{i}", 0.25 * i, queue=0.0, prefill=0.25, decode=1.0, lost_after=0.4 * i) for i in range(8)]
    console = Console(width=160, record=True)
    console.print(run_summary_table(make_record(requests=rows)))
    text = console.export_text()
    assert "preemption + recompute mean / p99 (ms)" in text and "1,400.0 / 2,772.0" in text
    assert "p99 E2E mostly" in text and "preemption + recompute 69% of 4.02 s" in text
