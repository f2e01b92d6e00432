"""The angle-delay grid: one object built from `SystemParams` (as Sionna's `ResourceGrid`)
that holds the angle grid, the range grid, the delay dictionary ``Phi_d`` (eq. 14) and its
canonical factors ``Phi_d^* = G V``, and turns prior sectors into map rows and columns.

The frames a Monte Carlo study draws in G's coordinates (`sim.montecarlo.ProjectedBasis`)
and the receiver that synthesises with V take both from the same grid, so they cannot
disagree.  Grids are cached by value (the fields they are derived from), never by identity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...errors import ConfigError, ShapeError
from ...params import SystemParams
from ..cache import LRUCache
from ..impairments import ArrayImpairments, check_array, receiver_steering
from ..scenario import per_frame
from ..steering import range_steering
from .dictionaries import AngleDictionary, RangeDictionary, delay_factors

_RANGE_PARTS = LRUCache(8)  # (S, delta_f, range grid bytes) -> (Phi_d, factors, RangeDictionary)
_GRIDS = LRUCache(8)  # the value key of a grid -> the grid


@dataclass(frozen=True)
class Sectors:
    """The searched part of the map per frame: half-open rows ``[row_lo, row_hi)`` (angles) and
    columns ``[col_lo, col_hi)`` (ranges), each (B,) int64."""

    row_lo: np.ndarray
    row_hi: np.ndarray
    col_lo: np.ndarray
    col_hi: np.ndarray

    @classmethod
    def from_indices(cls, n_frames: int, n_theta: int, n_tau: int, row_lo, row_hi, col_lo=0, col_hi=None,
                     owner: str = "angle_delay_peak") -> Sectors:
        """From index bounds, scalars or (B,) arrays (`col_hi` defaults to N_tau), checked
        against the map's size; errors name `owner`."""
        rows = _bounds(row_lo, row_hi, n_frames, n_theta, "row", owner)
        cols = _bounds(col_lo, n_tau if col_hi is None else col_hi, n_frames, n_tau, "col", owner)
        return cls(*rows, *cols)

    @property
    def rows(self) -> tuple[np.ndarray, np.ndarray]:
        return self.row_lo, self.row_hi

    @property
    def cols(self) -> tuple[np.ndarray, np.ndarray]:
        return self.col_lo, self.col_hi

    def __len__(self) -> int:
        return self.row_lo.shape[0]

    def take(self, index) -> Sectors:
        """The sectors of the frames `index` (itself when that is every frame)."""
        if index.size == len(self):
            return self
        return Sectors(self.row_lo[index], self.row_hi[index], self.col_lo[index], self.col_hi[index])


class AngleDelayGrid:
    """The MB-ML grids of `params` (or explicit `angles` (rad) and `ranges` (m), e.g. MAPRT's grid
    spread over a sector) with the delay dictionary and its factors.

    `delay`: ``Phi_d`` (S, N_tau) complex64; `factors`: ``(G, sigma, V)`` of `delay_factors`
    (float64/complex128, read-only); `range_dict`: the factors in the kernels' layout;
    `half_angle`, `half_range`: delta_theta and delta_R of the eq.-17 window.  Build the
    system's grid with `AngleDelayGrid.of(params)` (cached by value).
    """

    def __init__(self, params: SystemParams, angles=None, ranges=None):
        self.angles = params.angle_grid if angles is None else np.asarray(angles, dtype=np.float64)
        self.ranges = params.range_grid if ranges is None else np.asarray(ranges, dtype=np.float64)
        self.wavelength = params.wavelength
        self.n_antennas = params.n_antennas
        self.half_angle, self.half_range = params.window_half_angle, params.window_half_range
        self.delay, self.factors, self.range_dict = _range_part(self.ranges, params)

    @classmethod
    def of(cls, params: SystemParams) -> AngleDelayGrid:
        """The system's grid (``params.angle_grid`` x ``params.range_grid``), cached per value of
        the fields it depends on (an SNR change keeps the grid)."""
        return _GRIDS.get(cls.key(params), lambda: cls(params))

    @staticmethod
    def key(params: SystemParams) -> tuple:
        """The values the system's grid is derived from."""
        return (params.n_antennas, params.wavelength, params.n_angle_grid, params.n_subcarriers,
                params.subcarrier_spacing_hz, params.range_min_m, params.range_max_m, params.n_range_grid,
                params.window_half_angle, params.window_half_range)

    @property
    def n_angles(self) -> int:
        return self.angles.shape[0]

    @property
    def n_ranges(self) -> int:
        return self.ranges.shape[0]

    def angle_dictionary(self, spacing) -> tuple[np.ndarray, AngleDictionary]:
        """``Phi_pert(d)`` (eq. 13) on the angle grid, (K, N_theta) complex64 read-only, and its
        prepared form, for the spacing vector (or `ArrayImpairments`) `spacing`."""
        if isinstance(spacing, ArrayImpairments):
            check_array(spacing, self.n_antennas, "spacing")
        else:
            spacing = np.ascontiguousarray(spacing, dtype=np.float64)
            if spacing.shape != (self.n_antennas,):
                raise ShapeError(f"spacing: expected shape ({self.n_antennas},), got {spacing.shape}")
        phi = receiver_steering(self.angles, spacing, self.wavelength).astype(np.complex64)
        phi.setflags(write=False)
        return phi, AngleDictionary.from_steering(phi)

    def sectors(self, n_frames: int, theta_min, theta_max, r_min, r_max, owner: str) -> Sectors:
        """The prior sectors (rad, m; scalars or (B,)) as map rows and columns; a sector with no
        grid point is an error naming the frame and `owner`."""
        bounds = {key: per_frame(value, n_frames, owner, key) for key, value in
                  (("theta_min", theta_min), ("theta_max", theta_max), ("r_min", r_min), ("r_max", r_max))}
        rows = inside(self.angles, bounds["theta_min"], bounds["theta_max"])
        cols = inside(self.ranges, bounds["r_min"], bounds["r_max"])
        for (lo, hi), what, unit, (a, b) in ((rows, "angle", "rad", ("theta_min", "theta_max")),
                                              (cols, "range", "m", ("r_min", "r_max"))):
            empty = np.flatnonzero(lo >= hi)
            if empty.size:
                f = empty[0]
                raise ConfigError(f"{owner}: frame {f}: sector {a}, {b} = [{bounds[a][f]}, {bounds[b][f]}] {unit} "
                                  f"contains no point of the {what} grid")
        return Sectors(*rows, *cols)

    def window_indices(self, i_hat, j_hat):
        """`window_indices` on this grid."""
        return window_indices(i_hat, j_hat, self.half_angle, self.half_range, self.n_angles, self.n_ranges)


