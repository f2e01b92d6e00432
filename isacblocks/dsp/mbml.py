"""MB-ML sensing estimator: Algorithm 1 of the paper (Sec. IV-B, eq. 12-19), on an
`angle_delay.AngleDelaySearch`.

The angle-delay map (eq. 15) is searched over the prior sector only: the grid angles
(720 over [-pi/2, pi/2]) inside ``[theta_min, theta_max]`` and the grid ranges (200 over
[R_min, R_max]) inside ``[r_min, r_max]``.  Around the arg-max (eq. 16) a
``(2 delta_theta + 1) x (2 delta_R + 1)`` window (eq. 12, 17) is taken, entries outside
the map discarded, and the soft-max of its magnitudes weights the grid angles and ranges
(eq. 18-19).  The detection statistic is the map maximum inside the sector.

`estimate` and `sector_peak` run on a search object the caller owns (a block, a study);
`mbml_estimate` and `mbml_peak` take the spacing and `SystemParams` and use a search kept
per value of ``(d, grid, device)``.  Frames are any kind of `angle_delay.frames` (an array
is full frames); `mbml_estimate_projected`, `mbml_peak_projected` and `mbml_peak_factored`
name the range-projected kinds.  `mbml_peak` and `window_indices` give the
non-differentiable part (eq. 16) to the learning code, which recomputes the window with
gradients through ``d``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..params import SystemParams
from .angle_delay import AngleDelayGrid, AngleDelaySearch, FactoredFrames, RangeProjectedFrames, factored_peak
from .angle_delay.dictionaries import AngleDictionary, RangeDictionary
from .angle_delay.grid import inside
from .angle_delay.grid import window_indices as grid_window_indices
from .cache import LRUCache
from .impairments import array_key

#: Searches kept for `mbml_estimate` and friends, keyed by the value of (d, grid, device).
_SEARCHES = LRUCache(8)


class MapPeak(NamedTuple):
    """The sector maximum of the map (eq. 16): value (B,) float64, row and column (B,) int64."""

    statistic: np.ndarray
    i_hat: np.ndarray
    j_hat: np.ndarray

    @classmethod
    def of(cls, peak) -> MapPeak:
        """The statistic (as float64) and the arg-max of a search's `AngleDelayPeak`."""
        return cls(peak.statistic.astype(np.float64), peak.i_hat, peak.j_hat)


def search_for(spacing, params: SystemParams, device: str = "cpu", owner: str = "mbml_estimate") -> AngleDelaySearch:
    """The `AngleDelaySearch` on the system's grid for `spacing` and `device`, kept per value
    (a small LRU; never recreated: owners of a changing ``d`` build their own search)."""
    return _SEARCHES.get((array_key(spacing), AngleDelayGrid.key(params), device),
                         lambda: AngleDelaySearch(AngleDelayGrid.of(params), spacing, device, owner=owner))


def sector_peak(search: AngleDelaySearch, frames, theta_min, theta_max, r_min, r_max, window: bool = False,
                method: str | None = None, owner: str = "mbml_peak"):
    """Algorithm 1 steps 4-5 with `search`: the map on the prior sector (rad, m; scalars or (B,))
    and its arg-max (eq. 15-16), with the eq.-17 window if `window`; an `AngleDelayPeak`."""
    frames = search.check(frames, owner)
    sectors = search.grid.sectors(frames.n_frames, theta_min, theta_max, r_min, r_max, owner)
    half = (search.grid.half_angle, search.grid.half_range) if window else (0, 0)
    return search.execute(frames, sectors, *half, method=method, owner=owner)


def estimate(search: AngleDelaySearch, frames, theta_min, theta_max, r_min, r_max, method: str | None = None,
             owner: str = "mbml_estimate"):
    """Algorithm 1 with `search`: `sector_peak` with the window, then `soft_estimates`.
    Returns ``(statistic, theta_hat, range_hat)``, each (B,) float64."""
    peak = sector_peak(search, frames, theta_min, theta_max, r_min, r_max, True, method, owner)
    return soft_estimates(peak, search.grid)


def soft_estimates(peak, grid: AngleDelayGrid):
    """Soft-max over the valid window magnitudes and the weighted means (eq. 18-19)::

        theta^ = sum_n theta_{i^+n} sum_m soft[n, m],   R^ = sum_m R_{j^+m} sum_n soft[n, m]
    """
    rows, cols, _, _ = grid.window_indices(peak.i_hat, peak.j_hat)
    logits = np.where(peak.valid, peak.window.astype(np.float64), -np.inf)
    soft = np.exp(logits - logits.max(axis=(1, 2), keepdims=True))
    soft /= soft.sum(axis=(1, 2), keepdims=True)
    theta_hat = np.sum(grid.angles[rows] * soft.sum(axis=2), axis=1)
    range_hat = np.sum(grid.ranges[cols] * soft.sum(axis=1), axis=1)
    return peak.statistic.astype(np.float64), theta_hat, range_hat


def mbml_estimate(Y_tilde, theta_min, theta_max, r_min, r_max, spacing, params: SystemParams, device: str = "cpu",
                  method: str | None = None):
    """Algorithm 1: detection statistic and soft position estimate of the MB-ML receiver.

    `Y_tilde`: (B, K, S) frames after the reciprocal filter (eq. 7), or a frame kind.
    `theta_min, theta_max` (rad), `r_min, r_max` (m): the prior sector, scalars or (B,).
    `spacing`: the (perturbed) spacing vector ``d``, shape (K,) (m).
    `device`: "cpu" or "cuda" (same outputs to float32 rounding); `method`: the backend's
    method (`angle_delay.backends`; None: the frames' default, the fused kernel for full frames).
    Returns ``(statistic, theta_hat, range_hat)``, each (B,) float64.
    """
    return estimate(search_for(spacing, params, device, "mbml_estimate"), Y_tilde, theta_min, theta_max, r_min,
                    r_max, method)


