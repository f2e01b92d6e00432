"""Transmit beamforming: LS beampattern precoder (eq. 5-6) and ISAC combiner (eq. 4)."""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError, ShapeError
from ..params import SystemParams
from .blas_threads import one_blas_thread
from .cache import LRUCache
from .impairments import array_key, array_steering, check_array
from .mbml import sector_rows

#: How many (sector, spacing, grid) precoders `beampattern_precoder` keeps.
PRECODER_CACHE_SIZE = 64
_PRECODERS = LRUCache(PRECODER_CACHE_SIZE)


def sector_beampattern(theta_min, theta_max, params: SystemParams) -> np.ndarray:
    """The desired beampattern ``b`` of eq. 5 on ``params.angle_grid``: K inside
    ``[theta_min, theta_max]`` (ends included, the grid rows of `mbml.sector_rows`), 0 outside;
    float64 (N_theta,) for scalar bounds, (B, N_theta) for bounds of shape (B,)."""
    first, end = sector_rows(theta_min, theta_max, params)
    index = np.arange(params.n_angle_grid)
    return np.where((index >= first[..., None]) & (index < end[..., None]), float(params.n_antennas), 0.0)


def ls_solution(steering_rows, desired) -> np.ndarray:
    """Unit-norm LS precoders ``f = argmin ||b - A^T f||`` (eq. 6) by SVD least squares (LAPACK gelsd).

    `steering_rows` is ``A^T`` (N_theta, K), row n ``a(theta_n)^T``; `desired` is ``b``
    (N_theta,) or one per column (N_theta, B).  Returns f (K,) or (K, B), each column of
    unit norm.  The learner's differentiable form is `learning.differentiable.ls_precoder`.
    """
    with one_blas_thread():  # the same bits in every process (it is cached)
        f, *_ = np.linalg.lstsq(steering_rows, desired.astype(np.complex128), rcond=None)
    return f / np.linalg.norm(f, axis=0)


def beampattern_precoder(theta_min: float, theta_max: float, spacing, params: SystemParams) -> np.ndarray:
    """LS precoder ``f = argmin ||b - A_tx^T f||`` pointing at ``[theta_min, theta_max]`` (eq. 5-6).

    The desired beampattern ``b`` is `sector_beampattern` on the ``params.angle_grid``
    (N_theta points over [-pi/2, pi/2]); ``A_tx`` is the steering matrix of `spacing` on
    that grid.  Returns the unit-norm solution, complex128 of shape (K,).  The last
    `PRECODER_CACHE_SIZE` solutions are kept, so a repeated call is a copy.
    """
    if not theta_min < theta_max:
        raise ConfigError(f"beampattern_precoder: theta_min = {theta_min} must be < theta_max = {theta_max}")
    spacing = check_array(spacing, params.n_antennas, "beampattern_precoder: spacing")
    key = (float(theta_min), float(theta_max), array_key(spacing), params.wavelength, params.n_angle_grid)
    return _PRECODERS.get(key, lambda: _ls_precoder(float(theta_min), float(theta_max), spacing, params)).copy()


def _ls_precoder(theta_min: float, theta_max: float, spacing, params: SystemParams) -> np.ndarray:
    steering = array_steering(params.angle_grid, spacing, params.wavelength)  # (K, N)
    desired = sector_beampattern(theta_min, theta_max, params)
    if not desired.any():
        raise ConfigError(f"beampattern_precoder: sector [{theta_min}, {theta_max}] rad holds no point "
                          f"of the {params.n_angle_grid}-point grid")
    return ls_solution(steering.T, desired)


def isac_precoder(f_sensing, f_comm, eta: float, phi: float) -> np.ndarray:
    """``f = (sqrt(eta) f_r + sqrt(1-eta) e^{j phi} f_c) / ||.||`` (eq. 4)."""
    f_sensing = np.asarray(f_sensing)
    f_comm = np.asarray(f_comm)
    if f_sensing.shape != f_comm.shape or f_sensing.ndim != 1:
        raise ShapeError(f"isac_precoder: f_sensing {f_sensing.shape} and f_comm {f_comm.shape} "
                         "must be vectors of the same length K")
    if not 0.0 <= eta <= 1.0:
        raise ConfigError(f"isac_precoder: eta = {eta} must lie in [0, 1]")
    f = np.sqrt(eta) * f_sensing + np.sqrt(1.0 - eta) * np.exp(1j * phi) * f_comm
    norm = np.linalg.norm(f)
    if norm == 0:
        raise ConfigError(f"isac_precoder: the combination for eta={eta}, phi={phi} is zero")
    return f / norm
