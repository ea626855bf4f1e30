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


def parse_bytes(text: str | int) -> int:
    """'512MiB' -> 536870912. Decimal (MB) and binary (MiB, M) units; a bare number is bytes."""
    if isinstance(text, int):
        value = text
    else:
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([A-Za-z]*)\s*", str(text))
        if not match or match.group(2).lower() not in _BYTE_UNITS:
            raise BsbenchError(f"cannot read {text!r} as a size in bytes (examples: 512MiB, 2GiB, 1e9 is not allowed)")
        value = int(float(match.group(1)) * _BYTE_UNITS[match.group(2).lower()])
    if value <= 0:
        raise BsbenchError(f"size must be positive, got {text!r}")
    return value


def parse_rate(text: str | float) -> float:
    """A request rate in requests/s: a positive number, or 'inf' for every request at t = 0."""
    try:
        rate = float(text)
    except (TypeError, ValueError):
        raise BsbenchError(f"rate must be a positive number or 'inf', got {text!r}") from None
    if math.isnan(rate) or rate <= 0:
        raise BsbenchError(f"rate must be > 0 (or 'inf'), got {text!r}")
    return rate


def format_rate(rate: float) -> str:
    """The rate as it appears in file names and tables: 'inf', '8', '2.5'."""
    if math.isinf(rate):
        return "inf"
    return f"{rate:g}"


def format_percent(fraction: float | None, missing: str = "-") -> str:
    """0.125 -> '12.5%'; None -> `missing`."""
    return missing if fraction is None else f"{100 * fraction:.1f}%"


def format_bytes(num: int) -> str:
    """536870912 -> '512.0 MiB'."""
    value = float(num)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.1f} {unit}" if unit != "B" else f"{int(value)} B"
        value /= 1024
    return f"{value:.1f} TiB"
