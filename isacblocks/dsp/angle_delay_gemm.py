"""The sector peak of range-projected frames: BLAS products to find it, the fused kernel's own
arithmetic to pin it (eq. 15-17).

The fused kernel (`_map_kernels`) spends three quarters of its work on projected frames in
the range stage ``w V`` (R sector rows x r x N_tau), written as float32 dot products that
reach a fraction of the matrix-product roof.  Here the map is found in two passes:

1. **Search** (BLAS, complex64): per frame ``W = Phi_pert[:, rows]^H C`` (R x r), then one
   product ``[W_1; W_2; ...] V`` for a block of frames.  Each row's maximum of
   ``|L|^2`` over the sector's columns is compared with the frame's maximum: the rows within
   `SEARCH_MARGIN` of it are the candidates.
2. **Pin** (Numba): the four-row blocks holding a candidate are recomputed by the fused
   kernel's own per-block code, scanned in the same order, and the window (eq. 17) is
   computed as the fused kernel computes it.

Both passes compute the same matrix in float32 with other summation orders, so their
values differ by rounding only: a few 1e-6 of the frame's maximum, far inside the 1 %
margin.  A row outside the candidates therefore holds no entry that reaches the maximum,
and the statistic, arg-max and window are the fused kernel's bit for bit
(`tests/test_angle_delay_gemm.py`); the default method of projected and factored frames.
Frames with NaN or Inf go to the fused kernel.  The frames' outputs do not depend on their
batch: every product is per frame or per row.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from ._map_kernels import _FASTMATH, _factored_frames, _frame_window, _scan_block
from .blas_threads import map_blocks

#: Rows whose maximum of ``|L|^2`` is within this share of the frame's maximum are recomputed.
SEARCH_MARGIN = 1e-2
#: Frames per block of the search products (keeps a block's map, about 1.5 MB, in cache).
CHUNK_FRAMES = 16


def split_synthesis(v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(Re V, Im V, Re V + Im V)`` float32, contiguous: V for `search_blocks`' three real products."""
    re, im = np.ascontiguousarray(v.real, dtype=np.float32), np.ascontiguousarray(v.imag, dtype=np.float32)
    return re, im, re + im


