"""The engine online: the same loop on the wall clock, fed by requests submitted while it runs.

`OnlineArrivals` is the loop's `Arrivals` (engine/arrivals.py) for requests that
other threads `submit` (a server's event loop). Each request gets a `deliver`
callback, called on the engine's thread: `Tokens` as they are generated (once per
step, at the start of the next loop iteration), then one `Ended` with its final
status and reason. `cancel(id)` ends a request between steps (failed, `cancelled`)
and frees its KV; `finish(id)` ends it the same way but completed (a server found a stop
string in its text). A request submitted with `stop_ids` completes at the first of them it
generates once it has `min_tokens` tokens (EOS, stop token ids): that token is its last
delivered (`Tokens.stop`), and it ends before the next step. A request that could never be
served (`vet` says why) is rejected at `submit`, before it enters. `close(reason)` stops the loop as an interrupt does:
the unfinished end failed with that reason. `EngineThread` runs the loop on a thread.

Counts add up: submitted == completed + failed + rejected + in flight (`stats()`).
Ended requests are dropped once delivered, and the policy's event log is counted and
emptied as it goes, so a long-lived server's memory stays bounded. `on_end`, when given,
sees every request's final state once, on the engine's thread (a server's latency
histograms), whether or not its client still listens.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bsbench.engine.arrivals import RequestSink
from bsbench.engine.block_manager import BlockManager
from bsbench.engine.clock import Clock, WallClock
from bsbench.engine.events import OOM, PREEMPTION, EventLog
from bsbench.engine.loop import Engine, EngineResult, StopRun
from bsbench.engine.request_state import RequestState, Status
from bsbench.record.reasons import EndKind, EndReason
from bsbench.workloads.request import RequestSpec


@dataclass(slots=True, frozen=True)
class Tokens:
    """Token ids generated since the last delivery, with the engine-clock time of each."""

    ids: list[int]
    times: list[float]
    stop: bool = False  # the last id is one of the request's stop ids: it ends there, nothing follows


@dataclass(slots=True, frozen=True)
class Ended:
    """The request's end: its final status, the reason unless completed, and the tokens delivered in all."""

    status: Status
    reason: EndReason | None
    num_output: int


Event = Tokens | Ended
FINISHED_REASON = "finished_reason"  # the note a request stopped early carries ("stop"; absent: it ran its length)
Deliver = Callable[[Event], None]
Vet = Callable[[RequestSpec], EndReason | None]  # why a request can never be served; None: it can


class EngineClosed(RuntimeError):
    """Submitting to an engine that has stopped."""


@dataclass(slots=True)
class Submitted:
    """What `submit` returns: the request's id, and the reason when it was rejected before entering."""

    id: str
    rejected: EndReason | None = None


@dataclass(slots=True)
class OnlineStats:
    """Counters and gauges of an online engine (a consistent snapshot)."""

    submitted: int = 0
    waiting: int = 0  # submitted or admitted, not yet running (preempted ones included)
    running: int = 0
    tokens: int = 0  # generated so far
    oom_events: int = 0
    preemptions: int = 0
    ended: Counter[tuple[str, str]] = field(default_factory=Counter)  # (status, end kind or "") -> count


@dataclass(slots=True)
class _Live:
    state: RequestState
    deliver: Deliver
    stop_ids: frozenset[int] = frozenset()
    min_tokens: int = 0  # no stop id counts before this many tokens
    sent: int = 0  # tokens delivered
    seen: int = 0  # tokens generated
    stopped: bool = False  # it delivered a stop id (tokens the step after it made are not delivered)


