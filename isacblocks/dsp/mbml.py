"""MB-ML sensing estimator: Algorithm 1 of the paper (Sec. IV-B, eq. 12-19).

The angle-delay map (eq. 15) is searched over the prior sector only: the grid angles
(720 over [-pi/2, pi/2]) inside ``[theta_min, theta_max]`` and the grid ranges (200 over
[R_min, R_max]) inside ``[r_min, r_max]``.  Around the arg-max (eq. 16) a
``(2 delta_theta + 1) x (2 delta_R + 1)`` window (eq. 12, 17) is taken, entries outside
the map discarded, and the soft-max of its magnitudes weights the grid angles and ranges
(eq. 18-19).  The detection statistic is the map maximum inside the sector.

`mbml_peak` and `window_indices` give the non-differentiable part (eq. 16) to the
learning code, which recomputes the window with gradients through ``d``.  The
``*_projected`` variants take range-projected frames ``C = Y~ G`` (B, K, r), where
``Phi_d^* = G V`` is `range_dictionary` (the same factorisation as
`isacblocks.sim.montecarlo.ProjectedBasis`); they give the same outputs as on the full
frames, for Monte Carlo studies that draw ``C`` directly.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..errors import ConfigError, ShapeError
from ..params import SystemParams
from .angle_delay import AngleDictionary, RangeDictionary, angle_delay_peak, angle_delay_peak_factored, delay_factors
from .cache import LRUCache
from .impairments import ArrayImpairments, array_key, check_array, receiver_steering
from .scenario import per_frame
from .steering import range_steering

_CACHE_SIZE = 8  # dictionaries kept per spacing vector / range grid


class MapPeak(NamedTuple):
    """The sector maximum of the map (eq. 16): value (B,) float64, row and column (B,) int64."""

    statistic: np.ndarray
    i_hat: np.ndarray
    j_hat: np.ndarray


def steering_dictionary(spacing, params: SystemParams) -> np.ndarray:
    """``Phi_pert(d) = [a(theta_1; d) ... a(theta_N; d)]`` on the angle grid (eq. 13), (K, N_theta) complex64.

    Cached per spacing vector (small LRU); the array is read-only.
    """
    return _angle_dictionaries(spacing, params)[0]


def delay_dictionary(params: SystemParams) -> np.ndarray:
    """``Phi_d = [rho(tau_1) ... rho(tau_N)]`` on the range grid (eq. 14), (S, N_tau) complex64, read-only."""
    return _range_dictionaries(params)[0]


def angle_dictionary(spacing, params: SystemParams) -> AngleDictionary:
    """`steering_dictionary` prepared for `angle_delay_peak` (cached alike)."""
    return _angle_dictionaries(spacing, params)[1]


def range_dictionary(params: SystemParams) -> RangeDictionary:
    """`delay_dictionary` factored for `angle_delay_peak` (cached per range grid)."""
    return _range_dictionaries(params)[1]


def sector_rows(theta_min, theta_max, params: SystemParams) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the angle grid inside ``[theta_min, theta_max]`` (rad) as half-open ``[row_lo, row_hi)``.

    Bounds are scalars or arrays; the result has their broadcast shape, int64.  An empty
    range (``row_lo == row_hi``) means no grid angle lies in the sector.
    """
    return _inside(params.angle_grid, theta_min, theta_max)


def sector_cols(r_min, r_max, params: SystemParams) -> tuple[np.ndarray, np.ndarray]:
    """Columns of the range grid inside ``[r_min, r_max]`` (m) as half-open ``[col_lo, col_hi)``."""
    return _inside(params.range_grid, r_min, r_max)


