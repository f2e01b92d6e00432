"""The angle-delay search (eq. 15-17): one object, built from the grid and the array.

``L = |Phi_pert(d)^H Y~ Phi_d^*|`` (eq. 15) is searched only on the rows (angles) and
columns (ranges) of each frame's prior sector; the arg-max (eq. 16) and the
``(2 delta_theta + 1) x (2 delta_R + 1)`` window around it (eq. 17) come out of the same
pass, and the full ``N_theta x N_tau`` map is never formed.  As liquid-dsp's objects:

    search = AngleDelaySearch(AngleDelayGrid.of(params), d)    # create
    search.recreate(d_new)                                     # a new spacing vector
    peak = search.execute(frames, sectors, half_angle, half_range)

`frames` is a frame kind (`Frames`, `RangeProjectedFrames`, `FactoredFrames`); the kernel comes
from the backend table (`backends`) by device, method and kind.  The search keeps what it
derives from its dictionaries (BLAS forms, the low-rank sector factors, device copies) on
itself until `recreate`; nothing is cached by object identity.  `angle_delay_peak` and
`angle_delay_peak_factored` run one search on dictionaries given as arguments.
"""

from __future__ import annotations

import threading

import numpy as np

from ...errors import ConfigError, ShapeError
from ..blas_threads import one_blas_thread
from ..cache import LRUCache
from .backends import kernel, methods
from .cuda import cuda_peak
from .devices import resolve_device
from .dictionaries import AngleDictionary, RangeDictionary
from .frames import AngleDelayPeak, FactoredFrames, Frames, RangeProjectedFrames
from .grid import AngleDelayGrid, Sectors
from .lowrank import sector_factors

#: The ways a search computes the sector map of full frames on the cpu (the first is the default) ...
PEAK_METHODS = methods("cpu", Frames)
#: ... and of range-projected (or factored) frames.
PROJECTED_METHODS = methods("cpu", RangeProjectedFrames)

#: Sectors whose low-rank factors a search keeps.
SECTOR_FACTORS_KEPT = 64


class PreparedSearch:
    """The dictionaries of a search for one ``d`` and what is derived from them (built on first
    use, kept until the search is recreated); the kernels of `backends` take it."""

    def __init__(self, angle_dict: AngleDictionary, range_dict: RangeDictionary, steering=None):
        self.angle_dict, self.range_dict, self.steering = angle_dict, range_dict, steering
        self._derived: dict = {}
        self._lock = threading.Lock()

    def derived(self, name: str, build):
        """The derived value `name`, built by ``build()`` on first use."""
        with self._lock:
            if name in self._derived:
                return self._derived[name]
        value = build()
        with self._lock:
            return self._derived.setdefault(name, value)

    def synthesis(self) -> np.ndarray:
        """V (r, N_tau) complex64."""
        return self.derived("synthesis", self.range_dict.synthesis)

    def lowrank_matrices(self):
        """``Phi_pert^H`` (N_theta, K), G (S, r), V (r, N_tau) and ``Phi_d^* = G V`` (S, N_tau), complex64."""

        def build():
            g = self.range_dict.projection()
            v = self.synthesis()
            delay_conj = (g.astype(np.complex128) @ v.astype(np.complex128)).astype(np.complex64)
            return self.angle_dict.herm(), g, v, delay_conj

        return self.derived("lowrank", build)

    def sector_factors(self, row_lo: int, row_hi: int):
        """`lowrank.sector_factors` of the rows ``[row_lo, row_hi)``, kept per sector."""
        kept = self.derived("sector_factors", lambda: LRUCache(SECTOR_FACTORS_KEPT))
        return kept.get((row_lo, row_hi), lambda: sector_factors(self.lowrank_matrices()[0], row_lo, row_hi))


