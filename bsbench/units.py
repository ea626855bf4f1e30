"""Parsing of human-friendly quantities given on the command line or in spec files."""

from __future__ import annotations

import math
import re

from bsbench.errors import BsbenchError

_BYTE_UNITS = {
    "": 1, "b": 1,
    "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
    "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40,
}


MAX_BYTES = 2**50  # 1 PiB: no device or host holds more; anything larger is a typo


def parse_bytes(text: str | int) -> int:
    """'512MiB' -> 536870912. Decimal (MB) and binary (MiB, M) units; a bare number is bytes.

    The size must be > 0 and at most MAX_BYTES (1 PiB)."""
    value: float | int
    if isinstance(text, int):
        value = text
    else:
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([A-Za-z]*)\s*", str(text)[:100])
        if not match or match.group(2).lower() not in _BYTE_UNITS:
            raise BsbenchError(f"cannot read {text!r} as a size in bytes (examples: 512MiB, 2GiB, 1e9 is not allowed)")
        value = float(match.group(1)) * _BYTE_UNITS[match.group(2).lower()]
    if not value >= 1:
        raise BsbenchError(f"size must be at least 1 byte, got {text!r}")
    if value > MAX_BYTES:
        raise BsbenchError(f"size {text!r} is over the 1 PiB limit")
    return int(value)


def format_rate(rate: float) -> str:
    """The rate as it appears in file names and tables: 'inf', '8', '2.5'."""
    if math.isinf(rate):
        return "inf"
    return f"{rate:g}"


def format_percent(fraction: float | None, missing: str = "-") -> str:
    """0.125 -> '12.5%'; None -> `missing`."""
    return missing if fraction is None else f"{100 * fraction:.1f}%"


def format_duration(seconds: float, *, signed: bool = False) -> str:
    """1.234 -> '1.23 s', 0.0456 -> '45.6 ms', 0.0000123 -> '0.01 ms'; `signed` adds '+' to a positive value."""
    sign = "+" if signed and seconds > 0 else ""
    if abs(seconds) >= 1:
        return f"{sign}{seconds:,.2f} s"
    ms = seconds * 1000
    return f"{sign}{ms:.1f} ms" if abs(ms) >= 1 else f"{sign}{ms:.2f} ms"


def format_bytes(num: int) -> str:
    """536870912 -> '512.0 MiB'."""
    value = float(num)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.1f} {unit}" if unit != "B" else f"{int(value)} B"
        value /= 1024
    return f"{value:.1f} TiB"
