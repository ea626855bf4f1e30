"""The column formulas of metrics.py agree with the per-request ones (their docstrings are the contract), on
random rows with explicit seeds: None times, failed and rejected requests, zero- and single-token outputs,
SLOs, client fields; and the columns hold the rows as record/columns.py says."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from bsbench import metrics
from bsbench.record import EndKind, EndReason, Outcome, RequestRow, StepRow
from bsbench.record.columns import COMPLETED, FAILED, REJECTED, RequestColumns, StepColumns
from bsbench.record.window import WindowSpec, resolve_window

SEEDS = range(12)


def _maybe(rng: random.Random, value: float, chance: float = 0.5) -> float | None:
    return value if rng.random() < chance else None


def _random_row(rng: random.Random, i: int) -> RequestRow:
    status = rng.choice([Outcome.COMPLETED] * 3 + [Outcome.FAILED, Outcome.REJECTED])
    arrival = rng.uniform(0, 50)
    tokens = rng.choice([0, 1, 1, 2, rng.randint(3, 12)]) if status is not Outcome.REJECTED else 0
    if status is Outcome.COMPLETED:
        tokens = max(tokens, 1)
    scheduled = arrival + rng.uniform(0, 3) if tokens or rng.random() < 0.3 else None
    times = sorted(arrival + rng.uniform(0, 10) for _ in range(tokens))
    if rng.random() < 0.2 and len(times) > 1:
        times[1] = times[0]  # two tokens of one step
    finish = times[-1] if status is Outcome.COMPLETED else _maybe(rng, arrival + rng.uniform(0, 12))
    sent = _maybe(rng, arrival + rng.uniform(-0.01, 0.2), 0.3)
    return RequestRow(
        id=f"r{i}", prompt_len=rng.randint(1, 500), output_len=max(tokens, 1), arrival_s=arrival, status=status,
        reason=None if status is Outcome.COMPLETED else EndReason(rng.choice(list(EndKind))),
        num_output=tokens, first_scheduled_s=scheduled, first_token_s=times[0] if times else None,
        finish_s=finish, token_times=times, preemptions=rng.randint(0, 2), truncated=rng.random() < 0.1,
        slo_ttft_ms=_maybe(rng, rng.uniform(100, 5000)), slo_tpot_ms=_maybe(rng, rng.uniform(10, 2000)),
        slo_e2e_ms=_maybe(rng, rng.uniform(500, 10000)), sent_s=sent, late=sent is not None and rng.random() < 0.3,
        token_count_source=None if sent is None else rng.choice(["usage", "counted"]),
        server_prompt_tokens=_maybe(rng, rng.randint(1, 500), 0.2),  # type: ignore[arg-type]
    )


def random_rows(seed: int, n: int | None = None) -> list[RequestRow]:
    rng = random.Random(seed)
    return [_random_row(rng, i) for i in range(rng.randint(0, 60) if n is None else n)]


def _assert_same(column: np.ndarray, expected: list[float | None]) -> None:
    assert len(column) == len(expected)
    for got, want in zip(column.tolist(), expected):
        if want is None:
            assert math.isnan(got)
        else:
            assert got == want  # the same formula, bit for bit


PAIRS = [
    (metrics.ttft_s_column, metrics.ttft_s), (metrics.ttft_sent_s_column, metrics.ttft_sent_s),
    (metrics.e2el_s_column, metrics.e2el_s), (metrics.tpot_s_column, metrics.tpot_s),
    (metrics.tpot_incl_first_s_column, metrics.tpot_incl_first_s), (metrics.queue_s_column, metrics.queue_s),
    (metrics.lateness_s_column, metrics.lateness_s), (metrics.departure_s_column, metrics.departure_s),
    (metrics.left_queue_s_column, metrics.left_queue_s), (metrics.wait_s_column, metrics.wait_s),
]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("column", "per_row"), PAIRS, ids=[p[1].__name__ for p in PAIRS])
def test_each_column_formula_agrees_with_its_row_formula(seed, column, per_row):
    rows = random_rows(seed)
    _assert_same(column(RequestColumns.from_rows(rows)), [per_row(r) for r in rows])


@pytest.mark.parametrize("seed", SEEDS)
def test_pooled_itls_are_each_selected_requests_gaps_in_order(seed):
    rows = random_rows(seed)
    which = np.array([r.status is Outcome.COMPLETED for r in rows], dtype=bool)
    pooled = metrics.itls_s_pooled(RequestColumns.from_rows(rows), which)
    assert pooled.tolist() == [g for r, keep in zip(rows, which) if keep for g in metrics.itls_s(r)]


@pytest.mark.parametrize("seed", SEEDS)
def test_slo_columns_agree_with_slo_checks_and_meets_slos(seed):
    rows = random_rows(seed)
    slos = metrics.slo_columns(RequestColumns.from_rows(rows))
    for i, row in enumerate(rows):
        checks = metrics.slo_checks(row)
        assert {k for k in ("ttft", "tpot", "e2e") if slos.has[k][i]} == set(checks)
        assert {k: bool(slos.met[k][i]) for k in checks} == checks
        assert bool(slos.meets[i]) == metrics.meets_slos(row)
        assert bool(slos.with_slo[i]) == bool(checks)


def test_the_random_rows_cover_the_edge_cases():
    rows = [r for seed in SEEDS for r in random_rows(seed)]
    assert {r.status for r in rows} == set(Outcome)
    assert any(r.num_output == 1 and r.status is Outcome.COMPLETED for r in rows)
    assert any(r.num_output == 0 and r.status is Outcome.FAILED for r in rows)
    assert any(r.finish_s is None for r in rows) and any(r.first_scheduled_s is None for r in rows)
    assert any(metrics.tpot_s(r) is None and r.slo_tpot_ms is not None and metrics.meets_slos(r) for r in rows)
    assert any(r.sent_s is not None and r.sent_s < r.arrival_s for r in rows)  # lateness clipped at 0


def test_request_columns_hold_the_rows():
    rows = random_rows(3, n=30)
    cols = RequestColumns.from_rows(rows)
    assert len(cols) == 30 and cols.token_offsets.tolist()[0] == 0
    for i, row in enumerate(rows):
        assert cols.token_times[cols.token_offsets[i]:cols.token_offsets[i + 1]].tolist() == row.token_times
        assert cols.status[i] == {Outcome.COMPLETED: COMPLETED, Outcome.FAILED: FAILED,
                                  Outcome.REJECTED: REJECTED}[row.status]
        assert cols.reason_kind[i] == ("" if row.reason is None else row.reason.kind.value)
        assert cols.input_tokens[i] == metrics.input_tokens(row)
        assert bool(cols.has_server_prompt[i]) == (row.server_prompt_tokens is not None)
        assert bool(cols.usage_counted[i]) == (row.token_count_source == "usage")
    assert len(RequestColumns.from_rows([])) == 0 and RequestColumns.from_rows([]).token_offsets.tolist() == [0]


def _step(start: float, instance: str | None) -> StepRow:
    return StepRow(start, 0.1, 0.1, "packed", 1, 1, 0, 1, 0.5, instance=instance)


def test_step_instances_group_in_order_of_first_step_and_none_is_one_instance():
    steps = StepColumns.from_rows([_step(0, "decode0"), _step(1, None), _step(2, "prefill0"), _step(3, "decode0"),
                                   _step(4, None), _step(5, "")])
    assert [g.tolist() for g in steps.instance_groups()] == [[0, 3], [1, 4], [2], [5]]
    assert StepColumns.from_rows([]).instance_groups() == []


@pytest.mark.parametrize("seed", SEEDS)
def test_window_metrics_of_rows_and_of_columns_are_one_result(seed):
    rows = random_rows(seed, n=40)
    window = resolve_window([r.arrival_s for r in rows], WindowSpec())
    by_rows = metrics.window_metrics(rows, window)
    assert by_rows == metrics.window_metrics_columns(RequestColumns.from_rows(rows), window)
    scored = [r for r in rows if window.contains(r.arrival_s)]
    assert by_rows["steady_num_requests"] == len(scored)
    inside = sum(1 for r in rows for t in r.token_times if window.contains(t))
    assert by_rows["steady_output_throughput"] == pytest.approx(inside / window.length_s)
    met = sum(1 for r in scored if metrics.meets_slos(r))
    assert by_rows["steady_slo_attainment"] == pytest.approx(met / len(scored))


@pytest.mark.parametrize("seed", SEEDS)
def test_a_summary_of_random_rows_is_json_safe_and_counts_by_row(seed):
    rows = random_rows(seed)
    s = metrics.summarize(rows, [_step(0, None)], [], duration_s=60.0)
    assert s["completed"] == sum(r.status is Outcome.COMPLETED for r in rows)
    assert s["generated_tokens"] == sum(r.num_output for r in rows)
    assert s["num_with_slo"] == sum(1 for r in rows if metrics.slo_checks(r))
    assert s["ended_by_reason"] == {k.value: sum(1 for r in rows if r.reason and r.reason.kind is k) for k in EndKind}

    def plain(value):  # numpy scalars are not JSON
        return (type(value) in (int, float, str, bool, type(None))
                or (type(value) is dict and all(plain(v) for v in value.values()))
                or (type(value) is list and all(plain(v) for v in value)))

    assert all(plain(v) for v in s.values())
