"""Keep freed host memory in the process (glibc malloc), so a step does not pay for page faults.

With glibc's defaults, every large temporary of a CPU forward (activations, the LM
head's packed operands, attention masks) above the dynamic mmap threshold is mapped
fresh and unmapped when freed, and the heap top is trimmed back to the OS: the next
step touches new pages and takes a minor fault per 4 KiB page. How many faults a step
takes then depends on what the previous steps freed, so the same plan is slower inside
an engine run than in a calibration loop that repeats it. Told to keep memory (no mmap
below 2 GiB, no trimming, a 512 MiB top pad), malloc reuses the pages it already has:
calibration and real runs see the same steady allocator.

`tune_malloc()` is called when a real model runner starts. It is a no-op off glibc
(macOS, musl, Windows) and when `BSBENCH_MALLOC_TUNING=off` (then glibc's own
MALLOC_*_ environment variables, if any, rule). It never raises.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
from collections.abc import Callable

ENV = "BSBENCH_MALLOC_TUNING"

# mallopt parameters (glibc malloc.h) and the values we set
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3
SETTINGS: dict[str, tuple[int, int]] = {
    "mmap_threshold": (M_MMAP_THRESHOLD, 2**31 - 1),  # mallopt takes an int: the largest it accepts
    "trim_threshold": (M_TRIM_THRESHOLD, 2**31 - 1),
    "top_pad": (M_TOP_PAD, 512 * 2**20),
}

MalloptFn = Callable[[int, int], int]


def tuning_disabled() -> bool:
    return os.environ.get(ENV, "").strip().lower() in {"off", "0", "no", "false"}


def _glibc_mallopt() -> MalloptFn | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        fn = libc.mallopt
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


def tune_malloc(mallopt: MalloptFn | None = None) -> dict[str, int]:
    """Apply `SETTINGS` through `mallopt` (default: glibc's); returns the settings it accepted (empty: none).

    Idempotent. `mallopt` is injectable for tests; without one, glibc's is used when there is one.
    """
    if tuning_disabled():
        return {}
    fn = mallopt if mallopt is not None else _glibc_mallopt()
    if fn is None:
        return {}
    return {name: value for name, (param, value) in SETTINGS.items() if fn(param, value) == 1}
