"""BucketServe (arXiv 2507.17120): bucketed padded prefill, memory-bounded batches, continuous decode.

What runs, per step (one forward each; a padded and a packed batch cannot mix):

1. Controller. Every `bucket_interval` seconds, or as soon as the waiting
   queue has grown by `bucket_queue_threshold` requests since its last look, it
   re-evaluates the buckets (half-open prompt-length intervals, one [0, L_max)
   at the start) with the paper's rule: split at the midpoint while the queue
   exceeds N_max, a bucket holds more than N_max and strictly more than theta
   of it lies below the midpoint; merge all when the queue falls below N_max
   (`_buckets.BucketManager`). `bucket_boundaries=quantile` cuts at equal-mass
   points of a decayed histogram of recent prompt lengths instead; a comma
   list fixes the cuts. "The queue exceeds N_max" compares the waiting count
   with N_max of the whole queue taken as one candidate batch; "a bucket holds
   more than N_max" uses N_max of that bucket's own requests; both from the
   live free KV at that moment (the controller does nothing while nothing
   fits: N_max = 0 is no evidence about lengths). Its cost is timed
   (`controller_s` in the summary), besides the whole decision time of
   `schedule()` (`decision_s`, added to the record by the engine's caller).
2. Prefill. Pick a bucket: the one holding the oldest waiting online request,
   else the fullest (ties: the shorter bucket). Its requests in priority order
   (online: earliest arrival; offline: shortest job first, `sjf`, for
   requests/s, or longest first, `ljf`, for tokens/s; a job = prompt + output
   length). The batch is the longest prefix that fits all of:
   N_max from the LIVE free KV blocks x `bucket_safety` (paper formula, or the
   candidates' actual lengths with `bucket_nmax_mode=actual`, see
   _buckets.py), `max_num_seqs` minus the running requests, and
   `bucket_max_prefill_tokens` rows x width (activation memory; one row always
   fits). It prefills as one left-padded `PaddedBatch`, padded only to its own
   longest prompt. Prefill goes first whenever a batch fits (as vLLM does).
3. Decode. Otherwise, every running request decodes one token in one packed
   step (continuous batching); rows prefilled in a padded batch keep their pads
   in KV (`kv_pad_len`, masked). Prefill -> decode hand-off is FCFS (arrival
   order within a batch, batches in the order they prefilled).

No OOM by construction: a batch's full KV (pads + prompt + every output token
but the last, per row, in whole blocks) is reserved when it is admitted, so
decode never allocates and nothing is ever preempted. The output length used is
the request's `output_len`, which the engine generates exactly (the role of a
request's max_tokens), never a prediction. The price is over-reservation early
in a request's life; the paper's batches are sized by exactly this memory bound.
A request whose KV alone exceeds safety x the whole cache is rejected on arrival
(a rejection event, not an OOM); `admission_bound` states that share, so
`bsbench run` refuses such a workload before it starts. In `paper` mode, a
head request that fits alone is admitted alone even when the bucket's S_max
assumption gives N_max = 0.

Strict bucket priority: when the chosen bucket's head does not fit now, no
other bucket jumps ahead (decode runs and frees memory); offline-only traffic
in a small bucket may wait while fuller buckets are served, until the merge
rule folds it back in.

Disaggregated (the paper's form, `--instances prefill=N,decode=M`, sim backend only,
bsbench/backends/cluster): this policy runs on the prefill instances (`ctx.role == "prefill"`):
the controller, the buckets and the padded prefill as above, but a batch reserves
only its prefill's KV (pads + prompt, `width` slots per row) and, after the prefill
step, every row with tokens still to generate is handed off FCFS (arrival order
within a batch) for its KV transfer; the decode instances run the continuous
policy (`decode_options`: `max_num_seqs`, no chunking). N_max keeps its form above
(outputs included), so on a prefill instance it is conservative. On one instance
(the default) prefill and decode steps share it and alternate, as described above.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bsbench.engine.decode_runs import DecodeRunTerms
from bsbench.engine.events import REJECTION
from bsbench.engine.plan import StepPlan
from bsbench.engine.request_state import RequestState, Status
from bsbench.record.reasons import EndKind, EndReason
from bsbench.schedulers._buckets import (
    NMAX_MODES,
    PRIORITY_MODES,
    Bucket,
    BucketManager,
    MemoryModel,
    QueueView,
    parse_boundaries,
    priority_key,
)
from bsbench.schedulers.base import AdmissionBound, Scheduler, SchedulerContext
from bsbench.schedulers.chunks import PaddedBatch, advance, advance_decoding, max_kv_slots, next_chunk
from bsbench.schedulers.continuous import ContinuousOptions
from bsbench.schedulers.option_rules import (
    AT_LEAST_ONE,
    NON_NEGATIVE,
    UNIT_OPEN,
    Interval,
    PolicyOptions,
    check_fields,
    invalid,
)
from bsbench.schedulers.registry import register

BUCKET_EVENT = "bucket"  # a policy event: the controller changed the boundaries


@dataclass(slots=True)
class BucketOptions(PolicyOptions):
    max_num_seqs: int = field(default=64, metadata={"help": "Most requests running at once (continuous, bucket)."})
    bucket_priority: str = field(default="sjf", metadata={
        "help": "Offline order inside a bucket: shortest job first (requests/s) or longest (tokens/s) (bucket).",
        "choices": PRIORITY_MODES})
    bucket_boundaries: str = field(default="bisect", metadata={
        "help": "Bucket boundaries: bisect (paper), quantile (decayed length histogram) or fixed cuts like "
                "128,512 (bucket)."})
    bucket_nmax_mode: str = field(default="paper", metadata={
        "help": "N_max from S_max x N (paper) or the candidate batch's actual lengths (bucket).",
        "choices": NMAX_MODES})
    bucket_theta: float = field(default=0.5, metadata={
        "help": "Split when strictly more than this share lies below the midpoint (bucket)."})
    bucket_l_max: int = field(default=0, metadata={
        "help": "Upper end of the first bucket; 0 = the model's max length (bucket)."})
    bucket_safety: float = field(default=0.9, metadata={
        "help": "Share of the live free KV a new batch may take (bucket)."})
    bucket_interval: float = field(default=0.1, metadata={
        "help": "Seconds between controller re-evaluations (bucket)."})
    bucket_queue_threshold: int = field(default=32, metadata={
        "help": "Re-evaluate at once when the queue grew by this many requests (bucket)."})
    bucket_max_buckets: int = field(default=8, metadata={
        "help": "Most non-empty buckets the controller keeps (bucket)."})
    bucket_halflife: float = field(default=256.0, metadata={
        "help": "Arrivals after which a length counts half in the quantile histogram; 0 = no decay (bucket)."})
    bucket_max_prefill_tokens: int = field(default=8192, metadata={
        "help": "Most tokens, pads included, in one padded prefill; 0 = no cap (bucket)."})

    def validate(self) -> None:
        check_fields(self, {
            "max_num_seqs": AT_LEAST_ONE, "bucket_theta": UNIT_OPEN, "bucket_l_max": NON_NEGATIVE,
            "bucket_safety": Interval(0, 1, low_open=True), "bucket_interval": NON_NEGATIVE,
            "bucket_queue_threshold": NON_NEGATIVE, "bucket_max_buckets": AT_LEAST_ONE,
            "bucket_halflife": NON_NEGATIVE, "bucket_max_prefill_tokens": NON_NEGATIVE})
        if self.bucket_l_max == 1:
            raise invalid("bucket_l_max", 1, "0 (the model's context) or at least 2")
        parse_boundaries(self.bucket_boundaries)  # the syntax; the cuts are checked against L_max at start


@register
class BucketScheduler(Scheduler):
    name = "bucket"
    Options = BucketOptions

    def __init__(self, options: BucketOptions, ctx: SchedulerContext) -> None:
        super().__init__(options, ctx)
        o = options
        l_max = o.bucket_l_max or ctx.model.max_model_len
        mode, cuts = parse_boundaries(o.bucket_boundaries, l_max)
        self.order = priority_key(o.bucket_priority)
        self.buckets = BucketManager(l_max, mode, cuts, o.bucket_theta, o.bucket_max_buckets, o.bucket_halflife,
                                     self.order)
        self.memory = MemoryModel(ctx.model.kv_bytes_per_token, self.blocks.block_size, o.bucket_safety)
        self.running: list[RequestState] = []
        self.prefill: PaddedBatch | None = None  # the batch whose prefill step is in flight
        self._next_eval = 0.0
        self._added_since_eval = 0
        self._last_now = 0.0
        self._queue_version = 0  # bumped whenever the queue changes
        self._quiet: tuple[int, int] | None = None  # (free blocks, queue version) a no-op evaluation saw
        # figures for summary()
        self.controller_s = 0.0
        self.evaluations = 0
        self.decisions = 0
        self.batches = 0
        self.batch_rows = 0
        self.rejected = 0
        self.last_n_max = 0

    # --- queues -------------------------------------------------------------------
    def admission_bound(self) -> AdmissionBound:
        total = self.blocks.num_blocks
        return AdmissionBound(self.memory.safe_blocks(total),
                              f"--bucket-safety {self.options.bucket_safety:g} of {total} blocks")

    def add_request(self, state: RequestState, now: float) -> None:
        total = self.blocks.num_blocks
        need = self.blocks_to_serve_alone(state.spec)
        if need > self.admission_bound().max_blocks:
            self.ctx.events.emit(REJECTION, now, [state.id], blocks_needed=need, blocks_total=total)
            self.rejected += 1
            self.end(state, Status.REJECTED, now,
                     EndReason(EndKind.KV_REJECTED, f"needs {need} blocks, more than the safe share of {total}"))
            return
        start = time.perf_counter()
        self.buckets.add(state)
        self._queue_version += 1
        self.controller_s += time.perf_counter() - start
        self._added_since_eval += 1

    def unfinished(self) -> list[RequestState]:
        prefilling = [r for r in self.prefill.rows if not r.status.is_final] if self.prefill else []
        return self.running + prefilling + self.buckets.waiting()

    def _on_end(self, state: RequestState) -> None:
        if state in self.running:
            self.running.remove(state)
        else:
            self.buckets.remove(state)
            self._queue_version += 1

    def next_wakeup(self, now: float) -> float | None:
        return None  # every decision is made on arrival or after a step; no timed batching

    # --- decisions --------------------------------------------------------------------
    def _schedule(self, now: float) -> StepPlan | None:
        self.decisions += 1
        self._last_now = max(self._last_now, now)
        if now >= self._next_eval or self._added_since_eval >= self.options.bucket_queue_threshold:
            self._evaluate(now)
        rows = self._form_batch()
        if rows:
            for row in rows:
                self.buckets.remove(row)
            self._queue_version += 1
            self.prefill = PaddedBatch.of(rows, self.ctx.model.pad_token_id)
            prefill_only = self.ctx.role == "prefill"
            for row in rows:  # full reservation: decode never allocates, so never runs out
                slots = self.prefill.width if prefill_only else max_kv_slots(row)
                self.blocks.allocate(row.id, self.blocks.blocks_for_tokens(slots))
                row.mark_scheduled(now)
            self.batches += 1
            self.batch_rows += len(rows)
            return self.prefill.next_plan(self.blocks)
        if self.running:
            table_of = self.blocks.block_table
            return StepPlan(layout="packed", chunks=[next_chunk(s, table_of(s.id)) for s in self.running])
        return None

    def _n_max(self, rows: Sequence[RequestState]) -> int:
        return self.memory.n_max(self.options.bucket_nmax_mode, rows, self.blocks.num_free)

    def _evaluate(self, now: float) -> None:
        start = time.perf_counter()
        before = self.buckets.boundaries()
        splits, merges = self.buckets.rebalance(self._n_max, self.order)
        self.controller_s += time.perf_counter() - start
        self.evaluations += 1
        self._next_eval = now + self.options.bucket_interval
        self._added_since_eval = 0
        self._quiet = None if splits or merges else (self.blocks.num_free, self._queue_version)
        if splits or merges:
            self.ctx.events.emit(BUCKET_EVENT, now, [], before=before, after=self.buckets.boundaries(),
                                 splits=splits, merges=merges, queued=self.buckets.total())

    def _pick_bucket(self) -> Bucket | None:
        nonempty = [b for b in self.buckets.buckets if b.requests]
        if not nonempty:
            return None
        online = [(arrival, i) for i, b in enumerate(nonempty)
                  if (arrival := b.earliest_online_arrival()) is not None]
        if online:
            return nonempty[min(online)[1]]
        return max(nonempty, key=lambda b: len(b.requests))  # max() keeps the first (shorter) on ties

    def _form_batch(self) -> list[RequestState]:
        seats = self.options.max_num_seqs - len(self.running)
        bucket = self._pick_bucket()
        if bucket is None or seats <= 0:
            return []
        candidates = bucket.requests[:seats]  # a bucket keeps its requests in self.order
        start = time.perf_counter()
        n = min(self._n_max(QueueView([bucket])), seats)  # paper mode: S_max over the whole bucket
        self.controller_s += time.perf_counter() - start
        self.last_n_max = n
        if n == 0 and self.blocks_to_serve_alone(candidates[0].spec) <= self.memory.safe_blocks(self.blocks.num_free):
            n = 1  # paper mode: S_max over the bucket can undercount what the head alone needs
        rows = candidates[:n]
        cap = self.options.bucket_max_prefill_tokens
        if cap > 0:
            width, keep = 0, 0
            for row in rows:
                width = max(width, row.prompt_len)
                if keep and (keep + 1) * width > cap:
                    break
                keep += 1
            rows = rows[:keep]
        return rows

    # --- bookkeeping ------------------------------------------------------------------
    def update(self, plan: StepPlan, now: float) -> None:
        self._last_now = max(self._last_now, now)
        if plan.layout == "padded":
            batch, self.prefill = self.prefill, None
            assert batch is not None
            for row in batch.book(plan):
                self.end(row, Status.COMPLETED, now)
            decoding = sorted((r for r in batch.rows if not r.status.is_final), key=lambda r: (r.spec.arrival_s, r.id))
            if self.ctx.role == "prefill":
                for row in decoding:
                    self.hand_off(row, now)
            else:
                self.running.extend(decoding)
            return
        for state in advance(plan, {s.id: s for s in self.running}):
            self.end(state, Status.COMPLETED, now)

    # --- decode runs ------------------------------------------------------------------
    def decode_run_length(self, plan: StepPlan) -> int:
        """Decode steps until the first running request finishes (its last token ends the run). Nothing
        else changes inside: no block is allocated or freed, so N_max and the batch `_form_batch` declined
        stay; the terms end the run at an arrival and at the controller's next look unless that look
        cannot change anything (`_controller_quiet`)."""
        running = self.running
        if (self.prefill is not None or len(plan.chunks) != len(running)
                or self._added_since_eval >= self.options.bucket_queue_threshold):
            return 1
        steps = None
        for state, chunk in zip(running, plan.chunks):
            output = len(state.output_ids)
            if chunk.num_tokens != 1 or not output:
                return 1
            left = state.spec.output_len - output
            steps = left if steps is None or left < steps else steps
        return 1 if steps is None else max(steps, 1)

    def _controller_quiet(self) -> bool:
        """The last evaluation changed nothing and neither free KV nor the queue changed since: every
        evaluation before one of them changes gives the same answer, so it is only counted."""
        return self._quiet == (self.blocks.num_free, self._queue_version)

    def decode_run_terms(self, plan: StepPlan, steps: int) -> DecodeRunTerms:
        until = None if self._controller_quiet() else self._next_eval
        return DecodeRunTerms(plan, [self.blocks.num_used] * steps, until, arrivals_matter=True)

    def update_decode_run(self, plan: StepPlan, ends: Sequence[float]) -> None:
        steps = len(ends)
        self.decisions += steps - 1  # the schedule() calls of steps 1.. (each also looked at the controller)
        interval = self.options.bucket_interval
        for now in ends[:-1]:
            if now >= self._next_eval:  # a quiet evaluation (the terms ended the run before any other)
                self.evaluations += 1
                self._next_eval = now + interval
                self._added_since_eval = 0
        self._last_now = max(self._last_now, ends[-1])
        for state in advance_decoding(self.running, steps):
            self.end(state, Status.COMPLETED, ends[-1])

    def fail_plan(self, plan: StepPlan, now: float, reason: EndReason) -> list[str]:
        if self.prefill is not None:
            self.running.extend(self.prefill.rows)  # so that base.fail_plan finds and ends them
            self.prefill = None
        return super().fail_plan(plan, now, reason)

    @classmethod
    def decode_options(cls, options: BucketOptions) -> ContinuousOptions:
        """Decode instances: continuous batching of up to `max_num_seqs` requests (nothing to chunk there)."""
        return ContinuousOptions(max_num_seqs=options.max_num_seqs)

    def summary(self) -> dict[str, Any]:
        run_s = self._last_now
        return {
            "boundaries_mode": self.buckets.mode,
            "nmax_mode": self.options.bucket_nmax_mode,
            "priority": self.options.bucket_priority,
            "boundaries": self.buckets.boundaries(),
            "splits": self.buckets.splits,
            "merges": self.buckets.merges,
            "quantile_recuts": self.buckets.reshapes,
            "peak_buckets": self.buckets.peak_buckets,
            "batches": self.batches,
            "mean_prefill_batch": self.batch_rows / self.batches if self.batches else None,
            "rejected_too_large": self.rejected,
            # decision_s and decision_share (of the run's duration) are added by the engine's caller
            "decisions": self.decisions,
            "decision_mean_us": 1e6 * self.decision_s / self.decisions if self.decisions else None,
            "controller_evaluations": self.evaluations,
            "controller_s": self.controller_s,
            "controller_mean_us": 1e6 * self.controller_s / max(self.evaluations, 1),
            "controller_share": self.controller_s / run_s if run_s > 0 else None,  # of the last clock reading
        }
