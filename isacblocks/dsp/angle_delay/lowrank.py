"""The sector map of full frames through a low-rank factor of the sector's steering rows (eq. 15-17).

A sector's rows of the angle dictionary, ``Phi_pert[:, rows]^H`` (R x K, R = 40-80 grid
angles), span far fewer dimensions than R: the steering vectors of a 10-20 degree sector are
nearly dependent (about ``K |sin(theta_1) - sin(theta_0)| / 2`` prolate dimensions, plus a
few).  With the truncated SVD ``Phi_pert[:, rows]^H = L Q^H`` (singular values above
`LOWRANK_RTOL` of the largest, plus `EXTRA_RANK`: the dropped part is below float32
rounding), the map on the sector is

    L (Q^H Y~) G V        (L: R x r_a, Q^H: r_a x K, r_a about 20-30)

so the products over the S subcarriers and over the N_tau ranges run on r_a latent rows
instead of R, as complex64 BLAS products.  For the test sector (R = 80, r_a = 23) that is
60 % of the fused kernel's FLOPs (`benchmarks/roofline.py`).

The "lowrank" method of full frames (`backends`) uses it for full (not projected),
finite frames.  Every product is one matrix product per frame, so a frame's outputs do not
depend on the other frames of its batch.  Statistics agree with the fused kernel to float32
rounding and the arg-max is the same cell except where two cells tie at float32 precision
(`tests/dsp/test_angle_delay.py`).  The eq.-17 window is computed directly from the frame,
``|Phi_pert[:, rows]^H Y~ Phi_d^*[:, cols]|``, as in the fused kernel.  A sector's first use
costs an SVD of its rows (about a millisecond, kept on the search object): the form pays off for streams whose
sectors repeat (a fixed test sector, a few beams), not for a new sector in every frame.
"""

from __future__ import annotations

import numpy as np

from ..blas_threads import map_blocks, one_blas_thread
from ..canonical import canonical_svd

#: Singular values of the sector's rows kept: above this share of the largest (float32 rounding).
LOWRANK_RTOL = 1e-7
#: Latent rows kept beyond that count (margin against rounding in the factor itself).
EXTRA_RANK = 2
#: Frames per block of the products (bounds the (frames, R, N_tau) map held at once).
CHUNK_FRAMES = 32


def sector_factors(angle_herm: np.ndarray, row_lo: int, row_hi: int) -> tuple[np.ndarray, np.ndarray]:
    """``(L, Q^H)`` complex64 (read-only) of ``angle_herm[row_lo:row_hi]`` (R x K)."""
    rows = angle_herm[row_lo:row_hi].astype(np.complex128)
    with one_blas_thread():  # the same factor in every process
        u, sigma, vh = np.linalg.svd(rows, full_matrices=False)
    rank = min(int(np.count_nonzero(sigma > LOWRANK_RTOL * sigma[0])) + EXTRA_RANK, sigma.size)
    u, vh = canonical_svd(u[:, :rank], sigma[:rank], vh[:rank])  # the same factor on every CPU
    left, right = (u * sigma[:rank]).astype(np.complex64), vh.astype(np.complex64)
    left.setflags(write=False)
    right.setflags(write=False)
    return left, right


def lowrank_peak(frames: np.ndarray, factors, angle_herm: np.ndarray, g: np.ndarray, v: np.ndarray,
                 delay_conj: np.ndarray, row_lo: int, row_hi: int, col_lo: np.ndarray, col_hi: np.ndarray,
                 half_angle: int, half_range: int, out) -> None:
    """The sector peak of `frames` (B, K, S) complex64, all with rows ``[row_lo, row_hi)``.

    `factors` is `sector_factors` of those rows, `angle_herm` ``Phi_pert^H`` (N_theta, K)
    complex64, ``Phi_d^* = g v`` the range factors, `delay_conj` ``Phi_d^*`` (S, N_tau)
    complex64 for the window; `col_lo`, `col_hi` (B,) the frames' range columns.  Writes
    ``out = (statistic, i_hat, j_hat, window, valid)`` (each indexed by frame, as
    `frames.empty_peak` allocates them).
    """
    left, right = factors
    n_theta, n_tau = angle_herm.shape[0], v.shape[1]
    statistic, i_hat, j_hat, window, valid = out
    columns = np.arange(n_tau)

    def chunk(start: int) -> None:
        y = frames[start:start + CHUNK_FRAMES]
        b = y.shape[0]
        latent = np.matmul(np.matmul(np.matmul(right, y), g), v)  # Q^H Y~ G V, one product per frame: (b, r_a, N_tau)
        power = np.abs(np.matmul(left, latent))  # |L (Q^H Y~ G V)|: (b, R, N_tau)
        outside = (columns < col_lo[start:start + b, None]) | (columns >= col_hi[start:start + b, None])
        if outside.any():
            power[np.broadcast_to(outside[:, None, :], power.shape)] = -np.inf
        flat = power.reshape(b, -1).argmax(axis=1)  # the first maximum in row-major order, as the kernel
        statistic[start:start + b] = power.reshape(b, -1)[np.arange(b), flat]
        i_hat[start:start + b] = row_lo + flat // n_tau
        j_hat[start:start + b] = flat % n_tau
        rows = i_hat[start:start + b, None] + np.arange(-half_angle, half_angle + 1)
        cols = j_hat[start:start + b, None] + np.arange(-half_range, half_range + 1)
        row_ok, col_ok = (rows >= 0) & (rows < n_theta), (cols >= 0) & (cols < n_tau)
        a = angle_herm[np.clip(rows, 0, n_theta - 1)]  # (b, 2 dt + 1, K)
        d = np.ascontiguousarray(delay_conj.T[np.clip(cols, 0, n_tau - 1)].transpose(0, 2, 1))  # (b, S, 2 dR + 1)
        window[start:start + b] = np.abs(np.matmul(np.matmul(a, y), d))
        valid[start:start + b] = row_ok[:, :, None] & col_ok[:, None, :]

    # One BLAS thread per product and the frames spread over threads (`blas_threads`).
    map_blocks(chunk, range(0, frames.shape[0], CHUNK_FRAMES))
