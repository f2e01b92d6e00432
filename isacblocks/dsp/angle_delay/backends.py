"""The backend table of the angle-delay search: ``(device, method, frame kind) -> kernel``.

Every kernel takes ``(search, frames, sectors, half_angle, half_range)`` (the
`search.PreparedSearch` of an `AngleDelaySearch`, a frame kind of `frames`, `grid.Sectors`,
the eq.-17 half window) and
returns the `AngleDelayPeak`.  A kind's methods on a device are listed in table order; the
first is its default:

================  =====================  ==========================================================
device, kind      methods                kernels
================  =====================  ==========================================================
cpu, full         "fused", "lowrank"     the fused Numba kernel (`kernels_numba`); the low-rank
                                         factor of each sector's rows (`lowrank`)
cpu, projected    "gemm", "fused"        BLAS search + the fused kernel's own arithmetic to pin
cpu, factored     "gemm", "fused"        the peak (`gemm`: the fused kernel's outputs bit for bit)
cuda, full        "fused"                the CUDA kernel (`cuda`, same outputs to float32 rounding)
cuda, projected   "fused"
================  =====================  ==========================================================

Frames holding NaN or Inf always go to the fused Numba kernel on the cpu, which defines their
outputs (NaN statistic and window).
"""

from __future__ import annotations

import numpy as np

from ...errors import ConfigError
from .cuda import cuda_peak
from .frames import AngleDelayPeak, FactoredFrames, Frames, RangeProjectedFrames, empty_peak, fill
from .gemm import gemm_peak_factored, gemm_peak_projected
from .kernels_numba import _factored_kernel, _peak_kernel
from .lowrank import lowrank_peak


def _fused_into(search, frames: np.ndarray, projected: bool, sectors, half_angle: int, half_range: int, mask,
                peak: AngleDelayPeak) -> None:
    """The fused kernel on the complex64 `frames` where `mask` holds, into `peak`.  It sees
    writeable float32 pairs (one specialisation for all inputs), so a read-only batch (a
    flowgraph's input view) is copied only for it."""
    ad, rd = search.angle_dict, search.range_dict
    if mask.all():
        writeable = np.require(frames, requirements=["W"])
        _peak_kernel(writeable.view(np.float32), projected, rd.project, ad.re, ad.im, rd.synth_re, rd.synth_im,
                     sectors.row_lo, sectors.row_hi, sectors.col_lo, sectors.col_hi, half_angle, half_range, *peak)
    elif mask.any():
        index = np.flatnonzero(mask)
        part, sub = empty_peak(index.size, half_angle, half_range), sectors.take(index)
        _peak_kernel(np.ascontiguousarray(frames[index]).view(np.float32), projected, rd.project, ad.re, ad.im,
                     rd.synth_re, rd.synth_im, sub.row_lo, sub.row_hi, sub.col_lo, sub.col_hi, half_angle,
                     half_range, *part)
        fill(peak, index, part)


def _finish(peak: AngleDelayPeak) -> AngleDelayPeak:
    """NaN where the window leaves the map."""
    peak.window[~peak.valid] = np.nan
    return peak


def _take(array, index, n_frames: int):
    """`array` on the frames `index` (itself when that is every frame: no copy)."""
    return array if index.size == n_frames else np.ascontiguousarray(array[index])


