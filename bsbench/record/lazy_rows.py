"""Rows read on first use: a record read from disk holds these instead of lists, so that a report that only
needs the header (compare's summary tables, a sweep's grid, the gate) never reads or builds a row.

Loaded rows are held while they are among the most recently loaded, up to HELD_WEIGHT (rows plus their token
times, across every LazyRows); older ones are let go and read again if asked for again. A report that walks a
folder of records one at a time (compare over 200 runs) so holds a few records' rows, not the folder's.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Generic, TypeVar, overload

T = TypeVar("T")

HELD_WEIGHT = 1_000_000  # about 35 MB of Python row objects and token times


class _Held:
    """The loaded rows kept across all LazyRows, oldest first, by weight."""

    def __init__(self) -> None:
        self.rows: OrderedDict[int, tuple[weakref.ref[LazyRows[Any]], int]] = OrderedDict()
        self.weight = 0

    def keep(self, owner: LazyRows[Any], weight: int) -> None:
        self.rows[id(owner)] = (weakref.ref(owner), weight)
        self.weight += weight
        while self.weight > HELD_WEIGHT and len(self.rows) > 1:
            _, (oldest, dropped) = self.rows.popitem(last=False)
            self.weight -= dropped
            held = oldest()
            if held is not None:
                held._rows = None

    def touch(self, owner: LazyRows[Any]) -> None:
        if id(owner) in self.rows:
            self.rows.move_to_end(id(owner))

    def forget(self, owner: LazyRows[Any]) -> None:
        entry = self.rows.pop(id(owner), None)
        if entry is not None:
            self.weight -= entry[1]


HELD = _Held()


class LazyRows(Sequence[T], Generic[T]):
    """A read-only sequence of `count` rows that `load` builds when an item is asked for and none are held; its
    length needs no loading. `load` must return exactly `count` rows (ValueError otherwise); `weigh` says what
    the loaded rows weigh against HELD_WEIGHT (default: their number)."""

    __slots__ = ("__weakref__", "_count", "_load", "_rows", "_weigh")

    def __init__(self, count: int, load: Callable[[], list[T]], weigh: Callable[[list[T]], int] = len) -> None:
        self._count = count
        self._load = load
        self._weigh = weigh
        self._rows: list[T] | None = None

    @property
    def loaded(self) -> bool:
        """Whether the rows are held now."""
        return self._rows is not None

    def rows(self) -> list[T]:
        if self._rows is None:
            rows = self._load()
            if len(rows) != self._count:
                raise ValueError(f"read {len(rows)} rows where the header says {self._count}")
            self._rows = rows
            HELD.keep(self, self._weigh(rows))
        else:
            HELD.touch(self)
        return self._rows

    def __del__(self) -> None:
        HELD.forget(self)

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
        return f"LazyRows({self._count} rows, {'held' if self.loaded else 'not held'})"
