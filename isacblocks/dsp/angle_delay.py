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
  accumulators in registers) that LLVM vectorises (`_map_kernels`); no BLAS call, so no
  BLAS thread pool competes with Numba's threads.
* Range-projected frames (Monte Carlo, training) go by default through `angle_delay_gemm`:
  BLAS products find the few blocks that can hold the maximum, the fused kernel's own code
  recomputes them, so the outputs are the fused kernel's bit for bit at fewer cycles.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..errors import ConfigError, ShapeError
from ..params import SystemParams
from ._map_kernels import _factored_kernel, _peak_kernel
from .angle_delay_gemm import gemm_peak_factored, gemm_peak_projected
from .angle_delay_lowrank import lowrank_peak
from .blas_threads import one_blas_thread
from .cache import LRUCache
from .canonical import canonical_svd
from .impairments import check_array, receiver_steering
from .steering import range_steering


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

    The singular vectors are canonical (`canonical.canonical_svd`): LAPACK's phases and
    rotations within the spectrum's plateau, which differ from one CPU (and BLAS thread
    count) to the next, do not reach G, so frames drawn in G's coordinates are the same on
    every CPU to rounding.  Frames projected on G and a receiver synthesising with V must
    share one factorisation: use `mbml.range_factors`.
    """
    with one_blas_thread():
        u, sigma, vh = np.linalg.svd(np.conj(np.asarray(phi_d)).astype(np.complex128), full_matrices=False)
    rank = max(1, int(np.count_nonzero(sigma > rtol * sigma[0])))
    u, vh = canonical_svd(u[:, :rank], sigma[:rank], vh[:rank])
    return u * sigma[:rank], sigma[:rank], vh


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
                     method: str | None = None) -> AngleDelayPeak:
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
    `method` for full frames (`PEAK_METHODS`): "fused" (the default: the Numba kernel of
    `_map_kernels`) or "lowrank" (`angle_delay_lowrank`: a low-rank factor of each sector's
    rows, fewer FLOPs where sectors repeat; the same outputs to float32 rounding).  For
    projected frames (`PROJECTED_METHODS`): "gemm" (the default: `angle_delay_gemm`, BLAS
    products to find the peak, the fused kernel's arithmetic to pin it: its outputs bit for
    bit) or "fused".  Non-finite frames always go to the fused kernel.

    Returns an `AngleDelayPeak`.  A frame containing NaN gets NaN statistic and window.
    """
    method = peak_method("angle_delay_peak", method, projected)
    Y_tilde = np.asarray(Y_tilde)
    search = peak_search("angle_delay_peak", Y_tilde.shape, angle_dict, range_dict, row_lo, row_hi, col_lo, col_hi,
                         half_angle, half_range, projected)
    angle_dict, range_dict, rows, cols = search.angle_dict, search.range_dict, search.rows, search.cols
    half_angle, half_range, n_frames = search.half_angle, search.half_range, Y_tilde.shape[0]

    # C-contiguous complex64; the fused kernel sees writeable float32 pairs (one specialisation for
    # all inputs), so a read-only batch (a flowgraph's input view) is copied only for that kernel.
    complex_frames = np.require(Y_tilde, np.complex64, ["C"])
    peak = _empty_peak(n_frames, half_angle, half_range)
    fused = np.ones(n_frames, dtype=bool)
    if method == "lowrank":
        fused = _lowrank_sectors(complex_frames, angle_dict, range_dict, rows, cols, half_angle, half_range, peak)
    elif method == "gemm":
        fused = ~np.isfinite(complex_frames.view(np.float32)).all(axis=(1, 2))
        finite = np.flatnonzero(~fused)
        if finite.size:
            _gemm_part(finite, n_frames, peak, lambda out: gemm_peak_projected(
                _take(complex_frames, finite, n_frames), *_search_dictionaries(angle_dict, range_dict),
                _take_search(search, finite, n_frames), out))
    if fused.all():
        writeable = np.require(complex_frames, requirements=["W"])
        _peak_kernel(writeable.view(np.float32), bool(projected), range_dict.project, angle_dict.re,
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


#: The ways `angle_delay_peak` computes the sector map of full frames (the first is the default) ...
PEAK_METHODS = ("fused", "lowrank")
#: ... and of range-projected (or factored) frames.
PROJECTED_METHODS = ("gemm", "fused")


def peak_method(owner: str, method, projected: bool) -> str:
    """`method` checked against the frames it is for; None is the frames' default."""
    methods, what = (PROJECTED_METHODS, "projected frames") if projected else (PEAK_METHODS, "full frames")
    if method is None:
        return methods[0]
    if method not in methods:
        raise ConfigError(f"{owner}: method = {method!r}: {what} take one of {', '.join(map(repr, methods))}")
    return method


def _search_dictionaries(angle_dict: AngleDictionary, range_dict: RangeDictionary):
    """``Phi_pert^H`` (N_theta, K) and V (r, N_tau) as complex64 for `angle_delay_gemm`: formed per
    call (a fraction of a millisecond), as a learner's dictionary changes at every step."""
    herm = (angle_dict.re + 1j * angle_dict.im).astype(np.complex64)
    rank = range_dict.rank
    v = np.ascontiguousarray((range_dict.synth_re[:, :rank] + 1j * range_dict.synth_im[:, :rank]).T,
                             dtype=np.complex64)
    return herm, v


def _take(array, index, n_frames: int):
    """`array` on the frames `index` (itself when that is every frame: no copy)."""
    return array if index.size == n_frames else np.ascontiguousarray(array[index])


def _take_search(search: PeakSearch, index, n_frames: int) -> PeakSearch:
    """`search` restricted to the frames `index`."""
    if index.size == n_frames:
        return search
    return PeakSearch(search.angle_dict, search.range_dict, tuple(v[index] for v in search.rows),
                      tuple(v[index] for v in search.cols), search.half_angle, search.half_range)


def _gemm_part(index, n_frames: int, peak: AngleDelayPeak, run) -> None:
    """``run(out)`` on the frames `index` of `peak`: in place when that is every frame."""
    if index.size == n_frames:
        run(peak)
        return
    part = _empty_peak(index.size, peak.window.shape[1] // 2, peak.window.shape[2] // 2)
    run(part)
    for whole, piece in zip(peak, part):
        whole[index] = piece


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
        herm, v = _search_dictionaries(angle_dict, range_dict)
        rank = range_dict.rank
        g = (range_dict.project[0:2 * rank:2, 0::2] - 1j * range_dict.project[0:2 * rank:2, 1::2]).T
        delay_conj = (g.astype(np.complex128) @ v.astype(np.complex128)).astype(np.complex64)
        return angle_dict, range_dict, herm, np.ascontiguousarray(g, dtype=np.complex64), v, delay_conj

    return _LOWRANK_DICTIONARIES.get((id(angle_dict), id(range_dict)), build)[2:]


def angle_delay_peak_factored(noise, steering, scale, delay, angle_dict, range_dict, row_lo, row_hi, col_lo=0,
                              col_hi=None, half_angle: int = 0, half_range: int = 0, window_cols: int = 0,
                              method: str | None = None) -> tuple[AngleDelayPeak, np.ndarray, np.ndarray]:
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
    complex64 (`synthesise_columns`, the same for both methods), so a learner forms the
    window's data ``g scale a (d V) + N V`` without touching the full frames.  Otherwise
    both are empty (B, K, 0) and (B, 0).
    `method`: "gemm" (the default) or "fused", as for projected frames in `angle_delay_peak`.
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
    method = peak_method("angle_delay_peak_factored", method, projected=True)
    parts = [np.require(v, np.complex64, ["C"]) for v in (noise, steering, scale, delay)]
    peak = _empty_peak(n_frames, search.half_angle, search.half_range)
    herm, v = _search_dictionaries(search.angle_dict, search.range_dict)

    def fused_kernel(noise, steering, scale, delay, search, out):
        rd, ad = search.range_dict, search.angle_dict
        _factored_kernel(noise.view(np.float32), steering.view(np.float32), scale.view(np.float32).reshape(-1, 2),
                         delay.view(np.float32), ad.re, ad.im, rd.synth_re, rd.synth_im, search.rows[0],
                         search.rows[1], search.cols[0], search.cols[1], search.half_angle, search.half_range, *out)

    def gemm_kernel(noise, steering, scale, delay, search, out):
        gemm_peak_factored(noise, steering, scale, delay, herm, v, search, out)

    by_gemm = np.full(n_frames, method == "gemm")  # finite frames only: the fused kernel defines NaN's outputs
    for part in parts if method == "gemm" else ():
        by_gemm &= np.isfinite(part.view(np.float32).reshape(n_frames, -1)).all(axis=1)
    for kernel, index in ((gemm_kernel, np.flatnonzero(by_gemm)), (fused_kernel, np.flatnonzero(~by_gemm))):
        _gemm_part(index, n_frames, peak, lambda out, index=index, kernel=kernel: kernel(
            *(_take(part, index, n_frames) for part in parts), _take_search(search, index, n_frames), out))
    noise_cols, delay_cols = synthesise_columns(parts[0], parts[3], window_synthesis(v, peak.j_hat, window_cols))
    statistic, i_hat, j_hat, window, valid = peak
    window[~valid] = np.nan
    return AngleDelayPeak(statistic, i_hat, j_hat, window, valid), noise_cols, delay_cols


def window_synthesis(v: np.ndarray, j_hat, window_cols: int) -> np.ndarray:
    """V's columns ``clip(j^ + m, 0, N_tau - 1)``, m = -n..n with ``n = window_cols``, per frame:
    (B, r, 2n+1) complex64 from V (r, N_tau) (the eq.-17 window's range columns; (B, r, 0) for n = 0)."""
    offsets = np.arange(-window_cols, window_cols + 1) if window_cols > 0 else np.arange(0)
    cols = np.clip(np.asarray(j_hat, dtype=np.int64)[:, None] + offsets, 0, v.shape[1] - 1)
    return np.ascontiguousarray(np.asarray(v, dtype=np.complex64)[:, cols].transpose(1, 0, 2))


def synthesise_columns(noise, delay, synth) -> tuple[np.ndarray, np.ndarray]:
    """``(noise S, delay S)`` per frame: range-projected factors (`angle_delay_peak_factored`)
    `noise` (B, K, r) and `delay` (B, r) on synthesis columns `synth` S (B, r, C), as
    complex64 (B, K, C) and (B, C) from complex64 BLAS products."""
    synth = np.asarray(synth, dtype=np.complex64)
    noise, delay = np.asarray(noise, dtype=np.complex64), np.asarray(delay, dtype=np.complex64)
    with one_blas_thread():  # a product per frame: many small ones (`blas_threads`)
        return np.matmul(noise, synth), np.matmul(delay[:, None, :], synth)[:, 0]


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
