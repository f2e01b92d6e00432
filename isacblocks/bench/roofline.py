"""The roofline: what the machine can do, and what each receiver asks of it per frame.

Measured here:

* complex64 matrix-product throughput (GFLOP/s) of numpy (its BLAS) and torch, on
  square ``n x n`` products, counting ``8 n^3`` real FLOPs (a complex multiply-add is
  4 multiplies and 4 adds) -- the roof -- and on the dense map's own product shape;
* streaming memory bandwidth (GB/s) of a large numpy copy (read + write).

Counted here, per frame, with ``K`` antennas, ``S`` subcarriers, ``N_theta x N_tau``
grid, ``R`` sector rows (angles inside the prior sector), ``C`` sector columns (ranges),
``r'`` the padded rank of the range dictionary (`isacblocks.dsp.angle_delay`) and the
``(2 delta_theta + 1) x (2 delta_R + 1)`` window; only the products are counted (the
magnitude, mask and arg-max are memory traffic):

* dense map (numpy, torch): ``8 K S N_tau + 8 N_theta K N_tau``  (``Y~ Phi_d^*``, then
  ``Phi^H (.)`` over all angles);
* MB-ML as executed by the Numba kernel (`isacblocks.dsp.angle_delay`): ``8 K S r'``
  (``C = Y~ G``) ``+ 8 r' (K + C) R4`` (the sector rows, in groups of four:
  ``R4 = 4 ceil(R / 4)``) ``+ 8 r' (K + W_R) W4`` (the window's ``W4 = 4 ceil(W_theta / 4)``
  rows and ``W_R`` columns);
* MAPRT, which runs the same kernel on its own ``n_theta x n_range`` grid over the sector,
  every row and column and no window: ``8 K S r'_m + 8 r'_m (K + n_range) 4 ceil(n_theta / 4)``,
  ``r'_m`` the padded rank of its range dictionary.

Bytes per frame (the memory side of the roofline) count the arrays each implementation
streams through memory; the dictionaries stay in cache.  The attainable rate of an
implementation is ``min(peak FLOP/s, bytes/s x FLOPs per byte)``.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from isacblocks.dsp.angle_delay import RangeDictionary
from isacblocks.dsp.mbml import range_dictionary, sector_cols, sector_rows
from isacblocks.dsp.steering import range_steering

from .timing import Timing, measure


def matmul_gflops(backend: str, n: int, warmup: int, reps: int) -> dict:
    """complex64 ``n x n`` matrix-product GFLOP/s of `backend` ("numpy" or "torch")."""
    rng = np.random.default_rng(0)
    a = (rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))).astype(np.complex64)
    b = (rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))).astype(np.complex64)
    if backend == "torch":
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        fn = lambda: torch.mm(ta, tb)  # noqa: E731
    else:
        fn = lambda: a @ b  # noqa: E731
    timing = measure(fn, warmup, reps)
    flops = 8.0 * n ** 3
    return {"backend": backend, "n": n, "flops": flops, "gflops": _scaled(timing.rate(flops), 1e-9),
            "timing": timing.to_dict(1e3, "ms")}


def map_product_gflops(backend: str, params, frames: int, warmup: int, reps: int) -> dict:
    """complex64 GFLOP/s of the dense map's larger product, ``Phi^H (Y~ Phi_d^*)``, for `frames` frames:
    an (N_theta x K) matrix times `frames` (K x N_tau) matrices.  The inner dimension is only
    K = 64, so BLAS reaches less of its peak than on square products; this is the roof the
    dense implementations' products can actually reach."""
    rng = np.random.default_rng(1)
    K, n_theta, n_tau = params.n_antennas, params.n_angle_grid, params.n_range_grid
    a = (rng.standard_normal((n_theta, K)) + 1j * rng.standard_normal((n_theta, K))).astype(np.complex64)
    x = (rng.standard_normal((frames, K, n_tau)) + 1j * rng.standard_normal((frames, K, n_tau))).astype(np.complex64)
    if backend == "torch":
        ta, tx = torch.from_numpy(a), torch.from_numpy(x)
        fn = lambda: ta @ tx  # noqa: E731
    else:
        fn = lambda: a @ x  # noqa: E731
    timing = measure(fn, warmup, reps)
    flops = 8.0 * n_theta * K * n_tau * frames
    return {"backend": backend, "shape": f"({n_theta}x{K}) @ {frames} x ({K}x{n_tau})", "flops": flops,
            "gflops": _scaled(timing.rate(flops), 1e-9), "timing": timing.to_dict(1e3, "ms")}


