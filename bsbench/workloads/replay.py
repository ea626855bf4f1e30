"""Saved workloads: one request per JSONL line (`request_to_dict`), plus a `.meta.json` sidecar.

`save_workload` / `load_jsonl` round-trip a request list exactly (same
fingerprint). The sidecar keeps the tokenizer name, the spec and the load
report, so a replayed run still says which tokenizer made its token counts.

The rule for a bad line: a line that is not JSON (cut off by a crash, a nesting
bomb, garbage) is counted in the load report and skipped, as a dataset's
malformed records are (`--strict` makes it fatal). A line that is JSON but
holds a wrong value (a wrong type, an out-of-range number such as an
`output_len` of 1e9, a missing or unknown field) is the file's author's
mistake, not damage: the whole file is refused, exit 2, one line naming the
line number and the field. Skipping it would replay a different workload than
the one written.
"""

from __future__ import annotations

import itertools
import json
import math
import os
from typing import Any

from bsbench.errors import BsbenchError
from bsbench.safe_json import loads, read_text
from bsbench.values import MAX_INT_FLAG, MAX_SECONDS, MAX_TOKENS, Integer, Invalid, Real, check_named
from bsbench.workloads.request import SLO, RequestSpec
from bsbench.workloads.workload import Workload, request_to_dict


def meta_path(path: str) -> str:
    return path + ".meta.json"


def save_workload(workload: Workload, path: str) -> None:
    """Write the requests as JSONL (and the sidecar). Lines are byte-identical for identical workloads."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(request_to_dict(req), separators=(",", ":")) + "\n" for req in workload.requests)
    meta = {"name": workload.name, "tokenizer": workload.tokenizer, "fingerprint": workload.fingerprint(),
            "num_requests": len(workload.requests), "spec": workload.spec, "load_report": workload.load_report}
    with open(meta_path(path), "w", encoding="utf-8") as handle:
        json.dump(meta, handle, indent=2, sort_keys=True, default=str)
        handle.write("\n")


_OUTPUT_LEN = Integer(1, MAX_TOKENS, numbers_only=True)
_ARRIVAL = Real(low=0, high=MAX_SECONDS, numbers_only=True)
_SLO_MS = Real(low=0, low_open=True, numbers_only=True)
_SLO_KEYS = ("ttft_ms", "tpot_ms", "e2e_ms")
_REQUIRED = ("id", "prompt_ids", "output_len", "arrival_s")


def _request_from_dict(obj: Any) -> RequestSpec:
    """One replay line, every field checked by the same value rules as flags and specs (values.py).

    Raises values.Invalid naming the field; the caller refuses the file (see the module docstring)."""
    if not isinstance(obj, dict):
        raise Invalid(f"a request must be a JSON object, got {type(obj).__name__}")
    missing = [key for key in _REQUIRED if key not in obj]
    if missing:
        raise Invalid(f"missing {', '.join(missing)}")
    rid = obj["id"]
    if isinstance(rid, bool) or not isinstance(rid, (str, int)) or rid == "":
        raise Invalid(f"id must be a non-empty string, got {rid!r}"[:120])
    ids = obj["prompt_ids"]
    if not isinstance(ids, list) or not ids or not all(type(i) is int and 0 <= i <= MAX_INT_FLAG for i in ids):
        raise Invalid("prompt_ids must be a non-empty list of token ids (integers >= 0)")
    if len(ids) > MAX_TOKENS:
        raise Invalid(f"prompt_ids holds {len(ids)} tokens, more than {MAX_TOKENS}")
    output_len = check_named(_OUTPUT_LEN, obj["output_len"], "output_len")
    arrival = check_named(_ARRIVAL, obj["arrival_s"], "arrival_s")
    slo = obj.get("slo")
    slo = {} if slo is None else slo
    if not isinstance(slo, dict):
        raise Invalid(f'slo must be an object such as {{"e2e_ms": 5000}}, got {slo!r}'[:120])
    unknown = sorted(set(slo) - set(_SLO_KEYS))
    if unknown:
        raise Invalid(f"unknown slo key(s) {', '.join(map(str, unknown))} (known: {', '.join(_SLO_KEYS)})")
    for key in _SLO_KEYS:
        if slo.get(key) is not None:
            check_named(_SLO_MS, slo[key], f"slo.{key}")
    priority = obj.get("priority", "online")
    if priority not in ("online", "offline"):
        raise Invalid(f"priority must be online or offline, got {priority!r}"[:120])
    source = obj.get("source", "")
    if not isinstance(source, str):
        raise Invalid(f"source must be a string, got {source!r}"[:120])
    return RequestSpec(id=str(rid), prompt_ids=tuple(ids), output_len=output_len, arrival_s=arrival,
                       slo=SLO(*(slo.get(key) for key in _SLO_KEYS)), priority=priority, source=source)


def _read_meta(path: str) -> dict[str, Any]:
    """The sidecar, if present and sound; a missing, malformed or hostile sidecar is ignored (it is provenance only)."""
    try:
        meta = loads(read_text(meta_path(path), "workload sidecar"))
    except (BsbenchError, json.JSONDecodeError):
        return {}
    if not isinstance(meta, dict):
        return {}
    return {"name": meta["name"] if isinstance(meta.get("name"), str) else None,
            "tokenizer": meta["tokenizer"] if isinstance(meta.get("tokenizer"), str) else None,
            "spec": meta["spec"] if isinstance(meta.get("spec"), dict) else {}}


def load_jsonl(path: str, strict: bool = False, num_requests: int | None = None) -> Workload:
    """A saved request list, exactly. Lines that are not JSON are counted and skipped (fatal with strict); a
    line with a wrong value is a BsbenchError naming the line (see the module docstring)."""
    if not os.path.isfile(path):
        raise BsbenchError(f"workload file not found: {path}")
    requests: list[RequestSpec] = []
    malformed, first_error = 0, ""
    for number, line in enumerate(read_text(path, "workload file").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = loads(line)
        except json.JSONDecodeError as exc:
            malformed += 1
            first_error = first_error or f"line {number}: {str(exc).splitlines()[0] if str(exc) else exc!r}"
            if strict:
                raise BsbenchError(f"malformed request in {path} {first_error}") from None
            continue
        try:
            requests.append(_request_from_dict(obj))
        except Invalid as exc:
            raise BsbenchError(f"bad request in {path} line {number}: {exc}") from None
    if not requests:
        raise BsbenchError(
            f"no valid requests in {path}" + (f" ({malformed} malformed; {first_error})" if malformed else ""))
    ids = [r.id for r in requests]
    if len(set(ids)) != len(ids):
        raise BsbenchError(f"duplicate request ids in {path}")
    if any(b.arrival_s < a.arrival_s for a, b in itertools.pairwise(requests)):
        requests.sort(key=lambda r: r.arrival_s)
    if num_requests is not None:
        if num_requests > len(requests):
            raise BsbenchError(f"asked for {num_requests} requests but {path} holds only {len(requests)}")
        requests = requests[:num_requests]
    meta = _read_meta(path) if os.path.isfile(meta_path(path)) else {}
    original = meta.get("spec") or {}
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
