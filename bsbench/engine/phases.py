"""Where a request's time goes: one phase timer per request, kept by the engine for every backend and clock.

A request is in exactly one phase at any time and time accrues to that phase, so the parts partition its
life from its scheduled arrival to its end (their sum is its E2E when it completes):

    queued     arrival -> first scheduled for prefill (`RequestState.mark_scheduled`)
    prefill    first scheduled -> first token; steps it sits out between chunks of a chunked prefill included
    decode     first token -> finish
    transfer   (disaggregated runs) first token on the prefill instance -> its prompt KV has arrived on a decode
               instance: the wait for a link and for decode blocks, then the transfer itself
    preempted  a preemption by recompute -> the end of the step in which its recomputed KV again reaches the
               length it had when preempted (the engine checks after every step it takes part in); it then goes
               back to prefill (no token yet) or decode. The wait for re-admission and the recompute of the lost
               tokens count here and nowhere else; a second preemption during the recompute extends it.

Queueing and prefill lie wholly before the first token and decode wholly after it, so
TTFT = queued + prefill + the preempted time before the first token. A request that ends in any phase
(failed, rejected, interrupted) keeps what it accrued until its end; one that had not yet arrived accrues
nothing.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from bsbench.record.rows import LatencyBreakdown


class Phase(enum.Enum):
    QUEUED = "queued"
    PREFILL = "prefill"
    DECODE = "decode"
    PREEMPTED = "preempted"
    TRANSFER = "transfer"
    ENDED = "ended"


@dataclass(slots=True)
class PhaseTimer:
    """The phase a request is in since `since_s`, and the seconds each phase has accrued."""

    since_s: float
    phase: Phase = Phase.QUEUED
    queue_s: float = 0.0
    prefill_s: float = 0.0
    decode_s: float = 0.0
    preempted_s: float = 0.0
    transfer_s: float | None = None  # None until the request is handed off to another instance
    recompute_to: int = 0  # in the preempted phase: the KV length (tokens) whose recompute ends it

    def _enter(self, phase: Phase, now: float) -> None:
        spent = max(0.0, now - self.since_s)  # < 0 only for a request ended before its arrival (an interrupt)
        current = self.phase
        if current is Phase.QUEUED:
            self.queue_s += spent
        elif current is Phase.PREFILL:
            self.prefill_s += spent
        elif current is Phase.DECODE:
            self.decode_s += spent
        elif current is Phase.PREEMPTED:
            self.preempted_s += spent
        elif current is Phase.TRANSFER:
            self.transfer_s = (self.transfer_s or 0.0) + spent
        self.phase = phase
        self.since_s = now

    def scheduled(self, now: float) -> None:
        """Put in a plan: the first time, queueing ends and prefill begins (a re-admission changes nothing)."""
        if self.phase is Phase.QUEUED:
            self._enter(Phase.PREFILL, now)

    def token(self, now: float) -> None:
        """A token was produced: the first one ends prefill."""
        if self.phase is Phase.PREFILL:
            self._enter(Phase.DECODE, now)

    def preempted(self, now: float, num_computed: int) -> None:
        """Lost its KV of `num_computed` tokens: time is lost until that much is computed again."""
        level = self.recompute_to if self.phase is Phase.PREEMPTED else 0
        self.recompute_to = max(level, num_computed)
        self._enter(Phase.PREEMPTED, now)

    def computed(self, now: float, num_computed: int, has_token: bool) -> None:
        """After a step the request took part in: a recompute that has caught up resumes prefill or decode."""
        if self.phase is Phase.PREEMPTED and num_computed >= self.recompute_to:
            self._enter(Phase.DECODE if has_token else Phase.PREFILL, now)

    def handed_off(self, now: float) -> None:
        """Its prefill instance is done with it (first token produced): it waits for, then makes, its transfer."""
        self._enter(Phase.TRANSFER, now)
        if self.transfer_s is None:
            self.transfer_s = 0.0

    def transferred(self, now: float) -> None:
        """Its prompt KV is on the decode instance: decoding time from now on."""
        self._enter(Phase.DECODE, now)

    def ended(self, now: float) -> None:
        self._enter(Phase.ENDED, now)

    def breakdown(self) -> LatencyBreakdown:
        """What each phase accrued so far (the current phase up to its last change)."""
        return LatencyBreakdown(self.queue_s, self.prefill_s, self.decode_s, self.preempted_s, self.transfer_s)
