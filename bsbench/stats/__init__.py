"""Confidence intervals for benchmark figures (numpy only, seeded, deterministic).

- `Interval`: a point estimate, its low and high bounds, the level, and `method`: what was resampled.
- `bootstrap` / `paired_bootstrap`: percentile bootstrap over requests (one array per run; several
  arrays = several repeats, resampled within each and averaged), a statistic on each resample.
- `t_interval`: across repeats (one figure per seed), Student's t.
- `verdict`: "no clear difference" when a ratio interval contains 1, else which side wins.
"""

from bsbench.stats.across import paired_t_interval, t_interval, t_quantile
from bsbench.stats.bootstrap import bootstrap, paired_bootstrap
from bsbench.stats.interval import (
    ACROSS_SEEDS,
    NO_CLEAR_DIFFERENCE,
    PAIRED_OVER_REQUESTS,
    PAIRED_OVER_SEEDS,
    WITHIN_RUN,
    Interval,
    verdict,
)
from bsbench.stats.statistics import statistic_for

__all__ = [
    "ACROSS_SEEDS", "NO_CLEAR_DIFFERENCE", "PAIRED_OVER_REQUESTS", "PAIRED_OVER_SEEDS", "WITHIN_RUN", "Interval",
    "bootstrap", "paired_bootstrap", "paired_t_interval", "statistic_for", "t_interval", "t_quantile", "verdict",
]
