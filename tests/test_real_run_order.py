"""validate-sim's real runs in rounds: every cell's repeats spread over the whole validation."""

from __future__ import annotations

import pytest

from bsbench.experiments.real_run_order import real_run_order


@pytest.mark.parametrize(("cells", "repeats", "schedulers"), [(4, 9, ["static", "continuous", "uellm", "bucket"]),
                                                               (1, 3, ["static", "bucket"]), (3, 2, ["static"]),
                                                               (2, 1, ["a", "b", "c"])])
def test_every_run_once_and_round_r_holds_repeat_r_of_every_cell(cells, repeats, schedulers):
    order = real_run_order(cells, repeats, schedulers)
    keys = [(r.cell, r.repeat, r.scheduler) for r in order]
    assert sorted(keys) == sorted((c, i, s) for c in range(cells) for i in range(repeats) for s in schedulers)
    per_round = cells * len(schedulers)
    for i, run in enumerate(order):
        assert run.repeat == i // per_round  # repeat r of every cell lies in round r
    first = [order[i].cell for i in range(0, per_round, len(schedulers))]
    assert first == list(range(cells))  # cell after cell within a round


def test_a_cells_repeats_span_the_whole_validation_not_one_stretch():
    order = real_run_order(4, 9, ["static", "continuous", "uellm", "bucket"])
    slots = [i for i, run in enumerate(order) if run.cell == 0 and run.scheduler == "static"]
    per_round = len(order) // 9
    assert [slot // per_round for slot in slots] == list(range(9))  # one per round, first to last


def test_the_first_scheduler_of_a_cell_rotates_over_rounds_and_cells():
    names = ["static", "continuous", "uellm", "bucket"]
    order = real_run_order(2, 4, names)
    firsts = [order[i].scheduler for i in range(0, len(order), len(names))]
    # (round, cell) blocks: (0,0) (0,1) (1,0) (1,1) ...: every scheduler starts a cell's block as often as the others
    assert sorted(firsts) == sorted(names * 2)
    assert firsts[0] != firsts[1]  # the next cell of a round does not start with the same scheduler
