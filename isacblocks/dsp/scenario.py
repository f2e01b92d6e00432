"""Random scenario draws: target presence, angle, range and prior sectors (Sec. II-A, V-A)."""

from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from ..params import SystemParams


def training_sectors(rng: np.random.Generator, params: SystemParams, n_frames: int,
                     max_center_deg: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Random sectors ``theta_mean -/+ theta_span / 2`` (rad), ``theta_mean ~ U(train_center_deg)``,
    ``theta_span ~ U(train_width_deg)``, clipped to [-90, 90] degrees.

    `max_center_deg` narrows the centres to ``U[-m, m]`` (the sector curriculum).
    Returns ``(theta_min, theta_max)``, each (n_frames,).
    """
    lo, hi = params.train_center_deg
    if max_center_deg is not None:
        lo, hi = max(lo, -max_center_deg), min(hi, max_center_deg)
    draws = rng.random((n_frames, 2))  # one (centre, span) pair per frame: independent of batching
    w_lo, w_hi = params.train_width_deg
    center = lo + (hi - lo) * draws[:, 0]
    span = w_lo + (w_hi - w_lo) * draws[:, 1]
    theta_min = np.radians(np.clip(center - span / 2, -90.0, 90.0))
    theta_max = np.radians(np.clip(center + span / 2, -90.0, 90.0))
    return theta_min, theta_max


def per_frame(value, n_frames: int, owner: str, name: str) -> np.ndarray:
    """A scalar or per-frame parameter (a sector bound) as a (n_frames,) float64 array; another
    shape is a `ShapeError` naming `owner` and `name`."""
    value = np.asarray(value, dtype=np.float64)
    if value.ndim == 0:
        return np.full(n_frames, float(value))
    if value.shape != (n_frames,):
        raise ShapeError(f"{owner}: {name} must be a scalar or shape ({n_frames},), got {value.shape}")
    return value


def draw_targets(rng: np.random.Generator, theta_min, theta_max, r_min, r_max, n_frames: int):
    """Target angle ``theta ~ U[theta_min, theta_max]`` and range ``R ~ U[r_min, r_max]`` per frame."""
    for name, value in (("theta_min", theta_min), ("theta_max", theta_max), ("r_min", r_min), ("r_max", r_max)):
        per_frame(value, n_frames, "draw_targets", name)
    theta = rng.uniform(theta_min, theta_max, n_frames)
    ranges = rng.uniform(r_min, r_max, n_frames)
    return theta, ranges