def window_indices(i_hat, j_hat, params: SystemParams):
    """Grid indices of the eq.-17 window around ``(i_hat, j_hat)`` and whether they lie in the map.

    `i_hat`, `j_hat`: (B,) map indices, e.g. from `mbml_peak`.
    Returns ``(rows, cols, row_valid, col_valid)``: rows (B, 2 delta_theta + 1) and cols
    (B, 2 delta_R + 1), int64, clipped into the map; the masks are False where the
    unclipped index falls outside it (those entries are discarded, Sec. IV-B).
    """
    i_hat, j_hat = np.asarray(i_hat), np.asarray(j_hat)
    if i_hat.ndim != 1 or i_hat.shape != j_hat.shape:
        raise ShapeError(f"window_indices: i_hat and j_hat must be vectors (B,) of the same length, got "
                         f"{i_hat.shape} and {j_hat.shape}")
    rows = np.asarray(i_hat, dtype=np.int64)[:, None] + np.arange(-params.window_half_angle,
                                                                  params.window_half_angle + 1)
    cols = np.asarray(j_hat, dtype=np.int64)[:, None] + np.arange(-params.window_half_range,
                                                                  params.window_half_range + 1)
    row_valid = (rows >= 0) & (rows < params.n_angle_grid)
    col_valid = (cols >= 0) & (cols < params.n_range_grid)
    return (np.clip(rows, 0, params.n_angle_grid - 1), np.clip(cols, 0, params.n_range_grid - 1),
            row_valid, col_valid)


def mbml_peak(Y_tilde, theta_min, theta_max, r_min, r_max, spacing, params: SystemParams,
              device: str = "cpu", method: str = "fused") -> MapPeak:
    """Sector maximum of ``|Phi_pert(d)^H Y~ Phi_d^*|`` (eq. 15-16) and its grid indices.

    Same arguments as `mbml_estimate`; no window or soft-max is formed.
    """
    peak = _sector_peak(Y_tilde, theta_min, theta_max, r_min, r_max, spacing, params, False, "mbml_peak",
                        device=device, method=method)
    return MapPeak(peak.statistic.astype(np.float64), peak.i_hat, peak.j_hat)


def mbml_peak_projected(C, theta_min, theta_max, r_min, r_max, spacing, params: SystemParams,
                        device: str = "cpu") -> MapPeak:
    """`mbml_peak` on range-projected frames ``C = Y~ G`` (B, K, r)."""
    peak = _sector_peak(C, theta_min, theta_max, r_min, r_max, spacing, params, True, "mbml_peak_projected",
                        device=device)
    return MapPeak(peak.statistic.astype(np.float64), peak.i_hat, peak.j_hat)


def mbml_peak_factored(noise, steering, scale, delay, theta_min, theta_max, r_min, r_max, spacing,
                       params: SystemParams, window_cols: int = 0, method: str | None = None):
    """`mbml_peak_projected` on frames given by their factors ``C = scale a d^T + N``
    (`angle_delay.angle_delay_peak_factored`); also the window columns' synthesised factors.

    Returns ``(MapPeak, noise_cols, delay_cols)``.
    """
    noise = np.asarray(noise)
    if noise.ndim != 3:
        raise ShapeError(f"mbml_peak_factored: noise must have shape (B, K, r), got {noise.shape}")
    rows, cols = _sector_bounds(noise.shape[0], theta_min, theta_max, r_min, r_max, params, "mbml_peak_factored")
    peak, noise_cols, delay_cols = angle_delay_peak_factored(
        noise, steering, scale, delay, angle_dictionary(spacing, params), range_dictionary(params), rows[0],
        rows[1], cols[0], cols[1], window_cols=window_cols, method=method)
    return MapPeak(peak.statistic.astype(np.float64), peak.i_hat, peak.j_hat), noise_cols, delay_cols


