"""What a value given by the user may be: one rule per kind, for flags, spec files and replay lines alike.

Every number, size, share or choice that comes from outside (a CLI flag, a
TOML spec key, a field of a JSONL replay line) passes one of these rules, so
NaN, infinities, wrong types and absurd sizes are refused at the boundary,
never deep inside a run. A rule's `check(value)` returns the value converted
(e.g. '8' -> 8.0) or raises `Invalid` (a ValueError) whose text is the problem without
the name ("must be a number > 0, got 'nan'"); `validate(rule, value, name)`
turns that into a one-line `BsbenchError` naming the value, and
`bsbench.commands._types.param_type` into a click error naming the flag.

Ceilings are far above any real use and far below what would exhaust memory
or overflow a timer: they keep `-n 1e14` or a 1e29 TiB budget from being
tried at all.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bsbench.errors import BsbenchError
from bsbench.units import parse_bytes

MAX_REQUESTS = 1_000_000
MAX_TOKENS = 1 << 20  # one prompt or output: a 1M-token context
MAX_SEED = 2**63 - 1
MAX_SECONDS = 1e8  # about three years: any later arrival or wait would overflow nothing but is nonsense
MAX_MAGNITUDE = 1e9  # generic bound on a float flag whose meaning the parser does not know
MAX_INT_FLAG = 2**31 - 1  # generic bound on an integer flag whose meaning the parser does not know


class Invalid(ValueError):
    """A value a rule refuses; its text is the problem without the value's name ("must be ..., got ...")."""


class Rule(Protocol):
    """A value rule: `check` converts a raw value or raises Invalid(problem); `describe` says what is allowed."""

    def check(self, value: Any) -> Any: ...

    def describe(self) -> str: ...


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _number(value: Any, what: str, numbers_only: bool) -> float:
    """A float from an int, float or (unless `numbers_only`) numeric string; bools and other types are refused."""
    kinds = (int, float) if numbers_only else (int, float, str)
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise Invalid(f"must be {what}, got {_shown(value)}")
    try:
        return float(value)
    except (ValueError, OverflowError):
        raise Invalid(f"must be {what}, got {_shown(value)}") from None


