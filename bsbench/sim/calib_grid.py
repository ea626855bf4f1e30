"""The calibration grid: synthetic step plans covering every kind of work the runner does.

Prefills of several sizes (alone and several per step), later prompt chunks over a
cached context, decode batches x context lengths (including one whose contexts are
spread enough to split into several gather groups), padded rectangles (prefill with
left padding, and decode), and mixed steps (decode + prefill in one forward).

The grid is deliberately not a workload: sim validation replays real workloads
through the schedulers, whose steps are never these plans.

Block tables are consecutive block ids wrapping around the cache, so a grid point
may need more slots than the cache holds: rows then share blocks, which changes
nothing about the time a step takes (tokens are synthetic too).
"""

from __future__ import annotations

from dataclasses import dataclass

from bsbench.engine.plan import Layout, SeqChunk, StepPlan


@dataclass(slots=True, frozen=True)
class Row:
    """One chunk of a synthetic plan: `tokens` new tokens at `start_pos`, the first `pad_len` slots padding."""

    tokens: int
    start_pos: int = 0
    pad_len: int = 0
    sample: bool = True


@dataclass(slots=True, frozen=True)
class GridPoint:
    name: str
    layout: Layout
    rows: tuple[Row, ...]


def _decode(batch: int, context: int) -> tuple[Row, ...]:
    return tuple(Row(1, context) for _ in range(batch))


def _padded_prefill(lengths: tuple[int, ...]) -> tuple[Row, ...]:
    width = max(lengths)
    return tuple(Row(width, 0, width - n) for n in lengths)


def _padded_decode(batch: int, width: int, step: int) -> tuple[Row, ...]:
    return tuple(Row(1, width + step, (i * 7) % (width // 2)) for i in range(batch))


def default_grid() -> list[GridPoint]:
    """About 40 plans; the tiny model on 2 CPU cores measures them in seconds."""
    grid: list[GridPoint] = []
    for n in (16, 64, 128, 256, 512, 1024):
        grid.append(GridPoint(f"prefill-{n}", "packed", (Row(n),)))
    grid.append(GridPoint("prefill-4x64", "packed", tuple(Row(64) for _ in range(4))))
    grid.append(GridPoint("prefill-4x256", "packed", tuple(Row(256) for _ in range(4))))
    grid.append(GridPoint("chunk-256@256", "packed", (Row(256, 256, sample=False),)))
    grid.append(GridPoint("chunk-128@768", "packed", (Row(128, 768),)))
    for batch in (1, 4, 16, 48):
        for context in (32, 256, 1024):
            grid.append(GridPoint(f"decode-{batch}x{context}", "packed", _decode(batch, context)))
    spread = tuple(Row(1, 16 + 64 * i) for i in range(16))
    grid.append(GridPoint("decode-16-spread", "packed", spread))
    for lengths in ((40, 64, 17, 64), (100, 128, 64, 90, 128, 7, 128, 33), tuple(range(8, 33, 2))):
        grid.append(GridPoint(f"padded-prefill-{len(lengths)}x{max(lengths)}", "padded", _padded_prefill(lengths)))
    for batch, width, step in ((4, 128, 10), (8, 512, 3), (16, 64, 40), (32, 256, 20)):
        grid.append(GridPoint(f"padded-decode-{batch}x{width + step}", "padded", _padded_decode(batch, width, step)))
    grid.append(GridPoint("mixed-16x256+prefill-128", "packed", _decode(16, 256) + (Row(128),)))
    grid.append(GridPoint("mixed-8x512+chunk-256@256", "packed", _decode(8, 512) + (Row(256, 256),)))
    grid.append(GridPoint("mixed-32x64+prefill-64+32", "packed", _decode(32, 64) + (Row(64), Row(32))))
    grid.append(GridPoint("mixed-4x1024+prefill-512", "packed", _decode(4, 1024) + (Row(512),)))
    return grid


def synthetic_plan(point: GridPoint, block_size: int, num_blocks: int, vocab_size: int) -> StepPlan:
    """The StepPlan of a grid point on a cache of `num_blocks` blocks (see the module docstring)."""
    chunks: list[SeqChunk] = []
    next_block = 0
    for i, row in enumerate(point.rows):
        end = row.start_pos + row.tokens
        nblk = -(-end // block_size)
        table = [(next_block + j) % num_blocks for j in range(nblk)]
        next_block = (next_block + nblk) % num_blocks
        tokens = [4 + (31 * i + j) % (vocab_size - 4) for j in range(row.tokens)]
        chunks.append(SeqChunk(f"{point.name}/{i}", tokens, row.start_pos, table, row.sample, row.pad_len))
    pad_tokens = sum(row.pad_len for row in point.rows if row.start_pos == 0)
    return StepPlan(point.layout, chunks, pad_tokens=pad_tokens)
