"""A sweep report page built from hand-made records, for the HTML and headless-browser tests.

Group order on purpose: a one-run group is seen first, yet the three-run group must come first on the page.
"""

from __future__ import annotations

from pathlib import Path

from bsbench.record import EventRow, RunRecord
from bsbench.report import plots_sweep
from bsbench.report.html_report import write_sweep_report
from tests.record_factory import make_record, req, simple_requests

HOSTILE = "<img src=x onerror=alert(1)>"  # a scheduler name a record may carry: shown as text, never markup
MIB = 1 << 20


def records() -> list[RunRecord]:
    kv = {"kv_memory_bytes": 64 * MIB, "block_size": 16, "kv_capacity_tokens": 1600}
    failing = simple_requests(6) + [req("f", 0.1, status="failed"), req("x", 0.2, status="rejected")]
    big = "fp-big"
    return [
        make_record("bucket", fingerprint="fp-small", **kv),
        make_record("static", requests=failing, fingerprint=big, scheduler_options={"max_batch_size": 8},
                    events=[EventRow("oom", 0.12, ["f"]), EventRow("preemption", 0.3, ["r1"])], **kv),
        make_record("continuous", requests=simple_requests(8), fingerprint=big, **kv),
        make_record(HOSTILE, requests=simple_requests(8), speed=1.5, fingerprint=big, **kv),
        make_record("continuous", fingerprint="fp-sim", backend="sim", clock="virtual", gpu="a100-40gb",
                    cost_model="uncalibrated", **kv),
    ]


def sweep_page(out: Path) -> Path:
    """OUT/report.html with two sweep plots (one with interval bands) and the groups of `records()`."""
    recs = records()
    points = [{"scheduler": r.config.scheduler, "rate": r.config.rate, **r.summary} for r in recs]
    for p in points:
        p["output_throughput_low"], p["output_throughput_high"] = 0.9 * p["output_throughput"], \
            1.1 * p["output_throughput"]
    pngs = [plots_sweep.versus_rate(points, "output_throughput", "output tokens/s", out / "throughput_vs_rate.png"),
            plots_sweep.pareto_view(points, out / "pareto.png")]
    summary = {"schedulers": ["static", "continuous", "bucket", HOSTILE], "rates": [4.0], "seeds": [0],
               "finished_runs": 5, "planned_runs": 5, "workload": "test-workload",
               "workload_overrides": {"num_requests": 8}, "model": "tiny"}
    header = ["rate (req/s)", "static", "continuous"]
    return write_sweep_report(out, summary, recs, pngs, "output tokens/s", header, [["4", "1.0", "2.0"]])
