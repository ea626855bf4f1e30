"""Rows read on first use: a record read from disk holds these instead of lists, so that a report that only
needs the header (compare's summary tables, a sweep's grid, the gate) never reads or builds a row."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, Generic, TypeVar, overload

T = TypeVar("T")


class LazyRows(Sequence[T], Generic[T]):
    """A read-only sequence of `count` rows that `load` builds the first time an item is asked for; its
    length needs no loading. `load` must return exactly `count` rows (ValueError otherwise)."""

    __slots__ = ("_count", "_load", "_rows")

    def __init__(self, count: int, load: Callable[[], list[T]]) -> None:
        self._count = count
        self._load: Callable[[], list[T]] | None = load
        self._rows: list[T] | None = None

    @property
    def loaded(self) -> bool:
        return self._rows is not None

    def rows(self) -> list[T]:
        if self._rows is None:
            assert self._load is not None
            rows = self._load()
            if len(rows) != self._count:
                raise ValueError(f"read {len(rows)} rows where the header says {self._count}")
            self._rows, self._load = rows, None
        return self._rows

    def __len__(self) -> int:
        return self._count

    def __bool__(self) -> bool:
        return self._count > 0

    @overload
    def __getitem__(self, index: int) -> T: ...

    @overload
    def __getitem__(self, index: slice) -> list[T]: ...

    def __getitem__(self, index: int | slice) -> T | list[T]:
        return self.rows()[index]

    def __iter__(self) -> Iterator[T]:
        return iter(self.rows())

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, LazyRows):
            other = other.rows()
        return isinstance(other, list) and self.rows() == other

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"LazyRows({self._count} rows, {'loaded' if self.loaded else 'not read yet'})"
