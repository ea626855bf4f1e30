"""vLLM's benchmark result JSON (`vllm bench serve --save-result`, benchmarks/benchmark_serving.py): read it as a
run record that compare can put beside bsbench records, and write a bsbench record in its layout.

The layout (vLLM's serve.py): setup keys `date` (YYYYmmdd-HHMMSS), `backend` / `endpoint_type`, `label`,
`model_id`, `tokenizer_id`, `num_prompts`, `request_rate` (a number or "inf"), `burstiness`, `max_concurrency`;
results `duration`, `completed`, `failed`, `total_input_tokens`, `total_output_tokens`, `request_throughput`,
`request_goodput`, `output_throughput`, `total_token_throughput`, and for ttft, tpot, itl, e2el:
`mean_X_ms`, `median_X_ms`, `std_X_ms`, `pP_X_ms`. With --save-detailed also per request: `input_lens`,
`output_lens`, `ttfts` (s), `itls` (lists, s), `generated_texts`, `errors`. bsbench's summary uses the same names
for the same figures, so an imported result's figures are vLLM's own numbers, unchanged; what vLLM does not
write (KV usage, queueing, SLO attainment) is None and shows as n/a.

What vLLM cannot know is which bsbench workload it replayed. A record exported by bsbench carries a `bsbench`
object (workload fingerprint, backend, device) so that it lands in its own group again; a result of vLLM's own
is placed with the bsbench records whose workload matches its model, request count and rate (and its prompt
lengths, when detailed), else in a group of its own.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from bsbench.errors import BsbenchError
from bsbench.metrics import has_slos, itls_s, num_output, percentile_key, ttft_s
from bsbench.openai_client.assemble import REMOTE_DEVICE_NAME
from bsbench.record import EndKind, EndReason, Outcome, RecordConfig, RequestRow, RunRecord, WorkloadInfo
from bsbench.record.backend_part import BackendPart, OpenAIPart, part_from_flat, part_from_json
from bsbench.record.io import is_record
from bsbench.safe_json import load_file

_RESULT_KEYS = ("completed", "total_input_tokens", "total_output_tokens", "request_throughput", "output_throughput",
                "total_token_throughput", "duration")
_DETAILED = ("input_lens", "output_lens", "ttfts", "itls", "generated_texts", "errors")
_FIGURE = re.compile(r"^(mean|median|std|p[0-9.]+)_(ttft|tpot|itl|e2el)_ms$")  # vLLM's names of latency figures


def is_vllm_result(obj: Any) -> bool:
    """Whether parsed JSON looks like a vLLM benchmark result (and not a bsbench record)."""
    return isinstance(obj, dict) and not is_record(obj) and "request_throughput" in obj and "completed" in obj \
        and ("model_id" in obj or "date" in obj)


def _number(obj: dict[str, Any], key: str) -> float | None:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def record_from_vllm(obj: dict[str, Any], path: Path) -> RunRecord:
    """A vLLM result as a RunRecord: its summary is vLLM's figures under bsbench's names; request rows only when
    it was saved detailed. Malformed is one BsbenchError naming the file."""
    missing = [k for k in _RESULT_KEYS if _number(obj, k) is None]
    if missing:
        raise BsbenchError(f"{path}: a vLLM result needs numbers for {', '.join(missing)}")
    completed = int(obj["completed"])
    rows = _rows(obj, path) if all(isinstance(obj.get(k), list) for k in ("input_lens", "output_lens", "ttfts",
                                                                         "itls")) else []
    failed = int(_number(obj, "failed") or 0) if not rows else sum(r.status is Outcome.FAILED for r in rows)
    rate = obj.get("request_rate")
    rate = math.inf if rate in (None, "inf") else float(rate)
    ours: dict[str, Any] = obj["bsbench"] if isinstance(obj.get("bsbench"), dict) else {}
    summary: dict[str, Any] = {k: _number(obj, k) for k in obj if _FIGURE.match(k) or k in _RESULT_KEYS}
    goodput = _number(obj, "request_goodput")
    summary.update(num_requests=completed + failed, completed=completed, failed=failed, rejected=0,
                   counts_add_up=True, duration_s=float(obj["duration"]), goodput=goodput,
                   num_with_slo=completed + failed if goodput is not None else 0,
                   offered_rate=ours.get("offered_rate", None if math.isinf(rate) else rate),
                   total_input_tokens=int(obj["total_input_tokens"]),
                   total_output_tokens=int(obj["total_output_tokens"]), percentiles=[])
    summary.pop("duration", None)
    label = str(obj.get("label") or obj.get("backend") or "vllm")
    scheduler = f"{ours['scheduler']} (vllm layout)" if ours.get("scheduler") else f"vllm-bench {label}"
    config = RecordConfig(
        scheduler=scheduler, rate=rate, model=str(obj.get("model_id") or "?"), device="remote",
        num_requests=completed + failed, dtype=ours.get("dtype"),
        arrival=ours.get("arrival"), seed=ours.get("seed"), tokenizer=obj.get("tokenizer_id"),
        backend=_backend_part(ours, path), extra={"imported_from": "vllm", "vllm_label": label})
    workload = WorkloadInfo(ours.get("workload_name") or "vllm bench", ours.get("workload_fingerprint") or
                            f"vllm:{path}", int(obj.get("num_prompts") or completed + failed))
    record = RunRecord(config, {"device_name": ours.get("device_name") or REMOTE_DEVICE_NAME}, workload, summary,
                       {"name": config.scheduler}, rows, [], [], complete=True, created=str(obj.get("date", "")))
    record.path = path
    return record



def _model_id(config: RecordConfig) -> str:
    """The model name a server was asked for, else the model's own name."""
    served = config.backend.served_model if isinstance(config.backend, OpenAIPart) else None
    return served or config.model