class AngleDelaySearch:
    """The sector peak, arg-max and window of the angle-delay map (eq. 15-17) for a spacing ``d``.

    `grid`: the `AngleDelayGrid` (angle grid, range grid, delay factors); `spacing`: ``d``
    (K,) or an `ArrayImpairments`; `device`: "cpu" or "cuda" (`resolve_device`); `method`:
    the default method of `execute` (None: each frame kind's default, `backends`).
    """

    def __init__(self, grid: AngleDelayGrid, spacing, device: str = "cpu", method: str | None = None,
                 owner: str = "AngleDelaySearch"):
        self.grid, self.method = grid, method
        self.device = resolve_device(device, owner)
        self.recreate(spacing)

    @classmethod
    def from_dictionaries(cls, angle_dict, range_dict, device: str = "cpu", method: str | None = None,
                          owner: str = "AngleDelaySearch") -> AngleDelaySearch:
        """A search on given dictionaries (an `AngleDictionary` or the steering matrix
        ``Phi_pert`` (K, N_theta); a `RangeDictionary` or the delay matrix ``Phi_d`` (S, N_tau));
        it has no grid, so it cannot be recreated."""
        search = cls.__new__(cls)
        search.grid, search.method, search.spacing = None, method, None
        search.device = resolve_device(device, owner)
        if not isinstance(angle_dict, AngleDictionary):
            angle_dict = AngleDictionary.from_steering(angle_dict)
        if not isinstance(range_dict, RangeDictionary):
            range_dict = RangeDictionary.from_steering(range_dict)
        search.prepared = PreparedSearch(angle_dict, range_dict)
        return search

    def recreate(self, spacing) -> None:
        """Rebuild the angle dictionary ``Phi_pert(d)^H`` (eq. 13) for a new ``d``."""
        if self.grid is None:
            raise ConfigError("AngleDelaySearch.recreate: a search built from dictionaries has no grid")
        steering, angle_dict = self.grid.angle_dictionary(spacing)
        self.prepared = PreparedSearch(angle_dict, self.grid.range_dict, steering)  # one assignment: thread-safe
        self.spacing = spacing

    @property
    def angle_dict(self) -> AngleDictionary:
        return self.prepared.angle_dict

    @property
    def range_dict(self) -> RangeDictionary:
        return self.prepared.range_dict

    @property
    def steering(self) -> np.ndarray:
        """``Phi_pert(d)`` (K, N_theta) complex64, read-only (None for a search built from dictionaries)."""
        return self.prepared.steering

    def check(self, frames, owner: str):
        """`frames` as a frame kind (an array is `Frames`), its shape checked; errors name `owner`."""
        if not isinstance(frames, (Frames, FactoredFrames)):
            frames = Frames(frames)
        frames.check(owner, self.angle_dict.n_antennas, self.range_dict)
        return frames

    def sectors(self, frames, row_lo, row_hi, col_lo=0, col_hi=None, owner: str = "angle_delay_peak") -> Sectors:
        """`Sectors` from map indices (scalars or (B,)) for `frames`."""
        return Sectors.from_indices(frames.n_frames, self.angle_dict.n_angles, self.range_dict.n_ranges, row_lo,
                                    row_hi, col_lo, col_hi, owner)

    def execute(self, frames, sectors: Sectors, half_angle: int = 0, half_range: int = 0, method: str | None = None,
                owner: str = "AngleDelaySearch.execute") -> AngleDelayPeak:
        """The peak of `frames` (a frame kind, or full frames as an array) in `sectors` with the
        ``(2 half_angle + 1) x (2 half_range + 1)`` window (eq. 17).  A frame holding NaN gets
        NaN statistic and window; each frame's outputs depend on that frame alone."""
        prepared = self.prepared
        run = kernel(self.device, self.method if method is None else method,
                     type(frames) if isinstance(frames, (Frames, FactoredFrames)) else Frames, owner)
        frames = self.check(frames, owner)
        if len(sectors) != frames.n_frames:
            raise ShapeError(f"{owner}: {len(sectors)} sectors for {frames.n_frames} frames")
        half_angle, half_range = int(half_angle), int(half_range)
        if half_angle < 0 or half_range < 0:
            raise ConfigError(f"{owner}: window half sizes must be >= 0, got ({half_angle}, {half_range})")
        return run(prepared, frames, sectors, half_angle, half_range)


def angle_delay_peak(Y_tilde, angle_dict, range_dict, row_lo, row_hi, col_lo=0, col_hi=None,
                     half_angle: int = 0, half_range: int = 0, projected: bool = False,
                     method: str | None = None) -> AngleDelayPeak:
    """`AngleDelaySearch.execute` on the cpu with the dictionaries and sector indices given.

    `Y_tilde`: (B, K, S) frames (`Frames`), or with `projected` range-projected frames
    ``C = Y~ G`` (B, K, r) with the G of `range_dict` (`RangeProjectedFrames`).  `angle_dict`: an
    `AngleDictionary` or ``Phi_pert`` (K, N_theta); `range_dict`: a `RangeDictionary` or
    ``Phi_d`` (S, N_tau).  `row_lo, row_hi`, `col_lo, col_hi`: the searched sector as half-open
    index ranges of map rows and columns; scalars or (B,) arrays; `col_hi` defaults to N_tau.
    `half_angle`, `half_range`: delta_theta and delta_R of the window (eq. 12, 17).
    `method`: one of `PEAK_METHODS` for full frames, `PROJECTED_METHODS` for projected ones
    (None: the first).
    """
    frames = (RangeProjectedFrames if projected else Frames)(Y_tilde)
    search = AngleDelaySearch.from_dictionaries(angle_dict, range_dict, method=method)
    kernel(search.device, method, type(frames), "angle_delay_peak")  # the method is checked first
    frames = search.check(frames, "angle_delay_peak")
    sectors = search.sectors(frames, row_lo, row_hi, col_lo, col_hi)
    return search.execute(frames, sectors, half_angle, half_range, owner="angle_delay_peak")


