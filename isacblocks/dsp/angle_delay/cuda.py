"""The angle-delay map kernel (eq. 15-17) on a CUDA device, with Numba CUDA: the "cuda" backend.

Same inputs, factorisation and outputs as the cpu backends: frames are range-projected on
the rank-r factor G of the search's range dictionary (or arrive projected), only each
frame's sector rows and columns are searched, ``|.|``, the arg-max (eq. 16) and the eq.-17
window are fused, and the full map is never formed.

Layout (`cuda_kernel`): one thread block per frame.  The block computes ``C^T = (Y~ G)^T``
(2, r', K) into shared memory, then walks the sector rows in tiles of `TILE_ROWS`: the
tile's ``w = Phi_pert[:, rows]^H C`` (rows, r') goes to shared memory, and each thread takes
map entries of the tile in row-major order, keeping its first maximum of ``|L|^2``.  A
shared-memory reduction picks the largest value, ties going to the smallest row-major
index inside the sector: the first maximum in the CPU kernel's scan order.  NaN entries
never win, as on the CPU.  Complex64 arithmetic throughout (float32 real and imaginary
parts); summation order differs from the CPU kernel, so statistics agree to float32
rounding, not bit for bit.

`numba.cuda` is imported on first use only: importing `isacblocks.dsp` needs no CUDA.
Shared arrays have a fixed size: K <= `MAX_ANTENNAS` and r' <= `MAX_RANK`.  The search
object keeps its dictionaries' device copies (`search.PreparedSearch.derived`).
"""

from __future__ import annotations

import numpy as np

from ...errors import ConfigError, ShapeError
from .devices import MAX_ANTENNAS, MAX_RANK, THREADS_PER_BLOCK
from .frames import AngleDelayPeak, RangeProjectedFrames


def device_frames(data):
    """Frames already on the device as a Numba device array (checked C-contiguous complex64)."""
    from numba import cuda

    if not hasattr(data, "copy_to_host"):  # a foreign device array (e.g. a CUDA torch tensor)
        data = cuda.as_cuda_array(data)
    if data.dtype != np.complex64 or not data.is_c_contiguous():
        raise ShapeError(f"angle_delay_peak_cuda: frames on the device must be C-contiguous complex64, got "
                         f"{data.dtype}")
    return data


def cuda_peak(search, frames, sectors, half_angle: int, half_range: int,
              threads_per_block: int | None = None) -> AngleDelayPeak:
    """Statistic, arg-max and window of `frames` (`Frames` or `RangeProjectedFrames`, on the host or
    the device) for the `search.PreparedSearch` `search`; host outputs.  `threads_per_block`
    defaults to `THREADS_PER_BLOCK` (at most that many)."""
    from numba import cuda

    from .cuda_kernel import peak_kernel

    angle_dict, range_dict = search.angle_dict, search.range_dict
    padded = range_dict.synth_re.shape[1]
    if angle_dict.n_antennas > MAX_ANTENNAS or padded > MAX_RANK:
        raise ConfigError(f"angle_delay_peak_cuda: K = {angle_dict.n_antennas} and padded rank {padded} must be "
                          f"<= {MAX_ANTENNAS} and {MAX_RANK} (shared-memory sizes)")
    threads = THREADS_PER_BLOCK if threads_per_block is None else int(threads_per_block)
    if not 1 <= threads <= THREADS_PER_BLOCK:
        raise ConfigError(f"angle_delay_peak_cuda: threads_per_block = {threads}: expected 1..{THREADS_PER_BLOCK}")
    n_frames = frames.n_frames
    shape = (n_frames, 2 * half_angle + 1, 2 * half_range + 1)
    if n_frames == 0:
        return AngleDelayPeak(np.empty(0, np.float32), np.empty(0, np.int64), np.empty(0, np.int64),
                              np.empty(shape, np.float32), np.empty(shape, np.bool_))
    data = frames.data
    if hasattr(data, "copy_to_host") or hasattr(data, "__cuda_array_interface__"):
        pairs = device_frames(data).view(np.float32)
    else:
        pairs = cuda.to_device(np.ascontiguousarray(data, dtype=np.complex64).view(np.float32))
    dictionaries = search.derived("cuda", lambda: tuple(cuda.to_device(array) for array in (
        range_dict.project, angle_dict.re, angle_dict.im, range_dict.synth_re, range_dict.synth_im)))
    d_stat = cuda.device_array(n_frames, dtype=np.float32)
    d_i = cuda.device_array(n_frames, dtype=np.int64)
    d_j = cuda.device_array(n_frames, dtype=np.int64)
    d_window = cuda.device_array(shape, dtype=np.float32)
    d_valid = cuda.device_array(shape, dtype=np.bool_)
    peak_kernel[n_frames, threads](
        pairs, isinstance(frames, RangeProjectedFrames), *dictionaries,
        cuda.to_device(sectors.row_lo), cuda.to_device(sectors.row_hi), cuda.to_device(sectors.col_lo),
        cuda.to_device(sectors.col_hi), half_angle, half_range, d_stat, d_i, d_j, d_window, d_valid)
    window, valid = d_window.copy_to_host(), d_valid.copy_to_host()
    window[~valid] = np.nan
    return AngleDelayPeak(d_stat.copy_to_host(), d_i.copy_to_host(), d_j.copy_to_host(), window, valid)
