"""The table of a calibration's fit residuals (`bsbench calibrate`, and `validate-sim` when it calibrates)."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from bsbench.sim.accuracy import errors_by_layout
from bsbench.units import format_percent


def residuals_table(points: list[dict[str, Any]], title: str) -> Table:
    """Fit residuals by layout (and over all points, and by source when runs were fitted too): n, MAPE, P90 and
    max APE, bias."""
    stats = errors_by_layout((p["layout"], p["measured_s"], p["predicted_s"]) for p in points)
    sources = {p.get("source", "grid") for p in points}
    if len(sources) > 1:
        by_source = errors_by_layout((p.get("source", "grid"), p["measured_s"], p["predicted_s"]) for p in points)
        stats |= {f"{key} steps": value for key, value in by_source.items() if key != "all"}
    table = Table(title=title, title_justify="left", header_style="bold")
    for col in ("layout", "n", "MAPE", "P90 APE", "max APE", "bias"):
        table.add_column(col, justify="left" if col == "layout" else "right")
    for layout, s in stats.items():
        table.add_row(layout, str(s["n"]), *(format_percent(s[k]) for k in ("mape", "p90_ape", "max_ape", "bias")))
    return table
