"""What one reproduction produced: each claim with its measured figure and verdict, the points of its sweeps,
its capacities, and the folders its runs are in."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bsbench.experiments.capacity_repeats import CapacityOverRepeats
from bsbench.experiments.reproduce.claims import Claim
from bsbench.experiments.reproduce.params import Params
from bsbench.experiments.reproduce.verdict import Measured, verdict


@dataclass(slots=True)
class ClaimResult:
    claim: Claim
    measured: Measured

    @property
    def verdict(self) -> str:
        return verdict(self.claim, self.measured)

    def row(self) -> list[str]:
        """paper claim, baseline run here, measured factor, where it comes from, verdict."""
        baseline = self.claim.baseline + (f" (for {self.claim.paper_baseline})" if self.claim.stand_in else "")
        return [self.claim.text, self.claim.claimed_text, baseline, self.measured.text(), self.measured.source,
                self.verdict]

    def to_dict(self) -> dict[str, Any]:
        return {"claim": self.claim.to_dict(), "measured": self.measured.to_dict(), "verdict": self.verdict}


CLAIM_HEADER = ["claim", "claimed", "baseline here", "measured (95% interval)", "measured on", "verdict"]


@dataclass(slots=True)
class Reproduction:
    """`sweeps`: experiment name -> sweep_summary points (per scheduler and rate, with intervals);
    `capacities`: stand-in workload -> scheduler -> its searches over the seeds; `bars`: figure name ->
    group -> scheduler -> (mean, low, high) of a single-rate experiment."""

    paper: str
    params: Params
    results: list[ClaimResult] = field(default_factory=list)
    sweeps: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    capacities: dict[str, dict[str, CapacityOverRepeats]] = field(default_factory=dict)
    bars: dict[str, dict[str, dict[str, tuple[float, float | None, float | None]]]] = field(default_factory=dict)
    folders: list[str] = field(default_factory=list)