def _backend_part(ours: dict[str, Any], path: Path) -> BackendPart:
    """The backend part bsbench wrote into its own export (a part object, or the flat keys of earlier exports);
    a file vLLM wrote: a remote server."""
    try:
        if isinstance(ours.get("backend"), dict):
            return part_from_json(ours["backend"])
        return part_from_flat({**ours, "backend": ours.get("backend") or "openai"})
    except ValueError as exc:
        raise BsbenchError(f"{path}: bsbench: {exc}") from None


def _rows(obj: dict[str, Any], path: Path) -> list[RequestRow]:
    """Request rows of a detailed result: times from the request's own start (vLLM saves no arrivals)."""
    lens, outs, ttfts, itls = obj["input_lens"], obj["output_lens"], obj["ttfts"], obj["itls"]
    errors = obj.get("errors") or [""] * len(lens)
    if not len(lens) == len(outs) == len(ttfts) == len(itls) == len(errors):
        raise BsbenchError(f"{path}: input_lens, output_lens, ttfts, itls and errors differ in length")
    rows = []
    for i, (n_in, n_out, ttft, gaps, error) in enumerate(zip(lens, outs, ttfts, itls, errors)):
        times = [float(ttft)] if ttft else []
        for gap in gaps or []:
            times.append(times[-1] + float(gap) if times else float(gap))
        ok = not error and bool(times)
        rows.append(RequestRow(
            id=f"vllm-{i}", prompt_len=int(n_in), output_len=int(n_out), arrival_s=0.0, num_output=int(n_out),
            status=Outcome.COMPLETED if ok else Outcome.FAILED,
            reason=None if ok else EndReason(EndKind.BAD_RESPONSE, str(error or "no tokens")[:200]),
            first_token_s=times[0] if times else None, finish_s=times[-1] if times else None, token_times=times))
    return rows


# A bsbench record's JSON text opens with its schema version (record.io writes it first); a vLLM result has none.
_RECORD_OPENING = re.compile(rb'\s*\{\s*"schema_version"\s*:')


def _opens_as_record(file: Path) -> bool:
    """Whether the file's first bytes are those of a bsbench record (then it is no vLLM result); unreadable
    files are left to the parser's error."""
    try:
        with open(file, "rb") as handle:
            return _RECORD_OPENING.match(handle.read(256)) is not None
    except OSError:
        return False


