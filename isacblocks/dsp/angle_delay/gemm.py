"""The sector peak of range-projected frames: BLAS products to find it, the fused kernel's own
arithmetic to pin it (eq. 15-17).

The fused kernel (`kernels_numba`) spends three quarters of its work on projected frames in
the range stage ``w V`` (R sector rows x r x N_tau), written as float32 dot products that
reach a fraction of the matrix-product roof.  Here the map is found in two passes:

1. **Search** (BLAS, complex64): per frame ``W = Phi_pert[:, rows]^H C`` (R x r_s), then one
   product ``[W_1; W_2; ...] V`` for a block of frames, on the leading r_s of the r range
   columns (53 of 62 on the paper's grid; the rest is bounded per frame, `search_blocks`).
   Each row's maximum of ``|L|^2`` over the sector's columns is compared with the frame's
   maximum: the rows within `SEARCH_MARGIN` of it are the candidates.
2. **Pin** (Numba): the four-row blocks holding a candidate are recomputed by the fused
   kernel's own per-block code, scanned in the same order, and the window (eq. 17) is
   computed as the fused kernel computes it.

Both passes compute the same matrix in float32 with other summation orders and the search
leaves out columns of norm below 1e-5 of the largest, so their values differ by a few 1e-6
of the frame's maximum, far inside the 1 % margin (a frame whose bound on the left-out
part is larger is pinned whole).  A row outside the candidates therefore holds no entry that reaches the maximum,
and the statistic, arg-max and window are the fused kernel's bit for bit
(`tests/dsp/test_angle_delay_gemm.py`); the default method of projected and factored frames
(`backends`).
Frames with NaN or Inf go to the fused kernel.  The frames' outputs do not depend on their
batch: every product is per frame or per row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np

from ..blas_threads import map_blocks
from .kernels_numba import _FASTMATH, _factored_frames, _frame_window, _scan_block

#: Rows whose maximum of ``|L|^2`` is within this share of the frame's maximum are recomputed.
SEARCH_MARGIN = 1e-2
#: Frames per block of the search products (keeps a block's map, about 1.5 MB, in cache).
CHUNK_FRAMES = 16
#: The search uses the range factor's leading columns, down to this share of the largest column
#: norm (G = U Sigma: its columns' norms are the singular values of the range dictionary).
SEARCH_RANK_RTOL = 1e-5
#: A frame whose truncation bound exceeds this share of its largest |L| is scanned whole by the pin.
SEARCH_TRUNCATION_TOL = 1e-3


@dataclass(frozen=True)
class SearchSynthesis:
    """V (r, N_tau) prepared for `search_blocks`: the leading `rank` rows as ``Re V``, ``Im V`` and
    ``Re V + Im V`` float32 (Gauss's three real products), and `tail`, the largest column norm of
    the rows left out, ``max_j ||V[rank:, j]||``."""

    re: np.ndarray
    im: np.ndarray
    total: np.ndarray
    rank: int
    tail: float


def search_synthesis(v: np.ndarray, column_norms=None) -> SearchSynthesis:
    """`SearchSynthesis` of V (r, N_tau) for frames ``C = Y~ G`` whose columns have the norms
    `column_norms` (r,) (G's singular values; None: the search keeps every row)."""
    rank = v.shape[0]
    if column_norms is not None:
        column_norms = np.asarray(column_norms, dtype=np.float64)
        rank = max(int(np.count_nonzero(column_norms >= SEARCH_RANK_RTOL * column_norms.max())), 1)
    head = v[:rank]
    re, im = np.ascontiguousarray(head.real, dtype=np.float32), np.ascontiguousarray(head.imag, dtype=np.float32)
    tail = float(np.linalg.norm(np.asarray(v[rank:], dtype=np.complex128), axis=0).max()) if rank < v.shape[0] else 0.0
    return SearchSynthesis(re, im, re + im, rank, tail)


def search_blocks(frames: np.ndarray, herm: np.ndarray, synthesis: SearchSynthesis, row_lo, row_hi, col_lo,
                  col_hi, herm_norm: float | None = None):
    """Pass 1 on `frames` ``C`` (b, K, r) complex64: the parts of the map to pin, per frame.

    `herm` is ``Phi_pert^H`` (N_theta, K) complex64 and `herm_norm` its largest row norm
    (`row_norm`; None: computed here), `synthesis` is `search_synthesis` of V (r, N_tau);
    bounds (b,).  The search runs on the leading ``r_s = synthesis.rank`` columns of
    C: ``W = Phi_pert[:, rows]^H C[:, :r_s]``, then ``W V[:r_s]`` from three real products
    (Gauss's trick: 3/4 of the complex product's work; its rounding is of the same order, far
    inside the margin).  The columns left out change an entry of the map by at most
    ``max_i ||Phi_pert[:, i]|| ||C[:, r_s:]||_F max_j ||V[r_s:, j]||``; a frame where that exceeds
    `SEARCH_TRUNCATION_TOL` of its largest entry is pinned whole, so the margin still covers
    the search's error (below 0.4 % of the maximum's power, plus rounding).
    Returns ``(blocks, counts)``: ``blocks[f, :counts[f]]`` rows ``(first row, first column,
    end column)`` of frame f's candidate four-row blocks, ascending; a block's first row is
    ``row_lo + 4 k`` (the fused kernel's blocks) and its columns span its candidates'.
    """
    rank = synthesis.rank
    counts = row_hi - row_lo
    offsets = np.zeros(counts.size + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    w = np.empty((offsets[-1], rank), dtype=np.complex64)
    for f in range(frames.shape[0]):
        np.matmul(herm[row_lo[f]:row_hi[f]], frames[f, :, :rank], out=w[offsets[f]:offsets[f + 1]])
    w_re, w_im = np.ascontiguousarray(w.real), np.ascontiguousarray(w.imag)
    # Re(W V) = t1 - t2, Im(W V) = t3 - t1 - t2 over the sector rows of every frame in the block
    t1, t2, t3 = w_re @ synthesis.re, w_im @ synthesis.im, (w_re + w_im) @ synthesis.total
    power = _power(t1, t2, t3)
    if (col_lo == col_lo[0]).all() and (col_hi == col_hi[0]).all():
        row_max = power[:, col_lo[0]:col_hi[0]].max(axis=1)  # NaN if a row holds one
    else:
        row_max = np.concatenate([power[offsets[f]:offsets[f + 1], col_lo[f]:col_hi[f]].max(axis=1)
                                  for f in range(counts.size)])
    truncation = np.zeros(counts.size)
    if synthesis.tail > 0:
        left_out = np.ascontiguousarray(frames[:, :, rank:]).reshape(counts.size, -1)
        herm_norm = row_norm(herm) if herm_norm is None else herm_norm
        truncation = herm_norm * np.linalg.norm(left_out.astype(np.complex128), axis=1) * synthesis.tail
    blocks = np.empty((counts.size, -(-int(counts.max()) // 4), 3), dtype=np.int64)
    n_blocks = np.empty(counts.size, dtype=np.int64)
    _candidate_blocks(power, row_max, offsets, row_lo, col_lo, col_hi, np.float32(SEARCH_MARGIN), truncation,
                      SEARCH_TRUNCATION_TOL, blocks, n_blocks)
    return blocks, n_blocks


@nb.njit(nogil=True, cache=True, fastmath=_FASTMATH)
def _power(t1, t2, t3):
    """``|L|^2 = (t1 - t2)^2 + (t3 - t1 - t2)^2`` entry by entry (Gauss's three products)."""
    out = np.empty(t1.shape, dtype=np.float32)
    for i in range(t1.shape[0]):
        for j in range(t1.shape[1]):
            re = t1[i, j] - t2[i, j]
            im = t3[i, j] - t1[i, j] - t2[i, j]
            out[i, j] = re * re + im * im
    return out


@nb.njit(nogil=True, cache=True)
def _candidate_blocks(power, row_max, offsets, row_lo, col_lo, col_hi, margin, truncation, tolerance, blocks,
                      n_blocks):
    """Per frame: the four-row blocks holding the entries of `power` (sum R, N_tau) on
    ``[col_lo, col_hi)`` within `margin` of the frame's maximum, with the span of those entries'
    columns; every block and column when a row maximum (`row_max`) is not finite (the fused
    scan decides then) or when the frame's truncation bound (`truncation`, on |L|) exceeds
    `tolerance` of its largest |L|."""
    for f in range(offsets.size - 1):
        c0, c1 = col_lo[f], col_hi[f]
        top = np.float32(-1.0)
        everything = False
        for r in range(offsets[f], offsets[f + 1]):
            everything |= not (row_max[r] < np.inf)
            top = max(top, row_max[r])
        everything |= not (truncation[f] * truncation[f] <= tolerance * tolerance * np.float64(top))
        floor = top * (np.float32(1.0) - margin)
        count = 0
        for r in range(offsets[f], offsets[f + 1]):
            if not (everything or row_max[r] >= floor):
                continue
            first, end = c1, c0
            for j in range(c0, c1):
                if everything or power[r, j] >= floor:
                    first, end = min(first, j), max(end, j + 1)
            start = row_lo[f] + ((r - offsets[f]) // 4) * 4
            if count == 0 or blocks[f, count - 1, 0] != start:
                blocks[f, count, 0], blocks[f, count, 1], blocks[f, count, 2] = start, first, end
                count += 1
            else:
                blocks[f, count - 1, 1] = min(blocks[f, count - 1, 1], first)
                blocks[f, count - 1, 2] = max(blocks[f, count - 1, 2], end)
        n_blocks[f] = count


@nb.njit(nogil=True, cache=True, fastmath=_FASTMATH)
def _pin_frame(ct, ah_re, ah_im, vt_re, vt_im, row_lo, row_hi, col_lo, col_hi, blocks, n_blocks, half_angle,
               half_range, window, valid):
    """Pass 2 for one frame given ``C^T`` (2, r', K): the fused kernel's scan of the candidate
    blocks on their columns only, then its window; returns ``(max, i^, j^)`` as
    `kernels_numba._frame_peak`.  A 1 x 1 window is the peak's own entry."""
    rank, n_tau = ct.shape[1], vt_re.shape[0]
    w_re = np.empty((4, rank), dtype=np.float32)
    w_im = np.empty((4, rank), dtype=np.float32)
    out = np.empty((4, n_tau), dtype=np.float32)
    best = np.float32(-1.0)
    bi, bj = row_lo, col_lo
    for s in range(n_blocks):
        best, bi, bj = _scan_block(ct, ah_re, ah_im, vt_re, vt_im, blocks[s, 0], row_hi, blocks[s, 1], blocks[s, 2],
                                   w_re, w_im, out, best, bi, bj)
    if half_angle == 0 and half_range == 0 and best >= 0:
        peak = np.sqrt(best)
        window[0, 0] = peak
        valid[0, 0] = True
    else:
        peak = _frame_window(ct, ah_re, ah_im, vt_re, vt_im, best, bi, bj, half_angle, half_range, w_re, w_im, out,
                             window, valid)
    return peak, bi, bj


@nb.njit(nogil=True, cache=True)
def _pin_projected(frames, ah_re, ah_im, vt_re, vt_im, row_lo, row_hi, col_lo, col_hi, blocks, n_blocks,
                   half_angle, half_range, statistic, i_hat, j_hat, window, valid):
    """`_pin_frame` on projected frames ``C`` (b, K, 2r) float32 pairs, C^T zero-padded to r' rows
    as `kernels_numba._peak_kernel` pads it."""
    n_ant, padded = frames.shape[1], vt_re.shape[1]
    for b in range(frames.shape[0]):
        ct = np.zeros((2, padded, n_ant), dtype=np.float32)
        for k in range(n_ant):
            for q in range(frames.shape[2] // 2):
                ct[0, q, k] = frames[b, k, 2 * q]
                ct[1, q, k] = frames[b, k, 2 * q + 1]
        statistic[b], i_hat[b], j_hat[b] = _pin_frame(
            ct, ah_re, ah_im, vt_re, vt_im, row_lo[b], row_hi[b], col_lo[b], col_hi[b], blocks[b], n_blocks[b],
            half_angle, half_range, window[b], valid[b])


def row_norm(herm: np.ndarray) -> float:
    """The largest row norm of ``Phi_pert^H`` (N_theta, K), in float64."""
    return float(np.sqrt(np.max(np.sum(np.abs(herm.astype(np.complex128)) ** 2, axis=1))))


def range_column_norms(range_dict) -> np.ndarray:
    """The norms of G's columns (its singular values) from a `RangeDictionary`'s real form."""
    return np.linalg.norm(range_dict.project[0:2 * range_dict.rank:2], axis=1)


def search_matrices(search):
    """``(Phi_pert^H, SearchSynthesis, largest row norm)`` of a `search.PreparedSearch`'s dictionaries,
    kept on it until the search is recreated."""

    def build():
        herm, v = search.angle_dict.herm(), search.range_dict.synthesis()
        return herm, search_synthesis(v, range_column_norms(search.range_dict)), row_norm(herm)

    return search.derived("gemm", build)


def gemm_peak_projected(search, frames, sectors, half_angle: int, half_range: int, out) -> None:
    """Statistic, arg-max and window of finite projected frames ``C`` (B, K, r) complex64 into
    ``out = (statistic, i_hat, j_hat, window, valid)``, for the `search.PreparedSearch` `search` and
    the `grid.Sectors` `sectors`."""
    ad, rd, (row_lo, row_hi), (col_lo, col_hi) = search.angle_dict, search.range_dict, sectors.rows, sectors.cols
    herm, synthesis, herm_norm = search_matrices(search)
    pairs = frames.view(np.float32)

    def block(start: int) -> None:
        part = slice(start, start + CHUNK_FRAMES)
        blocks, n_blocks = search_blocks(frames[part], herm, synthesis, row_lo[part], row_hi[part], col_lo[part],
                                         col_hi[part], herm_norm)
        _pin_projected(pairs[part], ad.re, ad.im, rd.synth_re, rd.synth_im, row_lo[part], row_hi[part],
                       col_lo[part], col_hi[part], blocks, n_blocks, half_angle, half_range,
                       *(array[part] for array in out))

    map_blocks(block, range(0, frames.shape[0], CHUNK_FRAMES))


def gemm_peak_factored(search, noise, steering, scale, delay, sectors, half_angle: int, half_range: int,
                       out) -> None:
    """`gemm_peak_projected` on factored frames ``C = scale a d^T + N`` (complex64 arrays as
    `frames.FactoredFrames` holds them)."""
    ad, rd, (row_lo, row_hi), (col_lo, col_hi) = search.angle_dict, search.range_dict, sectors.rows, sectors.cols
    herm, synthesis, herm_norm = search_matrices(search)
    pairs = [array.view(np.float32) for array in (noise, steering, delay)]
    scale_pairs = scale.view(np.float32).reshape(-1, 2)

    def block(start: int) -> None:
        part = slice(start, start + CHUNK_FRAMES)
        frames = np.empty(noise[part].shape, dtype=np.complex64)
        _factored_frames(pairs[0][part], pairs[1][part], scale_pairs[part], pairs[2][part], frames.view(np.float32))
        blocks, n_blocks = search_blocks(frames, herm, synthesis, row_lo[part], row_hi[part], col_lo[part],
                                         col_hi[part], herm_norm)
        _pin_projected(frames.view(np.float32), ad.re, ad.im, rd.synth_re, rd.synth_im, row_lo[part], row_hi[part],
                       col_lo[part], col_hi[part], blocks, n_blocks, half_angle, half_range,
                       *(array[part] for array in out))

    map_blocks(block, range(0, noise.shape[0], CHUNK_FRAMES))
