"""One shared int object per token id: a run holds millions of ids (prompts, simulated outputs), and Python
makes a new 28-byte object for each id above 256 that a parser or an arithmetic result produces. Mapping them
onto one table of ints keeps 8 bytes (a pointer) per id instead of 36, with the same values."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

TABLE_SIZE = 1 << 17  # every vocabulary up to 131,072 ids (Llama 3's is 128,256); larger ids are kept as given


@cache
def shared_table() -> list[int]:
    """The ints 0 .. TABLE_SIZE - 1, made once (on first use: 4 MB)."""
    return list(range(TABLE_SIZE))


def shared_ids(ids: Iterable[int]) -> tuple[int, ...]:
    """`tuple(ids)`, each id the table's object of its value (see the module docstring)."""
    table = shared_table()
    return tuple(table[i] if 0 <= i < TABLE_SIZE else i for i in ids)
