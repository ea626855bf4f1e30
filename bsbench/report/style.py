"""One colour per scheduler name, the same in every plot and report.

The built-in schedulers have fixed colours; any other name gets a colour
picked from the rest of the palette by a stable hash of the name (sha256, not
Python's salted `hash`), so a user's policy keeps its colour across runs,
processes and machines.
"""

from __future__ import annotations

import hashlib

KNOWN_COLORS: dict[str, str] = {
    "continuous": "#1f77b4",  # blue
    "static": "#d62728",      # red
    "uellm": "#2ca02c",       # green
    "bucket": "#ff7f0e",      # orange
}
# Colours for other names: distinct from the four above and from each other (tab10 / tab20 hues).
OTHER_COLORS: tuple[str, ...] = ("#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f",
                                 "#393b79", "#637939", "#843c39", "#7b4173", "#3182bd", "#e6550d")
LINE_STYLES: tuple[str, ...] = ("-", "--", ":", "-.")


def scheduler_color(name: str) -> str:
    """'#rrggbb' for a scheduler name: fixed for the built-in schedulers, hash-chosen (stable) for others."""
    if name in KNOWN_COLORS:
        return KNOWN_COLORS[name]
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).digest()
    return OTHER_COLORS[int.from_bytes(digest[:4], "big") % len(OTHER_COLORS)]


def line_style(occurrence: int) -> str:
    """The line style of the n-th run (from 0) of one scheduler in one plot: two runs of one scheduler
    share its colour and differ in dash."""
    return LINE_STYLES[occurrence % len(LINE_STYLES)]
