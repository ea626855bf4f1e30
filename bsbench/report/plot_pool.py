"""Many groups' comparison figures at once, drawn in worker processes when there are enough to pay for them.

matplotlib draws one figure in 0.1-0.5 s of one core, and a sweep's page has
four per group: drawing is most of a report's time and the figures are
independent, so they are spread over processes (threads would share one
interpreter lock). A worker receives a group's plot data (plot_data.GroupPlot,
small arrays), never a record, and writes one PNG; the caller gets the same
paths in the same order as the serial path (`plots.render_group`), which is
kept for few figures, one core, or workers=1.

Start method, chosen by measurement (a sweep page's 24 figures, 2 shared
cores; serial 7.6 s): 'fork' 4.0-5.8 s, its workers inherit the imported
matplotlib and start at once; 'spawn' 6.7-10 s, every worker pays an
interpreter start and the imports (about 0.7 s of one core) before it draws;
'forkserver' 6.4-7.8 s, the imports once in its server. So 'fork', with the
parent's objects frozen out of the garbage collector first (gc.freeze: a
collection in a worker would otherwise touch, and so copy, every page of the
parent's records). A process running other threads (the progress display)
must not fork (a lock held by one of them stays held in the child): there it
is 'forkserver'.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from bsbench.report import plots
from bsbench.report.plot_data import GroupPlot

# Below this many figures a pool's start (a process and the matplotlib import) costs about what it saves.
MIN_PARALLEL_FIGURES = 6
Job = tuple[GroupPlot, Path, str]  # a group's plot data, the folder for its PNGs, their file-name prefix


def default_workers() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def render_groups(jobs: Sequence[Job], workers: int | None = None) -> list[list[Path]]:
    """Each job's PNGs (plots.render_group: same names, same order), drawn by up to `workers` processes
    (default: the usable cores), serially when there are fewer than MIN_PARALLEL_FIGURES figures or one
    worker."""
    figures = [(i, name) for i, (group, _, _) in enumerate(jobs) for name in plots.figure_names(group)]
    count = min(workers or default_workers(), len(figures))
    if count < 2 or len(figures) < MIN_PARALLEL_FIGURES:
        return [plots.render_group(group, out, prefix) for group, out, prefix in jobs]
    method = start_method()
    context = multiprocessing.get_context(method)
    if method == "forkserver":
        context.set_forkserver_preload(["bsbench.report.plots"])
    out: list[list[Path]] = [[] for _ in jobs]
    gc.freeze()
    try:
        with ProcessPoolExecutor(max_workers=count, mp_context=context) as pool:
            futures = [(i, pool.submit(plots.draw_figure, jobs[i][0], name,
                                       plots.figure_path(jobs[i][1], jobs[i][2], name))) for i, name in figures]
            for i, future in futures:
                out[i].append(future.result())
    finally:
        gc.unfreeze()
    return out


def start_method() -> str:
    """'fork' where this process runs one thread and can fork, else 'forkserver' (module docstring)."""
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        return "fork"
    return "forkserver" if "forkserver" in methods else "spawn"