def search_blocks(frames: np.ndarray, herm: np.ndarray, v_split, row_lo, row_hi, col_lo, col_hi):
    """Pass 1 on `frames` ``C`` (b, K, r) complex64: the parts of the map to pin, per frame.

    `herm` is ``Phi_pert^H`` (N_theta, K) complex64, `v_split` is `split_synthesis` of V
    (r, N_tau); bounds (b,).  ``W V`` is formed from three real products (Gauss's trick: 3/4
    of the complex product's work; its rounding is of the same order, far inside the margin).
    Returns ``(blocks, counts)``: ``blocks[f, :counts[f]]`` rows ``(first row, first column,
    end column)`` of frame f's candidate four-row blocks, ascending; a block's first row is
    ``row_lo + 4 k`` (the fused kernel's blocks) and its columns span its candidates'.
    """
    counts = row_hi - row_lo
    offsets = np.zeros(counts.size + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    w = np.empty((offsets[-1], frames.shape[2]), dtype=np.complex64)
    for f in range(frames.shape[0]):
        np.matmul(herm[row_lo[f]:row_hi[f]], frames[f], out=w[offsets[f]:offsets[f + 1]])
    w_re, w_im = np.ascontiguousarray(w.real), np.ascontiguousarray(w.imag)
    v_re, v_im, v_sum = v_split
    # Re(W V) = t1 - t2, Im(W V) = t3 - t1 - t2 over the sector rows of every frame in the block
    t1, t2, t3 = w_re @ v_re, w_im @ v_im, (w_re + w_im) @ v_sum
    power = _power(t1, t2, t3)
    if (col_lo == col_lo[0]).all() and (col_hi == col_hi[0]).all():
        row_max = power[:, col_lo[0]:col_hi[0]].max(axis=1)  # NaN if a row holds one
    else:
        row_max = np.concatenate([power[offsets[f]:offsets[f + 1], col_lo[f]:col_hi[f]].max(axis=1)
                                  for f in range(counts.size)])
    blocks = np.empty((counts.size, -(-int(counts.max()) // 4), 3), dtype=np.int64)
    n_blocks = np.empty(counts.size, dtype=np.int64)
    _candidate_blocks(power, row_max, offsets, row_lo, col_lo, col_hi, np.float32(SEARCH_MARGIN), blocks, n_blocks)
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
def _candidate_blocks(power, row_max, offsets, row_lo, col_lo, col_hi, margin, blocks, n_blocks):
    """Per frame: the four-row blocks holding the entries of `power` (sum R, N_tau) on
    ``[col_lo, col_hi)`` within `margin` of the frame's maximum, with the span of those entries'
    columns; every block and column when a row maximum (`row_max`) is not finite (the fused
    scan decides then)."""
    for f in range(offsets.size - 1):
        c0, c1 = col_lo[f], col_hi[f]
        top = np.float32(-1.0)
        everything = False
        for r in range(offsets[f], offsets[f + 1]):
            everything |= not (row_max[r] < np.inf)
            top = max(top, row_max[r])
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
    `_map_kernels._frame_peak`.  A 1 x 1 window is the peak's own entry."""
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
    as `_map_kernels._peak_kernel` pads it."""
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


def gemm_peak_projected(frames, herm, v, search, out) -> None:
    """Statistic, arg-max and window of finite projected frames ``C`` (B, K, r) complex64 into
    ``out = (statistic, i_hat, j_hat, window, valid)``; `search` is `angle_delay.PeakSearch`."""
    ad, rd, (row_lo, row_hi), (col_lo, col_hi) = search.angle_dict, search.range_dict, search.rows, search.cols
    pairs, v_split = frames.view(np.float32), split_synthesis(v)

    def block(start: int) -> None:
        part = slice(start, start + CHUNK_FRAMES)
        blocks, n_blocks = search_blocks(frames[part], herm, v_split, row_lo[part], row_hi[part], col_lo[part],
                                         col_hi[part])
        _pin_projected(pairs[part], ad.re, ad.im, rd.synth_re, rd.synth_im, row_lo[part], row_hi[part],
                       col_lo[part], col_hi[part], blocks, n_blocks, search.half_angle, search.half_range,
                       *(array[part] for array in out))

    map_blocks(block, range(0, frames.shape[0], CHUNK_FRAMES))


def gemm_peak_factored(noise, steering, scale, delay, herm, v, search, out) -> None:
    """`gemm_peak_projected` on factored frames ``C = scale a d^T + N`` (complex64 arrays as
    `angle_delay.angle_delay_peak_factored` takes them)."""
    ad, rd, (row_lo, row_hi), (col_lo, col_hi) = search.angle_dict, search.range_dict, search.rows, search.cols
    pairs = [array.view(np.float32) for array in (noise, steering, delay)]
    scale_pairs = scale.view(np.float32).reshape(-1, 2)
    v_split = split_synthesis(v)

    def block(start: int) -> None:
        part = slice(start, start + CHUNK_FRAMES)
        frames = np.empty(noise[part].shape, dtype=np.complex64)
        _factored_frames(pairs[0][part], pairs[1][part], scale_pairs[part], pairs[2][part], frames.view(np.float32))
        blocks, n_blocks = search_blocks(frames, herm, v_split, row_lo[part], row_hi[part], col_lo[part], col_hi[part])
        _pin_projected(frames.view(np.float32), ad.re, ad.im, rd.synth_re, rd.synth_im, row_lo[part], row_hi[part],
                       col_lo[part], col_hi[part], blocks, n_blocks, search.half_angle, search.half_range,
                       *(array[part] for array in out))

    map_blocks(block, range(0, noise.shape[0], CHUNK_FRAMES))
