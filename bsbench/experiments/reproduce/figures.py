"""The report's figures that correspond to the papers': metrics against the rate (plots_sweep) and bars."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bsbench.report.plot_base import label_axes, plt, save
from bsbench.report.style import scheduler_color

Bar = tuple[float, float | None, float | None]  # mean, interval low, high (None: no interval)


def grouped_bars(groups: dict[str, dict[str, Bar]], ylabel: str, path: Path, note: str = "") -> Path:
    """One group of bars per key of `groups` (e.g. a workload), one bar per scheduler in its colour, with the
    95% interval as an error bar where there is one."""
    names = list(dict.fromkeys(name for bars in groups.values() for name in bars))
    fig, ax = plt.subplots(figsize=(8, 4.6))
    width = 0.8 / max(len(names), 1)
    for i, name in enumerate(names):
        xs, heights, errors = [], [], []
        for g, bars in enumerate(groups.values()):
            if name not in bars:
                continue
            mean, low, high = bars[name]
            xs.append(g + (i - (len(names) - 1) / 2) * width)
            heights.append(mean)
            errors.append((mean - low if low is not None else 0.0, high - mean if high is not None else 0.0))
        yerr = np.array(errors).T if errors else None
        ax.bar(xs, heights, width, color=scheduler_color(name), label=name, yerr=yerr, capsize=3)
    ax.set_xticks(range(len(groups)), list(groups))
    label_axes(ax, "", ylabel)
    return save(fig, path, note)
