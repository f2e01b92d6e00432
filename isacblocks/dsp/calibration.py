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



# ------------------------------------------------------------- gains and coupling (beyond the paper)
def calibrate_array(snapshots, theta, params: SystemParams, kinds=("spacing", "gain", "coupling"),
                    coupling_band: int = 2, rounds: int = 4, **position_options):
    """Least-squares calibration of an impaired array ``a_pert = C diag(g) a(theta; d)``
    (`dsp.impairments`) from range-matched snapshots ``v_n = alpha_n a_pert(theta_n) + n_n``
    (B, K) at label angles (B,).

    Alternates, `rounds` times, the exact LS step of each block with the others fixed:

    1. positions: `calibrate_positions` (one pass) on the de-impaired snapshots ``M^-1 v_n``,
       ``M = C diag(g)``;
    2. frame gains ``alpha_n = b_n^H v_n / ||b_n||^2``, ``b_n = M a(theta_n; d)``;
    3. gains (if modelled): ``min_g sum_n ||v_n - alpha_n C diag(a_n) g||^2``, a K x K normal
       system, then scaled to ``mean(g) = 1`` (a common factor is a frame gain: unobservable);
    4. coupling (if modelled): ``v_n - alpha_n u_n = alpha_n [T_1 u_n .. T_B u_n] c`` with
       ``u_n = g o a_n`` and ``(T_b u)_i = u_(i-b) + u_(i+b)``, a B-unknown LS.

    Returns the spacing vector (spacing only) or an `ArrayImpairments`.
    """
    from .impairments import ArrayImpairments, coupling_matrix, parse_kinds

    kinds = parse_kinds(kinds)
    v = np.asarray(snapshots, dtype=np.complex128)
    theta = np.asarray(theta, dtype=np.float64)
    k = params.n_antennas
    if v.ndim != 2 or v.shape[1] != k or theta.shape != (v.shape[0],):
        raise ShapeError(f"calibrate_array: expected snapshots (B, {k}) and theta (B,), got {v.shape} and "
                         f"{theta.shape}")
    spacing = params.nominal_spacing
    gain = np.ones(k, dtype=np.complex128)
    coupling = np.zeros(coupling_band, dtype=np.complex128) if "coupling" in kinds else None
    for _ in range(rounds if kinds != ("spacing",) else 1):
        mixing = coupling_matrix(coupling, k) * gain  # M = C diag(g)
        clean = np.linalg.solve(mixing, v.T).T  # M^-1 v_n
        spacing = calibrate_positions(clean, theta, params, init_spacing=spacing,
                                      **({"iterations": 1} | position_options))
        steering = unit_phasor(steering_phase(element_positions(spacing), np.sin(theta)[:, None], params.wavelength))
        if "gain" in kinds:
            gain = _ls_gains(v, steering, gain, coupling_matrix(coupling, k))
        if coupling is not None:
            coupling = _ls_coupling(v, steering * gain, coupling_band)
    if kinds == ("spacing",):
        return spacing
    return ArrayImpairments(spacing, gain if "gain" in kinds else None, coupling)


#: Alternations of frame gains and coupling inside one coupling step of `calibrate_array`.
COUPLING_REFINEMENTS = 3


def _frame_gains(v, b) -> np.ndarray:
    """``alpha_n = b_n^H v_n / ||b_n||^2`` (B,)."""
    return np.sum(b.conj() * v, axis=1) / np.sum(np.abs(b) ** 2, axis=1)


def _ls_gains(v, steering, gain, coupling) -> np.ndarray:
    """Step 3 of `calibrate_array`: the LS gains for rows ``a_n`` (B, K) and coupling ``C`` (frame gains
    from the current `gain`), scaled to mean 1."""
    alpha = _frame_gains(v, (steering * gain) @ coupling.T)
    # normal equations: [(C^H C) o sum_n |alpha_n|^2 conj(a_n) a_n^T] g = sum_n conj(alpha_n) conj(a_n) o (C^H v_n)
    weighted = steering * np.abs(alpha)[:, None]
    normal = (coupling.conj().T @ coupling) * (weighted.conj().T @ weighted)
    rhs = np.sum(alpha.conj()[:, None] * steering.conj() * (v @ coupling.conj()), axis=0)
    gain = np.linalg.solve(normal, rhs)
    return gain / np.mean(gain)


def _ls_coupling(v, rows, band: int) -> np.ndarray:
    """Step 4 of `calibrate_array`: LS ``c_1 .. c_B`` for rows ``u_n = g o a_n`` (B, K).

    Start: per frame, ``v_n = alpha_n u_n + sum_b gamma_nb T_b u_n`` is linear in
    ``(alpha_n, gamma_n = alpha_n c)``; ``c = sum_n conj(alpha_n) gamma_n / sum_n |alpha_n|^2``
    (exact without noise).  Then `COUPLING_REFINEMENTS` alternations of the frame gains and the
    stacked LS in ``c``.
    """
    shifted = np.zeros((band, *rows.shape), dtype=np.complex128)  # T_b u_n
    for b in range(1, band + 1):
        shifted[b - 1, :, b:] += rows[:, :-b]
        shifted[b - 1, :, :-b] += rows[:, b:]
    columns = np.concatenate([rows[None], shifted]).transpose(1, 2, 0)  # (B, K, 1 + band): [u_n, T_b u_n]
    gram = columns.conj().transpose(0, 2, 1) @ columns
    theta = np.linalg.solve(gram, (columns.conj().transpose(0, 2, 1) @ v[:, :, None]))[:, :, 0]
    alpha, gamma = theta[:, 0], theta[:, 1:]
    coupling = alpha.conj() @ gamma / np.sum(np.abs(alpha) ** 2)
    for _ in range(COUPLING_REFINEMENTS):
        alpha = _frame_gains(v, rows + np.tensordot(coupling, shifted, axes=1))
        design = (alpha[None, :, None] * shifted).transpose(1, 2, 0).reshape(-1, band)  # (B K, band)
        coupling, *_ = np.linalg.lstsq(design, (v - alpha[:, None] * rows).reshape(-1), rcond=None)
    return coupling
