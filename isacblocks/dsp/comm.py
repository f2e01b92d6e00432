"""Communication link: constellations and the CSI-aided ML demapper (Sec. III-C)."""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError, ShapeError


def constellation(name: str = "qpsk") -> np.ndarray:
    """Unit-energy constellation points; QPSK is pi/4-rotated: ``exp(j (pi/4 + m pi/2))``."""
    if name == "qpsk":
        points = np.exp(1j * (np.pi / 4 + np.pi / 2 * np.arange(4)))
        return points.astype(np.complex64)
    raise ConfigError(f"constellation {name!r}: unknown; available: 'qpsk'")


def ml_demap(y, kappa, points) -> np.ndarray:
    """Per-subcarrier ML decisions ``argmin_c |y - kappa c|^2`` with CSI `kappa` (B, S).

    Returns int64 message indices of shape ``y.shape``.
    """
    y, kappa, points = np.asarray(y), np.asarray(kappa), np.asarray(points)
    if y.shape != kappa.shape:
        raise ShapeError(f"ml_demap: y {y.shape} and kappa {kappa.shape} must have the same shape")
    if points.ndim != 1 or points.size < 2:
        raise ShapeError(f"ml_demap: constellation must be a vector of >= 2 points, got shape {points.shape}")
    distance = np.abs(y[..., None] - kappa[..., None] * points)
    return distance.argmin(axis=-1)


def symbol_error_rate_qpsk(snr) -> np.ndarray:
    """Closed-form QPSK SER at per-symbol SNR ``|kappa|^2 Es / N0``: ``2Q - Q^2``,
    ``Q = Q(sqrt(snr))``."""
    from scipy.special import erfc

    q = 0.5 * erfc(np.sqrt(np.asarray(snr, dtype=np.float64)) / np.sqrt(2))
    return 2 * q - q * q