class OnlineArrivals:
    """Requests submitted from any thread while the engine runs; see the module docstring."""

    def __init__(self, clock: Clock, events: EventLog, blocks: BlockManager, vet: Vet,
                 id_prefix: str = "req-", on_end: Callable[[RequestState], None] | None = None) -> None:
        self.clock = clock
        self.on_end = on_end
        self.events = events
        self.blocks = blocks
        self.vet = vet
        self.id_prefix = id_prefix
        self.by_id: dict[str, RequestState] = {}  # admitted and unfinished (the engine's thread only)
        self._live: dict[str, _Live] = {}  # admitted, not yet delivered as ended (the engine's thread only)
        # ended, still holding KV in a padded batch that goes on (its rows stay in plans until the batch ends)
        self._retired: list[str] = []
        # reentrant: a signal handler (the server's shutdown) may close() on a thread inside submit() or stats()
        self._lock = threading.Condition(threading.RLock())
        self._incoming: list[_Live] = []
        self._ends: list[tuple[str, EndReason | None]] = []  # cancel (a reason) or finish (None)
        self._closing: EndReason | None = None
        self._closed = False
        self._count = 0
        self._stats = OnlineStats()

    # --- any thread ---------------------------------------------------------------
    def submit(self, prompt_ids: Sequence[int], output_len: int, deliver: Deliver, *,
               stop_ids: frozenset[int] = frozenset(), min_tokens: int = 0) -> Submitted:
        """Queue a request arriving now; `deliver` gets its events on the engine's thread. It generates
        `output_len` tokens, or fewer when it meets one of `stop_ids` after `min_tokens` (module docstring). A
        request `vet` refuses ends rejected at once (no event is delivered). Raises EngineClosed once the engine
        stops."""
        with self._lock:
            if self._closing is not None or self._closed:
                raise EngineClosed("the engine has stopped")
            self._count += 1
            spec = RequestSpec(f"{self.id_prefix}{self._count}", tuple(prompt_ids), output_len, self.clock.now())
            self._stats.submitted += 1
            why = self.vet(spec)
            if why is not None:
                self._stats.ended[(Status.REJECTED.value, why.kind.value)] += 1
                return Submitted(spec.id, why)
            self._incoming.append(_Live(RequestState(spec), deliver, stop_ids, min_tokens))
            self._lock.notify_all()
        return Submitted(spec.id)

    def cancel(self, req_id: str) -> None:
        """Ask the engine to end `req_id` (failed, cancelled) and free its KV; a no-op once it has ended."""
        self._end_early(req_id, EndReason(EndKind.CANCELLED, "the client cancelled it or went away"))

    def finish(self, req_id: str) -> None:
        """Ask the engine to end `req_id` completed (stopped early) and free its KV; a no-op once it has ended."""
        self._end_early(req_id, None)

    def _end_early(self, req_id: str, reason: EndReason | None) -> None:
        with self._lock:
            self._ends.append((req_id, reason))
            self._lock.notify_all()

    def close(self, reason: EndReason) -> None:
        """Stop the engine: no more submissions; every unfinished request ends failed with `reason`."""
        with self._lock:
            if self._closing is None:
                self._closing = reason
            self._lock.notify_all()

    def stats(self) -> OnlineStats:
        with self._lock:
            s = self._stats
            return OnlineStats(s.submitted, s.waiting, s.running, s.tokens, s.oom_events, s.preemptions,
                               Counter(s.ended))

    # --- the engine's thread (the Arrivals protocol) -------------------------------
    def admit(self, sink: RequestSink, now: float) -> None:
        self.publish()
        with self._lock:
            if self._closing is not None:
                raise StopRun(self._closing)
            incoming, self._incoming = self._incoming, []
            ends, self._ends = self._ends, []
        for live in incoming:
            self._live[live.state.id] = live
            self.by_id[live.state.id] = live.state
            sink.add_request(live.state, now)
        for req_id, reason in ends:
            state = self.by_id.get(req_id)
            if state is not None and not state.status.is_final:
                if reason is None:
                    state.notes[FINISHED_REASON] = "stop"  # ended completed before its length (vLLM's name)
                sink.cancel(state, now, reason)

    def more(self) -> bool:
        return True  # until closed (admit then raises StopRun)

    def next_arrival_s(self) -> float | None:
        return None  # a submission wakes `wait`; the next loop iteration admits it

    def wait(self, clock: Clock, until: float | None) -> None:
        self.publish()  # the last step's tokens and ends, before idling
        with self._lock:
            if self._incoming or self._ends or self._closing is not None:
                return
            timeout = None if until is None else max(0.0, until - clock.now())
            self._lock.wait(timeout)

    def fail_pending(self, now: float, reason: EndReason) -> None:
        with self._lock:
            incoming, self._incoming = self._incoming, []
            self._closed = True
        for live in incoming:
            live.state.finish(Status.FAILED, now, reason)
            self._live[live.state.id] = live

    def abort(self, now: float, reason: EndReason) -> None:
        """After the loop died of an error: every request not yet ended fails with `reason` (no policy call)."""
        self.fail_pending(now, reason)
        for live in self._live.values():
            if not live.state.status.is_final:
                live.state.finish(Status.FAILED, now, reason)

    def submitted(self) -> int:
        return self._stats.submitted

    def tracked(self) -> list[RequestState]:
        return [live.state for live in self._live.values()]

    def publish(self) -> None:
        """Deliver new tokens and ends, drop ended requests, and refresh the stats (the engine's thread)."""
        ended: list[str] = []
        stopped: list[str] = []
        waiting = running = produced = 0
        for req_id, live in self._live.items():
            state = live.state
            produced += self._deliver_tokens(live, stopped)
            if state.status.is_final:
                if self.on_end is not None:  # first: a client that hears of the end finds it counted
                    self.on_end(state)
                live.deliver(Ended(state.status, state.reason, live.sent))
                ended.append(req_id)
            elif state.status is Status.RUNNING:
                running += 1
            else:
                waiting += 1
        self._retire(ended)
        events = self.events.events
        ooms = sum(1 for e in events if e.kind == OOM)
        preemptions = sum(1 for e in events if e.kind == PREEMPTION)
        events.clear()
        with self._lock:
            self._ends.extend((req_id, None) for req_id in stopped)
            stats = self._stats
            for req_id in ended:
                state = self._live.pop(req_id).state
                stats.ended[(state.status.value, state.reason.kind.value if state.reason else "")] += 1
            stats.waiting = waiting + len(self._incoming)
            stats.running = running
            stats.tokens += produced
            stats.oom_events += ooms
            stats.preemptions += preemptions

    @staticmethod
    def _deliver_tokens(live: _Live, stopped: list[str]) -> int:
        """Deliver `live`'s new tokens, through its first stop id (then add it to `stopped`); the tokens made."""
        output = live.state.output_ids
        made, live.seen = len(output) - live.seen, len(output)
        if made == 0 or live.stopped:  # after its stop: generated (a step already under way), not delivered
            return made
        end, stop = len(output), False
        if live.stop_ids:
            first = max(live.sent, live.min_tokens - 1)
            hit = next((i for i in range(first, end) if output[i] in live.stop_ids), None)
            if hit is not None:
                end, stop = hit + 1, True
        live.deliver(Tokens(output[live.sent:end], live.state.token_times[live.sent:end], stop))
        live.sent = end
        if stop:
            live.stopped = True
            live.state.notes[FINISHED_REASON] = "stop"  # also when that token was its last anyway
            stopped.append(live.state.id)
        return made

    def _retire(self, ended: list[str]) -> None:
        """Drop ended requests from `by_id` once they hold no KV (a padded batch's rows stay until it ends)."""
        holds = self.blocks.num_blocks_of
        retired = self._retired + ended
        for req_id in retired:
            if not holds(req_id):
                self.by_id.pop(req_id, None)
        self._retired = [req_id for req_id in retired if req_id in self.by_id]


class EngineThread:
    """The engine loop over `OnlineArrivals` on a daemon thread: `start`, then `stop(reason)` and `join`."""

    def __init__(self, engine: Engine, vet: Vet, on_end: Callable[[RequestState], None] | None = None) -> None:
        if not isinstance(engine.clock, WallClock):
            raise ValueError("an online engine runs on the wall clock")
        self.engine = engine
        self.arrivals = OnlineArrivals(engine.clock, engine.events, engine.blocks, vet, on_end=on_end)
        self.result: EngineResult | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="bsbench-engine", daemon=True)

    def start(self) -> None:
        self.engine.clock.start()
        self._thread.start()

    def _main(self) -> None:
        try:
            self.result = self.engine.drive(self.arrivals, start_clock=False)
        except BaseException as exc:  # kept for the server to report: the thread must not die silently
            self.error = exc
            self.arrivals.abort(self.engine.clock.now(), EndReason(EndKind.INTERRUPTED, f"the engine failed: {exc}"))
        finally:
            self.arrivals.publish()

    def stop(self, reason: EndReason, timeout: float | None = None) -> None:
        """Close the arrivals (the unfinished end failed with `reason`) and wait for the loop to return."""
        self.arrivals.close(reason)
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()
