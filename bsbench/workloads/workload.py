"""A materialised workload: the request list every scheduler replays, plus how it was made."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from bsbench.workloads.request import RequestSpec


def request_to_dict(req: RequestSpec) -> dict[str, Any]:
    """The canonical JSON form of a request (also the JSONL line format of saved workloads)."""
    return {
        "id": req.id,
        "prompt_ids": list(req.prompt_ids),
        "output_len": req.output_len,
        "arrival_s": req.arrival_s,
        "slo": {"ttft_ms": req.slo.ttft_ms, "tpot_ms": req.slo.tpot_ms, "e2e_ms": req.slo.e2e_ms},
        "priority": req.priority,
        "source": req.source,
    }


def fingerprint_requests(requests: list[RequestSpec]) -> str:
    """sha256 over the canonical form of every request, in order: equal iff the request lists are equal."""
    digest = hashlib.sha256()
    for req in requests:
        digest.update(json.dumps(request_to_dict(req), sort_keys=True, separators=(",", ":")).encode())
        digest.update(b"\n")
    return digest.hexdigest()


@dataclass(slots=True)
class Workload:
    """Requests sorted by arrival time, with the provenance a run record needs.

    `spec` is the resolved description (source, filters, seed, arrivals, SLOs);
    `load_report` says how many records were read, kept and dropped by which
    rule; `tokenizer` names the tokenizer every token count came from.
    """

    name: str
    requests: list[RequestSpec]
    tokenizer: str
    spec: dict[str, Any] = field(default_factory=dict)
    load_report: dict[str, Any] = field(default_factory=dict)

    def fingerprint(self) -> str:
        return fingerprint_requests(self.requests)
