"""The angle-delay map kernel (eq. 15-17) on a CUDA device, with Numba CUDA.

Same inputs, factorisation and outputs as `angle_delay.angle_delay_peak`: frames are
range-projected on the rank-r factor G of `mbml.range_factors` (or arrive projected),
only each frame's sector rows and columns are searched, ``|.|``, the arg-max (eq. 16) and
the eq.-17 window are fused, and the full map is never formed.

Layout: one thread block per frame.  The block computes ``C^T = (Y~ G)^T`` (2, r', K)
into shared memory, then walks the sector rows in tiles of `TILE_ROWS`: the tile's
``w = Phi_pert[:, rows]^H C`` (rows, r') goes to shared memory, and each thread takes
map entries of the tile in row-major order, keeping its first maximum of ``|L|^2``.  A
shared-memory reduction picks the largest value, ties going to the smallest row-major
index inside the sector: the first maximum in the CPU kernel's scan order.  NaN entries
never win, as on the CPU.  Complex64 arithmetic throughout (float32 real and imaginary
parts); summation order differs from the CPU kernel, so statistics agree to float32
rounding, not bit for bit.

`numba.cuda` is imported on first use only: importing `isacblocks.dsp` needs no CUDA.
Shared arrays have a fixed size: K <= `MAX_ANTENNAS` and r' <= `MAX_RANK`.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError, ShapeError
from .angle_delay import AngleDelayPeak, peak_search
from .cache import LRUCache

MAX_ANTENNAS = 64  # K
MAX_RANK = 64  # r', the padded rank of the range factor
TILE_ROWS = 4  # sector rows per shared-memory tile of w
THREADS_PER_BLOCK = 128

DEVICES = ("cpu", "cuda")

_DEVICE_CACHE = LRUCache(16)


def check_device(device, owner: str, parameter: str = "device") -> str:
    """Validate a ``device`` parameter: "cpu" or "cuda"; "cuda" needs a usable CUDA device.

    Raises `ConfigError` naming `owner`.`parameter` and the reason.  Imports numba.cuda
    only for "cuda".
    """
    if device not in DEVICES:
        raise ConfigError(f"{owner}.{parameter} = {device!r}: expected one of {', '.join(map(repr, DEVICES))}")
    if device == "cuda":
        try:
            from numba import cuda
        except Exception as exc:  # pragma: no cover - depends on the installation
            raise ConfigError(f"{owner}.{parameter} = 'cuda': numba.cuda cannot be imported ({exc}); "
                              f"install the 'cuda' extra (numba-cuda)") from None
        if not cuda.is_available():
            raise ConfigError(f"{owner}.{parameter} = 'cuda': no CUDA device: numba.cuda.is_available() is False")
    return device


def _kernel():
    """The CUDA kernel (compiled on first launch); imports numba.cuda."""
    from ._angle_delay_cuda_kernel import peak_kernel

    return peak_kernel


def _to_device(array):
    """A read-only dictionary array on the device, cached per array object (the entry keeps
    the array alive, so its id is not reused while cached)."""
    from numba import cuda

    return _DEVICE_CACHE.get(id(array), lambda: (array, cuda.to_device(array)))[1]


def angle_delay_peak_cuda(Y_tilde, angle_dict, range_dict, row_lo, row_hi, col_lo=0, col_hi=None,
                          half_angle: int = 0, half_range: int = 0, projected: bool = False,
                          threads_per_block: int | None = None) -> AngleDelayPeak:
    """`angle_delay.angle_delay_peak` on the CUDA device: same arguments and outputs (host arrays).

    `Y_tilde` may also be C-contiguous complex64 frames already on the device (anything with
    ``__cuda_array_interface__``: a Numba device array, a CUDA torch tensor); they are read
    in place.  Host frames are copied to the device for the call.

    `threads_per_block` defaults to `THREADS_PER_BLOCK` (at most that many).
    """
    from numba import cuda

    on_device = hasattr(Y_tilde, "copy_to_host") or hasattr(Y_tilde, "__cuda_array_interface__")
    if on_device:
        if not hasattr(Y_tilde, "copy_to_host"):  # a foreign device array (e.g. a CUDA torch tensor)
            Y_tilde = cuda.as_cuda_array(Y_tilde)
        if Y_tilde.dtype != np.complex64 or not Y_tilde.is_c_contiguous():
            raise ShapeError(f"angle_delay_peak_cuda: frames on the device must be C-contiguous complex64, got "
                             f"{Y_tilde.dtype}")
    else:
        Y_tilde = np.asarray(Y_tilde)
    search = peak_search("angle_delay_peak_cuda", Y_tilde.shape, angle_dict, range_dict, row_lo, row_hi, col_lo,
                         col_hi, half_angle, half_range, projected)
    angle_dict, range_dict, rows, cols = search.angle_dict, search.range_dict, search.rows, search.cols
    half_angle, half_range, n_frames = search.half_angle, search.half_range, Y_tilde.shape[0]
    padded = range_dict.synth_re.shape[1]
    if angle_dict.n_antennas > MAX_ANTENNAS or padded > MAX_RANK:
        raise ConfigError(f"angle_delay_peak_cuda: K = {angle_dict.n_antennas} and padded rank {padded} must be "
                          f"<= {MAX_ANTENNAS} and {MAX_RANK} (shared-memory sizes)")
    threads = THREADS_PER_BLOCK if threads_per_block is None else int(threads_per_block)
    if not 1 <= threads <= THREADS_PER_BLOCK:
        raise ConfigError(f"angle_delay_peak_cuda: threads_per_block = {threads}: expected 1..{THREADS_PER_BLOCK}")

    shape = (n_frames, 2 * half_angle + 1, 2 * half_range + 1)
    if n_frames == 0:
        return AngleDelayPeak(np.empty(0, np.float32), np.empty(0, np.int64), np.empty(0, np.int64),
                              np.empty(shape, np.float32), np.empty(shape, np.bool_))
    if on_device:
        frames = Y_tilde.view(np.float32)
    else:
        frames = cuda.to_device(np.ascontiguousarray(Y_tilde, dtype=np.complex64).view(np.float32))
    d_stat = cuda.device_array(n_frames, dtype=np.float32)
    d_i = cuda.device_array(n_frames, dtype=np.int64)
    d_j = cuda.device_array(n_frames, dtype=np.int64)
    d_window = cuda.device_array(shape, dtype=np.float32)
    d_valid = cuda.device_array(shape, dtype=np.bool_)
    _kernel()[n_frames, threads](
        frames, bool(projected), _to_device(range_dict.project), _to_device(angle_dict.re),
        _to_device(angle_dict.im), _to_device(range_dict.synth_re), _to_device(range_dict.synth_im),
        cuda.to_device(rows[0]), cuda.to_device(rows[1]), cuda.to_device(cols[0]), cuda.to_device(cols[1]),
        half_angle, half_range, d_stat, d_i, d_j, d_window, d_valid)
    window, valid = d_window.copy_to_host(), d_valid.copy_to_host()
    window[~valid] = np.nan
    return AngleDelayPeak(d_stat.copy_to_host(), d_i.copy_to_host(), d_j.copy_to_host(), window, valid)