def split_inputs(paths: list[Path]) -> tuple[list[Path], list[RunRecord]]:
    """Compare's inputs parted: (paths for bsbench's record reader, the vLLM results among them read as records).
    A folder is searched for vLLM results and kept for the reader when it holds anything else."""

    keep: list[Path] = []
    imported: list[RunRecord] = []
    for path in paths:
        files = sorted(p for p in path.rglob("*.json") if not p.name.startswith(".")) if path.is_dir() else \
            [path] if path.is_file() else []
        found = []
        for file in files:
            if _opens_as_record(file):
                continue  # the record reader parses it: parsing every record twice doubled compare's reading
            try:
                obj = load_file(file, "result")
            except BsbenchError:
                if not path.is_dir():
                    raise
                continue
            if is_vllm_result(obj):
                found.append(record_from_vllm(obj, file))
        imported += found
        if not files or len(found) < len(files):
            keep.append(path)
    return keep, imported


def place_beside(imported: RunRecord, records: list[RunRecord]) -> None:
    """Give a vLLM result of vLLM's own the workload fingerprint of the bsbench records it replayed the same
    workload as (model, request count, rate; prompt lengths when detailed). Exported records carry theirs."""
    if not imported.workload.fingerprint.startswith("vllm:"):
        return
    for record in records:
        config = record.config
        same = _model_id(config) == imported.config.model \
            and len(record.requests) == imported.workload.num_requests and config.rate == imported.config.rate
        if same and imported.requests:
            same = sorted(r.prompt_len for r in record.requests) == sorted(r.prompt_len for r in imported.requests)
        if same:
            imported.workload.fingerprint = record.workload.fingerprint
            imported.workload.name = record.workload.name
            return


_METRICS = ("ttft", "tpot", "itl", "e2el")
_ZERO_WHEN_NONE = ("request_throughput", "output_throughput", "total_token_throughput")


def vllm_layout(record: RunRecord) -> dict[str, Any]:
    """`record` in vLLM's result layout (detailed), with a `bsbench` object so that it can be placed again.
    Every key vLLM writes is there; where vLLM writes 0.0 for a figure of no requests (its `np.mean(x or 0)`),
    so does this, and `request_goodput` is null without SLOs, as vLLM's without --goodput."""
    s, config = record.summary, record.config
    try:
        date = datetime.fromisoformat(record.created).strftime("%Y%m%d-%H%M%S")
    except ValueError:
        date = record.created
    part = config.backend
    remote = isinstance(part, OpenAIPart)
    backend = ("openai-chat" if part.endpoint == "chat" else "openai") if isinstance(part, OpenAIPart) else part.kind
    ramp = record.workload.spec.get("ramp_up") if isinstance(record.workload.spec.get("ramp_up"), dict) else None
    out: dict[str, Any] = {
        "date": date, "endpoint_type": backend, "backend": backend, "label": config.scheduler,
        "model_id": _model_id(config), "tokenizer_id": config.tokenizer,
        "num_prompts": len(record.requests), "request_rate": "inf" if math.isinf(config.rate) else config.rate,
        "burstiness": record.workload.spec.get("burstiness") or 1.0,
        "max_concurrency": config.scheduler_options.get("max_concurrency") if remote else None,
        "duration": s["duration_s"], "completed": s["completed"], "failed": s["failed"] + s["rejected"],
        "total_input_tokens": s["total_input_tokens"], "total_output_tokens": s["total_output_tokens"],
        "request_goodput": s.get("goodput") if has_slos(s) else None,
        **{key: s.get(key) or 0.0 for key in _ZERO_WHEN_NONE},
        "max_output_tokens_per_s": max_output_tokens_per_s(record.requests),
        "max_concurrent_requests": max_concurrent_requests(record.requests),
        "input_lens": [r.prompt_len for r in record.requests],
        "output_lens": [num_output(r) for r in record.requests],
        "ttfts": [ttft_s(r) or 0.0 for r in record.requests],
        "itls": [itls_s(r) for r in record.requests],
        "generated_texts": [""] * len(record.requests),  # bsbench records keep token ids, not texts
        "errors": ["" if r.reason is None else str(r.reason) for r in record.requests],
    }
    if ramp is not None:  # vLLM's ramp runs at --request-rate inf
        out.update(request_rate="inf", ramp_up_strategy=ramp.get("strategy"), ramp_up_start_rps=ramp.get("start_rps"),
                   ramp_up_end_rps=ramp.get("end_rps"))
    figures = [f"{stat}_{metric}_ms" for metric in _METRICS for stat in ("mean", "median", "std")]
    figures += [f"{percentile_key(p)}_{metric}_ms" for metric in _METRICS for p in s.get("percentiles") or []]
    out.update({key: s.get(key) or 0.0 for key in figures})
    out.update({key: value if value is not None else 0.0 for key, value in s.items() if _FIGURE.match(key)})
    out["bsbench"] = {"workload_fingerprint": record.workload.fingerprint, "workload_name": record.workload.name,
                      "scheduler": config.scheduler, "backend": part.to_json(),
                      "device_name": record.environment.get("device_name"), "arrival": config.arrival,
                      "seed": config.seed, "dtype": config.dtype,
                      "offered_rate": s.get("offered_rate")}
    return out


