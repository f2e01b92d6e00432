"""Model-based baseline detector and estimator: MAPRT (eq. 9-10)."""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError, ShapeError
from ..params import SystemParams
from .angle_delay import AngleDelayGrid, AngleDelaySearch, Frames, Sectors, resolve_device
from .impairments import check_array
from .scenario import per_frame


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
    range_hat)``, each (B,) float64.  `device`: "cpu" or "cuda" (the CUDA backend of
    `angle_delay`, same outputs to float32 rounding).
    """
    device = resolve_device(device, "maprt")
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
        # The grid spread over the sector; its range factors are kept per value of the range grid.
        grid = AngleDelayGrid(params, np.linspace(t0, t1, n_theta), np.linspace(r0, r1, n_range))
        search = AngleDelaySearch(grid, spacing, device, owner="maprt")
        peak = search.execute(Frames(Y_tilde[frames]), Sectors.from_indices(frames.size, n_theta, n_range, 0, n_theta),
                              owner="maprt")
        statistic[frames] = peak.statistic.astype(np.float64)
        theta_hat[frames] = grid.angles[peak.i_hat]
        range_hat[frames] = grid.ranges[peak.j_hat]
    return statistic, theta_hat, range_hat
