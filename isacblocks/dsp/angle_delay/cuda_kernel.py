"""The CUDA kernel of `cuda` (imported on first use: this module imports numba.cuda).

Kept in its own module so that ``cuda`` is a module global, as Numba's CUDA simulator needs.
"""

import math

from numba import cuda, float32, int64

from .devices import MAX_ANTENNAS, MAX_RANK, THREADS_PER_BLOCK, TILE_ROWS


@cuda.jit(device=True, inline=True)
def entry(w_re, w_im, m, vt_re, vt_im, col, padded):
    """``|w[m] . V[:, col]|^2``."""
    sr = float32(0.0)
    si = float32(0.0)
    for q in range(padded):
        a = w_re[m, q]
        b = w_im[m, q]
        x = vt_re[col, q]
        y = vt_im[col, q]
        sr += a * x - b * y
        si += a * y + b * x
    return sr * sr + si * si

@cuda.jit
def peak_kernel(frames, projected, p, ah_re, ah_im, vt_re, vt_im, row_lo, row_hi, col_lo, col_hi,
                half_angle, half_range, statistic, i_hat, j_hat, window, valid):
    b = cuda.blockIdx.x
    tid = cuda.threadIdx.x
    nt = cuda.blockDim.x
    n_ant = frames.shape[1]
    padded = vt_re.shape[1]
    n_theta = ah_re.shape[0]
    n_tau = vt_re.shape[0]
    c_re = cuda.shared.array((MAX_RANK, MAX_ANTENNAS), float32)
    c_im = cuda.shared.array((MAX_RANK, MAX_ANTENNAS), float32)
    w_re = cuda.shared.array((TILE_ROWS, MAX_RANK), float32)
    w_im = cuda.shared.array((TILE_ROWS, MAX_RANK), float32)
    red_v = cuda.shared.array(THREADS_PER_BLOCK, float32)
    red_i = cuda.shared.array(THREADS_PER_BLOCK, int64)
    best_ij = cuda.shared.array(2, int64)

    # C^T = (Y~ G)^T, zero-padded to r' rows.
    for e in range(tid, padded * n_ant, nt):
        q = e // n_ant
        k = e % n_ant
        sr = float32(0.0)
        si = float32(0.0)
        if projected:
            if 2 * q < frames.shape[2]:
                sr = frames[b, k, 2 * q]
                si = frames[b, k, 2 * q + 1]
        else:
            for t in range(frames.shape[2]):
                y = frames[b, k, t]
                sr += y * p[2 * q, t]
                si += y * p[2 * q + 1, t]
        c_re[q, k] = sr
        c_im[q, k] = si
    cuda.syncthreads()

    r_lo = row_lo[b]
    r_hi = row_hi[b]
    k_lo = col_lo[b]
    n_cols = col_hi[b] - k_lo
    best = float32(-1.0)
    best_at = int64(-1)
    for row0 in range(r_lo, r_hi, TILE_ROWS):
        n_rows = min(TILE_ROWS, r_hi - row0)
        for e in range(tid, n_rows * padded, nt):
            m = e // padded
            q = e % padded
            sr = float32(0.0)
            si = float32(0.0)
            for l in range(n_ant):
                a = ah_re[row0 + m, l]
                c = ah_im[row0 + m, l]
                x = c_re[q, l]
                y = c_im[q, l]
                sr += a * x - c * y
                si += a * y + c * x
            w_re[m, q] = sr
            w_im[m, q] = si
        cuda.syncthreads()
        for e in range(tid, n_rows * n_cols, nt):
            m = e // n_cols
            j = e % n_cols
            v = entry(w_re, w_im, m, vt_re, vt_im, k_lo + j, padded)
            if v > best:
                best = v
                best_at = (row0 - r_lo + m) * n_cols + j
        cuda.syncthreads()

    # Largest value, ties to the smallest row-major index (the CPU's first maximum).
    red_v[tid] = best
    red_i[tid] = best_at
    cuda.syncthreads()
    step = 1
    while step < nt:
        step *= 2
    step //= 2
    while step > 0:
        if tid < step and tid + step < nt:
            v = red_v[tid + step]
            i = red_i[tid + step]
            if v > red_v[tid] or (v == red_v[tid] and i >= 0 and (red_i[tid] < 0 or i < red_i[tid])):
                red_v[tid] = v
                red_i[tid] = i
        cuda.syncthreads()
        step //= 2
    if tid == 0:
        v = red_v[0]
        at = red_i[0]
        if v >= 0 and at >= 0:
            statistic[b] = math.sqrt(v)
            best_ij[0] = r_lo + at // n_cols
            best_ij[1] = k_lo + at % n_cols
        else:
            statistic[b] = math.nan
            best_ij[0] = r_lo
            best_ij[1] = k_lo
        i_hat[b] = best_ij[0]
        j_hat[b] = best_ij[1]
    cuda.syncthreads()

    # The eq.-17 window around the arg-max, clipped to the map.
    bi = best_ij[0]
    bj = best_ij[1]
    n_win = window.shape[1]
    m_win = window.shape[2]
    for e in range(tid, n_win * m_win, nt):
        n = e // m_win
        mm = e % m_win
        row = bi - half_angle + n
        col = bj - half_range + mm
        if 0 <= row < n_theta and 0 <= col < n_tau:
            sr = float32(0.0)
            si = float32(0.0)
            for q in range(padded):
                wr = float32(0.0)
                wi = float32(0.0)
                for l in range(n_ant):
                    a = ah_re[row, l]
                    c = ah_im[row, l]
                    x = c_re[q, l]
                    y = c_im[q, l]
                    wr += a * x - c * y
                    wi += a * y + c * x
                x = vt_re[col, q]
                y = vt_im[col, q]
                sr += wr * x - wi * y
                si += wr * y + wi * x
            window[b, n, mm] = math.sqrt(sr * sr + si * si)
            valid[b, n, mm] = True
        else:
            window[b, n, mm] = 0.0
            valid[b, n, mm] = False

