"""Classical (non-learning) array calibration from labelled frames.

After the reciprocal filter the echo is rank one (eq. 7): ``Y~ = alpha a(theta) rho(tau)^T
+ N``.  With the label (theta, R), the range-matched vector ``v = Y~ rho^*(tau) / S =
alpha a(theta) + n`` holds one noisy snapshot of the steering vector, whose k-th phase
against the frame's gain is linear in the element position:
``arg(v_k / alpha) = -2 pi p_k sin(theta) / lambda``.  Positions follow by alternating

1. the frame gains ``alpha_n = a(theta_n; p)^H v_n / K`` (least squares), and
2. for each element the position maximising ``Re sum_n conj(alpha_n) v_nk e^{+j 2 pi p sin(theta_n)/lambda}``
   (least squares in p; a grid search over the element's prior spread handles the phase
   wrapping, then a parabolic refinement).

A common shift of all positions is absorbed by the gains (unobservable); it is fixed by
the spacing vector closest to lambda/2.
"""

from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from ..params import SystemParams
from .spacing import check_spacing
from .steering import element_offsets, element_positions, range_steering, steering_phase, unit_phasor


def matched_snapshots(Y_tilde, ranges, params: SystemParams) -> np.ndarray:
    """``v_n = Y~_n rho^*(tau_n) / S`` for full frames (B, K, S) and their label ranges; (B, K)."""
    Y_tilde = np.asarray(Y_tilde)
    if Y_tilde.ndim != 3:
        raise ShapeError(f"matched_snapshots: Y_tilde must be (B, K, S), got {Y_tilde.shape}")
    rho = range_steering(np.asarray(ranges, dtype=np.float64), params)  # (S, B)
    return np.einsum("bks,sb->bk", Y_tilde, rho.conj()) / params.n_subcarriers


def calibrate_positions(snapshots, theta, params: SystemParams, search_sigmas: float = 5.0, step_mm: float = 0.05,
                        iterations: int = 4, init_spacing=None) -> np.ndarray:
    """Least-squares element positions from range-matched snapshots (B, K) at label angles (B,).

    Element k is searched within ``+- search_sigmas * |k - (K-1)/2| * sigma_lambda`` of
    its start (the impairment model's spread of that element's position, at least one
    grid step).

    Returns the calibrated spacing vector ``d`` (K,), metres.
    """
    v = np.asarray(snapshots, dtype=np.complex128)
    theta = np.asarray(theta, dtype=np.float64)
    if v.ndim != 2 or v.shape[1] != params.n_antennas or theta.shape != (v.shape[0],):
        raise ShapeError(f"calibrate_positions: expected snapshots (B, {params.n_antennas}) and theta (B,), "
                         f"got {v.shape} and {theta.shape}")
    spacing = params.nominal_spacing if init_spacing is None else init_spacing
    positions = element_positions(spacing)
    sin_theta = np.sin(theta)  # (B,)
    index = np.abs(element_offsets(params.n_antennas))
    half_widths = np.maximum(search_sigmas * index * params.spacing_std, step_mm * 1e-3)
    for _ in range(iterations):
        steering = unit_phasor(steering_phase(positions, sin_theta[:, None], params.wavelength))  # (B, K), eq. 13
        gains = np.sum(steering.conj() * v, axis=1) / params.n_antennas  # (B,)
        weighted = gains.conj()[:, None] * v  # (B, K): conj(alpha_n) v_nk
        for k in range(params.n_antennas):
            candidates = positions[k] + np.arange(-half_widths[k], half_widths[k] + step_mm * 5e-4, step_mm * 1e-3)
            derotation = unit_phasor(-steering_phase(candidates[:, None], sin_theta, params.wavelength))
            score = np.real(derotation @ weighted[:, k])
            best = int(np.argmax(score))
            positions[k] = candidates[best] + _parabolic_offset(score, best) * step_mm * 1e-3
    return _spacing_from_positions(positions, params)


def calibrate_from_frames(Y_tilde, theta, ranges, params: SystemParams, **kwargs) -> np.ndarray:
    """Calibrated spacing from full labelled frames after the reciprocal filter."""
    return calibrate_positions(matched_snapshots(Y_tilde, ranges, params), theta, params, **kwargs)


def _parabolic_offset(score: np.ndarray, best: int) -> float:
    if best == 0 or best == score.size - 1:
        return 0.0
    left, mid, right = score[best - 1], score[best], score[best + 1]
    denom = left - 2 * mid + right
    return 0.0 if denom >= 0 else float(0.5 * (left - right) / denom)


def _spacing_from_positions(positions: np.ndarray, params: SystemParams) -> np.ndarray:
    """``d_k = (p_k + c) / (k - (K-1)/2)`` with the common shift c that brings d closest to lambda/2."""
    k = element_offsets(params.n_antennas)
    off_centre = k != 0
    inv = 1.0 / k[off_centre]
    residual = positions[off_centre] * inv - params.wavelength / 2
    shift = -np.sum(residual * inv) / np.sum(inv * inv)
    spacing = params.nominal_spacing.copy()
    spacing[off_centre] = (positions[off_centre] + shift) * inv
    return check_spacing(spacing, params.n_antennas, "calibrated spacing")

