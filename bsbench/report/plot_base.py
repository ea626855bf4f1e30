"""What every bsbench plot shares: the headless matplotlib setup, saving, axis labels, run colours.

Import matplotlib's pyplot from here (`from bsbench.report.plot_base import plt`) so
that the Agg backend (no display) and the plain-text labels are set first.
"""

from __future__ import annotations

import textwrap
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

__all__ = ["plt", "save", "label_axes", "run_styles", "log_scale", "fit_width", "headline"]

SIMULATED_COLOR = "darkmagenta"


# Average glyph width of matplotlib's default sans-serif font, in font sizes: wrapping at this many points
# per character keeps a line inside the figure (DejaVu Sans averages about 0.55 em for this kind of text).
_CHAR_WIDTH_EM = 0.6


def fit_width(text: str, width_in: float, fontsize: float) -> str:
    """`text` wrapped into lines that fit `width_in` inches at `fontsize` points (titles are otherwise cut off at
    the figure's edge); words are kept whole, so a run label or a device name never splits."""
    chars = max(20, int(width_in * 72 / (fontsize * _CHAR_WIDTH_EM)))
    return "\n".join(textwrap.wrap(text, chars, break_long_words=False, break_on_hyphens=False)) or text


def headline(fig: Any, text: str, color: str = "black", fontsize: float = 10) -> None:
    """The figure's title over all its panels, wrapped to the figure's width."""
    fig.suptitle(fit_width(text, fig.get_figwidth() * 0.96, fontsize), color=color, fontsize=fontsize)


def save(fig: Any, path: Path, note: str = "") -> Path:
    """Write the figure as PNG; a `note` (e.g. 'simulated (sim, a100-40gb, ...)') becomes its headline."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if note:
        headline(fig, note, color=SIMULATED_COLOR)
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
