"""Saved workloads: one request per JSONL line (`request_to_dict`), plus a `.meta.json` sidecar.

`save_workload` / `load_jsonl` round-trip a request list exactly (same
fingerprint). The sidecar keeps the tokenizer name, the spec and the load
report, so a replayed run still says which tokenizer made its token counts.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

from bsbench.errors import BsbenchError
from bsbench.workloads.request import SLO, RequestSpec
from bsbench.workloads.workload import Workload, request_to_dict


def meta_path(path: str) -> str:
    return path + ".meta.json"


def save_workload(workload: Workload, path: str) -> None:
    """Write the requests as JSONL (and the sidecar). Lines are byte-identical for identical workloads."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for req in workload.requests:
            handle.write(json.dumps(request_to_dict(req), separators=(",", ":")) + "\n")
    meta = {"name": workload.name, "tokenizer": workload.tokenizer, "fingerprint": workload.fingerprint(),
            "num_requests": len(workload.requests), "spec": workload.spec, "load_report": workload.load_report}
    with open(meta_path(path), "w", encoding="utf-8") as handle:
        json.dump(meta, handle, indent=2, sort_keys=True, default=str)
        handle.write("\n")


def _request_from_dict(obj: Any) -> RequestSpec:
    if not isinstance(obj, dict):
        raise ValueError("not an object")
    ids = obj["prompt_ids"]
    if not isinstance(ids, list) or not ids or not all(isinstance(i, int) and i >= 0 for i in ids):
        raise ValueError("prompt_ids must be a non-empty list of token ids")
    output_len = obj["output_len"]
    if not isinstance(output_len, int) or output_len < 1:
        raise ValueError("output_len must be an integer >= 1")
    arrival = float(obj["arrival_s"])
    if not math.isfinite(arrival) or arrival < 0:
        raise ValueError("arrival_s must be a finite number >= 0")
    slo = obj.get("slo") or {}
    priority = obj.get("priority", "online")
    if priority not in ("online", "offline"):
        raise ValueError(f"priority must be online or offline, got {priority!r}")
    return RequestSpec(id=str(obj["id"]), prompt_ids=tuple(ids), output_len=output_len, arrival_s=arrival,
                       slo=SLO(slo.get("ttft_ms"), slo.get("tpot_ms"), slo.get("e2e_ms")),
                       priority=priority, source=str(obj.get("source", "")))


def load_jsonl(path: str, strict: bool = False, num_requests: int | None = None) -> Workload:
    """A saved request list, exactly. Malformed lines are counted and skipped (fatal with strict)."""
    if not os.path.isfile(path):
        raise BsbenchError(f"workload file not found: {path}")
    requests: list[RequestSpec] = []
    malformed, first_error = 0, ""
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                requests.append(_request_from_dict(json.loads(line)))
            except (ValueError, KeyError, TypeError) as exc:
                malformed += 1
                first_error = first_error or f"line {number}: {str(exc).splitlines()[0] if str(exc) else exc!r}"
                if strict:
                    raise BsbenchError(f"malformed request in {path} {first_error}") from None
    if not requests:
        raise BsbenchError(f"no valid requests in {path}" + (f" ({malformed} malformed; {first_error})" if malformed else ""))
    ids = [r.id for r in requests]
    if len(set(ids)) != len(ids):
        raise BsbenchError(f"duplicate request ids in {path}")
    if any(b.arrival_s < a.arrival_s for a, b in zip(requests, requests[1:])):
        requests.sort(key=lambda r: r.arrival_s)
    if num_requests is not None:
        if num_requests > len(requests):
            raise BsbenchError(f"asked for {num_requests} requests but {path} holds only {len(requests)}")
        requests = requests[:num_requests]
    meta: dict[str, Any] = {}
    if os.path.isfile(meta_path(path)):
        try:
            with open(meta_path(path), encoding="utf-8") as handle:
                meta = json.load(handle)
        except (OSError, json.JSONDecodeError):
            meta = {}
    original = meta.get("spec") if isinstance(meta.get("spec"), dict) else {}
    span = requests[-1].arrival_s - requests[0].arrival_s
    spec = {"source": "jsonl", "path": os.path.abspath(path), "arrival": "replay", "seed": original.get("seed"),
            "rate": (len(requests) - 1) / span if span > 0 else math.inf, "original_spec": original or None}
    report = {"source": "jsonl", "records": len(requests) + malformed, "kept": len(requests), "malformed": malformed,
              "dropped": {}}
    if first_error:
        report["first_error"] = first_error
    return Workload(name=meta.get("name") or os.path.splitext(os.path.basename(path))[0], requests=requests,
                    tokenizer=meta.get("tokenizer") or "unknown (no .meta.json next to the file)",
                    spec=spec, load_report=report)
