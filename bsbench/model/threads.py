"""How many torch intra-op threads a CPU run uses when none are asked for.

torch's own default is one thread per core. Its OpenMP threads spin-wait for each other at every operation,
so when other processes share the cores (a busy CI box, a laptop compiling) a step waits for descheduled
threads and a run collapses: on a 2-core machine at load 4, `bsbench run` took 295 s with torch's default
against 101 s with one thread. Half the usable cores, at least one, keeps headroom and costs little on a
quiet machine; on a GPU the kernels run on the device and torch's default stands.
"""

from __future__ import annotations

import os


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask: a container's or taskset's limit), else os.cpu_count()."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # no affinity API on this platform
        return os.cpu_count() or 1


def default_cpu_threads() -> int:
    """The intra-op threads of a CPU run without --threads: max(1, usable cores // 2), so 1 on 2 cores."""
    return max(1, usable_cores() // 2)


def cpu_threads(requested: int | None, device_type: str) -> int | None:
    """The thread count to set: `requested` when given, the CPU default on a CPU, None (torch's) on a GPU."""
    if requested is not None:
        return requested
    return default_cpu_threads() if device_type == "cpu" else None
