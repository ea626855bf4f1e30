"""The paper setup as named parameters: every value the paper does not give is chosen here, with its reason."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True, frozen=True)
class Param:
    """One choice of the setup: `value` is what the runs use, `reason` why (the report prints both)."""

    name: str
    value: Any
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "reason": self.reason}


class Params:
    """The named parameters of one reproduction, in the order they were declared; `[name]` is the value."""

    def __init__(self, params: Iterable[Param]) -> None:
        self._params: dict[str, Param] = {}
        for param in params:
            if param.name in self._params:
                raise ValueError(f"parameter {param.name!r} declared twice")
            self._params[param.name] = param

    def __getitem__(self, name: str) -> Any:
        return self._params[name].value

    def get(self, name: str, default: Any = None) -> Any:
        return self._params[name].value if name in self._params else default

    def __iter__(self):
        return iter(self._params.values())

    def rows(self) -> list[list[str]]:
        """[name, value, reason] per parameter, for the console and the HTML tables."""
        return [[p.name, value_text(p.value), p.reason] for p in self]

    def to_list(self) -> list[dict[str, Any]]:
        return [p.to_dict() for p in self]


def value_text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(value_text(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
