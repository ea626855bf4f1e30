"""What went wrong in a run, for the console: failures counted by kind, the most common error message, and the
verdict of --max-failure-ratio (a run whose failures pass it must not end as if it succeeded).

Pure functions of a record's request rows; the run command prints them and sets the exit code.
"""

from __future__ import annotations

from collections import Counter

from bsbench.record import Outcome, RunRecord


def failure_counts(record: RunRecord) -> dict[str, int]:
    """{end-reason kind: requests} of the requests that did not complete, most frequent first."""
    kinds = Counter(r.reason.kind.value for r in record.requests
                    if r.status is not Outcome.COMPLETED and r.reason is not None)
    return dict(kinds.most_common())


def most_common_error(record: RunRecord) -> tuple[str, int] | None:
    """The end reason (kind: detail) most requests failed with, and how many; None when none failed."""
    reasons = Counter(str(r.reason) for r in record.requests
                      if r.status is not Outcome.COMPLETED and r.reason is not None)
    return reasons.most_common(1)[0] if reasons else None


def failure_text(record: RunRecord) -> str:
    """One cell: 'none', or 'http-error 4, timeout 1; most common: http-error: HTTP 422 ... (4x)'."""
    counts = failure_counts(record)
    if not counts:
        return "none"
    common = most_common_error(record)
    text = ", ".join(f"{kind} {n}" for kind, n in counts.items())
    return text + (f"; most common: {common[0][:160]} ({common[1]}x)" if common else "")


def failure_verdict(record: RunRecord, max_ratio: float | None) -> str | None:
    """Why the run failed, in one line, or None. `max_ratio` None: the run failed when requests were submitted,
    some did not complete and none did; else when the share not completed is above `max_ratio`."""
    total = len(record.requests)
    bad = sum(r.status is not Outcome.COMPLETED for r in record.requests)
    if not total or not bad:
        return None
    if max_ratio is None and bad < total:
        return None
    if max_ratio is not None and bad / total <= max_ratio:
        return None
    common = most_common_error(record)
    limit = "none completed" if max_ratio is None else f"over --max-failure-ratio {max_ratio:g}"
    cause = f"; most common: {common[0][:200]}" if common else ""
    return f"{bad} of {total} requests did not complete ({limit}){cause}"
