"""Decode runs: an exact speed-up of the virtual clock, joined to the loop at one seam, outside the Policy contract.

A policy MAY implement `DecodeRuns` besides `Policy`, and a runner MAY implement `DecodeRunner`; the loop
(engine/loop.py) asks `decode_runs_for` once per run whether its instance has both, and only a single instance
on the loop's own clock uses them. Nothing else in the engine knows about decode runs.

The policy's part (decisions unchanged):
- `decode_run_length(plan)`: how many steps, `plan` first, would each be `plan` again with every chunk one
  position further on, whatever arrives meanwhile; below 2 promises nothing.
- `decode_run_terms(plan, steps)`: the terms of such a run (`DecodeRunTerms`), changing nothing: the block
  tables as they will be at the last step (a policy that allocates a block as a sequence reaches it names the
  ids the block manager will hand out, in single-step order, without allocating them), the blocks in use per
  step, a deadline, and whether an arrival could change the next plan (then the run ends with the step the next
  request arrives in).
- `update_decode_run(plan, ends)`: book the first len(ends) steps of the run, which ended at `ends`: the same
  state len(ends) calls of `schedule` and `update` would leave, blocks allocated as those steps would have.

The runner's part: `execute_decode_run(plan, steps, until)` runs them at once, perhaps fewer than promised (the
first step that ends at or after `until`), or returns None (then the loop executes one step).

`DecodeRunSeam.start` and `.book` are the loop's part: a run is booked as its single steps would have been,
arrivals and KV blocks in use included, so the record is the same to the bit; only the loop's overhead goes.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from bsbench.engine.arrivals import Arrivals, RequestSink
from bsbench.engine.block_manager import BlockManager
from bsbench.engine.phases import Phase
from bsbench.engine.plan import StepPlan
from bsbench.engine.request_state import RequestState
from bsbench.record.rows import StepRow


@dataclass(slots=True)
class DecodeRunOutput:
    """A runner's answer to `steps` consecutive decode steps of one plan (`execute_decode_run`).

    Step j computes every chunk one position further than step j - 1. The run starts at
    clock time `start_s`; per step: the forward seconds charged (`forward_s[j]`) and the
    clock time it ended (`end_s[j]`); per sampled chunk, its `steps` next tokens in order
    (`next_tokens[req_id]`).
    """

    start_s: float
    forward_s: list[float]
    end_s: list[float]
    next_tokens: dict[str, list[int]]


@dataclass(slots=True)
class DecodeRunTerms:
    """What a policy's promised decode run holds to besides its length (`decode_run_terms`).

    - `plan`: the plan the runner gets; each chunk's block table as it will be at the run's last step
      (a policy that grows tables during the run names the ids single steps would get, in their order);
    - `blocks_used`: the KV blocks in use during each promised step, as single steps would read them;
    - `until`: the run ends with the first step that ends at or after this clock time (a policy deadline,
      e.g. a timed re-evaluation); None: no deadline;
    - `arrivals_matter`: an arrival could change the next plan, so the run also ends with the step during
      which the next request arrives.
    """

    plan: StepPlan
    blocks_used: list[int]
    until: float | None = None
    arrivals_matter: bool = False


@runtime_checkable
class DecodeRuns(Protocol):
    """A policy's optional promise of decode runs (see the module docstring)."""

    def decode_run_length(self, plan: StepPlan) -> int: ...

    def decode_run_terms(self, plan: StepPlan, steps: int) -> DecodeRunTerms: ...

    def update_decode_run(self, plan: StepPlan, ends: Sequence[float]) -> None: ...


@runtime_checkable
class DecodeRunner(Protocol):
    """A runner that can execute several decode steps of one plan at once (the simulated one)."""

    def execute_decode_run(self, plan: StepPlan, steps: int, until: float | None = None
                           ) -> DecodeRunOutput | None: ...


StartedRun = tuple[DecodeRunTerms, DecodeRunOutput]


@dataclass(slots=True)
class DecodeRunSeam:
    """A policy and a runner that both do decode runs, over the policy's block manager."""

    policy: DecodeRuns
    runner: DecodeRunner
    blocks: BlockManager

    def start(self, plan: StepPlan, by_id: dict[str, RequestState], arrivals: Arrivals) -> StartedRun | None:
        """Several decode steps of `plan` at once, when the policy promises them and the runner can run them:
        (the policy's terms, the run); None: execute one step."""
        length = self.policy.decode_run_length(plan)
        if length < 2:
            return None
        if any(by_id[c.req_id].phases.phase is Phase.PREEMPTED for c in plan.chunks):
            return None  # a recompute may catch up inside the run: single steps end its preempted time exactly
        terms = self.policy.decode_run_terms(plan, length)
        until = terms.until
        arrival = arrivals.next_arrival_s() if terms.arrivals_matter else None
        if arrival is not None:  # the step it arrives in ends the run
            until = arrival if until is None else min(until, arrival)
        run = self.runner.execute_decode_run(terms.plan, length, until)
        return None if run is None else (terms, run)

    def book(self, plan: StepPlan, started: StartedRun, by_id: dict[str, RequestState], arrivals: Arrivals,
             sink: RequestSink, steps: list[StepRow]) -> int:
        """Book a decode run as its single steps would have been: tokens, one step row per step, and the
        arrivals those steps would have admitted between them (to `sink`), each at the end of the step before
        it. Returns the tokens produced."""
        terms, run = started
        start, ends = run.start_s, run.end_s
        produced = 0
        for req_id, tokens in run.next_tokens.items():
            by_id[req_id].append_tokens(tokens, ends)
            produced += len(tokens)
        self.policy.update_decode_run(plan, ends)
        total = self.blocks.num_blocks
        layout, num_seqs, num_tokens, pad_tokens = plan.layout, len(plan.chunks), plan.num_tokens, plan.pad_tokens
        append = steps.append
        for end, forward, used in zip(ends, run.forward_s, terms.blocks_used):  # once per step: positional
            # start_s, duration_s, forward_s, layout, num_seqs, num_tokens, pad_tokens, kv_blocks_used, kv_usage
            append(StepRow(start, end - start, forward, layout, num_seqs, num_tokens, pad_tokens, used, used / total))
            start = end
        # each arrival is admitted at the first step end at or after it, as single steps would (the loop admits
        # what arrived by the last step's end): jump to that end instead of trying every end
        last = len(ends) - 1
        at = 0
        while (arrival := arrivals.next_arrival_s()) is not None:
            at = bisect_left(ends, arrival, at, last)
            if at == last:
                break
            arrivals.admit(sink, ends[at])
        return produced


def decode_runs_for(policy: object, runner: object, blocks: BlockManager) -> DecodeRunSeam | None:
    """The one check: the seam when `policy` promises decode runs and `runner` can execute them, else None."""
    if isinstance(policy, DecodeRuns) and isinstance(runner, DecodeRunner):
        return DecodeRunSeam(policy, runner, blocks)
    return None
