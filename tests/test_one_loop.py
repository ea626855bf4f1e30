"""One engine loop for 1..N instances: a stop, a stall and a cancel end requests the same way on one instance and
on a disaggregated cluster (prefill + decode instances), and decode runs are no part of the Policy contract."""

from __future__ import annotations

import math
from typing import Any

import pytest

from bsbench.backends.cluster.run import build_cluster
from bsbench.backends.config import RunConfig
from bsbench.backends.factory import cluster_setting_of
from bsbench.engine.arrivals import ReplayArrivals, RequestSink
from bsbench.engine.block_manager import BlockManager
from bsbench.engine.decode_runs import DecodeRuns
from bsbench.engine.events import EventLog
from bsbench.engine.loop import Engine, EngineResult, Loop, StopRun
from bsbench.engine.policy import Policy
from bsbench.engine.request_state import Status
from bsbench.record.reasons import EndKind, EndReason
from bsbench.schedulers.base import Scheduler, SchedulerContext
from bsbench.schedulers.registry import get_scheduler
from bsbench.sim.backend import open_sim
from bsbench.workloads.request import RequestSpec
from bsbench.workloads.workload import Workload

MODEL, GPU = "tiny", "a100-40gb"


def _requests(n: int = 24) -> list[RequestSpec]:
    return [RequestSpec(f"r{i:02d}", tuple(10 + (i + k) % 50 for k in range(40 + 7 * i)), 8 + 6 * i, 0.002 * i)
            for i in range(n)]


def _single() -> tuple[Engine, Scheduler]:
    sim = open_sim(MODEL, GPU)
    ctx = SchedulerContext(BlockManager(sim.num_blocks, sim.block_size), sim.shape.info, EventLog(), seed=0)
    cls = get_scheduler("continuous")
    policy = cls(cls.Options(), ctx)
    return Engine(policy, sim.runner, events=ctx.events, blocks=ctx.block_manager, clock=sim.clock), policy


def _cluster(requests: list[RequestSpec], instances: str = "prefill=1,decode=1") -> tuple[Loop, Any]:
    config = RunConfig(scheduler="distserve", backend="sim", clock="virtual", gpu=GPU, model=MODEL,
                       instances=instances)
    workload = Workload("constructed", requests, "fake", spec={"rate": math.inf, "seed": 0})
    cluster = build_cluster(config, cluster_setting_of(config), workload)
    return cluster.make_engine(None), cluster


def _kinds(result: EngineResult) -> dict[str, int]:
    kinds: dict[str, int] = {}
    for state in result.states:
        if state.status is not Status.COMPLETED:
            assert state.reason is not None
            kinds[state.reason.kind.value] = kinds.get(state.reason.kind.value, 0) + 1
    return kinds


class StopsAt(ReplayArrivals):
    """A replay that stops the run (StopRun, as a closing server does) at the first instant at or after `at`."""

    def __init__(self, requests: list[RequestSpec], at: float) -> None:
        super().__init__(requests)
        self.at = at

    def admit(self, sink: RequestSink, now: float) -> None:
        if now >= self.at:
            raise StopRun(EndReason(EndKind.INTERRUPTED, "the server shut down"))
        super().admit(sink, now)


def test_a_stop_ends_the_unfinished_with_its_reason_on_one_instance_and_on_a_cluster():
    requests = _requests()
    for make in (_single, lambda: _cluster(requests, "prefill=2,decode=1")):
        half = make()[0].run(requests).duration_s / 2
        result = make()[0].drive(StopsAt(requests, at=half))
        assert not result.complete
        assert all(s.status.is_final for s in result.states) and len(result.states) == len(requests)
        kinds = _kinds(result)
        assert set(kinds) == {"interrupted"} and 0 < kinds["interrupted"] < len(requests)
        assert {s.reason.detail for s in result.states if s.reason} == {"the server shut down"}
        assert half <= result.duration_s


@pytest.mark.parametrize("where", ["single", "prefill", "decode"])
def test_a_policy_that_never_schedules_stalls_on_one_instance_and_on_a_cluster(where):
    requests = _requests(12)
    if where == "single":
        engine, policy = _single()
    else:
        engine, cluster = _cluster(requests)
        policy = next(i.policy for i in cluster.instances if i.role == where)
    policy._schedule = lambda now: None  # holds its requests, never plans, never wakes: a stall, not a hang
    result = engine.run(requests)
    assert result.complete
    kinds = _kinds(result)
    assert set(kinds) == {"stalled"}
    if where == "decode":  # prefill ran: every request got its first token and was moved before the stall
        assert kinds["stalled"] == len(requests)
        assert all(s.transfer_end_s is not None for s in result.states)
    else:
        assert kinds == {"stalled": len(requests)}


def test_a_cancel_on_a_cluster_reaches_the_request_wherever_it_is():
    requests = _requests(16)
    loop, cluster = _cluster(requests, "prefill=1,decode=2")

    class CancelsEveryOther(ReplayArrivals):
        cancelled: list[str] = []

        def admit(self, sink: RequestSink, now: float) -> None:
            super().admit(sink, now)
            if now >= 0.02 and not self.cancelled:
                for state in self.states[::2]:
                    if not state.status.is_final:
                        sink.cancel(state, now, EndReason(EndKind.CANCELLED, "the client went away"))
                        self.cancelled.append(state.id)

    arrivals = CancelsEveryOther(requests)
    result = loop.drive(arrivals)
    assert result.complete and arrivals.cancelled
    cancelled = 0
    for state in result.states:
        if state.id in arrivals.cancelled and state.status is not Status.COMPLETED:  # else its step under way ended it
            assert state.status is Status.FAILED and state.reason.kind is EndKind.CANCELLED
            assert state.finish_s >= 0.02
            cancelled += 1
        else:
            assert state.status is Status.COMPLETED
    assert cancelled > len(arrivals.cancelled) / 2
    assert all(i.policy.blocks.num_used == 0 for i in cluster.instances)  # every block came back


def test_decode_runs_are_no_part_of_the_policy_contract():
    contract = {name for name in dir(Policy) if not name.startswith("_")}
    assert not {name for name in contract if name.startswith(("decode_run", "update_decode_run"))}
    assert {"schedule", "update", "next_wakeup", "drain", "cancel"} <= contract
    assert not hasattr(Scheduler, "decode_run_length")  # the base class offers none by default
    ctx = SchedulerContext(BlockManager(64, 16), open_sim(MODEL, GPU).shape.info, EventLog())
    continuous, distserve = get_scheduler("continuous"), get_scheduler("distserve")
    assert isinstance(continuous(continuous.Options(), ctx), DecodeRuns)  # an extension a policy opts into
    assert not isinstance(distserve(distserve.Options(), ctx), DecodeRuns)
