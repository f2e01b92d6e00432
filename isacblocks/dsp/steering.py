"""Array and delay steering vectors (paper eq. 1, 13, 14).

One steering-vector function serves the impaired ULA, the precoder and both receivers.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ShapeError
from ..params import SystemParams


def element_offsets(n_antennas: int) -> np.ndarray:
    """``k - (K-1)/2``, k = 0..K-1: element k's position in units of its spacing, float64 (K,)."""
    return np.arange(n_antennas, dtype=np.float64) - (n_antennas - 1) / 2


def element_positions(spacing, xp=np):
    """Element positions ``(k - (K-1)/2) d_k`` (m) of a ULA with spacing vector ``d``, shape (K,).

    `xp` is the array module: numpy (the default; `spacing` is validated) or torch (a
    tensor `spacing`, differentiable, on its device and dtype).
    """
    if xp is np:
        spacing = np.asarray(spacing, dtype=np.float64)
        if spacing.ndim != 1 or spacing.size < 2:
            raise ShapeError(f"spacing: expected a vector of K >= 2 spacings, got shape {spacing.shape}")
        return element_offsets(spacing.size) * spacing
    return xp.as_tensor(element_offsets(spacing.shape[0]), dtype=spacing.dtype, device=spacing.device) * spacing


def steering_phase(positions, sin_theta, wavelength: float):
    """``-2 pi p_k sin(theta) / lambda`` (eq. 13) for broadcastable positions and sines (numpy or torch)."""
    return (-2 * math.pi / wavelength) * (positions * sin_theta)


def unit_phasor(phase, xp=np):
    """``exp(j phase)`` for a real array of the module `xp` (numpy or torch)."""
    return np.exp(1j * phase) if xp is np else xp.polar(xp.ones_like(phase), phase)


def steering_rows(theta, spacing, wavelength: float, xp=np):
    """Steering vectors as rows, ``[a(theta)^T]_k = exp(-j 2 pi (k-(K-1)/2) d_k sin(theta) / lambda)``
    (eq. 13): `theta` (...,) -> (..., K), for numpy arrays or torch tensors (`xp`)."""
    positions = element_positions(spacing, xp)
    return unit_phasor(steering_phase(positions, xp.sin(theta)[..., None], wavelength), xp)


def array_gain(steering_rows, precoder):
    """The transmit array gain ``a_tx(theta)^T f`` per frame (eq. 1, 3), numpy or torch.

    `steering_rows` (B, K) are ``a_tx(theta_b)^T``; `precoder` is one ``f`` (K,) for all
    frames or one per frame (B, K).  Returns (B,).
    """
    if precoder.ndim == 1:
        return steering_rows @ precoder
    return (steering_rows[..., None, :] @ precoder[..., :, None])[..., 0, 0]


def ula_steering(theta, spacing, wavelength: float) -> np.ndarray:
    """Steering matrix ``[a(theta_n)]_k = exp(-j 2 pi (k-(K-1)/2) d_k sin(theta_n) / lambda)`` (eq. 13).

    `theta` is a scalar or shape (N,) (rad); `spacing` is ``d``, shape (K,) (m).
    Returns complex128 of shape (K, N) (N = 1 for a scalar `theta`), C-contiguous:
    `steering_rows` transposed.
    """
    theta = np.atleast_1d(np.asarray(theta, dtype=np.float64))
    if theta.ndim != 1:
        raise ShapeError(f"theta: expected a scalar or a vector of angles, got shape {theta.shape}")
    return np.ascontiguousarray(steering_rows(theta, spacing, wavelength).T)


def delay_steering(tau, n_subcarriers: int, subcarrier_spacing: float) -> np.ndarray:
    """Delay steering matrix ``[rho(tau_n)]_s = exp(-j 2 pi s Delta_f tau_n)`` (eq. 1, 14).

    `tau` is a scalar or shape (N,) (s).  Returns complex128 of shape (S, N).
    """
    tau = np.atleast_1d(np.asarray(tau, dtype=np.float64))
    if tau.ndim != 1:
        raise ShapeError(f"tau: expected a scalar or a vector of delays, got shape {tau.shape}")
    s = np.arange(n_subcarriers, dtype=np.float64)
    return np.exp(-2j * np.pi * subcarrier_spacing * np.outer(s, tau))


def range_steering(ranges, params: SystemParams) -> np.ndarray:
    """``rho(2R/c)`` for ranges `R` (m): delay steering on the system's subcarriers, shape (S, N)."""
    return delay_steering(params.range_to_delay(ranges), params.n_subcarriers, params.subcarrier_spacing_hz)