def _run_part(index, n_frames: int, peak: AngleDelayPeak, run) -> None:
    """``run(out)`` on the frames `index` of `peak`: in place when that is every frame."""
    if index.size == n_frames:
        run(peak)
        return
    part = empty_peak(index.size, peak.window.shape[1] // 2, peak.window.shape[2] // 2)
    run(part)
    fill(peak, index, part)


def fused(search, frames: Frames, sectors, half_angle: int, half_range: int) -> AngleDelayPeak:
    """The fused Numba kernel on full or projected frames."""
    peak = empty_peak(frames.n_frames, half_angle, half_range)
    _fused_into(search, frames.complex64(), isinstance(frames, RangeProjectedFrames), sectors, half_angle, half_range,
                np.ones(frames.n_frames, dtype=bool), peak)
    return _finish(peak)


def lowrank(search, frames: Frames, sectors, half_angle: int, half_range: int) -> AngleDelayPeak:
    """`lowrank.lowrank_peak` on the finite full frames, one call per sector; the fused kernel on the rest."""
    complex_frames, n_frames = frames.complex64(), frames.n_frames
    peak = empty_peak(n_frames, half_angle, half_range)
    finite = frames.finite()
    herm, g, v, delay_conj = search.lowrank_matrices()
    _, inverse = np.unique(sectors.row_lo * (search.angle_dict.n_angles + 1) + sectors.row_hi, return_inverse=True)
    inverse = inverse.ravel()
    for group in np.unique(inverse[finite]):
        index = np.flatnonzero((inverse == group) & finite)
        part = empty_peak(index.size, half_angle, half_range)
        row_lo, row_hi = int(sectors.row_lo[index[0]]), int(sectors.row_hi[index[0]])
        lowrank_peak(complex_frames if index.size == n_frames else complex_frames[index],
                     search.sector_factors(row_lo, row_hi), herm, g, v, delay_conj, row_lo, row_hi,
                     sectors.col_lo[index], sectors.col_hi[index], half_angle, half_range, part)
        fill(peak, index, part)
    _fused_into(search, complex_frames, False, sectors, half_angle, half_range, ~finite, peak)
    return _finish(peak)


def gemm(search, frames: RangeProjectedFrames, sectors, half_angle: int, half_range: int) -> AngleDelayPeak:
    """`gemm.gemm_peak_projected` on the finite projected frames; the fused kernel on the rest."""
    complex_frames, n_frames = frames.complex64(), frames.n_frames
    peak = empty_peak(n_frames, half_angle, half_range)
    rest = ~np.isfinite(complex_frames.view(np.float32)).all(axis=(1, 2))
    finite = np.flatnonzero(~rest)
    if finite.size:
        _run_part(finite, n_frames, peak, lambda out: gemm_peak_projected(
            search, _take(complex_frames, finite, n_frames), sectors.take(finite), half_angle, half_range, out))
    _fused_into(search, complex_frames, True, sectors, half_angle, half_range, rest, peak)
    return _finish(peak)


def _factored(search, frames: FactoredFrames, sectors, half_angle: int, half_range: int,
              by_gemm: bool) -> AngleDelayPeak:
    """Factored frames: `gemm.gemm_peak_factored` on the finite ones when `by_gemm`, else (and for
    the rest) the fused factored kernel."""
    parts, n_frames = frames.parts(), frames.n_frames
    peak = empty_peak(n_frames, half_angle, half_range)
    ad, rd = search.angle_dict, search.range_dict

    def fused_kernel(noise, steering, scale, delay, sub, out):
        _factored_kernel(noise.view(np.float32), steering.view(np.float32), scale.view(np.float32).reshape(-1, 2),
                         delay.view(np.float32), ad.re, ad.im, rd.synth_re, rd.synth_im, sub.row_lo, sub.row_hi,
                         sub.col_lo, sub.col_hi, half_angle, half_range, *out)

    def gemm_kernel(noise, steering, scale, delay, sub, out):
        gemm_peak_factored(search, noise, steering, scale, delay, sub, half_angle, half_range, out)

    gemm_mask = np.full(n_frames, by_gemm)  # finite frames only: the fused kernel defines NaN's outputs
    for part in parts if by_gemm else ():
        gemm_mask &= np.isfinite(part.view(np.float32).reshape(n_frames, -1)).all(axis=1)
    for kernel, index in ((gemm_kernel, np.flatnonzero(gemm_mask)), (fused_kernel, np.flatnonzero(~gemm_mask))):
        _run_part(index, n_frames, peak, lambda out, index=index, kernel=kernel: kernel(
            *(_take(part, index, n_frames) for part in parts), sectors.take(index), out))
    return _finish(peak)


def gemm_factored(search, frames: FactoredFrames, sectors, half_angle: int, half_range: int) -> AngleDelayPeak:
    return _factored(search, frames, sectors, half_angle, half_range, by_gemm=True)


def fused_factored(search, frames: FactoredFrames, sectors, half_angle: int, half_range: int) -> AngleDelayPeak:
    return _factored(search, frames, sectors, half_angle, half_range, by_gemm=False)


def on_cuda(search, frames: Frames, sectors, half_angle: int, half_range: int) -> AngleDelayPeak:
    """The CUDA kernel (`cuda.cuda_peak`)."""
    return cuda_peak(search, frames, sectors, half_angle, half_range)


#: ``(device, method, frame kind) -> kernel``; per device and kind, the first method is the default.
KERNELS = {
    ("cpu", "fused", Frames): fused,
    ("cpu", "lowrank", Frames): lowrank,
    ("cpu", "gemm", RangeProjectedFrames): gemm,
    ("cpu", "fused", RangeProjectedFrames): fused,
    ("cpu", "gemm", FactoredFrames): gemm_factored,
    ("cpu", "fused", FactoredFrames): fused_factored,
    ("cuda", "fused", Frames): on_cuda,
    ("cuda", "fused", RangeProjectedFrames): on_cuda,
}


def methods(device: str, kind: type) -> tuple[str, ...]:
    """The methods of frames of `kind` on `device`, the default first."""
    return tuple(method for (d, method, k) in KERNELS if d == device and k is kind)


def resolve_method(device: str, method, kind: type, owner: str) -> str:
    """`method` checked for `kind` on `device` (None: the default); errors name `owner`."""
    options = methods(device, kind)
    if not options:
        raise ConfigError(f"{owner}: {kind.__name__} have no kernel on device {device!r}")
    if method is None:
        return options[0]
    if method not in options:
        where = "" if device == "cpu" else f" on device {device!r}"
        raise ConfigError(f"{owner}: method = {method!r}: {kind.what}{where} take one of "
                          f"{', '.join(map(repr, options))}")
    return method


def kernel(device: str, method, kind: type, owner: str):
    """The kernel of the table for `method` (None: the default) of `kind` on `device`."""
    return KERNELS[device, resolve_method(device, method, kind, owner), kind]
