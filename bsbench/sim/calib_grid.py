"""The calibration grid: synthetic step plans covering every kind of work the runner does.

Two parts (`default_grid`):
- fixed points: prefills of several sizes (alone and several per step), later prompt
  chunks over a cached context, decode batches x context lengths (including one whose
  contexts are spread enough to split into several gather groups), padded rectangles
  (prefill with left padding, up to the 24x256 a burst makes of a static or bucket
  batch, and decode), and mixed steps (decode + prefill in one
  forward);
- sampled points (`sampled_points`, a fixed seed): steps shaped like a scheduler's,
  drawn log-uniformly so that small steps, where real runs spend most of theirs, are
  covered as densely as large ones: decode batches of 1-48 rows with contexts spread
  around a base, the same with one or two prefills or later chunks mixed in, packed
  prefills, padded prefill rectangles with random left padding, and padded decode
  steps with finished (unsampled) rows.

The grid is deliberately not a workload: sim validation replays real workloads
through the schedulers, whose steps are never these plans.

Block tables are laid out as the engine's block manager hands them out in a run
(each sequence's blocks consecutive, one sequence after another), from a start
drawn afresh for every `seed` (the calibration draws one per pass). The layout
matters: a 24-row decode of the tiny CPU model is 12-15% faster from consecutive
tables than from tables scattered at random (`benchmarks/block_layout.py`), and a
run's tables are consecutive. A plan that needs more blocks than the cache holds wraps
around it (rows then share blocks, which changes nothing about the time a step
takes; tokens are synthetic too).
"""

from __future__ import annotations

import math
import random
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


def _ragged(batch: int, width: int) -> tuple[int, ...]:
    """`batch` prompt lengths up to `width` (the first exactly `width`), spread by a fixed stride."""
    return tuple(width - (i * 97) % width for i in range(batch))


def _padded_decode(batch: int, width: int, step: int) -> tuple[Row, ...]:
    return tuple(Row(1, width + step, (i * 7) % (width // 2)) for i in range(batch))


SAMPLED_POINTS = 80
SAMPLED_SEED = 20261122


def default_grid() -> list[GridPoint]:
    """The fixed points and `SAMPLED_POINTS` sampled ones; the tiny model on 2 CPU cores measures a pass in ~5 s."""
    return fixed_points() + sampled_points(SAMPLED_POINTS, SAMPLED_SEED)


def fixed_points() -> list[GridPoint]:
    """41 hand-picked plans, from a 16-token prefill to a 24x256 padded prefill rectangle and a decode of 48 rows at
    context 1024."""
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
    # The rectangles a static or bucket batch forms from a burst of long prompts: beyond the sampled corner, and a
    # fit without them under-priced a 24x256 rectangle of the tiny CPU model by 16% (its matmuls and score
    # tensors outgrow the caches, so the time per token and per pair rises).
    for batch, width in ((8, 256), (16, 256), (24, 256), (32, 128)):
        grid.append(GridPoint(f"padded-prefill-{batch}x{width}", "padded", _padded_prefill(_ragged(batch, width))))
    # padded decode steps down to one row: the steps uellm and static take most at a moderate rate
    for batch, width, step in ((1, 32, 8), (1, 256, 10), (2, 256, 5), (4, 128, 10), (8, 512, 3), (16, 64, 40),
                               (32, 256, 20)):
        grid.append(GridPoint(f"padded-decode-{batch}x{width + step}", "padded", _padded_decode(batch, width, step)))
    grid.append(GridPoint("mixed-16x256+prefill-128", "packed", _decode(16, 256) + (Row(128),)))
    grid.append(GridPoint("mixed-8x512+chunk-256@256", "packed", _decode(8, 512) + (Row(256, 256),)))
    grid.append(GridPoint("mixed-32x64+prefill-64+32", "packed", _decode(32, 64) + (Row(64), Row(32))))
    grid.append(GridPoint("mixed-4x1024+prefill-512", "packed", _decode(4, 1024) + (Row(512),)))
    return grid


def sampled_points(count: int, seed: int) -> list[GridPoint]:
    """`count` scheduler-like steps drawn with `seed` (see the module docstring); deterministic."""
    rng = random.Random(seed)

    def log_uniform(lo: int, hi: int) -> int:
        return round(math.exp(rng.uniform(math.log(lo), math.log(hi))))

    points: list[GridPoint] = []
    kinds = ("decode", "mixed", "prefill", "padded-prefill", "padded-decode")
    for n in range(count):
        kind = kinds[n % len(kinds)]
        rows: tuple[Row, ...]
        if kind in ("decode", "mixed"):
            base = log_uniform(8, 900)
            rows = tuple(Row(1, max(1, min(1024, round(base * rng.uniform(0.3, 1.7)))))
                         for _ in range(log_uniform(1, 48)))
            if kind == "mixed":
                for _ in range(rng.choice((1, 1, 2))):
                    if rng.random() < 0.7:
                        rows += (Row(log_uniform(2, 512)),)
                    else:
                        rows += (Row(log_uniform(16, 256), log_uniform(16, 512), sample=rng.random() < 0.5),)
        elif kind == "prefill":
            rows = tuple(Row(log_uniform(2, 1024)) for _ in range(rng.choice((1, 1, 1, 2, 4))))
        elif kind == "padded-prefill":
            width = log_uniform(4, 256)
            lengths = [width] + [rng.randint(1, width) for _ in range(log_uniform(1, 32) - 1)]
            rows = _padded_prefill(tuple(lengths))
        else:
            width = log_uniform(4, 512)
            start = width + log_uniform(1, 128)
            rows = tuple(Row(1, start, rng.randint(0, width // 2), sample=rng.random() < 0.9)
                         for _ in range(log_uniform(1, 32)))
        layout: Layout = "padded" if kind.startswith("padded") else "packed"
        points.append(GridPoint(f"sampled-{n}-{kind}", layout, rows))
    return points


def _block_tables(sizes: list[int], num_blocks: int, seed: int) -> list[list[int]]:
    """Tables of `sizes` blocks as a fresh block manager hands them out (one table after another, consecutive ids)
    from a start drawn by `seed`, wrapping around the cache (rows then share blocks if they do not all fit)."""
    first = random.Random(seed).randrange(num_blocks)
    tables, at = [], first
    for size in sizes:
        tables.append([(at + j) % num_blocks for j in range(size)])
        at += size
    return tables


def synthetic_plan(point: GridPoint, block_size: int, num_blocks: int, vocab_size: int, seed: int = 0) -> StepPlan:
    """The StepPlan of a grid point on a cache of `num_blocks` blocks, its block tables drawn with `seed`."""
    chunks: list[SeqChunk] = []
    tables = _block_tables([-(-(row.start_pos + row.tokens) // block_size) for row in point.rows], num_blocks, seed)
    for i, (row, table) in enumerate(zip(point.rows, tables)):
        tokens = [4 + (31 * i + j) % (vocab_size - 4) for j in range(row.tokens)]
        chunks.append(SeqChunk(f"{point.name}/{i}", tokens, row.start_pos, table, row.sample, row.pad_len))
    pad_tokens = sum(row.pad_len for row in point.rows if row.start_pos == 0)
    return StepPlan(point.layout, chunks, pad_tokens=pad_tokens)
