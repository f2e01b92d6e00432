"""Sensing and communication metrics: Pmd at a fixed Pfa, position RMSE (eq. 2), SER."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .detection import proportion_interval, threshold_at_pfa, threshold_interval


def position(theta, ranges) -> np.ndarray:
    """``p = [R cos(theta), R sin(theta)]`` (eq. 2), shape (..., 2)."""
    theta, ranges = np.asarray(theta), np.asarray(ranges)
    return np.stack([ranges * np.cos(theta), ranges * np.sin(theta)], axis=-1)


@dataclass
class DetectionReport:
    """Detection and positioning performance at a fixed false-alarm probability."""

    pfa: float  # the target false-alarm probability
    threshold: float
    threshold_ci: tuple[float, float]
    pmd: float
    pmd_ci: tuple[float, float]
    pfa_check: float  # empirical Pfa on H0 frames not used for the threshold
    pfa_check_ci: tuple[float, float]
    n_h0: int
    n_h1: int
    n_detected: int
    rmse_angle: float  # rad, on detected target frames
    rmse_range: float  # m
    rmse_position: float  # m

    def to_dict(self) -> dict:
        return asdict(self)


def detection_report(h0_statistic, h1_statistic, theta_hat, range_hat, theta, ranges, pfa: float,
                     threshold: float | None = None) -> DetectionReport:
    """Pmd at `pfa` with the threshold set on the H0 statistics, and position RMSE on the
    detected target frames.

    Without an external `threshold`, it is the ``(1 - pfa)`` quantile of all H0 frames;
    the Pfa check then sets a threshold on the even H0 frames and measures the false
    alarms on the odd ones (an independent check).  With an external threshold the
    check uses all H0 frames.
    """
    h0 = np.asarray(h0_statistic, dtype=np.float64)
    h1 = np.asarray(h1_statistic, dtype=np.float64)
    if threshold is None:
        threshold = threshold_at_pfa(h0, pfa)
        threshold_ci = threshold_interval(h0, pfa)
        check_threshold, check_set = threshold_at_pfa(h0[0::2], pfa), h0[1::2]
    else:
        threshold_ci = (float("nan"), float("nan"))
        check_threshold, check_set = threshold, h0
    false_alarms = int(np.count_nonzero(check_set > check_threshold))
    detected = h1 > threshold
    misses = int(np.count_nonzero(~detected))
    if detected.any():
        err_theta = np.asarray(theta_hat)[detected] - np.asarray(theta)[detected]
        err_range = np.asarray(range_hat)[detected] - np.asarray(ranges)[detected]
        err_pos = position(np.asarray(theta_hat)[detected], np.asarray(range_hat)[detected]) \
            - position(np.asarray(theta)[detected], np.asarray(ranges)[detected])
        rmse = (float(np.sqrt(np.mean(err_theta ** 2))), float(np.sqrt(np.mean(err_range ** 2))),
                float(np.sqrt(np.mean(np.sum(err_pos ** 2, axis=-1)))))
    else:
        rmse = (float("nan"),) * 3
    return DetectionReport(
        pfa=pfa, threshold=float(threshold), threshold_ci=threshold_ci,
        pmd=misses / max(h1.size, 1), pmd_ci=proportion_interval(misses, h1.size),
        pfa_check=false_alarms / max(check_set.size, 1),
        pfa_check_ci=proportion_interval(false_alarms, check_set.size),
        n_h0=int(h0.size), n_h1=int(h1.size), n_detected=int(np.count_nonzero(detected)),
        rmse_angle=rmse[0], rmse_range=rmse[1], rmse_position=rmse[2])
