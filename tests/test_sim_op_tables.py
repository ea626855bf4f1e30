"""Operator tables: interpolation between measured row counts, and what a runner without a model gets."""

from __future__ import annotations

import pytest

from bsbench.sim.op_tables import EMPTY, RowTable, measure_tables, tables_from_dict
from tests.fakes import RecordingRunner


def test_row_table_interpolates_between_knots_and_follows_the_last_slope_beyond():
    table = RowTable((1, 2, 4, 8), (1.0, 3.0, 2.0, 4.0))
    assert [table.at(r) for r in (0, 1, 2, 3, 4, 6, 8)] == pytest.approx([0.0, 1.0, 3.0, 2.5, 2.0, 3.0, 4.0])
    assert table.at(16) == pytest.approx(8.0)  # slope 0.5 per row from the last two knots
    falling = RowTable((1, 2), (2.0, 1.0))
    assert falling.at(10) == pytest.approx(1.0)  # past the last knot a time never falls
    assert RowTable((4,), (2.0,)).at(2) == pytest.approx(1.0)  # below the first knot: proportional
    assert EMPTY.at(100) == 0.0


def test_tables_round_trip_and_refuse_bad_knots():
    table = RowTable((1, 3), (0.5, 0.7))
    assert RowTable.from_dict(table.to_dict()) == table
    assert tables_from_dict({"linear": table.to_dict()}) == {"linear": table, "lm_head": EMPTY}
    for bad in ({"knots": [2, 1], "seconds": [1, 2]}, {"knots": [1, 1], "seconds": [1, 2]},
                {"knots": [0, 1], "seconds": [1, 2]}, {"knots": [1, 2], "seconds": [1]}):
        with pytest.raises(ValueError, match="ascending distinct knots"):
            RowTable.from_dict(bad)


def test_a_runner_without_a_torch_model_gets_no_tables():
    assert measure_tables(RecordingRunner(16, 64), 2, lambda: None) == {}
