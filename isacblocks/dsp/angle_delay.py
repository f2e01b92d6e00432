"""Angle-delay map kernel of the MB-ML receiver (paper eq. 15-17, Algorithm 1 steps 4-7).

``L = |Phi_pert(d)^H Y~ Phi_d^*|`` (eq. 15) is searched only on the rows (angles) and
columns (ranges) of each frame's prior sector; the arg-max (eq. 16) and the
``(2 delta_theta + 1) x (2 delta_R + 1)`` window around it (eq. 17) come out of the same
Numba pass, and the full ``N_theta x N_tau`` map is never formed.

Where the speed comes from:

* The delay dictionary over a range grid much shorter than the unambiguous range has a
  low numerical rank: for the paper's 256 x 200 grid, r = 62 singular values exceed 1e-10
  of the largest and the dropped ones are far below float32 resolution.
  `RangeDictionary` stores ``Phi_d^* = G V`` with G (S, r), V (r, N_tau), so every map
  row is ``(a^H (Y~ G)) V``: the same matrix to float32 precision at about half the work
  of ``Phi_pert^H (Y~ Phi_d^*)``.
* One Numba kernel does it all per frame (`prange` over frames): ``C = Y~ G``, then the
  sector rows four at a time, fused with ``|.|``, the running arg-max and the window.
  Complex64 arithmetic is written out as float32 dot products (real and imaginary parts,
  accumulators in registers) that LLVM vectorises; no BLAS call, so no BLAS thread pool
  competes with Numba's threads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numba as nb
import numpy as np
from threadpoolctl import threadpool_limits

from ..errors import ConfigError, ShapeError
from ..params import SystemParams
from .angle_delay_lowrank import lowrank_peak
from .cache import LRUCache
from .impairments import check_array, receiver_steering
from .steering import range_steering

# Vectorising the reductions needs re-association; NaN/inf semantics are kept.
_FASTMATH = {"reassoc", "contract", "nsz", "arcp"}


@dataclass(frozen=True)
class AngleDictionary:
    """``Phi_pert(d)^H`` (eq. 13, conjugate-transposed) as float32 parts, each (N_theta, K)."""

    re: np.ndarray
    im: np.ndarray

    def __post_init__(self) -> None:
        _freeze_fields(self, ("re", "im"))
        if self.re.ndim != 2 or self.re.shape != self.im.shape:
            raise ShapeError(f"AngleDictionary: re and im must be (N_theta, K) alike, got {self.re.shape} "
                             f"and {self.im.shape}")

    @classmethod
    def from_steering(cls, phi) -> AngleDictionary:
        """From the steering dictionary ``Phi_pert = [a(theta_1) ... a(theta_N)]``, shape (K, N_theta)."""
        phi = np.asarray(phi)
        if phi.ndim != 2:
            raise ShapeError(f"angle dictionary: expected shape (K, N_theta), got {phi.shape}")
        herm = phi.conj().T
        return cls(herm.real, herm.imag)

    @property
    def n_angles(self) -> int:
        return self.re.shape[0]

    @property
    def n_antennas(self) -> int:
        return self.re.shape[1]


def delay_factors(phi_d, rtol: float = 1e-10):
    """Truncated SVD ``Phi_d^* = G V`` in float64: ``G = U Sigma`` (S, r), ``Sigma`` (r,), ``V`` (r, N_tau),
    keeping the singular values above ``rtol`` times the largest.

    Computed on one BLAS thread: singular vectors are defined up to a phase each, and LAPACK
    picks other phases (and roundings) for other thread counts.  Frames projected on G and a
    receiver synthesising with V must share one factorisation: use `mbml.range_factors`.
    """
    with threadpool_limits(limits=1, user_api="blas"):
        u, sigma, vh = np.linalg.svd(np.conj(np.asarray(phi_d)).astype(np.complex128), full_matrices=False)
    rank = max(1, int(np.count_nonzero(sigma > rtol * sigma[0])))
    return u[:, :rank] * sigma[:rank], sigma[:rank], vh[:rank]


@dataclass(frozen=True)
class RangeDictionary:
    """``Phi_d^*`` (eq. 14, conjugated) factored as ``G V``, exact to float32 precision.

    G (S, r) is stored in real form as `project`, shape (2r', 2S): a frame row seen as
    float32 pairs ``(Re y_s, Im y_s)`` dotted with row 2q (row 2q+1) gives the real
    (imaginary) part of ``(y G)_q``.  V (r, N_tau) is stored transposed as `synth_re`,
    `synth_im`, each (N_tau, r').  ``r' >= r`` pads the rank with zeros to a multiple of 8
    so that every dot product fills the vector units; `rank` is r.
    """

    project: np.ndarray
    synth_re: np.ndarray
    synth_im: np.ndarray
    rank: int

    def __post_init__(self) -> None:
        _freeze_fields(self, ("project", "synth_re", "synth_im"))
        padded = self.synth_re.shape[1] if self.synth_re.ndim == 2 else -1
        if (self.project.ndim != 2 or self.project.shape[0] != 2 * padded or self.project.shape[1] % 2
                or self.synth_im.shape != self.synth_re.shape or not 0 < self.rank <= padded):
            raise ShapeError(f"RangeDictionary: expected project (2r', 2S), synth_re, synth_im (N_tau, r') and "
                             f"0 < rank <= r', got {self.project.shape}, {self.synth_re.shape}, "
                             f"{self.synth_im.shape}, rank {self.rank}")

    @classmethod
    def from_steering(cls, phi_d, rtol: float = 1e-10) -> RangeDictionary:
        """From ``Phi_d = [rho(tau_1) ... rho(tau_N)]``, shape (S, N_tau).

        Truncated SVD ``Phi_d^* = U Sigma V`` in float64, ``G = U Sigma``, keeping the
        singular values above ``rtol`` times the largest (the dropped part is below float32
        rounding).  `isacblocks.sim.montecarlo.ProjectedBasis` takes G from the same cached
        factorisation (`mbml.range_factors`), so its projected frames ``Y~ G`` fit
        ``angle_delay_peak(..., projected=True)``.
        """
        phi_d = np.asarray(phi_d)
        if phi_d.ndim != 2:
            raise ShapeError(f"range dictionary: expected shape (S, N_tau), got {phi_d.shape}")
        g, _, v = delay_factors(phi_d, rtol)
        return cls.from_factors(g, v)

    @classmethod
    def from_factors(cls, g, v) -> RangeDictionary:
        """From the factors ``Phi_d^* = G V``, G (S, r) and V (r, N_tau) (see `delay_factors`)."""
        rank = g.shape[1]
        padded = -(-rank // 8) * 8
        g = g.T  # (r, S)
        project = np.zeros((2 * padded, 2 * g.shape[1]))
        project[0:2 * rank:2, 0::2], project[0:2 * rank:2, 1::2] = g.real, -g.imag
        project[1:2 * rank:2, 0::2], project[1:2 * rank:2, 1::2] = g.imag, g.real
        synth = np.zeros((v.shape[1], padded), dtype=np.complex128)
        synth[:, :rank] = v.T
        return cls(project, synth.real, synth.imag, rank)

    @property
    def n_subcarriers(self) -> int:
        return self.project.shape[1] // 2

    @property
    def n_ranges(self) -> int:
        return self.synth_re.shape[0]


class AngleDelayPeak(NamedTuple):
    """Result of `angle_delay_peak` for B frames.

    statistic: (B,) float32, the map maximum inside the sector (eq. 16's value; the
        detection statistic of Algorithm 1 step 5).
    i_hat, j_hat: (B,) int64, its row (angle) and column (range) in the full map.
    window: (B, 2 delta_theta + 1, 2 delta_R + 1) float32, ``L[i_hat + n, j_hat + m]``
        for n, m in ``-delta..delta`` (eq. 17), NaN where the entry lies outside the map.
    valid: same shape, bool, False exactly where the window entry lies outside the map
        (row < 0 or >= N_theta, column < 0 or >= N_tau).  Entries outside the sector but
        inside the map are valid and computed.
    """

    statistic: np.ndarray
    i_hat: np.ndarray
    j_hat: np.ndarray
    window: np.ndarray
    valid: np.ndarray


@dataclass(frozen=True)
class PeakSearch:
    """The checked arguments of one sector-peak search (see `peak_search`)."""

    angle_dict: AngleDictionary
    range_dict: RangeDictionary
    rows: tuple  # (lo, hi) per frame, int64 arrays
    cols: tuple
    half_angle: int
    half_range: int


def peak_search(owner: str, frames_shape: tuple, angle_dict, range_dict, row_lo, row_hi, col_lo=0, col_hi=None,
                half_angle: int = 0, half_range: int = 0, projected: bool = False) -> PeakSearch:
    """Check the arguments of `angle_delay_peak` (and of its CUDA twin) for frames of
    `frames_shape`; dictionaries may be given as matrices.  Errors name `owner`."""
    if not isinstance(angle_dict, AngleDictionary):
        angle_dict = AngleDictionary.from_steering(angle_dict)
    if not isinstance(range_dict, RangeDictionary):
        range_dict = RangeDictionary.from_steering(range_dict)
    expected = (angle_dict.n_antennas, range_dict.rank if projected else range_dict.n_subcarriers)
    if len(frames_shape) != 3 or tuple(frames_shape[1:]) != expected:
        what = "projected frames C = Y~ G" if projected else "Y_tilde"
        raise ShapeError(f"{owner}: {what} must have shape (B, {expected[0]}, {expected[1]}), "
                         f"got {tuple(frames_shape)}")
    n_frames, n_theta, n_tau = frames_shape[0], angle_dict.n_angles, range_dict.n_ranges
    rows = _bounds(row_lo, row_hi, n_frames, n_theta, "row")
    cols = _bounds(col_lo, n_tau if col_hi is None else col_hi, n_frames, n_tau, "col")
    half_angle, half_range = int(half_angle), int(half_range)
    if half_angle < 0 or half_range < 0:
        raise ConfigError(f"{owner}: window half sizes must be >= 0, got ({half_angle}, {half_range})")
    return PeakSearch(angle_dict, range_dict, rows, cols, half_angle, half_range)


def angle_delay_peak(Y_tilde, angle_dict, range_dict, row_lo, row_hi, col_lo=0, col_hi=None,
                     half_angle: int = 0, half_range: int = 0, projected: bool = False,
                     method: str = "fused") -> AngleDelayPeak:
    """Sector peak, arg-max and window of ``L = |Phi_pert^H Y~ Phi_d^*|`` (eq. 15-17).

    `Y_tilde`: (B, K, S) frames after the reciprocal filter (eq. 7), cast to complex64.
    `angle_dict`: an `AngleDictionary` or the steering matrix ``Phi_pert`` (K, N_theta).
    `range_dict`: a `RangeDictionary` or the delay matrix ``Phi_d`` (S, N_tau).
    `row_lo, row_hi`, `col_lo, col_hi`: the searched sector as half-open index ranges
    ``[lo, hi)`` of map rows (angles) and columns (ranges); scalars or (B,) arrays, so
    that each frame may have its own sector.  `col_hi` defaults to N_tau.
    `half_angle`, `half_range`: delta_theta and delta_R of the window (eq. 12, 17).
    `projected`: `Y_tilde` is already range-projected, ``C = Y~ G`` (B, K, r), with the G
    of `range_dict` (Monte Carlo studies draw such frames directly).
    `method`: "fused" (the Numba kernel below) or "lowrank" (`angle_delay_lowrank`: full
    frames through a low-rank factor of each sector's rows, fewer FLOPs where sectors repeat;
    the same outputs to float32 rounding; projected and non-finite frames use the kernel).

    Returns an `AngleDelayPeak`.  A frame containing NaN gets NaN statistic and window.
    """
    if method not in PEAK_METHODS:
        raise ConfigError(f"angle_delay_peak: method = {method!r}: expected one of "
                          f"{', '.join(map(repr, PEAK_METHODS))}")
    Y_tilde = np.asarray(Y_tilde)
    search = peak_search("angle_delay_peak", Y_tilde.shape, angle_dict, range_dict, row_lo, row_hi, col_lo, col_hi,
                         half_angle, half_range, projected)
    angle_dict, range_dict, rows, cols = search.angle_dict, search.range_dict, search.rows, search.cols
    half_angle, half_range, n_frames = search.half_angle, search.half_range, Y_tilde.shape[0]

    # Writeable C-contiguous complex64 seen as float32 pairs: one kernel specialisation for all inputs.
    complex_frames = np.require(Y_tilde, np.complex64, ["C", "W"])
    peak = _empty_peak(n_frames, half_angle, half_range)
    fused = np.ones(n_frames, dtype=bool)
    if method == "lowrank" and not projected:
        fused = _lowrank_sectors(complex_frames, angle_dict, range_dict, rows, cols, half_angle, half_range, peak)
    if fused.all():
        _peak_kernel(complex_frames.view(np.float32), bool(projected), range_dict.project, angle_dict.re,
                     angle_dict.im, range_dict.synth_re, range_dict.synth_im, rows[0], rows[1], cols[0], cols[1],
                     half_angle, half_range, *peak)
    elif fused.any():
        index = np.flatnonzero(fused)
        part = _empty_peak(index.size, half_angle, half_range)
        _peak_kernel(np.ascontiguousarray(complex_frames[index]).view(np.float32), bool(projected),
                     range_dict.project, angle_dict.re, angle_dict.im, range_dict.synth_re, range_dict.synth_im,
                     rows[0][index], rows[1][index], cols[0][index], cols[1][index], half_angle, half_range, *part)
        for whole, piece in zip(peak, part):
            whole[index] = piece
    statistic, i_hat, j_hat, window, valid = peak
    window[~valid] = np.nan
    return AngleDelayPeak(statistic, i_hat, j_hat, window, valid)


#: The ways `angle_delay_peak` computes the sector map.
PEAK_METHODS = ("fused", "lowrank")


def _lowrank_sectors(frames, angle_dict: AngleDictionary, range_dict: RangeDictionary, rows, cols, half_angle: int,
                     half_range: int, peak: AngleDelayPeak) -> np.ndarray:
    """`angle_delay_lowrank.lowrank_peak` on the finite frames, one call per sector, into `peak`;
    returns the mask of the frames left for the fused kernel (those holding NaN or Inf)."""
    finite = np.isfinite(frames.view(np.float32)).all(axis=(1, 2))
    herm, g, v, delay_conj = _lowrank_dictionaries(angle_dict, range_dict)
    _, inverse = np.unique(rows[0] * (angle_dict.n_angles + 1) + rows[1], return_inverse=True)
    inverse = inverse.ravel()
    for group in np.unique(inverse[finite]):
        index = np.flatnonzero((inverse == group) & finite)
        part = _empty_peak(index.size, half_angle, half_range)
        lowrank_peak(frames if index.size == frames.shape[0] else frames[index], herm, id(angle_dict), g, v,
                     delay_conj, int(rows[0][index[0]]),
                     int(rows[1][index[0]]), cols[0][index], cols[1][index], half_angle, half_range, part)
        for whole, piece in zip(peak, part):
            whole[index] = piece
    return ~finite


_LOWRANK_DICTIONARIES = LRUCache(8)


def _lowrank_dictionaries(angle_dict: AngleDictionary, range_dict: RangeDictionary):
    """``Phi_pert^H`` (N_theta, K), G (S, r), V (r, N_tau) and ``Phi_d^* = G V`` (S, N_tau), complex64,
    from the prepared dictionaries (cached per pair; each entry keeps its dictionaries alive, so
    their ids are not reused while cached)."""

    def build():
        herm = (angle_dict.re + 1j * angle_dict.im).astype(np.complex64)
        rank = range_dict.rank
        g = (range_dict.project[0:2 * rank:2, 0::2] - 1j * range_dict.project[0:2 * rank:2, 1::2]).T
        v = (range_dict.synth_re[:, :rank] + 1j * range_dict.synth_im[:, :rank]).T
        delay_conj = (g.astype(np.complex128) @ v.astype(np.complex128)).astype(np.complex64)
        return (angle_dict, range_dict, herm, np.ascontiguousarray(g, dtype=np.complex64),
                np.ascontiguousarray(v, dtype=np.complex64), delay_conj)

    return _LOWRANK_DICTIONARIES.get((id(angle_dict), id(range_dict)), build)[2:]


def angle_delay_peak_factored(noise, steering, scale, delay, angle_dict, range_dict, row_lo, row_hi, col_lo=0,
                              col_hi=None, half_angle: int = 0, half_range: int = 0,
                              window_cols: int = 0) -> tuple[AngleDelayPeak, np.ndarray, np.ndarray]:
    """`angle_delay_peak` on range-projected frames given by their factors, ``C = scale a d^T + N``.

    The frames ``C[b] = scale[b] steering[b] delay[b]^T + noise[b]`` (each (K, r)) are never
    formed outside the kernel: `noise` (B, K, r) complex64, `steering` (B, K) complex64,
    `scale` (B,) complex64, `delay` (B, r) complex64 (the Monte Carlo frames of
    `isacblocks.sim`, rank-one echo plus noise).  ``C`` is built with complex64 arithmetic
    in the same order as ``steering * scale`` then ``* delay`` then ``+ noise``, so the
    peak equals `angle_delay_peak(C, ..., projected=True)`'s.

    With ``window_cols = n > 0`` it also returns the range-synthesised factors on the
    ``2 n + 1`` columns ``clip(j^ + m, 0, N_tau - 1)``, m = -n..n (the columns of the
    eq.-17 window): ``noise V[:, cols]`` (B, K, 2n+1) and ``delay V[:, cols]`` (B, 2n+1),
    complex64, so a learner forms the window's data ``g scale a (d V) + N V`` without
    touching the full frames.  Otherwise both are empty (B, K, 0) and (B, 0).
    """
    noise = np.asarray(noise)
    search = peak_search("angle_delay_peak_factored", noise.shape, angle_dict, range_dict, row_lo, row_hi, col_lo,
                         col_hi, half_angle, half_range, projected=True)
    n_frames, n_ant, rank = noise.shape
    for name, value, shape in (("steering", steering, (n_frames, n_ant)), ("scale", scale, (n_frames,)),
                               ("delay", delay, (n_frames, rank))):
        if np.shape(value) != shape:
            raise ShapeError(f"angle_delay_peak_factored: {name} must have shape {shape}, got {np.shape(value)}")
    window_cols = int(window_cols)
    if window_cols < 0:
        raise ConfigError(f"angle_delay_peak_factored: window_cols must be >= 0, got {window_cols}")
    as_pairs = [np.require(v, np.complex64, ["C"]).view(np.float32) for v in (noise, steering, delay)]
    scale = np.require(scale, np.complex64, ["C"]).view(np.float32).reshape(n_frames, 2)
    statistic, i_hat, j_hat, window, valid = _empty_peak(n_frames, search.half_angle, search.half_range)
    n_cols = 2 * window_cols + 1 if window_cols else 0
    noise_cols = np.empty((n_frames, n_ant, n_cols), dtype=np.complex64)
    delay_cols = np.empty((n_frames, n_cols), dtype=np.complex64)
    rd, ad = search.range_dict, search.angle_dict
    _factored_kernel(as_pairs[0], as_pairs[1], scale, as_pairs[2], ad.re, ad.im, rd.synth_re, rd.synth_im,
                     search.rows[0], search.rows[1], search.cols[0], search.cols[1], search.half_angle,
                     search.half_range, window_cols, statistic, i_hat, j_hat, window, valid,
                     noise_cols.view(np.float32), delay_cols.view(np.float32))
    window[~valid] = np.nan
    return AngleDelayPeak(statistic, i_hat, j_hat, window, valid), noise_cols, delay_cols


def angle_delay_map_dense(Y_tilde, spacing, params: SystemParams) -> np.ndarray:
    """The full map ``|Phi_pert(d)^H Y~ Phi_d^*|`` (eq. 15), (B, N_theta, N_tau) float32.

    Dense numpy reference on the `params` grids (complex64 matrix products), for tests
    and benchmarks: it does all N_theta x N_tau entries of every frame.
    """
    Y_tilde = np.asarray(Y_tilde, dtype=np.complex64)
    expected = (params.n_antennas, params.n_subcarriers)
    if Y_tilde.ndim != 3 or Y_tilde.shape[1:] != expected:
        raise ShapeError(f"angle_delay_map_dense: Y_tilde must have shape (B, {expected[0]}, {expected[1]}), "
                         f"got {Y_tilde.shape}")
    spacing = check_array(spacing, params.n_antennas, "angle_delay_map_dense: spacing")
    angle_h = receiver_steering(params.angle_grid, spacing, params.wavelength).conj().T.astype(np.complex64)
    range_c = range_steering(params.range_grid, params).conj().astype(np.complex64)
    return np.abs(angle_h @ (Y_tilde @ range_c))


def _empty_peak(n_frames: int, half_angle: int, half_range: int) -> AngleDelayPeak:
    """Uninitialised outputs of a peak search over `n_frames` frames, for a kernel to fill."""
    shape = (n_frames, 2 * half_angle + 1, 2 * half_range + 1)
    return AngleDelayPeak(np.empty(n_frames, dtype=np.float32), np.empty(n_frames, dtype=np.int64),
                          np.empty(n_frames, dtype=np.int64), np.empty(shape, dtype=np.float32),
                          np.empty(shape, dtype=np.bool_))


def _freeze_fields(obj, names) -> None:
    """Store the fields as read-only C-contiguous float32 arrays (one kernel type for all)."""
    for name in names:
        array = np.array(getattr(obj, name), dtype=np.float32, order="C")
        array.setflags(write=False)
        object.__setattr__(obj, name, array)


def _bounds(lo, hi, n_frames: int, size: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame half-open index bounds ``[lo, hi)`` within ``[0, size]``, as (B,) int64."""
    out = []
    for value, which in ((lo, "lo"), (hi, "hi")):
        value = np.asarray(value)
        if value.ndim == 0:
            value = np.full(n_frames, value)
        if value.shape != (n_frames,):
            raise ShapeError(f"angle_delay_peak: {name}_{which} must be a scalar or shape ({n_frames},), "
                             f"got {value.shape}")
        if not np.issubdtype(value.dtype, np.integer):
            raise ShapeError(f"angle_delay_peak: {name}_{which} must be integer indices, got {value.dtype}")
        out.append(np.array(value, dtype=np.int64))
    lo, hi = out
    bad = np.flatnonzero((lo < 0) | (hi > size) | (lo >= hi))
    if bad.size:
        b = bad[0]
        raise ConfigError(f"angle_delay_peak: frame {b} has an empty or out-of-range {name} sector "
                          f"[{lo[b]}, {hi[b]}); needs 0 <= lo < hi <= {size}")
    return lo, hi


@nb.njit(nogil=True, cache=True, fastmath=_FASTMATH)
def _dot4(a_re, a_im, row0, row_end, x_re, x_im, col):
    """``sum_l a[row0 + m, l] x[col, l]`` for m = 0..3: four complex64 dot products.

    Rows at or past `row_end` repeat the last row (the caller ignores them).  Returns the
    eight float32 sums ``(re_0, im_0, ..., re_3, im_3)``.
    """
    r0 = row0
    r1 = min(row0 + 1, row_end - 1)
    r2 = min(row0 + 2, row_end - 1)
    r3 = min(row0 + 3, row_end - 1)
    s0r = s0i = s1r = s1i = s2r = s2i = s3r = s3i = np.float32(0.0)
    for l in range(x_re.shape[1]):
        xr = x_re[col, l]
        xi = x_im[col, l]
        s0r += a_re[r0, l] * xr - a_im[r0, l] * xi
        s0i += a_re[r0, l] * xi + a_im[r0, l] * xr
        s1r += a_re[r1, l] * xr - a_im[r1, l] * xi
        s1i += a_re[r1, l] * xi + a_im[r1, l] * xr
        s2r += a_re[r2, l] * xr - a_im[r2, l] * xi
        s2i += a_re[r2, l] * xi + a_im[r2, l] * xr
        s3r += a_re[r3, l] * xr - a_im[r3, l] * xi
        s3i += a_re[r3, l] * xi + a_im[r3, l] * xr
    return s0r, s0i, s1r, s1i, s2r, s2i, s3r, s3i


@nb.njit(nogil=True, cache=True, fastmath=_FASTMATH)
def _project_range(yf, p, ct):
    """``C = Y~ G`` for one frame, two antennas by two columns at a time.

    `yf` (K, 2S) is the frame as float32 pairs, `p` the real form of G (2r', 2S); the
    result goes to ``ct[0] + j ct[1]`` = C^T, each (r', K).
    """
    n_ant = yf.shape[0]
    rank = p.shape[0] // 2
    for k0 in range(0, n_ant, 2):
        k1 = min(k0 + 1, n_ant - 1)
        for q0 in range(0, rank, 2):
            q1 = min(q0 + 1, rank - 1)
            s00 = s01 = s02 = s03 = s10 = s11 = s12 = s13 = np.float32(0.0)
            for t in range(yf.shape[1]):
                y0 = yf[k0, t]
                y1 = yf[k1, t]
                p0 = p[2 * q0, t]
                p1 = p[2 * q0 + 1, t]
                p2 = p[2 * q1, t]
                p3 = p[2 * q1 + 1, t]
                s00 += y0 * p0
                s01 += y0 * p1
                s02 += y0 * p2
                s03 += y0 * p3
                s10 += y1 * p0
                s11 += y1 * p1
                s12 += y1 * p2
                s13 += y1 * p3
            ct[0, q0, k0], ct[1, q0, k0], ct[0, q1, k0], ct[1, q1, k0] = s00, s01, s02, s03
            ct[0, q0, k1], ct[1, q0, k1], ct[0, q1, k1], ct[1, q1, k1] = s10, s11, s12, s13


@nb.njit(nogil=True, cache=True, fastmath=_FASTMATH)
def _map_rows(ct, ah_re, ah_im, vt_re, vt_im, row0, row_end, c0, c1, w_re, w_im, out):
    """``|L|^2`` (eq. 15) of rows ``row0 + m < row_end`` (m = 0..3), columns ``[c0, c1)``, into ``out[m, :c1-c0]``.

    ``w = Phi_pert[:, rows]^H C`` (4, r), then ``w V`` column by column.
    """
    for q in range(ct.shape[1]):
        s = _dot4(ah_re, ah_im, row0, row_end, ct[0], ct[1], q)
        for m in range(4):
            w_re[m, q] = s[2 * m]
            w_im[m, q] = s[2 * m + 1]
    for j in range(c1 - c0):
        s = _dot4(w_re, w_im, 0, 4, vt_re, vt_im, c0 + j)
        for m in range(4):
            out[m, j] = s[2 * m] * s[2 * m] + s[2 * m + 1] * s[2 * m + 1]


@nb.njit(nogil=True, cache=True, fastmath=_FASTMATH)
def _frame_peak(ct, ah_re, ah_im, vt_re, vt_im, row_lo, row_hi, col_lo, col_hi, half_angle, half_range,
                window, valid):
    """One frame given ``C^T`` (2, r, K): map on the sector (eq. 15), arg-max (eq. 16) and
    window (eq. 17); returns ``(max, i^, j^)``."""
    rank = ct.shape[1]
    n_theta, n_tau = ah_re.shape[0], vt_re.shape[0]
    w_re = np.empty((4, rank), dtype=np.float32)
    w_im = np.empty((4, rank), dtype=np.float32)
    out = np.empty((4, n_tau), dtype=np.float32)
    best = np.float32(-1.0)
    bi, bj = row_lo, col_lo
    for row0 in range(row_lo, row_hi, 4):
        _map_rows(ct, ah_re, ah_im, vt_re, vt_im, row0, row_hi, col_lo, col_hi, w_re, w_im, out)
        for m in range(min(4, row_hi - row0)):
            for j in range(col_hi - col_lo):
                if out[m, j] > best:
                    best = out[m, j]
                    bi = row0 + m
                    bj = col_lo + j
    # NaN never compares greater: best stays -1 exactly when the sector is all NaN.
    peak = np.sqrt(best) if best >= 0 else np.float32(np.nan)
    # The window, clipped to the map; entries outside it stay invalid.
    for n in range(window.shape[0]):
        for m in range(window.shape[1]):
            window[n, m] = 0.0
            valid[n, m] = False
    r0, r1 = max(bi - half_angle, 0), min(bi + half_angle + 1, n_theta)
    c0, c1 = max(bj - half_range, 0), min(bj + half_range + 1, n_tau)
    for row0 in range(r0, r1, 4):
        _map_rows(ct, ah_re, ah_im, vt_re, vt_im, row0, r1, c0, c1, w_re, w_im, out)
        for m in range(min(4, r1 - row0)):
            for j in range(c1 - c0):
                n, k = row0 + m - bi + half_angle, c0 + j - bj + half_range
                window[n, k] = np.sqrt(out[m, j])
                valid[n, k] = True
    return peak, bi, bj


@nb.njit(parallel=True, nogil=True, cache=True)
def _peak_kernel(frames, projected, p, ah_re, ah_im, vt_re, vt_im, row_lo, row_hi, col_lo, col_hi,
                 half_angle, half_range, statistic, i_hat, j_hat, window, valid):
    """`_frame_peak` on every frame, frames spread over Numba's threads.

    `frames` (B, K, 2S) are frames as float32 pairs, or with `projected` the range-projected
    frames ``C`` (B, K, 2r); C^T is zero-padded to r' rows.
    """
    n_ant, padded = frames.shape[1], vt_re.shape[1]
    for b in nb.prange(frames.shape[0]):
        ct = np.zeros((2, padded, n_ant), dtype=np.float32)
        if projected:
            for k in range(n_ant):
                for q in range(frames.shape[2] // 2):
                    ct[0, q, k] = frames[b, k, 2 * q]
                    ct[1, q, k] = frames[b, k, 2 * q + 1]
        else:
            _project_range(frames[b], p, ct)
        statistic[b], i_hat[b], j_hat[b] = _frame_peak(
            ct, ah_re, ah_im, vt_re, vt_im, row_lo[b], row_hi[b], col_lo[b], col_hi[b],
            half_angle, half_range, window[b], valid[b])


@nb.njit(nogil=True, cache=True)
def _cmul64(ar, ai, br, bi):
    """complex64 ``a * b`` rounded as numpy's SIMD loop rounds it: ``re = fma(ar, br, -(ai bi))``,
    ``im = fma(ar, bi, ai br)`` (the exact float32 product ``ar br`` is formed in float64)."""
    p_re = np.float64(np.float32(ai * bi))
    p_im = np.float64(np.float32(ai * br))
    return (np.float32(np.float64(ar) * np.float64(br) - p_re),
            np.float32(np.float64(ar) * np.float64(bi) + p_im))


@nb.njit(nogil=True, cache=True)
def _factored_frame(noise, steering, scale, delay, ct):
    """``C^T = (a scale d^T + N)^T`` of one frame into `ct` (2, r', K), rounded as numpy's
    complex64 ``(steering * scale) * delay + noise`` is (see `_cmul64`)."""
    for k in range(noise.shape[0]):
        ar, ai = _cmul64(steering[2 * k], steering[2 * k + 1], scale[0], scale[1])
        for q in range(noise.shape[1] // 2):
            cr, ci = _cmul64(ar, ai, delay[2 * q], delay[2 * q + 1])
            ct[0, q, k] = cr + noise[k, 2 * q]
            ct[1, q, k] = ci + noise[k, 2 * q + 1]


@nb.njit(nogil=True, cache=True, fastmath=_FASTMATH)
def _synth_columns(x, vt_re, vt_im, first, n_tau, out):
    """``x V[:, clip(first + m)]`` for m = 0..n-1: `x` (2r,) float32 pairs, `out` (2n,) float32 pairs."""
    rank = x.shape[0] // 2
    for m in range(out.shape[0] // 2):
        j = min(max(first + m, 0), n_tau - 1)
        re = np.float32(0.0)
        im = np.float32(0.0)
        for q in range(rank):
            xr, xi = x[2 * q], x[2 * q + 1]
            re += xr * vt_re[j, q] - xi * vt_im[j, q]
            im += xr * vt_im[j, q] + xi * vt_re[j, q]
        out[2 * m] = re
        out[2 * m + 1] = im


@nb.njit(parallel=True, nogil=True, cache=True)
def _factored_kernel(noise, steering, scale, delay, ah_re, ah_im, vt_re, vt_im, row_lo, row_hi, col_lo, col_hi,
                     half_angle, half_range, window_cols, statistic, i_hat, j_hat, window, valid, noise_cols,
                     delay_cols):
    """`_frame_peak` on every factored frame (see `angle_delay_peak_factored`), plus the
    range-synthesised factors on the window's columns."""
    n_ant, padded, n_tau = noise.shape[1], vt_re.shape[1], vt_re.shape[0]
    for b in nb.prange(noise.shape[0]):
        ct = np.zeros((2, padded, n_ant), dtype=np.float32)
        _factored_frame(noise[b], steering[b], scale[b], delay[b], ct)
        statistic[b], i_hat[b], j_hat[b] = _frame_peak(
            ct, ah_re, ah_im, vt_re, vt_im, row_lo[b], row_hi[b], col_lo[b], col_hi[b],
            half_angle, half_range, window[b], valid[b])
        if window_cols > 0:
            first = j_hat[b] - window_cols
            for k in range(n_ant):
                _synth_columns(noise[b, k], vt_re, vt_im, first, n_tau, noise_cols[b, k])
            _synth_columns(delay[b], vt_re, vt_im, first, n_tau, delay_cols[b])
