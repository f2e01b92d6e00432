"""GOSPA: the generalized optimal sub-pattern assignment metric of two finite sets of positions.

For targets ``X = {x_1..x_m}`` and estimates ``Y = {y_1..y_n}`` (Rahmathullah, Garcia-Fernandez,
Svensson 2017) with cut-off ``c``, order ``p`` and ``alpha = 2``:

    d(X, Y) = ( min over assignments  sum_(assigned i, j) d(x_i, y_j)^p
                + c^p / 2 (#missed targets + #false estimates) )^(1/p),

where only pairs with ``d(x_i, y_j) < c`` are assigned (a pair at ``d >= c`` costs the same
``c^p`` as one miss plus one false estimate, so it counts as those).  It splits into a
localisation part (the assigned pairs), a missed-target part and a false-target part.
Positions are Cartesian metres from angle and range (eq. 2, `metrics.position`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..errors import ConfigError, ShapeError
from .detection import proportion_interval

GOSPA_ALPHA = 2.0


@dataclass(frozen=True)
class GospaResult:
    """One frame's GOSPA: `distance`; ``distance ** p`` = `localisation` + c^p/2 (`missed` + `false`);
    `errors` the distances of the assigned (detected) pairs, `pairs` their (target, estimate) indices."""

    distance: float
    localisation: float
    missed: int
    false: int
    errors: np.ndarray
    pairs: np.ndarray


def check_gospa_parameters(c: float, p: float) -> tuple[float, float]:
    if not (np.isfinite(c) and c > 0):
        raise ConfigError(f"gospa: c = {c!r}: the cut-off distance must be a finite number > 0 (m)")
    if not (np.isfinite(p) and p >= 1):
        raise ConfigError(f"gospa: p = {p!r}: the order must be a finite number >= 1")
    return float(c), float(p)


def gospa(truth, estimates, c: float, p: float = 2.0) -> GospaResult:
    """GOSPA (alpha = 2) between `truth` (m, 2) and `estimates` (n, 2) positions (m); module docstring."""
    c, p = check_gospa_parameters(c, p)
    truth = np.asarray(truth, dtype=np.float64).reshape(-1, 2)
    estimates = np.asarray(estimates, dtype=np.float64).reshape(-1, 2)
    if not (np.all(np.isfinite(truth)) and np.all(np.isfinite(estimates))):
        raise ShapeError("gospa: positions must be finite")
    distances = np.sqrt(np.sum((truth[:, None, :] - estimates[None, :, :]) ** 2, axis=-1))
    rows, cols = linear_sum_assignment(np.minimum(distances, c) ** p)
    keep = distances[rows, cols] < c
    rows, cols = rows[keep], cols[keep]
    errors = distances[rows, cols]
    missed, false = len(truth) - rows.size, len(estimates) - rows.size
    localisation = float(np.sum(errors ** p))
    total = localisation + c ** p / GOSPA_ALPHA * (missed + false)
    return GospaResult(float(total ** (1 / p)), localisation, int(missed), int(false), errors,
                       np.stack([rows, cols], axis=1))


@dataclass
class MultiTargetReport:
    """Multi-target performance over frames (GOSPA with cut-off `c`, order `p`, alpha = 2).

    `gospa_mean`: mean per-frame GOSPA (m); `gospa_rms`: ``(mean d^p)^(1/p)``; its parts per
    frame: `localisation_per_frame` (m^p), `missed_per_frame`, `false_per_frame` (estimates not assigned).
    `detection_probability`: targets assigned within ``c`` / targets, with a Clopper-Pearson
    interval; `frame_pfa`: the
    share of target-free frames with any estimate (the receiver's false-alarm rate, which the
    threshold sets); `rmse_position`: RMS distance of the assigned pairs (m)."""

    c: float
    p: float
    n_frames: int
    n_targets: int
    n_estimates: int
    gospa_mean: float
    gospa_rms: float
    localisation_per_frame: float
    missed_per_frame: float
    false_per_frame: float
    detection_probability: float
    detection_probability_ci: tuple[float, float]
    n_empty_frames: int
    frame_pfa: float
    frame_pfa_ci: tuple[float, float]
    rmse_position: float

    def to_dict(self) -> dict:
        return asdict(self)


def _mean(values) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


def multitarget_report(truth_frames, estimate_frames, c: float, p: float = 2.0) -> MultiTargetReport:
    """`MultiTargetReport` of paired per-frame position sets: ``truth_frames[b]`` (m_b, 2) and
    ``estimate_frames[b]`` (n_b, 2), Cartesian metres."""
    c, p = check_gospa_parameters(c, p)
    if len(truth_frames) != len(estimate_frames):
        raise ShapeError(f"multitarget_report: {len(truth_frames)} truth frames but {len(estimate_frames)} "
                         "estimate frames")
    results = [gospa(t, e, c, p) for t, e in zip(truth_frames, estimate_frames)]
    n = len(results)
    n_targets = sum(len(np.reshape(t, (-1, 2))) for t in truth_frames)
    n_estimates = sum(len(np.reshape(e, (-1, 2))) for e in estimate_frames)
    detected = sum(r.errors.size for r in results)
    empty = [len(np.reshape(t, (-1, 2))) == 0 for t in truth_frames]
    alarms = sum(1 for r, is_empty in zip(results, empty) if is_empty and r.false > 0)
    n_empty = int(sum(empty))
    errors = np.concatenate([r.errors for r in results]) if results else np.empty(0)
    distances = np.array([r.distance for r in results])
    return MultiTargetReport(
        c=c, p=p, n_frames=n, n_targets=int(n_targets), n_estimates=int(n_estimates),
        gospa_mean=_mean(distances), gospa_rms=float(_mean(distances ** p) ** (1 / p)),
        localisation_per_frame=_mean([r.localisation for r in results]),
        missed_per_frame=_mean([r.missed for r in results]), false_per_frame=_mean([r.false for r in results]),
        detection_probability=detected / n_targets if n_targets else float("nan"),
        detection_probability_ci=proportion_interval(detected, n_targets),
        n_empty_frames=n_empty, frame_pfa=alarms / n_empty if n_empty else float("nan"),
        frame_pfa_ci=proportion_interval(alarms, n_empty),
        rmse_position=float(np.sqrt(np.mean(errors ** 2))) if errors.size else float("nan"))