def inside(grid, lo, hi) -> tuple[np.ndarray, np.ndarray]:
    """Points of the ascending `grid` inside ``[lo, hi]`` as half-open ``[first, end)``, int64 of the
    bounds' broadcast shape (``first == end``: none)."""
    lo, hi = np.broadcast_arrays(np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64))
    return (np.searchsorted(grid, lo, side="left").astype(np.int64),
            np.searchsorted(grid, hi, side="right").astype(np.int64))


def window_indices(i_hat, j_hat, half_angle: int, half_range: int, n_theta: int, n_tau: int):
    """Grid indices of the eq.-17 window around ``(i_hat, j_hat)`` and whether they lie in the map.

    Returns ``(rows, cols, row_valid, col_valid)``: rows (B, 2 delta_theta + 1) and cols
    (B, 2 delta_R + 1), int64, clipped into the map; the masks are False where the
    unclipped index falls outside it (those entries are discarded, Sec. IV-B).
    """
    i_hat, j_hat = np.asarray(i_hat), np.asarray(j_hat)
    if i_hat.ndim != 1 or i_hat.shape != j_hat.shape:
        raise ShapeError(f"window_indices: i_hat and j_hat must be vectors (B,) of the same length, got "
                         f"{i_hat.shape} and {j_hat.shape}")
    rows = np.asarray(i_hat, dtype=np.int64)[:, None] + np.arange(-half_angle, half_angle + 1)
    cols = np.asarray(j_hat, dtype=np.int64)[:, None] + np.arange(-half_range, half_range + 1)
    row_valid = (rows >= 0) & (rows < n_theta)
    col_valid = (cols >= 0) & (cols < n_tau)
    return np.clip(rows, 0, n_theta - 1), np.clip(cols, 0, n_tau - 1), row_valid, col_valid


def _range_part(ranges: np.ndarray, params: SystemParams):
    """``Phi_d`` (complex64), its factors and their kernel layout, read-only, cached by value."""

    def build():
        phi_d = range_steering(ranges, params)
        factors = delay_factors(phi_d)
        for array in factors:
            array.setflags(write=False)
        prepared = RangeDictionary.from_factors(factors[0], factors[2])
        phi_d = phi_d.astype(np.complex64)
        phi_d.setflags(write=False)
        return phi_d, factors, prepared

    key = (params.n_subcarriers, params.subcarrier_spacing_hz, np.ascontiguousarray(ranges).tobytes())
    return _RANGE_PARTS.get(key, build)


def _bounds(lo, hi, n_frames: int, size: int, name: str, owner: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame half-open index bounds ``[lo, hi)`` within ``[0, size]``, as (B,) int64."""
    out = []
    for value, which in ((lo, "lo"), (hi, "hi")):
        value = np.asarray(value)
        if value.ndim == 0:
            value = np.full(n_frames, value)
        if value.shape != (n_frames,):
            raise ShapeError(f"{owner}: {name}_{which} must be a scalar or shape ({n_frames},), got {value.shape}")
        if not np.issubdtype(value.dtype, np.integer):
            raise ShapeError(f"{owner}: {name}_{which} must be integer indices, got {value.dtype}")
        out.append(np.array(value, dtype=np.int64))
    lo, hi = out
    bad = np.flatnonzero((lo < 0) | (hi > size) | (lo >= hi))
    if bad.size:
        b = bad[0]
        raise ConfigError(f"{owner}: frame {b} has an empty or out-of-range {name} sector "
                          f"[{lo[b]}, {hi[b]}); needs 0 <= lo < hi <= {size}")
    return lo, hi
