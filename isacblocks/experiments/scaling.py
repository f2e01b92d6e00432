"""Fits of the scaling study: how Pmd and the element-position error fall with training frames.

The model is a power law above a floor, ``y - floor = c * frames^(-a)`` (for Pmd the floor is
the known-spacing baseline, for the position error 0), fitted by least squares in log-log to
the points above the floor.  Its extrapolation to the paper's budget (85 000 iterations at
batch 3 000 = 255 million frames) gets an interval from a bootstrap over the points: the
2.5-97.5 % range of the refitted exponent and extrapolated value.
"""

from __future__ import annotations

import math

import numpy as np

from .results import PowerLawFit

#: The paper's training budget (Sec. V): 85 000 iterations at batch 3 000.
PAPER_ITERATIONS, PAPER_BATCH = 85_000, 3_000
BOOTSTRAP_SAMPLES = 1000
MIN_POINTS = 3


def paper_frames() -> int:
    return PAPER_ITERATIONS * PAPER_BATCH


def _loglog_fit(log_x: np.ndarray, log_y: np.ndarray) -> tuple[float, float]:
    """Slope and intercept of the least-squares line through (log_x, log_y)."""
    slope, intercept = np.polyfit(log_x, log_y, 1)
    return float(slope), float(intercept)


def fit_power_law(quantity: str, frames, values, floor: float, target_frames: int, seed: int = 0) -> PowerLawFit:
    """Fit ``values - floor = c * frames^(-a)`` over the points above `floor`; extrapolate to `target_frames`."""
    frames, values = np.asarray(frames, dtype=float), np.asarray(values, dtype=float)
    keep = (values > floor) & (frames > 0)
    x, y = np.log(frames[keep]), np.log(values[keep] - floor)
    nan2 = (math.nan, math.nan)
    if len(x) < MIN_POINTS or np.ptp(x) == 0:
        return PowerLawFit(quantity, floor, math.nan, nan2, math.nan, int(len(x)), int(target_frames), math.nan, nan2,
                           f"not fitted: {len(x)} points above the floor {floor:.4g} at distinct frame counts, "
                           f"{MIN_POINTS} needed")
    slope, intercept = _loglog_fit(x, y)
    at = math.log(target_frames)
    rng = np.random.default_rng(seed)
    exps, ends = [], []
    for _ in range(BOOTSTRAP_SAMPLES):
        pick = rng.integers(0, len(x), len(x))
        if np.ptp(x[pick]) == 0:
            continue
        s, i = _loglog_fit(x[pick], y[pick])
        exps.append(-s)
        ends.append(floor + math.exp(i + s * at))
    decades = math.log10(target_frames / frames[keep].max())
    return PowerLawFit(quantity, floor, -slope, tuple(map(float, np.percentile(exps, [2.5, 97.5]))),
                       math.exp(intercept), int(len(x)), int(target_frames), floor + math.exp(intercept + slope * at),
                       tuple(map(float, np.percentile(ends, [2.5, 97.5]))),
                       f"{len(x)} points from {frames[keep].min():.3g} to {frames[keep].max():.3g} frames; "
                       f"extrapolated {decades:.1f} decades beyond the data")
