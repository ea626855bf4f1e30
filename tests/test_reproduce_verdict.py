"""The verdict rule of `bsbench reproduce` and UELLM's SLO blocks, on constructed figures."""

from __future__ import annotations

import numpy as np
import pytest

from bsbench.experiments.reproduce.claims import BUCKETSERVE_CLAIMS, UELLM_CLAIMS, Claim, latency_factor
from bsbench.experiments.reproduce.params import Param, Params
from bsbench.experiments.reproduce.verdict import (
    DOES_NOT_HOLD,
    HOLD_FRACTION,
    HOLDS,
    NOT_COMPARABLE,
    Measured,
    inverted,
    judge,
    verdict,
    verdict_kind,
)
from bsbench.stats import Interval
from bsbench.workloads.slo import Bound, draw_block_slos

CLAIM = Claim("c", "paper", "throughput 2x", "output_throughput", "ours", "base", "mixed", 2.0)


def measured(low: float, high: float) -> Measured:
    return Measured((low + high) / 2, Interval((low + high) / 2, low, high, 0.95, "t", 3))


def test_holds_when_the_whole_interval_lies_in_the_band_both_ways() -> None:
    floor, ceiling = HOLD_FRACTION * CLAIM.factor, CLAIM.factor / HOLD_FRACTION
    assert verdict_kind(judge(CLAIM, measured(floor, ceiling))) == HOLDS
    below = judge(CLAIM, measured(floor - 0.01, ceiling))
    above = judge(CLAIM, measured(floor, ceiling + 0.01))
    assert verdict_kind(below) == DOES_NOT_HOLD and "below the claim" in below and "above" not in below
    assert verdict_kind(above) == DOES_NOT_HOLD and "above the claim" in above and "below" not in above


def test_does_not_hold_says_why() -> None:
    assert "wider than the band" in judge(CLAIM, measured(1.1, 3.0))
    assert "lower end 1.10x" in judge(CLAIM, measured(1.1, 2.0))
    assert "no clear difference" in judge(CLAIM, measured(0.9, 2.0))
    assert "reverse: base better" in judge(CLAIM, measured(0.5, 0.9))


def test_one_repeat_judges_the_point_and_says_so() -> None:
    got = judge(CLAIM, Measured(1.7))
    assert got.startswith(HOLDS) and "no interval" in got


def test_a_claim_far_above_is_flagged() -> None:
    assert "the setup decides" in judge(CLAIM, measured(5.0, 6.0))
    assert "the setup decides" not in judge(CLAIM, measured(1.7, 2.5))


def test_missing_figure_and_stand_in_baseline_are_not_comparable() -> None:
    assert verdict(CLAIM, Measured(None, missing="needs distserve")) == f"{NOT_COMPARABLE} (needs distserve)"
    stand_in = UELLM_CLAIMS[0]
    text = verdict(stand_in, measured(10.0, 11.0))
    assert text.startswith(f"{NOT_COMPARABLE} (baseline differs") and f"vs {stand_in.baseline}: {HOLDS}" in text


def test_latency_cut_as_factor_and_inverted_interval() -> None:
    assert latency_factor(0.75) == pytest.approx(4.0)
    ratio = Interval(0.5, 0.25, 1.0, 0.95, "t", 3)  # ours / baseline of a latency
    factor = inverted(ratio)
    assert (factor.point, factor.low, factor.high) == (2.0, 1.0, 4.0)


def test_claims_cover_the_issue() -> None:
    factors = {c.key: c.factor for c in BUCKETSERVE_CLAIMS}
    assert factors == {"throughput_vs_uellm": 3.58, "capacity_vs_uellm_alpaca": 1.975,
                       "capacity_vs_uellm_mixed": 3.47, "load_at_80_vs_distserve": 1.93}
    assert {c.baseline for c in UELLM_CLAIMS} == {"static", "continuous"}
    assert all(c.stand_in for c in UELLM_CLAIMS)


def test_params_keep_order_and_refuse_a_second_name() -> None:
    params = Params([Param("b", 1, "why b"), Param("a", [1, 2], "why a")])
    assert params["a"] == [1, 2] and params.get("zz", 5) == 5
    assert params.rows() == [["b", "1", "why b"], ["a", "1, 2", "why a"]]
    with pytest.raises(ValueError):
        Params([Param("a", 1, ""), Param("a", 2, "")])


def test_block_slos_follow_request_order_in_blocks() -> None:
    blocks = [Bound(10.0, 20.0), Bound(100.0, 110.0), Bound(5.0, 5.0)]
    values = draw_block_slos(70, np.random.default_rng(1), blocks, 20)
    for i, value in enumerate(values):
        block = blocks[(i // 20) % 3]
        assert block.low <= value <= block.high
    assert values[40:60] == [5.0] * 20
    assert values == draw_block_slos(70, np.random.default_rng(1), blocks, 20)
