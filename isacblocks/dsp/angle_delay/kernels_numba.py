"""The Numba kernels of the angle-delay map (eq. 15-17): per-frame primitives and the fused
passes of the "fused" backends (`backends`) for full, projected and factored frames.

Complex64 arithmetic is written out as float32 dot products (real and imaginary parts,
accumulators in registers) that LLVM vectorises.  `gemm` reuses the per-frame
primitives to recompute a few row blocks exactly as the fused pass computes them.
"""

from __future__ import annotations

import numba as nb
import numpy as np

# Vectorising the reductions needs re-association; NaN/inf semantics are kept.
_FASTMATH = {"reassoc", "contract", "nsz", "arcp"}


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
def _scan_block(ct, ah_re, ah_im, vt_re, vt_im, row0, row_hi, col_lo, col_hi, w_re, w_im, out, best, bi, bj):
    """The map on rows ``row0 .. min(row0 + 4, row_hi) - 1``, columns ``[col_lo, col_hi)``, scanned
    row by row, column by column, into the running maximum ``(best, bi, bj)`` of ``|L|^2``
    (a later entry wins only when strictly greater); returns the updated maximum."""
    _map_rows(ct, ah_re, ah_im, vt_re, vt_im, row0, row_hi, col_lo, col_hi, w_re, w_im, out)
    for m in range(min(4, row_hi - row0)):
        for j in range(col_hi - col_lo):
            if out[m, j] > best:
                best = out[m, j]
                bi = row0 + m
                bj = col_lo + j
    return best, bi, bj


@nb.njit(nogil=True, cache=True, fastmath=_FASTMATH)
def _frame_window(ct, ah_re, ah_im, vt_re, vt_im, best, bi, bj, half_angle, half_range, w_re, w_im, out,
                  window, valid):
    """The eq.-17 window around ``(bi, bj)``, clipped to the map (entries outside it stay
    invalid); returns the statistic ``sqrt(best)`` (NaN when `best` < 0: an all-NaN sector)."""
    n_theta, n_tau = ah_re.shape[0], vt_re.shape[0]
    # NaN never compares greater: best stays -1 exactly when the sector is all NaN.
    peak = np.sqrt(best) if best >= 0 else np.float32(np.nan)
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
    return peak


@nb.njit(nogil=True, cache=True, fastmath=_FASTMATH)
def _frame_peak(ct, ah_re, ah_im, vt_re, vt_im, row_lo, row_hi, col_lo, col_hi, half_angle, half_range,
                window, valid):
    """One frame given ``C^T`` (2, r, K): map on the sector (eq. 15), arg-max (eq. 16) and
    window (eq. 17); returns ``(max, i^, j^)``."""
    rank = ct.shape[1]
    n_tau = vt_re.shape[0]
    w_re = np.empty((4, rank), dtype=np.float32)
    w_im = np.empty((4, rank), dtype=np.float32)
    out = np.empty((4, n_tau), dtype=np.float32)
    best = np.float32(-1.0)
    bi, bj = row_lo, col_lo
    for row0 in range(row_lo, row_hi, 4):
        best, bi, bj = _scan_block(ct, ah_re, ah_im, vt_re, vt_im, row0, row_hi, col_lo, col_hi, w_re, w_im, out,
                                   best, bi, bj)
    peak = _frame_window(ct, ah_re, ah_im, vt_re, vt_im, best, bi, bj, half_angle, half_range, w_re, w_im, out,
                         window, valid)
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


@nb.njit(nogil=True, cache=True)
def _factored_frames(noise, steering, scale, delay, out):
    """``C = a scale d^T + N`` of every frame into `out` (b, K, 2r) float32 pairs, rounded as
    `_factored_frame` rounds it (the same C, untransposed)."""
    for b in range(noise.shape[0]):
        for k in range(noise.shape[1]):
            ar, ai = _cmul64(steering[b, 2 * k], steering[b, 2 * k + 1], scale[b, 0], scale[b, 1])
            for q in range(noise.shape[2] // 2):
                cr, ci = _cmul64(ar, ai, delay[b, 2 * q], delay[b, 2 * q + 1])
                out[b, k, 2 * q] = cr + noise[b, k, 2 * q]
                out[b, k, 2 * q + 1] = ci + noise[b, k, 2 * q + 1]


@nb.njit(parallel=True, nogil=True, cache=True)
def _factored_kernel(noise, steering, scale, delay, ah_re, ah_im, vt_re, vt_im, row_lo, row_hi, col_lo, col_hi,
                     half_angle, half_range, statistic, i_hat, j_hat, window, valid):
    """`_frame_peak` on every factored frame (`frames.FactoredFrames`)."""
    n_ant, padded = noise.shape[1], vt_re.shape[1]
    for b in nb.prange(noise.shape[0]):
        ct = np.zeros((2, padded, n_ant), dtype=np.float32)
        _factored_frame(noise[b], steering[b], scale[b], delay[b], ct)
        statistic[b], i_hat[b], j_hat[b] = _frame_peak(
            ct, ah_re, ah_im, vt_re, vt_im, row_lo[b], row_hi[b], col_lo[b], col_hi[b],
            half_angle, half_range, window[b], valid[b])