def angle_delay_peak_factored(noise, steering, scale, delay, angle_dict, range_dict, row_lo, row_hi, col_lo=0,
                              col_hi=None, half_angle: int = 0, half_range: int = 0, window_cols: int = 0,
                              method: str | None = None) -> tuple[AngleDelayPeak, np.ndarray, np.ndarray]:
    """`angle_delay_peak` on `FactoredFrames` ``C = scale a d^T + N`` (the Monte Carlo frames of
    `isacblocks.sim`, rank-one echo plus noise): `noise` (B, K, r), `steering` (B, K), `scale`
    (B,), `delay` (B, r), complex64.  The peak equals `angle_delay_peak(C, ..., projected=True)`'s.

    With ``window_cols = n > 0`` it also returns the range-synthesised factors on the
    ``2 n + 1`` columns ``clip(j^ + m, 0, N_tau - 1)``, m = -n..n (the columns of the
    eq.-17 window): ``noise V[:, cols]`` (B, K, 2n+1) and ``delay V[:, cols]`` (B, 2n+1),
    complex64 (`synthesise_columns`), so a learner forms the window's data
    ``g scale a (d V) + N V`` without touching the full frames.  Otherwise both are empty.
    """
    owner = "angle_delay_peak_factored"
    search = AngleDelaySearch.from_dictionaries(angle_dict, range_dict, method=method)
    frames = search.check(FactoredFrames(noise, steering, scale, delay), owner)
    sectors = search.sectors(frames, row_lo, row_hi, col_lo, col_hi)
    return factored_peak(search, frames, sectors, half_angle, half_range, window_cols, owner=owner)


def factored_peak(search: AngleDelaySearch, frames: FactoredFrames, sectors: Sectors, half_angle: int = 0,
                  half_range: int = 0, window_cols: int = 0, method: str | None = None,
                  owner: str = "angle_delay_peak_factored") -> tuple[AngleDelayPeak, np.ndarray, np.ndarray]:
    """`search.execute` on factored frames, and the window columns' synthesised factors (see
    `angle_delay_peak_factored`)."""
    window_cols = int(window_cols)
    if window_cols < 0:
        raise ConfigError(f"{owner}: window_cols must be >= 0, got {window_cols}")
    prepared = search.prepared
    peak = search.execute(frames, sectors, half_angle, half_range, method=method, owner=owner)
    parts = frames.parts()
    noise_cols, delay_cols = synthesise_columns(parts[0], parts[3],
                                                window_synthesis(prepared.synthesis(), peak.j_hat, window_cols))
    return peak, noise_cols, delay_cols


def angle_delay_peak_cuda(Y_tilde, angle_dict, range_dict, row_lo, row_hi, col_lo=0, col_hi=None,
                          half_angle: int = 0, half_range: int = 0, projected: bool = False,
                          threads_per_block: int | None = None) -> AngleDelayPeak:
    """`angle_delay_peak` on the CUDA device (`cuda`): same arguments and outputs (host arrays).

    `Y_tilde` may also be C-contiguous complex64 frames already on the device (anything with
    ``__cuda_array_interface__``), read in place.  `threads_per_block` defaults to
    `devices.THREADS_PER_BLOCK` (at most that many).
    """
    owner = "angle_delay_peak_cuda"
    search = AngleDelaySearch.from_dictionaries(angle_dict, range_dict)
    frames = search.check((RangeProjectedFrames if projected else Frames)(Y_tilde), owner)
    sectors = search.sectors(frames, row_lo, row_hi, col_lo, col_hi, owner)
    half_angle, half_range = int(half_angle), int(half_range)
    if half_angle < 0 or half_range < 0:
        raise ConfigError(f"{owner}: window half sizes must be >= 0, got ({half_angle}, {half_range})")
    return cuda_peak(search.prepared, frames, sectors, half_angle, half_range, threads_per_block)


def window_synthesis(v: np.ndarray, j_hat, window_cols: int) -> np.ndarray:
    """V's columns ``clip(j^ + m, 0, N_tau - 1)``, m = -n..n with ``n = window_cols``, per frame:
    (B, r, 2n+1) complex64 from V (r, N_tau) (the eq.-17 window's range columns; (B, r, 0) for n = 0)."""
    offsets = np.arange(-window_cols, window_cols + 1) if window_cols > 0 else np.arange(0)
    cols = np.clip(np.asarray(j_hat, dtype=np.int64)[:, None] + offsets, 0, v.shape[1] - 1)
    return np.ascontiguousarray(np.asarray(v, dtype=np.complex64)[:, cols].transpose(1, 0, 2))


def synthesise_columns(noise, delay, synth) -> tuple[np.ndarray, np.ndarray]:
    """``(noise S, delay S)`` per frame: range-projected factors (`FactoredFrames`)
    `noise` (B, K, r) and `delay` (B, r) on synthesis columns `synth` S (B, r, C), as
    complex64 (B, K, C) and (B, C) from complex64 BLAS products."""
    synth = np.asarray(synth, dtype=np.complex64)
    noise, delay = np.asarray(noise, dtype=np.complex64), np.asarray(delay, dtype=np.complex64)
    with one_blas_thread():  # a product per frame: many small ones (`blas_threads`)
        return np.matmul(noise, synth), np.matmul(delay[:, None, :], synth)[:, 0]
