"""Impossible configurations found before anything runs: a request the model or the policy can never serve."""

from __future__ import annotations

from bsbench.engine.model_info import ModelInfo
from bsbench.errors import BsbenchError
from bsbench.record.reasons import EndKind, EndReason
from bsbench.schedulers.base import Scheduler
from bsbench.workloads.request import RequestSpec
from bsbench.workloads.workload import Workload


def check_workload_fits(workload: Workload, info: ModelInfo, scheduler: Scheduler) -> None:
    """Impossible configurations are user errors, found before anything runs: no requests, a token id
    outside the vocabulary, a request longer than the model's context, or one the chosen policy would
    never serve even alone (its own admission bound, e.g. bucket's safety share of the KV cache)."""
    if not workload.requests:
        raise BsbenchError("the workload has no requests")
    check_token_ids(workload, info)
    longest = max(workload.requests, key=lambda r: r.prompt_len + r.output_len)
    too_long = context_excess(longest, info)
    if too_long is not None:
        raise BsbenchError(f"request {longest.id} {too_long}; filter the workload "
                           f"(--max-prompt-len / --max-output-len) or use another model")
    bound = scheduler.admission_bound().max_blocks
    over = [(need, r) for r in workload.requests if (need := scheduler.blocks_to_serve_alone(r)) > bound]
    if over:
        need, spec = max(over, key=lambda item: item[0])
        more = f" (and {len(over) - 1} more)" if len(over) > 1 else ""
        raise BsbenchError(f"request {spec.id}{more} {kv_excess(spec, scheduler)}; raise --kv-memory")


def context_excess(spec: RequestSpec, info: ModelInfo) -> str | None:
    """Why `spec` passes the model's context ("needs N tokens ... but"), or None when it fits."""
    total = spec.prompt_len + spec.output_len
    if total <= info.max_model_len:
        return None
    return (f"needs {total} tokens (prompt {spec.prompt_len} + output {spec.output_len}) "
            f"but {info.name} has a context of {info.max_model_len}")


def kv_excess(spec: RequestSpec, scheduler: Scheduler) -> str | None:
    """Why `scheduler` would never serve `spec`, even alone in an empty cache (its admission bound), or None."""
    need = scheduler.blocks_to_serve_alone(spec)
    bound = scheduler.admission_bound()
    if need <= bound.max_blocks:
        return None
    return (f"needs {need} KV blocks of {scheduler.blocks.block_size} tokens (prompt {spec.prompt_len} + output "
            f"{spec.output_len}) but {scheduler.name} lets one request hold at most {bound.max_blocks}, {bound.why}")


def request_misfit(spec: RequestSpec, info: ModelInfo, scheduler: Scheduler) -> EndReason | None:
    """Why one request can never be served (the model's context, the policy's admission bound), typed for
    its end reason; None when it can. An online engine rejects such a request before it enters."""
    too_long = context_excess(spec, info)
    if too_long is not None:
        return EndReason(EndKind.TOO_LONG, f"the request {too_long}")
    over = kv_excess(spec, scheduler)
    return None if over is None else EndReason(EndKind.KV_REJECTED, f"the request {over}")


def longest_output(prompt_len: int, info: ModelInfo, scheduler: Scheduler) -> int:
    """The most tokens a request with a prompt of `prompt_len` may ask for and still be served: the model's
    context less the prompt, bounded by what `scheduler` lets one request hold (0: the prompt alone is too much)."""
    low, high = 0, info.max_model_len - prompt_len
    while low < high:  # the largest output length that fits, by bisection (a policy's need only grows with it)
        mid = (low + high + 1) // 2
        if kv_excess(RequestSpec("longest", (0,) * prompt_len, mid, 0.0), scheduler) is None:
            low = mid
        else:
            high = mid - 1
    return max(0, low)


def check_token_ids(workload: Workload, info: ModelInfo) -> None:
    """Every prompt token id must index the model's embedding (a replay or a tokenizer made for another model)."""
    for spec in workload.requests:
        low, high = min(spec.prompt_ids), max(spec.prompt_ids)
        if low < 0 or high >= info.vocab_size:
            raise BsbenchError(
                f"request {spec.id} has token id {high if high >= info.vocab_size else low} but {info.name} has a "
                f"vocabulary of {info.vocab_size} (ids 0..{info.vocab_size - 1}); the workload's tokenizer "
                f"({workload.tokenizer}) does not fit this model: use --tokenizer with the model's own"
            )