def max_output_tokens_per_s(rows: Sequence[RequestRow]) -> float:
    """vLLM's peak output rate: output tokens counted per whole second of the run, the largest count (0.0 when
    no token came)."""
    counts: dict[int, int] = {}
    for row in rows:
        for t in row.token_times:
            counts[int(t)] = counts.get(int(t), 0) + 1
    return float(max(counts.values(), default=0))


def max_concurrent_requests(rows: Sequence[RequestRow]) -> int:
    """vLLM's peak concurrency, over the successful requests as vLLM's: for each whole second of the run, the
    completed requests in flight during it (from arrival to their last token), the largest count (0 when none
    completed)."""
    counts: dict[int, int] = {}
    for row in rows:
        if row.status is not Outcome.COMPLETED or row.finish_s is None:
            continue
        for second in range(int(row.arrival_s), int(row.finish_s) + 1):
            counts[second] = counts.get(second, 0) + 1
    return max(counts.values(), default=0)


def vllm_result_file(record: RunRecord, *, label: str | None = None, metadata: dict[str, str] | None = None,
                     detailed: bool = False, percentile_metrics: tuple[str, ...] = _METRICS) -> dict[str, Any]:
    """What `vllm bench serve --save-result` writes for this run: vllm_layout, its per-request lists only when
    `detailed`, the latency figures of `percentile_metrics` only, `label` (vLLM's default: the backend) and
    each metadata KEY=VALUE as a top-level key (as vLLM)."""
    out = vllm_layout(record)
    out["label"] = label or out["backend"]
    if not detailed:
        for key in _DETAILED:
            out.pop(key, None)
    for key in [k for k in out if (m := _FIGURE.match(k)) and m.group(2) not in percentile_metrics]:
        del out[key]
    out.update(metadata or {})
    return out


def vllm_result_name(result: dict[str, Any], repeat: int = 0) -> str:
    """vLLM's file name: LABEL-RATEqps[-concurrencyN]-MODEL-DATE.json (a ramp: LABEL-ramp-up-S-Aqps-Bqps...;
    MODEL: the last part of the model id);
    repeat i > 0 of a run adds -repeatI so that repeats do not overwrite each other."""
    model = str(result.get("model_id") or "model").rstrip("/").split("/")[-1]
    concurrency = f"-concurrency{result['max_concurrency']}" if result.get("max_concurrency") else ""
    suffix = f"-repeat{repeat}" if repeat else ""
    rate = f"{result['request_rate']}qps"
    if result.get("ramp_up_strategy"):
        rate = f"ramp-up-{result['ramp_up_strategy']}-{result['ramp_up_start_rps']}qps-{result['ramp_up_end_rps']}qps"
    return f"{result['label']}-{rate}{concurrency}-{model}-{result['date']}{suffix}.json"