def mbml_estimate(Y_tilde, theta_min, theta_max, r_min, r_max, spacing, params: SystemParams, device: str = "cpu",
                  method: str = "fused"):
    """Algorithm 1: detection statistic and soft position estimate of the MB-ML receiver.

    `Y_tilde`: (B, K, S) frames after the reciprocal filter (eq. 7), cast to complex64.
    `theta_min, theta_max` (rad), `r_min, r_max` (m): the prior sector, scalars or (B,).
    `spacing`: the (perturbed) spacing vector ``d``, shape (K,) (m).
    `device`: "cpu" (Numba kernel on the cores) or "cuda" (`angle_delay_cuda`, same outputs
    to float32 rounding).  `method` (cpu): "fused" (the kernel) or "lowrank"
    (`angle_delay_lowrank`: fewer FLOPs for batches whose sectors repeat, same outputs to
    float32 rounding).

    Steps: map on the sector (eq. 15), arg-max (eq. 16), window with ``delta_theta``,
    ``delta_R`` from `params` (eq. 12, 17), soft-max of the valid window magnitudes, and
    the weighted means (eq. 18-19)::

        theta^ = sum_n theta_{i^+n} sum_m soft[n, m],   R^ = sum_m R_{j^+m} sum_n soft[n, m]

    Returns ``(statistic, theta_hat, range_hat)``, each (B,) float64; the statistic is the
    map maximum inside the sector, compared with a threshold in step 5.
    """
    peak = _sector_peak(Y_tilde, theta_min, theta_max, r_min, r_max, spacing, params, False, "mbml_estimate",
                        window=True, device=device, method=method)
    return _soft_estimates(peak, params)


def mbml_estimate_projected(C, theta_min, theta_max, r_min, r_max, spacing, params: SystemParams, device: str = "cpu"):
    """`mbml_estimate` on range-projected frames ``C = Y~ G`` (B, K, r)."""
    peak = _sector_peak(C, theta_min, theta_max, r_min, r_max, spacing, params, True, "mbml_estimate_projected",
                        window=True, device=device)
    return _soft_estimates(peak, params)


def _soft_estimates(peak, params: SystemParams):
    """Soft-max over the valid window magnitudes and the weighted means (eq. 18-19)."""
    rows, cols, _, _ = window_indices(peak.i_hat, peak.j_hat, params)
    logits = np.where(peak.valid, peak.window.astype(np.float64), -np.inf)
    soft = np.exp(logits - logits.max(axis=(1, 2), keepdims=True))
    soft /= soft.sum(axis=(1, 2), keepdims=True)
    theta_hat = np.sum(params.angle_grid[rows] * soft.sum(axis=2), axis=1)
    range_hat = np.sum(params.range_grid[cols] * soft.sum(axis=1), axis=1)
    return peak.statistic.astype(np.float64), theta_hat, range_hat


def _sector_peak(Y_tilde, theta_min, theta_max, r_min, r_max, spacing, params: SystemParams, projected: bool, name: str,
                 window: bool = False, device: str = "cpu", method: str = "fused"):
    """Validate, find the sector rows and columns, and run the kernel (with the eq.-17 window if asked)."""
    kernel = peak_function(device, name)
    if not hasattr(Y_tilde, "__cuda_array_interface__"):  # device frames go to the CUDA kernel as they are
        Y_tilde = np.asarray(Y_tilde)
    range_dict = range_dictionary(params)
    expected = (params.n_antennas, range_dict.rank if projected else params.n_subcarriers)
    if Y_tilde.ndim != 3 or Y_tilde.shape[1:] != expected:
        what = "C" if projected else "Y_tilde"
        raise ShapeError(f"{name}: {what} must have shape (B, {expected[0]}, {expected[1]}), got {Y_tilde.shape}")
    rows, cols = _sector_bounds(Y_tilde.shape[0], theta_min, theta_max, r_min, r_max, params, name)
    half_angle, half_range = (params.window_half_angle, params.window_half_range) if window else (0, 0)
    options = {"method": method} if method != "fused" else {}
    if options and device != "cpu":
        raise ConfigError(f"{name}: method = {method!r} runs on the cpu; device = {device!r} has the fused kernel only")
    return kernel(Y_tilde, angle_dictionary(spacing, params), range_dict, rows[0], rows[1], cols[0],
                  cols[1], half_angle, half_range, projected=projected, **options)


