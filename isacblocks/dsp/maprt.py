"""Model-based baseline detector and estimator: MAPRT (eq. 9-10)."""

from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from .steering import range_steering, ula_steering


def _per_frame(value, n_frames: int, name: str) -> np.ndarray:
    value = np.asarray(value, dtype=np.float64)
    if value.ndim == 0:
        return np.full(n_frames, float(value))
    if value.shape != (n_frames,):
        raise ShapeError(f"{name}: expected a scalar or shape ({n_frames},), got {value.shape}")
    return value


def check_frames(Y_tilde, params, name: str) -> np.ndarray:
    """Validate a batch of sensing frames (B, K, S) against `params`."""
    Y_tilde = np.asarray(Y_tilde)
    expected = (params.n_antennas, params.n_subcarriers)
    if Y_tilde.ndim != 3 or Y_tilde.shape[1:] != expected:
        raise ShapeError(f"{name}: Y_tilde must have shape (B, {expected[0]}, {expected[1]}), got {Y_tilde.shape}")
    return Y_tilde


def maprt(Y_tilde, theta_min, theta_max, r_min, r_max, spacing, params,
          n_theta: int = 720, n_range: int = 200):
    """MAPRT statistic and estimates (eq. 9-10) on a grid spread over the prior sector.

    ``(theta^, tau^) = argmax |a_rx^H(theta) Y~ rho^*(tau)|`` over `n_theta` angles in
    ``[theta_min, theta_max]`` and `n_range` ranges in ``[r_min, r_max]``; the
    statistic is the maximum itself, compared with a threshold for detection (eq. 9).
    (The matched filter uses the Hermitian of the steering vector, as in eq. 15.)
    Sector bounds are scalars or (B,) arrays.  Returns ``(statistic, theta_hat,
    range_hat)``, each (B,) float64.
    """
    Y_tilde = check_frames(Y_tilde, params, "maprt")
    n_frames = Y_tilde.shape[0]
    if np.shape(spacing) != (params.n_antennas,):
        raise ShapeError(f"maprt: spacing must have shape ({params.n_antennas},), got {np.shape(spacing)}")
    bounds = [_per_frame(v, n_frames, name) for v, name in
              ((theta_min, "theta_min"), (theta_max, "theta_max"), (r_min, "r_min"), (r_max, "r_max"))]
    statistic = np.empty(n_frames)
    theta_hat = np.empty(n_frames)
    range_hat = np.empty(n_frames)
    keys = np.stack(bounds, axis=1)
    _, first, groups = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    for group, index in enumerate(first):
        t0, t1, r0, r1 = keys[index]
        frames = np.flatnonzero(groups.ravel() == group)
        angles = np.linspace(t0, t1, n_theta)
        ranges = np.linspace(r0, r1, n_range)
        angle_dict = ula_steering(angles, spacing, params.wavelength).astype(np.complex64)
        range_dict = range_steering(ranges, params).astype(np.complex64)
        stat, i_hat, j_hat = _map_peak(Y_tilde[frames], angle_dict, range_dict)
        statistic[frames] = stat
        theta_hat[frames] = angles[i_hat]
        range_hat[frames] = ranges[j_hat]
    return statistic, theta_hat, range_hat


def _map_peak(Y_tilde, angle_dict, range_dict, chunk: int = 32):
    """Peak of ``|A^H Y~ D^*|`` per frame: (value, row, column)."""
    n_frames = Y_tilde.shape[0]
    value = np.empty(n_frames)
    row = np.empty(n_frames, dtype=np.int64)
    col = np.empty(n_frames, dtype=np.int64)
    angle_h = np.ascontiguousarray(angle_dict.conj().T)
    range_c = np.ascontiguousarray(range_dict.conj())
    for start in range(0, n_frames, chunk):
        block = np.asarray(Y_tilde[start:start + chunk], dtype=np.complex64)
        power = np.abs(angle_h @ (block @ range_c))  # (b, N_theta, N_tau)
        flat = power.reshape(len(block), -1).argmax(axis=1)
        r, c = np.unravel_index(flat, power.shape[1:])
        value[start:start + len(block)] = power.reshape(len(block), -1)[np.arange(len(block)), flat]
        row[start:start + len(block)] = r
        col[start:start + len(block)] = c
    return value, row, col