def mbml_peak(Y_tilde, theta_min, theta_max, r_min, r_max, spacing, params: SystemParams, device: str = "cpu",
              method: str | None = None) -> MapPeak:
    """Sector maximum of ``|Phi_pert(d)^H Y~ Phi_d^*|`` (eq. 15-16) and its grid indices (no window)."""
    peak = sector_peak(search_for(spacing, params, device, "mbml_peak"), Y_tilde, theta_min, theta_max, r_min, r_max,
                       method=method)
    return MapPeak.of(peak)


def mbml_estimate_projected(C, theta_min, theta_max, r_min, r_max, spacing, params: SystemParams,
                            device: str = "cpu"):
    """`mbml_estimate` on range-projected frames ``C = Y~ G`` (B, K, r), G of `range_factors`."""
    return estimate(search_for(spacing, params, device, "mbml_estimate_projected"), RangeProjectedFrames(C), theta_min,
                    theta_max, r_min, r_max, owner="mbml_estimate_projected")


def mbml_peak_projected(C, theta_min, theta_max, r_min, r_max, spacing, params: SystemParams,
                        device: str = "cpu") -> MapPeak:
    """`mbml_peak` on range-projected frames ``C = Y~ G`` (B, K, r)."""
    peak = sector_peak(search_for(spacing, params, device, "mbml_peak_projected"), RangeProjectedFrames(C), theta_min,
                       theta_max, r_min, r_max, owner="mbml_peak_projected")
    return MapPeak.of(peak)


def mbml_peak_factored(noise, steering, scale, delay, theta_min, theta_max, r_min, r_max, spacing,
                       params: SystemParams, window_cols: int = 0, method: str | None = None):
    """`mbml_peak` on `FactoredFrames` ``C = scale a d^T + N`` and the window columns' synthesised
    factors (`angle_delay.angle_delay_peak_factored`).  Returns ``(MapPeak, noise_cols, delay_cols)``."""
    owner = "mbml_peak_factored"
    frames = FactoredFrames(noise, steering, scale, delay)
    return factored_sector_peak(search_for(spacing, params, "cpu", owner), frames, theta_min, theta_max, r_min, r_max,
                                window_cols, method, owner)


def factored_sector_peak(search: AngleDelaySearch, frames: FactoredFrames, theta_min, theta_max, r_min, r_max,
                         window_cols: int = 0, method: str | None = None, owner: str = "factored_sector_peak"):
    """`sector_peak` (no window) of `FactoredFrames` with `search`, and the synthesised factors of
    the window's `window_cols` range columns either side (`angle_delay.factored_peak`).
    Returns ``(MapPeak, noise_cols, delay_cols)``."""
    frames = search.check(frames, owner)
    sectors = search.grid.sectors(frames.n_frames, theta_min, theta_max, r_min, r_max, owner)
    peak, noise_cols, delay_cols = factored_peak(search, frames, sectors, window_cols=window_cols, method=method,
                                                 owner=owner)
    return MapPeak.of(peak), noise_cols, delay_cols


def sector_rows(theta_min, theta_max, params: SystemParams) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the angle grid inside ``[theta_min, theta_max]`` (rad) as half-open ``[row_lo, row_hi)``.

    Bounds are scalars or arrays; the result has their broadcast shape, int64.  An empty
    range (``row_lo == row_hi``) means no grid angle lies in the sector.
    """
    return inside(params.angle_grid, theta_min, theta_max)


def sector_cols(r_min, r_max, params: SystemParams) -> tuple[np.ndarray, np.ndarray]:
    """Columns of the range grid inside ``[r_min, r_max]`` (m) as half-open ``[col_lo, col_hi)``."""
    return inside(params.range_grid, r_min, r_max)


def window_indices(i_hat, j_hat, params: SystemParams):
    """Grid indices of the eq.-17 window around ``(i_hat, j_hat)`` (e.g. from `mbml_peak`) and
    whether they lie in the map: ``(rows, cols, row_valid, col_valid)`` (`grid.window_indices`)."""
    return grid_window_indices(i_hat, j_hat, params.window_half_angle, params.window_half_range,
                               params.n_angle_grid, params.n_range_grid)


def steering_dictionary(spacing, params: SystemParams) -> np.ndarray:
    """``Phi_pert(d)`` on the angle grid (eq. 13), (K, N_theta) complex64, read-only (kept per value of ``d``)."""
    return search_for(spacing, params).steering


def angle_dictionary(spacing, params: SystemParams) -> AngleDictionary:
    """`steering_dictionary` prepared for the kernels."""
    return search_for(spacing, params).angle_dict


def delay_dictionary(params: SystemParams) -> np.ndarray:
    """``Phi_d`` on the range grid (eq. 14), (S, N_tau) complex64, read-only."""
    return AngleDelayGrid.of(params).delay


def range_dictionary(params: SystemParams) -> RangeDictionary:
    """`delay_dictionary` factored for the kernels."""
    return AngleDelayGrid.of(params).range_dict


def range_factors(params: SystemParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``Phi_d^* = G V`` as (G, sigma, V), read-only: the one factorisation that projected frames
    (`montecarlo.ProjectedBasis`) and the receiver share (`AngleDelayGrid.factors`)."""
    return AngleDelayGrid.of(params).factors