def _sector_bounds(n_frames: int, theta_min, theta_max, r_min, r_max, params, name: str):
    """The sector's map rows and columns per frame, ``((row_lo, row_hi), (col_lo, col_hi))``; an
    empty sector is an error naming the frame."""
    bounds = {key: per_frame(value, n_frames, name, key) for key, value in
              (("theta_min", theta_min), ("theta_max", theta_max), ("r_min", r_min), ("r_max", r_max))}
    rows = sector_rows(bounds["theta_min"], bounds["theta_max"], params)
    cols = sector_cols(bounds["r_min"], bounds["r_max"], params)
    for (lo, hi), what, unit, (a, b) in ((rows, "angle", "rad", ("theta_min", "theta_max")),
                                          (cols, "range", "m", ("r_min", "r_max"))):
        empty = np.flatnonzero(lo >= hi)
        if empty.size:
            f = empty[0]
            raise ConfigError(f"{name}: frame {f}: sector {a}, {b} = [{bounds[a][f]}, {bounds[b][f]}] {unit} "
                              f"contains no point of the {what} grid")
    return rows, cols


def peak_function(device: str, name: str):
    """`angle_delay_peak` for "cpu", its CUDA twin for "cuda" (imported only then, after checking
    the device; `name` is the caller in the error)."""
    if device == "cpu":
        return angle_delay_peak
    from .angle_delay_cuda import angle_delay_peak_cuda, check_device

    check_device(device, name)
    return angle_delay_peak_cuda


def _inside(grid, lo, hi) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = np.broadcast_arrays(np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64))
    return (np.searchsorted(grid, lo, side="left").astype(np.int64),
            np.searchsorted(grid, hi, side="right").astype(np.int64))


_ANGLE_CACHE = LRUCache(_CACHE_SIZE)
_RANGE_CACHE = LRUCache(_CACHE_SIZE)


def _angle_dictionaries(spacing, params: SystemParams) -> tuple[np.ndarray, AngleDictionary]:
    """``Phi_pert(d)`` (complex64, read-only) and its prepared form, cached per spacing vector."""
    if isinstance(spacing, ArrayImpairments):
        check_array(spacing, params.n_antennas, "spacing")
    else:
        spacing = np.ascontiguousarray(spacing, dtype=np.float64)
        if spacing.shape != (params.n_antennas,):
            raise ShapeError(f"spacing: expected shape ({params.n_antennas},), got {spacing.shape}")

    def build():
        phi = receiver_steering(params.angle_grid, spacing, params.wavelength).astype(np.complex64)
        phi.setflags(write=False)
        return phi, AngleDictionary.from_steering(phi)

    return _ANGLE_CACHE.get((array_key(spacing), params.wavelength, params.n_angle_grid), build)


def range_factors(params: SystemParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``Phi_d^* = G V`` as `delay_factors` gives it, (G, sigma, V) read-only, cached per range grid:
    the one factorisation that projected frames (`montecarlo.ProjectedBasis`) and the
    receiver (`range_dictionary`) share."""
    return _range_dictionaries(params)[2]


def _range_dictionaries(params: SystemParams) -> tuple[np.ndarray, RangeDictionary, tuple]:
    """``Phi_d`` (complex64, read-only), its prepared form and its factors, cached per range grid."""

    def build():
        phi_d = range_steering(params.range_grid, params)
        factors = delay_factors(phi_d)
        for array in factors:
            array.setflags(write=False)
        prepared = RangeDictionary.from_factors(factors[0], factors[2])
        phi_d = phi_d.astype(np.complex64)
        phi_d.setflags(write=False)
        return phi_d, prepared, factors

    key = (params.n_subcarriers, params.subcarrier_spacing_hz, params.range_min_m, params.range_max_m,
           params.n_range_grid)
    return _RANGE_CACHE.get(key, build)
