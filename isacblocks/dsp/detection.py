"""Detection thresholds at a fixed false-alarm probability and confidence intervals."""

from __future__ import annotations

import numpy as np
from scipy import stats

from ..errors import ConfigError, ShapeError


def threshold_at_pfa(h0_statistics, pfa: float) -> float:
    """The ``(1 - pfa)`` empirical quantile of the H0 statistics.

    Declaring a target when the statistic is strictly above the threshold gives an
    empirical false-alarm rate of at most `pfa` on these statistics.
    """
    h0 = _finite_vector(h0_statistics, "threshold_at_pfa: h0_statistics")
    if not 0 < pfa < 1:
        raise ConfigError(f"threshold_at_pfa: pfa = {pfa} must lie in (0, 1)")
    if h0.size * pfa < 1:
        raise ConfigError(f"threshold_at_pfa: {h0.size} H0 statistics cannot resolve pfa = {pfa} "
                          f"(need at least {int(np.ceil(1 / pfa))})")
    return float(np.quantile(h0, 1 - pfa, method="higher"))


def threshold_interval(h0_statistics, pfa: float, level: float = 0.95) -> tuple[float, float]:
    """Distribution-free confidence interval of the ``(1 - pfa)`` quantile (order statistics)."""
    h0 = np.sort(_finite_vector(h0_statistics, "threshold_interval: h0_statistics"))
    if not 0 < pfa < 1:
        raise ConfigError(f"threshold_interval: pfa = {pfa} must lie in (0, 1)")
    if not 0 < level < 1:
        raise ConfigError(f"threshold_interval: level = {level} must lie in (0, 1)")
    n = h0.size
    q = 1 - pfa
    alpha = 1 - level
    lo = int(stats.binom.ppf(alpha / 2, n, q))
    hi = int(stats.binom.ppf(1 - alpha / 2, n, q))
    return float(h0[max(lo - 1, 0)]), float(h0[min(hi, n - 1)])


def proportion_interval(successes: int, trials: int, level: float = 0.95) -> tuple[float, float]:
    """Clopper-Pearson (exact) confidence interval of a proportion, e.g. an empirical Pfa or Pmd."""
    if trials <= 0:
        return (0.0, 1.0)
    if not 0 <= successes <= trials:
        raise ConfigError(f"proportion_interval: successes = {successes} must lie in [0, trials = {trials}]")
    alpha = 1 - level
    lo = 0.0 if successes == 0 else stats.beta.ppf(alpha / 2, successes, trials - successes + 1)
    hi = 1.0 if successes == trials else stats.beta.ppf(1 - alpha / 2, successes + 1, trials - successes)
    return float(lo), float(hi)


def _finite_vector(values, name: str) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ShapeError(f"{name}: expected a non-empty vector, got shape {values.shape}")
    if not np.all(np.isfinite(values)):
        raise ShapeError(f"{name}: {np.count_nonzero(~np.isfinite(values))} value(s) are NaN or Inf")
    return values
