"""A reproduction's outputs: the verdict and parameter tables (console), OUT/reproduce_summary.json and
OUT/report.html (the verdicts, what "holds" means, the parameters, and the figures that correspond to the
paper's: throughput and SLO attainment against the rate with the 80% line, capacity bars, or bars of the
t = 0 experiment).

reproduce_summary.json: kind "bsbench-reproduce-summary", version 1, paper, backend, smoke_test (true for
--quick: its verdicts are a smoke test, not the papers' verdict) and smoke_test_note, timing (the cost model's
label, or "measured"), repeats, hold_rule, params [{name, value, reason}], claims [{claim, measured: {point,
interval, source, missing}, verdict}], capacities {workload: {scheduler: capacity_repeats.to_dict}}, folders.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bsbench.experiments.capacity_repeats import CapacityOverRepeats
from bsbench.experiments.reproduce.figures import Bar, grouped_bars
from bsbench.experiments.reproduce.outcome import CLAIM_HEADER, Reproduction
from bsbench.experiments.reproduce.verdict import HOLD_FRACTION
from bsbench.jsonio import write_json_atomic
from bsbench.report.html_page import Section, img_tag, paragraph, table, write_page
from bsbench.report.plots_sweep import versus_rate

SUMMARY_FILE = "reproduce_summary.json"
REPORT_FILE = "report.html"
PARAM_HEADER = ["parameter", "value", "reason"]
HOLD_RULE = (f"two-sided: holds when the measured improvement factor's whole 95% interval (a paired t over the "
             f"seeds; a paired bootstrap over requests with one seed) lies within {100 * HOLD_FRACTION:g}% to "
             f"{100 / HOLD_FRACTION:g}% of the claimed factor (of its lower and upper end for a range); does not "
             f"hold otherwise, saying which side: below the claim or above it (an effect far larger than claimed "
             f"is the setup's, not the policy's); not comparable: the baseline is not the paper's, or the figure "
             f"could not be measured (why is given). A factor is ours / baseline for throughput and capacity, "
             f"baseline / ours for latency, measured over each run's window at the claim's own rate and setting; a "
             f"best-of-rates figure is shown for information and never decides. 80%: the times come from a cost "
             f"model on stand-in data, not the paper's testbed.")


def capacity_bars(capacities: dict[str, dict[str, CapacityOverRepeats]]) -> dict[str, dict[str, Bar]]:
    """workload -> scheduler -> (capacity, low, high) of the searches that found one."""
    groups: dict[str, dict[str, Bar]] = {}
    for workload, by_name in capacities.items():
        for name, res in by_name.items():
            if not res.found:
                continue
            interval = res.interval
            point = interval.point if interval else float(res.rates[0] or 0.0)
            groups.setdefault(workload, {})[name] = (point, interval.low if interval else None,
                                                     interval.high if interval else None)
    return groups


def figures(result: Reproduction, out: Path, note: str) -> list[Path]:
    """The PNGs into OUT/figures."""

    folder = out / "figures"
    target = float(result.params.get("target_attainment", 0.8))
    pngs = []
    for name, points in result.sweeps.items():
        if len({p["rate"] for p in points}) < 2:
            continue  # one rate (UELLM's t = 0): its bars below say more
        pngs.append(versus_rate(points, "output_throughput", f"output tokens/s ({name})",
                                folder / f"throughput_vs_rate_{name}.png", note=note))
        if any(p.get("slo_attainment") is not None for p in points):
            pngs.append(versus_rate(points, "slo_attainment", f"SLO attainment ({name})",
                                    folder / f"attainment_vs_rate_{name}.png", target=target, note=note))
    if result.capacities:
        pngs.append(grouped_bars(capacity_bars(result.capacities),
                                 f"load capacity (req/s) at SLO attainment >= {100 * target:g}%",
                                 folder / "capacity_bars.png", note))
    for index, (label, groups) in enumerate(result.bars.items()):
        pngs.append(grouped_bars(groups, label, folder / f"bars_{index}.png", note))
    return pngs


SMOKE_TEST_NOTE = ("--quick: a SMOKE TEST at a reduced scale (fewer requests, rates and probes). Its verdicts only "
                   "show that the experiments run end to end; they are not the papers' verdict: run without --quick "
                   "for that.")


def summary(result: Reproduction, backend: str, timing: str, repeats: int, quick: bool) -> dict[str, Any]:
    """The summary file's content; `smoke_test` is true for a --quick run, whose verdicts are no verdict."""
    return {"kind": "bsbench-reproduce-summary", "version": 1, "paper": result.paper, "backend": backend,
            "smoke_test": quick, "smoke_test_note": SMOKE_TEST_NOTE if quick else None,
            "timing": timing or "measured", "repeats": repeats, "hold_rule": HOLD_RULE,
            "params": result.params.to_list(), "claims": [r.to_dict() for r in result.results],
            "capacities": {w: {n: res.to_dict() for n, res in by.items()} for w, by in result.capacities.items()},
            "folders": result.folders}


def write_outputs(result: Reproduction, out: Path, backend: str, timing: str, repeats: int, quick: bool
                  ) -> tuple[Path, Path]:
    """OUT/reproduce_summary.json and OUT/report.html (a --quick run's page says it is a smoke test); their paths."""
    data = summary(result, backend, timing, repeats, quick)
    json_path = write_json_atomic(data, out / SUMMARY_FILE)
    pngs = figures(result, out, timing)
    page = out / REPORT_FILE
    intro = [paragraph(f"SIMULATED: {timing}: times come from a cost model, not a measurement", "note simulated")
             ] if timing else []
    if quick:
        intro.append(paragraph(SMOKE_TEST_NOTE, "note"))
    sections = [
        Section("Verdicts", [table(CLAIM_HEADER, [r.row() for r in result.results]), paragraph(HOLD_RULE, "runs")]),
        Section("Parameters of the paper setup", [paragraph("Every value the paper does not give, chosen here, "
                                                            "with the reason.", "runs"),
                                                  table(PARAM_HEADER, result.params.rows())]),
        Section("Figures", [img_tag(png, page) for png in pngs]),
        Section("Runs", [paragraph("Run records, one folder per experiment (bsbench compare FOLDER/runs): "
                                   + "; ".join(result.folders), "runs")]),
    ]
    return json_path, write_page(page, f"bsbench reproduce {result.paper}", sections, intro=intro)
