"""The online engine (engine/online.py): the one engine loop on the wall clock, fed by submissions from
another thread; tokens delivered as generated, cancel frees KV, misfits rejected before entering, stop ends
the in-flight ones failed with the reason. The checksum runner makes wrong bookkeeping give wrong tokens."""

from __future__ import annotations

import threading
import time

import pytest

from bsbench.backends.fit_checks import request_misfit
from bsbench.engine.loop import Engine
from bsbench.engine.online import Ended, EngineClosed, EngineThread, Event, Tokens
from bsbench.engine.plan import StepOutput, StepPlan
from bsbench.engine.request_state import Status
from bsbench.record import EndKind
from bsbench.record.reasons import EndReason
from bsbench.schedulers.continuous import ContinuousOptions, ContinuousScheduler
from bsbench.schedulers.static import StaticOptions, StaticScheduler
from bsbench.schedulers.uellm import UellmOptions, UellmScheduler
from tests.fakes import ChecksumRunner, make_context, reference_generate

TIMEOUT_S = 20.0


class SlowChecksumRunner(ChecksumRunner):
    """A checksum runner whose steps take `step_s` of wall time (so a request can be cancelled mid-run)."""

    def __init__(self, num_blocks: int, block_size: int, step_s: float) -> None:
        super().__init__(num_blocks, block_size)
        self.step_s = step_s

    def execute(self, plan: StepPlan) -> StepOutput:
        time.sleep(self.step_s)
        return super().execute(plan)


class Collector:
    """The events of one request, gathered on the engine's thread."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.done = threading.Event()
        self.first_token = threading.Event()

    def __call__(self, event: Event) -> None:
        self.events.append(event)
        if isinstance(event, Tokens):
            self.first_token.set()
        if isinstance(event, Ended):
            self.done.set()

    def tokens(self) -> list[int]:
        return [t for e in self.events if isinstance(e, Tokens) for t in e.ids]

    def ended(self) -> Ended:
        assert self.done.wait(TIMEOUT_S), "the request never ended"
        last = self.events[-1]
        assert isinstance(last, Ended)
        return last


def start(policy_cls=ContinuousScheduler, options=None, *, num_blocks=64, block_size=4, step_s=0.002,
          runner=None):
    ctx = make_context(num_blocks, block_size)
    policy = policy_cls(options or policy_cls.Options(), ctx)
    runner = runner or SlowChecksumRunner(num_blocks, block_size, step_s)
    engine = Engine(policy, runner, events=ctx.events, blocks=ctx.block_manager)
    thread = EngineThread(engine, lambda spec: request_misfit(spec, ctx.model, policy))
    thread.start()
    return thread, ctx


def test_submitted_requests_get_their_tokens_as_generated_and_the_counts_add_up():
    thread, ctx = start()
    prompts = [[5 + i, 9, 13 + 2 * i, 7] for i in range(6)]
    collectors = []
    for i, prompt in enumerate(prompts):
        collector = Collector()
        thread.arrivals.submit(prompt, 3 + i, collector)
        collectors.append(collector)
        time.sleep(0.003 * (i % 2))  # some arrive while others run
    for prompt, collector, n in zip(prompts, collectors, range(3, 9)):
        assert collector.ended().status is Status.COMPLETED
        assert collector.tokens() == reference_generate(prompt, n)
        times = [t for e in collector.events if isinstance(e, Tokens) for t in e.times]
        assert times == sorted(times) and len(times) == n
    stats = thread.arrivals.stats()
    assert stats.submitted == 6 and stats.ended[("completed", "")] == 6
    assert stats.tokens == sum(range(3, 9)) and stats.running == stats.waiting == 0
    assert ctx.block_manager.num_used == 0
    thread.stop(EndReason(EndKind.INTERRUPTED, "test over"), timeout=TIMEOUT_S)
    assert not thread.alive and thread.error is None


@pytest.mark.parametrize("policy_cls, options", [
    (ContinuousScheduler, ContinuousOptions()),
    (StaticScheduler, StaticOptions(max_batch_size=2, batch_timeout=0.0)),  # a padded batch keeps KV until it ends
    (UellmScheduler, UellmOptions(predictor="oracle")),  # its running batch too
])
def test_cancel_ends_the_request_failed_and_frees_its_kv(policy_cls, options):
    thread, ctx = start(policy_cls, options, num_blocks=256, step_s=0.01)
    long, short = Collector(), Collector()
    cancelled = thread.arrivals.submit([4, 5, 6, 7, 8], 400, long)
    thread.arrivals.submit([9, 10, 11], 30, short)
    assert cancelled.rejected is None
    assert long.first_token.wait(TIMEOUT_S)
    thread.arrivals.cancel(cancelled.id)
    end = long.ended()
    assert end.status is Status.FAILED and end.reason.kind is EndKind.CANCELLED
    assert 0 < end.num_output < 400
    assert short.ended().status is Status.COMPLETED  # the other one runs on, untouched
    assert short.tokens() == reference_generate([9, 10, 11], 30)
    assert ctx.block_manager.num_used == 0
    stats = thread.arrivals.stats()
    assert stats.ended[("failed", "cancelled")] == 1 and stats.ended[("completed", "")] == 1
    thread.stop(EndReason(EndKind.INTERRUPTED, "test over"), timeout=TIMEOUT_S)


def test_a_request_larger_than_the_kv_budget_is_rejected_before_entering():
    thread, ctx = start(num_blocks=8, block_size=4)  # 32 KV slots
    collector = Collector()
    submitted = thread.arrivals.submit(list(range(4, 34)), 10, collector)
    assert submitted.rejected is not None and submitted.rejected.kind is EndKind.KV_REJECTED
    assert "needs 10 KV blocks" in submitted.rejected.detail
    fits = Collector()
    thread.arrivals.submit([4, 5], 3, fits)
    assert fits.ended().status is Status.COMPLETED
    assert collector.events == []
    stats = thread.arrivals.stats()
    assert stats.submitted == 2 and stats.ended[("rejected", "kv-rejected")] == 1
    thread.stop(EndReason(EndKind.INTERRUPTED, "test over"), timeout=TIMEOUT_S)


def test_stop_ends_in_flight_requests_failed_with_the_reason_and_refuses_new_ones():
    thread, ctx = start(num_blocks=512, step_s=0.01)
    running, queued = Collector(), Collector()
    thread.arrivals.submit([4, 5, 6], 1000, running)
    assert running.first_token.wait(TIMEOUT_S)
    thread.stop(EndReason(EndKind.INTERRUPTED, "the server shut down"), timeout=TIMEOUT_S)
    assert not thread.alive
    end = running.ended()
    assert end.status is Status.FAILED and end.reason == EndReason(EndKind.INTERRUPTED, "the server shut down")
    with pytest.raises(EngineClosed):
        thread.arrivals.submit([4], 1, queued)
    assert ctx.block_manager.num_used == 0
    assert thread.result is not None and not thread.result.complete


def test_an_engine_that_fails_ends_every_request_failed_and_keeps_the_error():
    class Broken(ChecksumRunner):
        def execute(self, plan):
            raise RuntimeError("device lost")

    thread, _ = start(runner=Broken(64, 4))
    collector = Collector()
    thread.arrivals.submit([4, 5], 3, collector)
    end = collector.ended()
    assert end.status is Status.FAILED and "device lost" in end.reason.detail
    thread.stop(EndReason(EndKind.INTERRUPTED, "test over"), timeout=TIMEOUT_S)
    assert isinstance(thread.error, RuntimeError)
    with pytest.raises(EngineClosed):
        thread.arrivals.submit([4], 1, collector)