def _num_text(value: float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"


def _bound_text(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None and low == -high and not (low_open or high_open):
        return f"of magnitude <= {_num_text(high)}"
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {_num_text(low)}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {_num_text(high)}")
    return " and ".join(parts)


@dataclass(slots=True, frozen=True)
class Real:
    """A real number in [low, high] (ends open when asked); NaN always refused, +inf only with `allow_inf`."""

    low: float | None = None
    high: float | None = MAX_MAGNITUDE
    low_open: bool = False
    high_open: bool = False
    allow_inf: bool = False
    numbers_only: bool = False  # JSON fields: "5" is a string, not a number

    def describe(self) -> str:
        bounds = _bound_text(self.low, self.high, self.low_open, self.high_open)
        text = ("a number" if self.allow_inf else "a finite number") + (f" {bounds}" if bounds else "")
        return text + (" (or inf)" if self.allow_inf else "")

    def check(self, value: Any) -> float:
        number = _number(value, self.describe(), self.numbers_only)
        if math.isnan(number) or (math.isinf(number) and not (self.allow_inf and number > 0)):
            raise Invalid(f"must be {self.describe()}, got {_shown(value)}")
        if math.isinf(number):
            return number
        too_low = self.low is not None and (number <= self.low if self.low_open else number < self.low)
        too_high = self.high is not None and (number >= self.high if self.high_open else number > self.high)
        if too_low or too_high:
            raise Invalid(f"must be {self.describe()}, got {_shown(value)}")
        return number


@dataclass(slots=True, frozen=True)
class Integer:
    """A whole number in [low, high]: an int, an integral float (TOML 1e3) or a decimal string; not a bool."""

    low: int | None = None
    high: int | None = MAX_INT_FLAG
    numbers_only: bool = False  # JSON fields: "5" and 5.0 are not integers

    def describe(self) -> str:
        bounds = _bound_text(self.low, self.high, False, False)
        return "an integer" + (f" {bounds}" if bounds else "")

    def check(self, value: Any) -> int:
        if isinstance(value, bool):
            raise Invalid(f"must be {self.describe()}, got {_shown(value)}")
        if isinstance(value, int):
            number = value
        elif self.numbers_only:
            raise Invalid(f"must be {self.describe()}, got {_shown(value)}")
        elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
            number = int(value)
        elif isinstance(value, str) and value.strip().lstrip("+-").isdigit() and len(value.strip()) <= 30:
            number = int(value.strip())
        else:
            raise Invalid(f"must be {self.describe()}, got {_shown(value)}")
        if (self.low is not None and number < self.low) or (self.high is not None and number > self.high):
            raise Invalid(f"must be {self.describe()}, got {_shown(value)}")
        return number


@dataclass(slots=True, frozen=True)
class Choice:
    """One of a fixed set of strings."""

    options: tuple[str, ...]

    def describe(self) -> str:
        return "one of " + ", ".join(self.options)

    def check(self, value: Any) -> str:
        if not isinstance(value, str) or value not in self.options:
            raise Invalid(f"must be {self.describe()}, got {_shown(value)}")
        return value


@dataclass(slots=True, frozen=True)
class Text:
    """A string (a name, a path, a source); `nonempty` refuses ''."""

    nonempty: bool = False

    def describe(self) -> str:
        return "a non-empty string" if self.nonempty else "a string"

    def check(self, value: Any) -> str:
        if not isinstance(value, str) or (self.nonempty and not value.strip()):
            raise Invalid(f"must be {self.describe()}, got {_shown(value)}")
        return value


@dataclass(slots=True, frozen=True)
class Flag:
    """true or false, as a real boolean (a spec's `strict = "yes"` is refused, not read as true)."""

    def describe(self) -> str:
        return "true or false"

    def check(self, value: Any) -> bool:
        if not isinstance(value, bool):
            raise Invalid(f"must be {self.describe()}, got {_shown(value)}")
        return value


@dataclass(slots=True, frozen=True)
class ByteSize:
    """A size in bytes: an int or '512MiB' (see units.parse_bytes), at most units.MAX_BYTES."""

    def describe(self) -> str:
        return "a size such as 512MiB or 2GiB"

    def check(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise Invalid(f"must be {self.describe()}, got {_shown(value)}")
        try:
            return parse_bytes(value)
        except BsbenchError as exc:
            raise Invalid(str(exc)) from None


RATE = Real(low=0, low_open=True, high=None, allow_inf=True)
POSITIVE = Real(low=0, low_open=True)
SHARE = Real(low=0, high=1)
SECONDS = Real(low=0, high=MAX_SECONDS)
REQUEST_COUNT = Integer(1, MAX_REQUESTS)
TOKEN_COUNT = Integer(1, MAX_TOKENS)
TOKEN_BOUND = Integer(0, MAX_TOKENS)
SEED = Integer(0, MAX_SEED)


def parse_rate(value: Any) -> float:
    """A request rate in requests/s: a number > 0, or inf (every request at t = 0)."""
    return validate(RATE, value, "rate")


def check_named(rule: Rule, value: Any, name: str) -> Any:
    """`rule.check(value)`, with the refusal's text prefixed by `name` (still an Invalid, for callers that
    count malformed records instead of failing)."""
    try:
        return rule.check(value)
    except Invalid as exc:
        raise Invalid(f"{name} {exc}") from None


def validate(rule: Rule, value: Any, name: str) -> Any:
    """`rule.check(value)`, with a failure as one line naming the value: 'NAME must be ..., got ...'."""
    try:
        return rule.check(value)
    except Invalid as exc:
        raise BsbenchError(f"{name} {exc}") from None


def validate_all(
    rules: dict[str, Rule], values: dict[str, Any], where: str, skip: Sequence[str] = ()
) -> dict[str, Any]:
    """Every non-None value checked by the rule of its key; errors read 'WHERE: KEY must be ...'."""
    out = dict(values)
    for key, value in values.items():
        if value is None or key in skip or key not in rules:
            continue
        try:
            out[key] = rules[key].check(value)
        except Invalid as exc:
            raise BsbenchError(f"{where}: {key} {exc}") from None
    return out
