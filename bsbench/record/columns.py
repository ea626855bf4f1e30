"""The rows of a run record as numpy columns: what the summary computes from (metrics.summarize_columns).

One array per field, row i of every array is request (or step) i. Optional times and SLOs are float64 with NaN
for None; every request's token times lie in one flat float64 array `token_times`, request i's at
token_times[token_offsets[i]:token_offsets[i + 1]]. The columns hold only what the summary reads; a reader that
keeps its rows by column (Arrow) can fill them without building a row object.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bsbench.record.rows import Outcome, RequestRow, StepRow

COMPLETED, FAILED, REJECTED = 0, 1, 2  # the int8 codes of RequestColumns.status
STATUS_CODES: dict[Outcome, int] = {Outcome.COMPLETED: COMPLETED, Outcome.FAILED: FAILED,
                                    Outcome.REJECTED: REJECTED}


# the columns of a stored record's request rows (record/arrow_rows.REQUEST_SCHEMA) that RequestColumns.from_table reads
TABLE_COLUMNS = ("arrival_s", "first_scheduled_s", "first_token_s", "finish_s", "sent_s", "slo_ttft_ms",
                 "slo_tpot_ms", "slo_e2e_ms", "prompt_len", "output_len", "num_output", "preemptions",
                 "server_prompt_tokens", "status", "reason_kind", "truncated", "late", "token_count_source",
                 "token_times")


def _floats(values: Sequence[float | None]) -> np.ndarray:
    """float64 with NaN for None."""
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


@dataclass(slots=True)
class RequestColumns:
    """The request rows by column (see the module docstring); every array has length n, token_offsets n + 1.

    input_tokens: the server's prompt count when it reported one, else prompt_len (metrics.input_tokens);
    has_server_prompt: whether it reported one; usage_counted: num_output is the server's usage
    (token_count_source == 'usage'); reason_kind: the EndKind value, '' for a completed request."""

    arrival_s: np.ndarray
    first_scheduled_s: np.ndarray
    first_token_s: np.ndarray
    finish_s: np.ndarray
    sent_s: np.ndarray
    slo_ttft_ms: np.ndarray
    slo_tpot_ms: np.ndarray
    slo_e2e_ms: np.ndarray
    prompt_len: np.ndarray
    output_len: np.ndarray
    num_output: np.ndarray
    preemptions: np.ndarray
    input_tokens: np.ndarray
    status: np.ndarray
    reason_kind: np.ndarray
    truncated: np.ndarray
    late: np.ndarray
    has_server_prompt: np.ndarray
    usage_counted: np.ndarray
    token_times: np.ndarray
    token_offsets: np.ndarray

    def __len__(self) -> int:
        return len(self.arrival_s)

    @classmethod
    def from_rows(cls, rows: Sequence[RequestRow]) -> RequestColumns:
        counts = np.fromiter((len(r.token_times) for r in rows), dtype=np.int64, count=len(rows))
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        times = np.fromiter(chain.from_iterable(r.token_times for r in rows), dtype=np.float64,
                            count=int(offsets[-1]))

        def ints(values: list[int]) -> np.ndarray:
            return np.array(values, dtype=np.int64)

        def flags(values: list[bool]) -> np.ndarray:
            return np.array(values, dtype=np.bool_)

        return cls(
            arrival_s=np.array([r.arrival_s for r in rows], dtype=np.float64),
            first_scheduled_s=_floats([r.first_scheduled_s for r in rows]),
            first_token_s=_floats([r.first_token_s for r in rows]),
            finish_s=_floats([r.finish_s for r in rows]),
            sent_s=_floats([r.sent_s for r in rows]),
            slo_ttft_ms=_floats([r.slo_ttft_ms for r in rows]),
            slo_tpot_ms=_floats([r.slo_tpot_ms for r in rows]),
            slo_e2e_ms=_floats([r.slo_e2e_ms for r in rows]),
            prompt_len=ints([r.prompt_len for r in rows]),
            output_len=ints([r.output_len for r in rows]),
            num_output=ints([r.num_output for r in rows]),
            preemptions=ints([r.preemptions for r in rows]),
            input_tokens=ints([r.prompt_len if r.server_prompt_tokens is None else r.server_prompt_tokens
                               for r in rows]),
            status=np.array([STATUS_CODES[r.status] for r in rows], dtype=np.int8),
            reason_kind=np.array(["" if r.reason is None else r.reason.kind.value for r in rows], dtype=np.str_),
            truncated=flags([r.truncated for r in rows]),
            late=flags([r.late for r in rows]),
            has_server_prompt=flags([r.server_prompt_tokens is not None for r in rows]),
            usage_counted=flags([r.token_count_source == "usage" for r in rows]),
            token_times=times,
            token_offsets=offsets,
        )

    @classmethod
    def from_table(cls, table: pa.Table) -> RequestColumns:
        """The columns of request rows kept by column (an Arrow table with TABLE_COLUMNS of REQUEST_SCHEMA),
        equal to from_rows of the same rows, without building a row; ValueError on an unknown status."""
        def floats(name: str) -> np.ndarray:
            return np.asarray(pc.fill_null(table.column(name).cast(pa.float64()), np.nan).to_numpy(),
                              dtype=np.float64)

        def ints(name: str) -> np.ndarray:
            return np.asarray(pc.fill_null(table.column(name), 0).to_numpy(), dtype=np.int64)

        def flags(values: pa.ChunkedArray) -> np.ndarray:
            return np.asarray(pc.fill_null(values, False).to_numpy(zero_copy_only=False), dtype=np.bool_)

        status_text = table.column("status").to_numpy(zero_copy_only=False)
        status = np.full(len(status_text), -1, dtype=np.int8)
        for outcome, code in STATUS_CODES.items():
            status[status_text == outcome.value] = code
        if (status < 0).any():
            raise ValueError(f"status must be completed, failed or rejected, got {status_text[status < 0][0]!r:.40}")
        tokens = table.column("token_times").combine_chunks()
        offsets = np.asarray(tokens.offsets.to_numpy(), dtype=np.int64)
        server_prompt = table.column("server_prompt_tokens")
        return cls(
            arrival_s=floats("arrival_s"), first_scheduled_s=floats("first_scheduled_s"),
            first_token_s=floats("first_token_s"), finish_s=floats("finish_s"), sent_s=floats("sent_s"),
            slo_ttft_ms=floats("slo_ttft_ms"), slo_tpot_ms=floats("slo_tpot_ms"), slo_e2e_ms=floats("slo_e2e_ms"),
            prompt_len=ints("prompt_len"), output_len=ints("output_len"), num_output=ints("num_output"),
            preemptions=ints("preemptions"),
            input_tokens=np.asarray(pc.coalesce(server_prompt, table.column("prompt_len")).to_numpy(), dtype=np.int64),
            status=status,
            reason_kind=np.asarray(pc.fill_null(table.column("reason_kind"), "").to_numpy(zero_copy_only=False),
                                   dtype=np.str_),
            truncated=flags(table.column("truncated")), late=flags(table.column("late")),
            has_server_prompt=flags(pc.is_valid(server_prompt)),
            usage_counted=flags(pc.equal(table.column("token_count_source"), "usage")),
            token_times=np.asarray(tokens.flatten().to_numpy(), dtype=np.float64),
            token_offsets=offsets - offsets[0],
        )


@dataclass(slots=True)
class StepColumns:
    """The step rows by column. `instance` is '' where `has_instance` is False (a single-instance run's None):
    the distinct instances are the distinct (has_instance, instance) pairs, so None counts as one instance."""

    start_s: np.ndarray
    duration_s: np.ndarray
    forward_s: np.ndarray
    kv_usage: np.ndarray
    num_seqs: np.ndarray
    num_tokens: np.ndarray
    pad_tokens: np.ndarray
    kv_blocks_used: np.ndarray
    layout: np.ndarray
    instance: np.ndarray
    has_instance: np.ndarray

    def __len__(self) -> int:
        return len(self.start_s)

    @classmethod
    def from_rows(cls, rows: Sequence[StepRow]) -> StepColumns:
        def floats(values: list[float]) -> np.ndarray:
            return np.array(values, dtype=np.float64)

        def ints(values: list[int]) -> np.ndarray:
            return np.array(values, dtype=np.int64)

        return cls(
            start_s=floats([s.start_s for s in rows]),
            duration_s=floats([s.duration_s for s in rows]),
            forward_s=floats([s.forward_s for s in rows]),
            kv_usage=floats([s.kv_usage for s in rows]),
            num_seqs=ints([s.num_seqs for s in rows]),
            num_tokens=ints([s.num_tokens for s in rows]),
            pad_tokens=ints([s.pad_tokens for s in rows]),
            kv_blocks_used=ints([s.kv_blocks_used for s in rows]),
            layout=np.array([s.layout for s in rows], dtype=np.str_),
            instance=np.array(["" if s.instance is None else s.instance for s in rows], dtype=np.str_),
            has_instance=np.array([s.instance is not None for s in rows], dtype=np.bool_),
        )

    def instance_groups(self) -> list[np.ndarray]:
        """The indices of each instance's steps, instances in the order of their first step."""
        named = np.flatnonzero(self.has_instance)
        groups = [np.flatnonzero(~self.has_instance)]
        if len(named):
            _, inverse = np.unique(self.instance[named], return_inverse=True)
            groups += [named[inverse.ravel() == group] for group in range(int(inverse.max()) + 1)]
        return sorted((g for g in groups if len(g)), key=lambda g: int(g[0]))
