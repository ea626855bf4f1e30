"""Every policy's admission bound is a promise the policy keeps: a request the up-front check passes is
served; one it refuses is one the policy would not have served either."""

from __future__ import annotations

import pytest

from bsbench.backends.fit_checks import check_workload_fits
from bsbench.backends.policy_build import build_scheduler_options
from bsbench.engine.clock import VirtualClock
from bsbench.engine.loop import Engine
from bsbench.engine.request_state import Status
from bsbench.errors import BsbenchError
from bsbench.schedulers.registry import all_schedulers
from bsbench.workloads.request import RequestSpec
from bsbench.workloads.workload import Workload
from tests.fakes import BudgetCheckingRunner, make_context, reference_generate

BLOCK, NUM_BLOCKS, OUTPUT = 4, 20, 5


def _request(req_id: str, kv_slots: int) -> RequestSpec:
    """A request whose KV, served alone, is `kv_slots` slots (prompt + output - 1)."""
    return RequestSpec(req_id, tuple(range(10, 10 + kv_slots - OUTPUT + 1)), OUTPUT, 0.0)


def _run_alone(name: str, spec: RequestSpec):
    cls = all_schedulers()[name]
    ctx = make_context(num_blocks=NUM_BLOCKS, block_size=BLOCK)
    scheduler = cls(build_scheduler_options(cls, {}), ctx)
    result = Engine(scheduler, BudgetCheckingRunner(ctx), events=ctx.events, blocks=ctx.block_manager,
                    clock=VirtualClock(tick_s=1e-4)).run([spec])
    return result.states[0]


# a disaggregated-only policy (distserve) never runs on one instance: tests/test_cluster.py checks it per instance
@pytest.mark.parametrize("name", sorted(n for n, cls in all_schedulers().items() if not cls.disaggregated_only))
def test_the_check_passes_exactly_what_the_policy_serves_alone(name):
    cls = all_schedulers()[name]
    ctx = make_context(num_blocks=NUM_BLOCKS, block_size=BLOCK)
    scheduler = cls(build_scheduler_options(cls, {}), ctx)
    bound = scheduler.admission_bound().max_blocks
    assert 0 < bound <= NUM_BLOCKS
    at_bound, past_bound = _request("at-bound", bound * BLOCK), _request("past-bound", bound * BLOCK + 1)

    check_workload_fits(Workload("w", [at_bound], "fake"), ctx.model, scheduler)
    with pytest.raises(BsbenchError, match=f"request past-bound needs {bound + 1} KV blocks"):
        check_workload_fits(Workload("w", [at_bound, past_bound], "fake"), ctx.model, scheduler)

    served = _run_alone(name, at_bound)
    assert served.status is Status.COMPLETED, served.reason
    assert served.output_ids == reference_generate(list(at_bound.prompt_ids), OUTPUT)
    assert _run_alone(name, past_bound).status is not Status.COMPLETED


def test_bucket_keeps_back_its_safety_share():
    cls = all_schedulers()["bucket"]
    ctx = make_context(num_blocks=NUM_BLOCKS, block_size=BLOCK)
    bound = cls(build_scheduler_options(cls, {"bucket_safety": 0.5}), ctx).admission_bound()
    assert bound.max_blocks == NUM_BLOCKS // 2 and "--bucket-safety 0.5" in bound.why
