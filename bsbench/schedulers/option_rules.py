"""Policy options: one validation per policy, one exception type.

A policy's options dataclass subclasses `PolicyOptions` and states, in its
`validate()`, the allowed values of its options through `check_fields`:

- every field's type comes from its annotation (bool, int, float, str), and a
  float must be finite;
- a field with `choices` metadata must hold one of them;
- every int and float field must be given an `Interval` (a field left out is
  a bug in the policy, raised as TypeError, so no option goes unchecked).

`bench.build_scheduler_options` calls `validate()` once, before any model is
loaded. A bad value raises `OptionsError`, a user error (one line, exit 2)
that names the option as its command-line flag.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from bsbench.errors import OptionsError


@dataclass(frozen=True, slots=True)
class Interval:
    """A closed, open or half-open range of numbers; either end may be unbounded."""

    low: float = -math.inf
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, value: float) -> bool:
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below

    def __str__(self) -> str:
        if self.high == math.inf:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        if self.low == -math.inf:
            return f"{'<' if self.high_open else '<='} {self.high:g}"
        return f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"


AT_LEAST_ONE = Interval(1)
NON_NEGATIVE = Interval(0)
POSITIVE = Interval(0, low_open=True)
ANY_NUMBER = Interval()
UNIT_OPEN = Interval(0, 1, low_open=True, high_open=True)  # (0, 1)


class PolicyOptions:
    """Base of every policy's options dataclass; `validate()` raises OptionsError on a bad value."""

    __slots__ = ()
    if TYPE_CHECKING:  # every subclass is a dataclass: dataclasses.fields() takes the class
        __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]

    def validate(self) -> None:
        check_fields(self, {})


def flag(name: str) -> str:
    """The command-line flag of option `name`."""
    return "--" + name.replace("_", "-")


def invalid(name: str, value: Any, expected: str) -> OptionsError:
    """The one error for an option outside its allowed values."""
    return OptionsError(f"{flag(name)} must be {expected}, got {value!r}")


def check_fields(options: Any, ranges: dict[str, Interval]) -> None:
    """Check every field of `options` by type, choices and its range in `ranges` (see the module docstring)."""
    hints = typing.get_type_hints(type(options))
    for f in dataclasses.fields(options):
        value, kind = getattr(options, f.name), hints[f.name]
        if kind is bool:
            if not isinstance(value, bool):
                raise invalid(f.name, value, "true or false")
            continue
        if kind in (int, float):
            if f.name not in ranges:
                raise TypeError(f"{type(options).__name__}.validate() gives no range for {f.name}")
            if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int):
                raise invalid(f.name, value, "an integer" if kind is int else "a number")
            if not math.isfinite(value):
                raise invalid(f.name, value, "a finite number")
            if value not in ranges[f.name]:
                raise invalid(f.name, value, str(ranges[f.name]))
        elif kind is str and not isinstance(value, str):
            raise invalid(f.name, value, "a string")
        choices = f.metadata.get("choices")
        if choices and value not in choices:
            raise invalid(f.name, value, "one of " + ", ".join(map(str, choices)))
