"""BucketServe's bucket manager and memory model, kept out of the policy file (bucket.py).

Pure bookkeeping, no engine calls: buckets over prompt length with the paper's
split/merge rule (Algorithm 1), distribution-aware (quantile) and fixed
boundaries, the decayed length histogram, the priority order inside a bucket,
and N_max (the largest batch whose KV fits the safe budget) in the paper's
form and from the actual lengths of the candidate batch.

Memory model (both modes count whole KV blocks, since that is what the block
manager hands out; a row of a padded batch of width W reserves the slots
`W + output_len - 1`: left pads + prompt + every generated token but the last):

- `paper`: every request is assumed S_max long, S_max = longest prompt +
  longest output length among the bucket's requests (the output tokens are
  included because the KV must hold them to the end). N_max =
  floor(M_safe / (2 x layers x kv_heads x head_dim x S_max' x bytes)), with
  S_max' = S_max rounded up to whole blocks and M_safe = safety x free bytes.
- `actual`: the largest prefix (in priority order) of the candidate rows whose
  exact reservation - sum over rows of blocks(W_k + out_i - 1), W_k the
  longest prompt in the prefix - fits M_safe. Never larger than the budget,
  never smaller than `paper` (a row never needs more than S_max').

Bookkeeping is incremental (a run may queue thousands of requests and decide
every few milliseconds of virtual time): each bucket keeps its requests in
priority order with sorted prompt and output lengths beside them, so a
decision reads a bucket's order, maxima and share below the midpoint without
rescanning or re-sorting the queue. The order is the manager's `order`
(the policy's priority key); its keys are unique (they end with the request id).
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, overload

from bsbench.engine.block_manager import blocks_for_tokens
from bsbench.engine.request_state import RequestState
from bsbench.errors import BsbenchError, OptionsError
from bsbench.schedulers.chunks import row_slots

OrderKey = Callable[[RequestState], tuple[Any, ...]]  # the priority order of requests inside a bucket

BOUNDARY_MODES = ("bisect", "quantile")
NMAX_MODES = ("paper", "actual")
PRIORITY_MODES = ("sjf", "ljf")


# ----------------------------------------------------------------------------- boundaries


def parse_boundaries(spec: str, l_max: int | None = None) -> tuple[str, list[int]]:
    """'bisect' | 'quantile' | 'a,b,c' (fixed inner cut points) -> (mode, fixed cuts); the cuts must lie
    below `l_max` when it is given (OptionsError otherwise)."""
    text = spec.strip().lower()
    if text in BOUNDARY_MODES:
        return text, []
    try:
        cuts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise OptionsError(
            f"--bucket-boundaries {spec!r}: expected bisect, quantile or a comma list of prompt lengths"
        ) from None
    if not cuts or any(b <= a for a, b in zip(cuts, cuts[1:])) or cuts[0] <= 0:
        raise OptionsError(f"--bucket-boundaries {spec!r}: cut points must be positive and strictly increasing")
    if l_max is not None and cuts[-1] >= l_max:
        raise OptionsError(f"--bucket-boundaries {spec!r}: cut points must lie below L_max = {l_max}")
    return "fixed", cuts


class DecayedHistogram:
    """Histogram of recent prompt lengths; each arrival's weight halves every `halflife` arrivals.

    Decay is applied lazily: the n-th observation weighs growth**n, and the
    whole array is renormalised before the numbers overflow.
    """

    def __init__(self, l_max: int, halflife: float, num_bins: int = 512) -> None:
        self.l_max = l_max
        self.bin_width = max(1, math.ceil(l_max / num_bins))
        self.weights = [0.0] * math.ceil(l_max / self.bin_width)
        self.growth = 2.0 ** (1.0 / halflife) if halflife > 0 else 1.0
        self._next = 1.0
        self.count = 0

    def add(self, length: int) -> None:
        index = min(max(length, 0) // self.bin_width, len(self.weights) - 1)
        self.weights[index] += self._next
        self._next *= self.growth
        self.count += 1
        if self._next > 1e200:
            self.weights = [w / self._next for w in self.weights]
            self._next = 1.0

    def quantile_cuts(self, k: int) -> list[int]:
        """Inner cut points of k equal-mass intervals (bin upper edges; fewer when the mass is concentrated)."""
        total = sum(self.weights)
        if k < 2 or total <= 0:
            return []
        cuts: list[int] = []
        cumulative = 0.0
        target = 1
        for index, weight in enumerate(self.weights):
            cumulative += weight
            while target < k and cumulative >= total * target / k:
                cut = min((index + 1) * self.bin_width, self.l_max)
                if 0 < cut < self.l_max and (not cuts or cut > cuts[-1]):
                    cuts.append(cut)
                target += 1
        return cuts


# ----------------------------------------------------------------------------- priority


def priority_key(mode: str) -> Callable[[RequestState], tuple[int, float, float, str]]:
    """Online requests first, earliest arrival first; then offline ones, shortest (sjf) or longest (ljf)
    job first, the job being prompt + output length (the tokens the request will hold)."""
    sign = 1 if mode == "sjf" else -1

    def key(state: RequestState) -> tuple[int, float, float, str]:
        spec = state.spec
        if spec.priority == "online":
            return (0, spec.arrival_s, 0, spec.id)
        return (1, sign * state.target_len, spec.arrival_s, spec.id)

    return key


# ----------------------------------------------------------------------------- N_max


@dataclass(slots=True, frozen=True)
class MemoryModel:
    """N_max from a live free-block count: `kv_bytes_per_token` = 2 x layers x kv_heads x head_dim x bytes."""

    kv_bytes_per_token: int
    block_size: int
    safety: float = 0.9

    @property
    def block_bytes(self) -> int:
        return self.kv_bytes_per_token * self.block_size

    def safe_bytes(self, free_blocks: int) -> float:
        return self.safety * free_blocks * self.block_bytes

    def safe_blocks(self, free_blocks: int) -> int:
        """Whole blocks within the safe share of `free_blocks`."""
        return math.floor(self.safety * free_blocks)

    def blocks_for(self, slots: int) -> int:
        return blocks_for_tokens(slots, self.block_size)

    def n_max_paper(self, rows: Sequence[RequestState], free_blocks: int) -> int:
        """The paper's N_max: every request assumed S_max = longest prompt + longest output long."""
        if not rows:
            return 0
        if isinstance(rows, QueueView):
            s_max = rows.max_prompt_len + rows.max_output_len
        else:
            s_max = max(r.prompt_len for r in rows) + max(r.spec.output_len for r in rows)
        per_request = self.kv_bytes_per_token * self.blocks_for(s_max) * self.block_size
        return int(self.safe_bytes(free_blocks) // per_request)

    def prefix_blocks(self, rows: Sequence[RequestState], limit: int | None = None) -> list[int]:
        """Exact blocks reserved by each prefix rows[:k+1] batched together (stops once past `limit`)."""
        out: list[int] = []
        outputs: list[int] = []  # output lengths of rows[:k]
        width = 0
        total = 0
        for row in rows:
            output_len = row.spec.output_len
            if row.prompt_len > width:
                width = row.prompt_len
                total = sum(self.blocks_for(row_slots(width, o)) for o in outputs)
            total += self.blocks_for(row_slots(width, output_len))
            outputs.append(output_len)
            out.append(total)
            if limit is not None and total > limit:
                break
        return out

    def n_max_actual(self, rows: Sequence[RequestState], free_blocks: int) -> int:
        """Largest prefix of `rows` (priority order) whose exact KV reservation fits the safe budget."""
        safe = self.safe_bytes(free_blocks)
        n = 0
        for blocks in self.prefix_blocks(rows, limit=free_blocks):
            if blocks * self.block_bytes > safe:
                break
            n += 1
        return n

    def n_max(self, mode: str, rows: Sequence[RequestState], free_blocks: int) -> int:
        return self.n_max_actual(rows, free_blocks) if mode == "actual" else self.n_max_paper(rows, free_blocks)


# ----------------------------------------------------------------------------- buckets


class Bucket:
    """Half-open prompt-length interval [low, up) and the waiting requests whose length it holds.

    `requests` is in `order` (read it, never change it: use add/remove); the sorted lengths beside it
    give the maxima and the share below the midpoint at once.
    """

    __slots__ = ("_keys", "_online_arrivals", "_outputs", "_prompts", "low", "order", "requests", "up")

    def __init__(self, low: int, up: int, order: OrderKey,
                 rows: Sequence[RequestState] = ()) -> None:
        self.low = low
        self.up = up
        self.order = order
        keyed = sorted(((order(r), r) for r in rows), key=lambda kr: kr[0])
        self._keys = [k for k, _ in keyed]
        self.requests: list[RequestState] = [r for _, r in keyed]
        self._prompts = sorted(r.prompt_len for r in rows)
        self._outputs = sorted(r.spec.output_len for r in rows)
        self._online_arrivals = sorted(r.spec.arrival_s for r in rows if r.spec.priority == "online")

    @property
    def mid(self) -> int:
        return (self.low + self.up) // 2

    def holds(self, length: int) -> bool:
        return self.low <= length < self.up

    def add(self, state: RequestState) -> None:
        key = self.order(state)
        i = bisect_right(self._keys, key)
        self._keys.insert(i, key)
        self.requests.insert(i, state)
        insort(self._prompts, state.prompt_len)
        insort(self._outputs, state.spec.output_len)
        if state.spec.priority == "online":
            insort(self._online_arrivals, state.spec.arrival_s)

    def remove(self, state: RequestState) -> bool:
        """Take `state` out; False when it is not here."""
        key = self.order(state)
        i = bisect_left(self._keys, key)
        while i < len(self._keys) and self._keys[i] == key and self.requests[i] is not state:
            i += 1
        if i >= len(self._keys) or self.requests[i] is not state:
            return False
        del self._keys[i], self.requests[i]
        del self._prompts[bisect_left(self._prompts, state.prompt_len)]
        del self._outputs[bisect_left(self._outputs, state.spec.output_len)]
        if state.spec.priority == "online":
            del self._online_arrivals[bisect_left(self._online_arrivals, state.spec.arrival_s)]
        return True

    @property
    def max_prompt_len(self) -> int:
        return self._prompts[-1] if self._prompts else 0

    @property
    def max_output_len(self) -> int:
        return self._outputs[-1] if self._outputs else 0

    def earliest_online_arrival(self) -> float | None:
        """The earliest arrival among the bucket's online requests (None: it holds none)."""
        return self._online_arrivals[0] if self._online_arrivals else None

    def share_below_mid(self) -> float:
        if not self.requests:
            return 0.0
        return bisect_left(self._prompts, self.mid) / len(self.requests)


class QueueView(Sequence[RequestState]):
    """The waiting requests of some buckets as one sequence in the buckets' order, merged only when read;
    its length and maxima come from the buckets at once (what `n_max_paper` needs)."""

    def __init__(self, buckets: Sequence[Bucket]) -> None:
        self._buckets = [b for b in buckets if b.requests]
        self._rows: list[RequestState] | None = None
        self.max_prompt_len = max((b.max_prompt_len for b in self._buckets), default=0)
        self.max_output_len = max((b.max_output_len for b in self._buckets), default=0)

    def _merged(self) -> list[RequestState]:
        if self._rows is None:
            if len(self._buckets) == 1:
                self._rows = self._buckets[0].requests
            else:
                self._rows = list(heapq.merge(*(b.requests for b in self._buckets), key=self._buckets[0].order)) \
                    if self._buckets else []
        return self._rows

    def __len__(self) -> int:
        return sum(len(b.requests) for b in self._buckets)

    def __iter__(self) -> Iterator[RequestState]:
        if self._rows is None and len(self._buckets) > 1:  # lazily: a reader that stops early merges little
            order = self._buckets[0].order
            return heapq.merge(*(b.requests for b in self._buckets), key=order)
        return iter(self._merged())

    @overload
    def __getitem__(self, index: int) -> RequestState: ...

    @overload
    def __getitem__(self, index: slice) -> list[RequestState]: ...

    def __getitem__(self, index: int | slice) -> RequestState | list[RequestState]:
        return self._merged()[index]


NMaxFn = Callable[[Sequence[RequestState]], int]


class BucketManager:
    """The buckets and the controller's split/merge rule.

    - A request always sits in the one bucket whose interval holds its prompt
      length (lengths >= L_max go to the top bucket). Boundaries move; a
      request is only ever re-filed by its own length, so it is never put in a
      bucket of longer prompts to fill a batch (batches come from one bucket).
    - bisect (Algorithm 1): while the total queue exceeds N_max(all), split any
      bucket holding more than N_max(bucket) requests with strictly more than
      theta of them below its midpoint, at the midpoint; at most `max_buckets`
      non-empty buckets (the paper saw 1 to 8).
      Merge everything into [0, L_max) when the total falls below N_max(all).
    - quantile: same trigger, but the boundaries are the equal-mass cut points
      of the decayed histogram of recent prompt lengths, k = ceil(total /
      N_max(all)) buckets (at most `max_buckets`); merge as in bisect.
    - fixed: the given cut points, never split or merged.
    """

    def __init__(
        self,
        l_max: int,
        mode: str = "bisect",
        fixed_cuts: Sequence[int] = (),
        theta: float = 0.5,
        max_buckets: int = 8,
        halflife: float = 256.0,
        order: OrderKey | None = None,
    ) -> None:
        if l_max < 2:
            raise BsbenchError(f"bucket L_max must be at least 2, got {l_max}")
        if mode not in (*BOUNDARY_MODES, "fixed"):
            raise BsbenchError(f"unknown bucket boundary mode {mode!r}")
        self.l_max = l_max
        self.order = order or priority_key("sjf")  # the order of requests inside a bucket
        self.mode = mode
        self.theta = theta
        self.max_buckets = max(1, max_buckets)
        self.histogram = DecayedHistogram(l_max, halflife)
        self.splits = 0
        self.merges = 0
        self.reshapes = 0  # quantile re-cuts
        self.peak_buckets = 0  # most non-empty buckets at once
        self.buckets = self._from_cuts(list(fixed_cuts) if mode == "fixed" else [])

    # --- membership -------------------------------------------------------------
    def _from_cuts(self, cuts: list[int]) -> list[Bucket]:
        edges = [0, *cuts, self.l_max]
        return [Bucket(lo, up, self.order) for lo, up in zip(edges, edges[1:])]

    def bucket_for(self, length: int) -> Bucket:
        for bucket in self.buckets:
            if bucket.holds(length):
                return bucket
        return self.buckets[-1]  # prompt_len >= L_max

    def add(self, state: RequestState) -> Bucket:
        self.histogram.add(state.prompt_len)
        bucket = self.bucket_for(state.prompt_len)
        bucket.add(state)
        if len(bucket.requests) == 1:
            self.peak_buckets = max(self.peak_buckets, self.occupied())
        return bucket

    def remove(self, state: RequestState) -> bool:
        return self.bucket_for(state.prompt_len).remove(state)  # a request sits in the bucket of its length

    def waiting(self) -> list[RequestState]:
        return [r for b in self.buckets for r in b.requests]

    def total(self) -> int:
        return sum(len(b.requests) for b in self.buckets)

    def occupied(self) -> int:
        """Buckets holding at least one request (empty halves of a split cost nothing)."""
        return sum(1 for b in self.buckets if b.requests)

    def boundaries(self) -> list[int]:
        return [b.low for b in self.buckets[1:]]

    def _refile(self, cuts: list[int]) -> None:
        waiting = self.waiting()
        self.buckets = self._from_cuts(cuts)
        for state in waiting:
            self.bucket_for(state.prompt_len).add(state)
        self.peak_buckets = max(self.peak_buckets, self.occupied())

    def _in_order(self, buckets: Sequence[Bucket], order: OrderKey) -> Sequence[RequestState]:
        """The requests of `buckets` sorted by `order`: a view when that is the buckets' own order."""
        if order is self.order:
            return QueueView(buckets)
        return sorted((r for b in buckets for r in b.requests), key=order)

    # --- the controller's rule -----------------------------------------------------
    def should_split(self, bucket: Bucket, total: int, n_all: int, n_bucket: int) -> bool:
        return (
            total > n_all
            and len(bucket.requests) > n_bucket
            and bucket.share_below_mid() > self.theta
            and bucket.up - bucket.low >= 2
        )

    def rebalance(
        self, n_max: NMaxFn, order: Callable[[RequestState], tuple[int, float, float, str]]
    ) -> tuple[int, int]:
        """Apply the split/merge rule once (splits repeat while the rule holds); returns (splits, merges)."""
        if self.mode == "fixed":
            return 0, 0
        total = self.total()
        n_all = n_max(self._in_order(self.buckets, order))
        if total < n_all:
            if len(self.buckets) > 1:
                self._refile([])
                self.merges += 1
                return 0, 1
            return 0, 0
        if total <= n_all or n_all <= 0:  # nothing fits now: no evidence to reshape on
            return 0, 0
        if self.mode == "quantile":
            k = min(self.max_buckets, math.ceil(total / n_all))
            cuts = self.histogram.quantile_cuts(k)
            if cuts != self.boundaries():
                self._refile(cuts)
                self.reshapes += 1
                return 1, 0
            return 0, 0
        splits = 0
        index = 0
        while index < len(self.buckets) and self.occupied() < self.max_buckets:
            bucket = self.buckets[index]
            n_bucket = n_max(self._in_order([bucket], order))
            if not self.should_split(bucket, total, n_all, n_bucket):
                index += 1
                continue
            mid = bucket.mid
            lower = Bucket(bucket.low, mid, self.order, [r for r in bucket.requests if r.prompt_len < mid])
            upper = Bucket(mid, bucket.up, self.order, [r for r in bucket.requests if r.prompt_len >= mid])
            self.buckets[index : index + 1] = [lower, upper]
            splits += 1  # re-check the lower half at the same index: repeat while the rule holds
        self.splits += splits
        self.peak_buckets = max(self.peak_buckets, self.occupied())
        return splits, 0
