"""What the papers claim (papers.md), as data: a claimed improvement factor of one scheduler over a baseline.

Every claim is stated as an improvement factor >= 1, whatever its metric's direction: a throughput or a load
capacity as ours / baseline, a latency as baseline / ours (a latency cut of 72.3% is a factor 1 / (1 - 0.723)
= 3.61x). A range claim ("1.92x to 4.98x") is met when its LOWER end is met: the paper's own weakest case;
"up to X" claims (the best case of a sweep) are checked against the best case measured here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(slots=True, frozen=True)
class Claim:
    """`factor` (and `factor_high` for a range): the claimed improvement of `ours` over `baseline` on `metric`.

    `paper_baseline`: the baseline the paper measured against; `stand_in`: the baseline that runs here instead
    when the paper's is not in bsbench (the claim is then not comparable, and the measured figure is shown
    for the like-for-like part); `needs`: a scheduler that must be registered for the claim to be computed."""

    key: str
    paper: str
    text: str
    metric: str
    ours: str
    baseline: str
    workload: str
    factor: float
    factor_high: float | None = None
    paper_baseline: str = ""
    stand_in: bool = False
    up_to: bool = False

    @property
    def claimed_text(self) -> str:
        if self.factor_high is not None:
            return f"{self.factor:.2f}x to {self.factor_high:.2f}x"
        return f"{'up to ' if self.up_to else ''}{self.factor:.3g}x"

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "paper": self.paper, "text": self.text, "metric": self.metric, "ours": self.ours,
                "baseline": self.baseline, "workload": self.workload, "factor": self.factor,
                "factor_high": self.factor_high, "paper_baseline": self.paper_baseline or self.baseline,
                "stand_in": self.stand_in, "up_to": self.up_to}


def latency_factor(cut: float) -> float:
    """A latency cut (0.723 = -72.3%) as an improvement factor baseline / ours."""
    return 1.0 / (1.0 - cut)


BUCKETSERVE = "bucketserve"
UELLM = "uellm"

BUCKETSERVE_CLAIMS = (
    Claim("throughput_vs_uellm", BUCKETSERVE, "throughput vs UELLM, up to 3.58x (Mixed, high batch)",
          "output_throughput", "bucket", "uellm", "mixed", 3.58, up_to=True),
    Claim("capacity_vs_uellm_alpaca", BUCKETSERVE, "load capacity vs UELLM, 1.975x (Alpaca)", "capacity",
          "bucket", "uellm", "alpaca", 1.975),
    Claim("capacity_vs_uellm_mixed", BUCKETSERVE, "load capacity vs UELLM, 3.47x (Mixed)", "capacity",
          "bucket", "uellm", "mixed", 3.47),
    Claim("load_at_80_vs_distserve", BUCKETSERVE, "load at 80% SLO attainment vs DistServe, 1.93x (Mixed)",
          "capacity", "bucket", "distserve", "mixed", 1.93),
)

_S3 = "S3 and Morphling"
UELLM_CLAIMS = tuple(
    claim
    for baseline in ("static", "continuous")
    for claim in (
        Claim(f"latency_vs_{baseline}", UELLM, "latency -72.3% to -90.3% vs S3 and Morphling", "mean_e2el_ms",
              "uellm", baseline, "alpaca", latency_factor(0.723), latency_factor(0.903), paper_baseline=_S3,
              stand_in=True),
        Claim(f"throughput_vs_{baseline}", UELLM, "throughput 1.92x to 4.98x vs S3 and Morphling",
              "output_throughput", "uellm", baseline, "alpaca", 1.92, 4.98, paper_baseline=_S3, stand_in=True),
    )
)
