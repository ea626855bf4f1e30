"""What every bsbench plot shares: the headless matplotlib setup, saving, axis labels, run colours.

Import matplotlib's pyplot from here (`from bsbench.report.plot_base import plt`) so
that the Agg backend (no display) and the plain-text labels are set first.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
# Labels are scheduler names from records: '$' must be a dollar sign, not mathtext that fails to parse.
matplotlib.rcParams["text.parse_math"] = False
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import ticker  # noqa: E402

from bsbench.report.style import line_style, scheduler_color  # noqa: E402

__all__ = ["plt", "save", "label_axes", "run_styles", "log_scale"]

SIMULATED_COLOR = "darkmagenta"


def save(fig: Any, path: Path, note: str = "") -> Path:
    """Write the figure as PNG; a `note` (e.g. 'simulated (sim, a100-40gb, ...)') becomes its headline."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if note:
        fig.suptitle(note, color=SIMULATED_COLOR, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def label_axes(ax: Any, xlabel: str, ylabel: str) -> None:
    """Axis labels, a light grid, and a legend when something labelled was drawn."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    handles, _ = ax.get_legend_handles_labels()
    if handles:
        ax.legend(fontsize=8)


def log_scale(ax: Any, which: str = "x") -> None:
    """A log axis labelled with plain numbers (1, 10, 100, 1,000): mathtext is off (see above), so
    matplotlib's default '10^k' labels would print as raw markup."""
    axis = ax.xaxis if which == "x" else ax.yaxis
    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    axis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}"))
    axis.set_minor_formatter(ticker.NullFormatter())


def run_styles(schedulers: Sequence[str]) -> list[tuple[str, str]]:
    """(colour, line style) per run: the scheduler's colour; a second run of the same scheduler gets a dash."""
    seen: dict[str, int] = {}
    styles = []
    for name in schedulers:
        styles.append((scheduler_color(name), line_style(seen.get(name, 0))))
        seen[name] = seen.get(name, 0) + 1
    return styles
