"""Model-based baseline detector and estimator: MAPRT (eq. 9-10)."""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError, ShapeError
from ..params import SystemParams
from .angle_delay import AngleDictionary, RangeDictionary, angle_delay_peak
from .cache import LRUCache
from .impairments import check_array, receiver_steering
from .mbml import peak_function
from .scenario import per_frame
from .steering import range_steering


def check_frames(Y_tilde, params: SystemParams, name: str) -> np.ndarray:
    """Validate a batch of sensing frames (B, K, S) against `params`."""
    Y_tilde = np.asarray(Y_tilde)
    expected = (params.n_antennas, params.n_subcarriers)
    if Y_tilde.ndim != 3 or Y_tilde.shape[1:] != expected:
        raise ShapeError(f"{name}: Y_tilde must have shape (B, {expected[0]}, {expected[1]}), got {Y_tilde.shape}")
    return Y_tilde


#: Slack on the sector limits, for bounds converted from degrees.
_SECTOR_SLACK = 1e-9


def check_sectors(theta_min, theta_max, r_min, r_max, params: SystemParams, name: str) -> None:
    """Each frame's prior sector must be finite, ordered (min < max) and inside
    ``[-pi/2, pi/2]`` rad and ``[range_min_m, range_max_m]``: the same sectors MB-ML accepts
    (whose grids cover exactly those limits).  (B,) arrays; raises `ConfigError` naming the
    first bad frame."""
    for (lo, hi), unit, (lim_lo, lim_hi), (a, b) in (
            ((theta_min, theta_max), "rad", (-np.pi / 2, np.pi / 2), ("theta_min", "theta_max")),
            ((r_min, r_max), "m", (params.range_min_m, params.range_max_m), ("r_min", "r_max"))):
        slack = _SECTOR_SLACK * max(1.0, abs(lim_hi))
        bad = ~(np.isfinite(lo) & np.isfinite(hi) & (lo < hi) & (lo >= lim_lo - slack) & (hi <= lim_hi + slack))
        if bad.any():
            f = int(np.flatnonzero(bad)[0])
            raise ConfigError(f"{name}: frame {f}: sector {a}, {b} = [{lo[f]}, {hi[f]}] {unit}: needs finite "
                              f"{lim_lo:g} <= {a} < {b} <= {lim_hi:g}")


def maprt(Y_tilde, theta_min, theta_max, r_min, r_max, spacing, params: SystemParams,
          n_theta: int | None = None, n_range: int | None = None, device: str = "cpu"):
    """MAPRT statistic and estimates (eq. 9-10) on a grid spread over the prior sector.

    ``(theta^, tau^) = argmax |a_rx^H(theta) Y~ rho^*(tau)|`` over `n_theta` angles in
    ``[theta_min, theta_max]`` and `n_range` ranges in ``[r_min, r_max]``; the
    statistic is the maximum itself, compared with a threshold for detection (eq. 9).
    (The matched filter uses the Hermitian of the steering vector, as in eq. 15.)
    Sector bounds are scalars or (B,) arrays.  Returns ``(statistic, theta_hat,
    range_hat)``, each (B,) float64.  `device`: "cpu" or "cuda" (the CUDA kernel of
    `angle_delay_cuda`, same outputs to float32 rounding).
    """
    kernel = peak_function(device, "maprt")
    n_theta = params.n_angle_grid if n_theta is None else n_theta
    n_range = params.n_range_grid if n_range is None else n_range
    Y_tilde = check_frames(Y_tilde, params, "maprt")
    n_frames = Y_tilde.shape[0]
    spacing = check_array(spacing, params.n_antennas, "maprt: spacing")
    bounds = [per_frame(v, n_frames, "maprt", name) for v, name in
              ((theta_min, "theta_min"), (theta_max, "theta_max"), (r_min, "r_min"), (r_max, "r_max"))]
    check_sectors(*bounds, params, "maprt")
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
        angle_dict = receiver_steering(angles, spacing, params.wavelength).astype(np.complex64)
        range_dict = range_steering(ranges, params)
        stat, i_hat, j_hat = _map_peak(Y_tilde[frames], angle_dict, range_dict, kernel)
        statistic[frames] = stat
        theta_hat[frames] = angles[i_hat]
        range_hat[frames] = ranges[j_hat]
    return statistic, theta_hat, range_hat


def _map_peak(Y_tilde, angle_dict, range_dict, kernel=angle_delay_peak):
    """Peak of ``|A^H Y~ D^*|`` per frame over the whole (sector) grid: (value, row, column).

    Runs the fused Numba angle-delay kernel (`angle_delay_peak`) with every row and column
    searched and no window."""
    n_frames = Y_tilde.shape[0]
    peak = kernel(Y_tilde, AngleDictionary.from_steering(angle_dict), _range_dictionary(range_dict),
                  np.zeros(n_frames, dtype=np.int64), np.full(n_frames, angle_dict.shape[1]),
                  0, range_dict.shape[1])
    return peak.statistic.astype(np.float64), peak.i_hat, peak.j_hat


_RANGE_CACHE = LRUCache(8)


def _range_dictionary(range_dict) -> RangeDictionary:
    """The factored delay dictionary, cached per grid (the grid only changes with the range sector)."""
    return _RANGE_CACHE.get(range_dict.tobytes(), lambda: RangeDictionary.from_steering(range_dict))
