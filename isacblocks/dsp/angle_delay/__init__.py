"""The angle-delay search of the MB-ML receiver (paper eq. 13-17, Algorithm 1 steps 4-7).

* `grid.AngleDelayGrid`: the grids, the delay dictionary and its canonical factors, built
  once from `SystemParams`; `grid.Sectors`: the searched rows and columns per frame.
* `frames`: the frame kinds (`Frames`, `RangeProjectedFrames`, `FactoredFrames`) and the result
  `AngleDelayPeak`.
* `search.AngleDelaySearch`: create from the grid and ``d``, `recreate(d)`, `execute(frames,
  sectors)`.
* `backends`: the table ``(device, method, frame kind) -> kernel``; `devices.resolve_device`
  is the one place a device string is read.
* Kernels: `kernels_numba` (the fused Numba pass), `gemm` (BLAS search, exact pin),
  `lowrank` (the sector's low-rank factor), `cuda` + `cuda_kernel` (Numba CUDA);
  `dense` is the reference.

Where the speed comes from: only the sector rows are searched; the delay dictionary has a
low numerical rank (r = 62 of 200 on the paper's grid), so every map row is
``(a^H (Y~ G)) V``; one Numba kernel per frame fuses ``C = Y~ G``, the rows four at a time,
``|.|``, the running arg-max and the window, with complex64 arithmetic written out as
float32 dot products; range-projected frames (Monte Carlo, training) go by default through
BLAS products that find the few blocks that can hold the maximum, which the fused kernel's
own code then recomputes (its outputs bit for bit).
"""

from .dense import angle_delay_map_dense
from .devices import DEVICES, resolve_device
from .dictionaries import AngleDictionary, RangeDictionary, delay_factors
from .frames import AngleDelayPeak, FactoredFrames, Frames, RangeProjectedFrames
from .grid import AngleDelayGrid, Sectors
from .search import (
                     PEAK_METHODS,
                     PROJECTED_METHODS,
                     AngleDelaySearch,
                     angle_delay_peak,
                     angle_delay_peak_cuda,
                     angle_delay_peak_factored,
                     factored_peak,
                     synthesise_columns,
                     window_synthesis,
)

__all__ = [
    "AngleDelayGrid", "Sectors", "AngleDelaySearch", "Frames", "RangeProjectedFrames", "FactoredFrames",
    "AngleDelayPeak", "AngleDictionary", "RangeDictionary", "delay_factors", "DEVICES", "resolve_device",
    "PEAK_METHODS", "PROJECTED_METHODS", "angle_delay_peak", "angle_delay_peak_factored", "angle_delay_peak_cuda",
    "factored_peak", "synthesise_columns", "window_synthesis", "angle_delay_map_dense",
]
