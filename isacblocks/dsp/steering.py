"""Array and delay steering vectors (paper eq. 1, 13, 14).

One steering-vector function serves the impaired ULA, the precoder and both receivers.
"""

from __future__ import annotations

import numpy as np

from ..errors import ShapeError


def element_positions(spacing) -> np.ndarray:
    """Element positions ``(k - (K-1)/2) d_k`` (m) of a ULA with spacing vector ``d``, shape (K,)."""
    spacing = np.asarray(spacing, dtype=np.float64)
    if spacing.ndim != 1 or spacing.size < 2:
        raise ShapeError(f"spacing: expected a vector of K >= 2 spacings, got shape {spacing.shape}")
    k = np.arange(spacing.size, dtype=np.float64)
    return (k - (spacing.size - 1) / 2) * spacing


def ula_steering(theta, spacing, wavelength: float) -> np.ndarray:
    """Steering matrix ``[a(theta_n)]_k = exp(-j 2 pi (k-(K-1)/2) d_k sin(theta_n) / lambda)`` (eq. 13).

    `theta` is a scalar or shape (N,) (rad); `spacing` is ``d``, shape (K,) (m).
    Returns complex128 of shape (K, N) (N = 1 for a scalar `theta`).
    """
    theta = np.atleast_1d(np.asarray(theta, dtype=np.float64))
    if theta.ndim != 1:
        raise ShapeError(f"theta: expected a scalar or a vector of angles, got shape {theta.shape}")
    positions = element_positions(spacing)
    return np.exp(-2j * np.pi / wavelength * np.outer(positions, np.sin(theta)))


def delay_steering(tau, n_subcarriers: int, subcarrier_spacing: float) -> np.ndarray:
    """Delay steering matrix ``[rho(tau_n)]_s = exp(-j 2 pi s Delta_f tau_n)`` (eq. 1, 14).

    `tau` is a scalar or shape (N,) (s).  Returns complex128 of shape (S, N).
    """
    tau = np.atleast_1d(np.asarray(tau, dtype=np.float64))
    if tau.ndim != 1:
        raise ShapeError(f"tau: expected a scalar or a vector of delays, got shape {tau.shape}")
    s = np.arange(n_subcarriers, dtype=np.float64)
    return np.exp(-2j * np.pi * subcarrier_spacing * np.outer(s, tau))


def range_steering(ranges, params) -> np.ndarray:
    """``rho(2R/c)`` for ranges `R` (m): delay steering on the system's subcarriers, shape (S, N)."""
    return delay_steering(params.range_to_delay(ranges), params.n_subcarriers, params.subcarrier_spacing_hz)