def memory_bandwidth(mbytes: int, warmup: int, reps: int) -> dict:
    """GB/s of ``np.copyto`` between two `mbytes` MB arrays, counting read + write."""
    src = np.ones(mbytes * 2**20 // 8)
    dst = np.empty_like(src)
    timing = measure(lambda: np.copyto(dst, src), warmup, reps)
    moved = 2.0 * src.nbytes
    return {"array_mb": mbytes, "gbytes_per_s": _scaled(timing.rate(moved), 1e-9), "timing": timing.to_dict(1e3, "ms")}


def _scaled(rate: dict, factor: float) -> dict:
    return {k: v * factor for k, v in rate.items()}


def _ceil4(n: int) -> int:
    return 4 * math.ceil(n / 4)


def flops_per_frame(params, theta_min: float, theta_max: float, r_min: float, r_max: float,
                    maprt_grid: tuple[int, int] = (720, 200)) -> dict:
    """FLOPs and bytes per frame of each receiver on the given prior sector (see the module doc)."""
    K, S = params.n_antennas, params.n_subcarriers
    n_theta, n_tau = params.n_angle_grid, params.n_range_grid
    row_lo, row_hi = (int(v) for v in sector_rows(theta_min, theta_max, params))
    col_lo, col_hi = (int(v) for v in sector_cols(r_min, r_max, params))
    R, C = row_hi - row_lo, col_hi - col_lo
    rank = range_dictionary(params).rank
    padded = range_dictionary(params).synth_re.shape[1]
    w_theta, w_r = 2 * params.window_half_angle + 1, 2 * params.window_half_range + 1
    dense = 8 * K * S * n_tau + 8 * n_theta * K * n_tau
    m_theta, m_r = maprt_grid
    maprt_range = RangeDictionary.from_steering(range_steering(np.linspace(r_min, r_max, m_r), params))
    m_padded = maprt_range.synth_re.shape[1]
    maprt = 8 * K * S * m_padded + 8 * m_padded * (K + m_r) * _ceil4(m_theta)
    mbml = 8 * K * S * padded + 8 * padded * (K + C) * _ceil4(R) + 8 * padded * (K + w_r) * _ceil4(w_theta)
    mbml_minimal = 8 * K * S * n_tau + 8 * R * K * n_tau  # sector rows only, no low-rank range factor
    from isacblocks.dsp.angle_delay.lowrank import sector_factors
    from isacblocks.dsp.mbml import steering_dictionary

    latent = sector_factors(steering_dictionary(params.nominal_spacing, params).conj().T, row_lo, row_hi)[1].shape[0]
    # Q^H Y~, (.) G, (.) V, L (.), and the window straight from the frame
    mbml_lowrank = (8 * latent * K * S + 8 * latent * S * rank + 8 * latent * rank * n_tau + 8 * R * latent * n_tau
                    + 8 * w_theta * K * S + 8 * w_theta * S * w_r)
    frame_bytes = 8 * K * S
    cells = n_theta * n_tau
    # dense: read Y, write + read Y Phi_d^* (8 K N_tau each way), write the complex map (8), read it for
    # abs (8), write L (4), read L for the mask (4), write the masked map (4), read it for arg-max (4).
    dense_bytes = frame_bytes + 16 * K * n_tau + 32 * cells
    return {
        "sector": {"theta_min": theta_min, "theta_max": theta_max, "r_min": r_min, "r_max": r_max,
                   "rows": R, "cols": C},
        "range_rank": rank, "range_rank_padded": padded,
        "formulas": {
            "dense": "8 K S N_tau + 8 N_theta K N_tau",
            "maprt": "8 K S r'_m + 8 r'_m (K + n_range) 4ceil(n_theta/4)",
            "mbml": "8 K S r' + 8 r' (K + C) 4ceil(R/4) + 8 r' (K + W_R) 4ceil(W_theta/4)",
            "mbml_minimal_exact": "8 K S N_tau + 8 R K N_tau",
            "mbml lowrank": "8 r_a K S + 8 r_a S r + 8 r_a r N_tau + 8 R r_a N_tau + 8 W_theta K S + 8 W_theta S W_R",
            "dense_bytes": "8 K S + 16 K N_tau + 32 N_theta N_tau",
            "mbml_bytes": "8 K S (the frame, read once)",
        },
        "symbols": {"K": K, "S": S, "N_theta": n_theta, "N_tau": n_tau, "R": R, "C": C, "r'": padded, "r_a": latent,
                    "W_theta": w_theta, "W_R": w_r, "n_theta": m_theta, "n_range": m_r, "r'_m": m_padded},
        "flops": {"dense numpy": dense, "dense torch": dense, "maprt": maprt, "mbml": mbml,
                  "mbml lowrank": mbml_lowrank, "mbml_minimal_exact": mbml_minimal},
        "bytes": {"dense numpy": dense_bytes, "dense torch": dense_bytes, "maprt": frame_bytes, "mbml": frame_bytes,
                  "mbml lowrank": frame_bytes + 8 * R * n_tau},
    }


def roof_for(impl: str, gflops: dict[str, float], bandwidth_gbs: float, flops: float, nbytes: float) -> dict:
    """The attainable GFLOP/s of `impl` and which limit sets it.

    Dense numpy is held to numpy's measured product rate, dense torch to torch's; MB-ML and
    MAPRT run the Numba kernel, which calls no BLAS, so they are held to the best complex64
    rate the machine showed.  The memory roof is bandwidth x FLOPs per byte.
    """
    compute = {"dense numpy": gflops["numpy"], "dense torch": gflops["torch"], "mbml lowrank": gflops["numpy"],
               "maprt": max(gflops.values()), "mbml": max(gflops.values())}[impl]
    memory = bandwidth_gbs * flops / nbytes
    return {"compute_gflops": compute, "memory_gflops": memory, "attainable_gflops": min(compute, memory),
            "bound": "compute" if compute <= memory else "memory", "flops_per_byte": flops / nbytes}


def summarise(timing: Timing, frames: int, flops: float) -> dict:
    """Achieved GFLOP/s (median, min, max) of `frames` frames of `flops` each."""
    return _scaled(timing.rate(frames * flops), 1e-9)
