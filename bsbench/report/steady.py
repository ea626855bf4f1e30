"""How every report shows a run's measurement window and its overload label (metrics.window_metrics)."""

from __future__ import annotations

from typing import Any

from bsbench.stats.saturation import overload_text

OVERLOADED = "overloaded"
NO_WINDOW = "n/a (record older than schema 6)"


def overload_cell(summary: dict[str, Any]) -> str:
    """'overloaded: <evidence>' or 'no (<evidence>)'; NO_WINDOW for a record without the window."""
    if "overloaded" not in summary:
        return NO_WINDOW
    evidence = overload_text(summary.get("overload"))
    return f"{OVERLOADED}: {evidence}" if summary["overloaded"] else f"no ({evidence})"


def overload_mark(summary: dict[str, Any]) -> str:
    """A short tag for a table header or cell: ' [overloaded]' or ''."""
    return f" [{OVERLOADED}]" if summary.get("overloaded") else ""


def window_cell(summary: dict[str, Any]) -> str:
    """Which requests were scored: 'N of M requests arriving 1.2-9.8 s (reason)'."""
    window = summary.get("window")
    if not isinstance(window, dict):
        return NO_WINDOW
    return (f"{window['scored']} of {summary.get('num_requests')} requests arriving {window['start_s']:.3g}-"
            f"{window['end_s']:.3g} s ({window['reason']})")
