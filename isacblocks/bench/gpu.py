"""The CUDA angle-delay kernel at full size: correctness against the CPU kernel, and frames/s.

    python -m isacblocks.bench.gpu --out out/gpu.json [--frames 4096] [--reps 5] [--cpu-frames 2048]

On the paper's system (K = 64, S = 256, 720 x 200 grid, test sector) and one batch of
`--frames` frames (half with a target):

* correctness: the `AngleDelaySearch` on full and range-projected frames, and `maprt`, with ``device="cuda"``
  against ``device="cpu"`` on the same frames: arg-max agreement (a different cell counts
  as a tie when the two statistics agree within `TIE_RTOL`), statistic and window
  relative errors (target: statistic <= 1e-5 relative);
* throughput: frames/s of MB-ML and MAPRT on the CPU kernel (on `--cpu-frames` frames)
  and on the GPU, end to end from host frames (transfer included) and from frames
  already on the device (kernel plus the small result copies).

Writes one JSON record (machine, versions, every sample) to `--out`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

from isacblocks.safeio import make_folder, write_text

#: Two different arg-max cells are a tie when their statistics differ by at most this (relative).
TIE_RTOL = 1e-5


def _time(fn, reps: int, sync=None) -> list[float]:
    samples = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        if sync is not None:
            sync()
        samples.append(time.perf_counter() - start)
    return samples


def _device_name(cuda) -> str:
    try:
        name = cuda.get_current_device().name
        return name.decode() if isinstance(name, bytes) else str(name)
    except Exception:  # the simulator has no device object
        return "CUDA simulator" if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1" else "unknown"


def _compare(cpu, gpu) -> dict:
    """Arg-max agreement and relative errors of two `AngleDelayPeak`-like results."""
    stat_c, stat_g = np.asarray(cpu.statistic, np.float64), np.asarray(gpu.statistic, np.float64)
    same = (np.asarray(cpu.i_hat) == np.asarray(gpu.i_hat)) & (np.asarray(cpu.j_hat) == np.asarray(gpu.j_hat))
    rel = np.abs(stat_g - stat_c) / np.maximum(np.abs(stat_c), np.finfo(np.float32).tiny)
    ties = ~same & (rel <= TIE_RTOL)
    out = {"frames": int(stat_c.size), "argmax_same": int(same.sum()), "argmax_ties": int(ties.sum()),
           "argmax_differ": int((~same & ~ties).sum()), "statistic_max_rel_err": float(np.nanmax(rel)),
           "statistic_ok": bool(np.nanmax(rel) <= 1e-5)}
    if hasattr(cpu, "window"):
        wc, wg = np.asarray(cpu.window[same], np.float64), np.asarray(gpu.window[same], np.float64)
        scale = np.nanmax(np.abs(wc), axis=(1, 2), keepdims=True)
        out["window_max_rel_err"] = float(np.nanmax(np.abs(wg - wc) / scale)) if wc.size else None
        out["valid_equal"] = bool(np.array_equal(cpu.valid[same], gpu.valid[same]))
    return out


def run(frames: int, reps: int, cpu_frames: int, seed: int, small: bool = False) -> dict:
    """The record; `small` uses a tiny system (K = 8, S = 16) for a smoke run on the CUDA simulator."""
    from numba import cuda

    from isacblocks.dsp.angle_delay import AngleDelayGrid, AngleDelaySearch, Frames, RangeProjectedFrames, Sectors
    from isacblocks.dsp.maprt import maprt
    from isacblocks.dsp.mbml import range_factors, sector_cols, sector_rows
    from isacblocks.params import SystemParams

    from .workload import sensing_frames

    params = (SystemParams(n_antennas=8, n_subcarriers=16, n_taps=1, n_angle_grid=24, n_range_grid=12) if small
              else SystemParams())
    cpu_frames = min(cpu_frames, frames)
    spacing = params.nominal_spacing
    f = sensing_frames(params, spacing, frames, seed)
    grid = AngleDelayGrid.of(params)
    # one search per device, as a receiver block owns it: the GPU's keeps its dictionaries on the device
    cpu, gpu = (AngleDelaySearch(grid, spacing, device, owner="isacblocks.bench.gpu") for device in ("cpu", "cuda"))
    rows = sector_rows(f.theta_min, f.theta_max, params)
    cols = sector_cols(np.full(frames, f.r_min), np.full(frames, f.r_max), params)
    ha, hr = params.window_half_angle, params.window_half_range
    record = {"frames": frames, "reps": reps, "cpu_frames": cpu_frames, "device": _device_name(cuda)}

    def sectors(n):
        return Sectors.from_indices(n, params.n_angle_grid, params.n_range_grid, rows[0][:n], rows[1][:n],
                                    cols[0][:n], cols[1][:n], "isacblocks.bench.gpu")

    def cpu_peak(n, Y=None, projected=False):
        Y = f.Y_tilde[:n] if Y is None else Y[:n]
        return cpu.execute((RangeProjectedFrames if projected else Frames)(Y), sectors(n), ha, hr)

    def gpu_peak(Y, n=frames, projected=False):
        return gpu.execute((RangeProjectedFrames if projected else Frames)(Y), sectors(n), ha, hr)

    # Correctness at full size.
    gpu_peak(f.Y_tilde[:8])  # compile
    record["check_mbml"] = _compare(cpu_peak(frames), gpu_peak(f.Y_tilde))
    g = np.asarray(range_factors(params)[0])
    C = (f.Y_tilde.astype(np.complex128) @ g).astype(np.complex64)
    record["check_mbml_projected"] = _compare(cpu_peak(frames, C, True), gpu_peak(C, projected=True))
    n_maprt = min(frames, 512)  # MAPRT's 720 x 200 grid per frame: a smaller check batch
    args = (f.Y_tilde[:n_maprt], f.theta_min[:n_maprt], f.theta_max[:n_maprt], f.r_min, f.r_max, spacing, params)
    m_cpu, m_gpu = maprt(*args), maprt(*args, device="cuda")
    rel = np.abs(m_gpu[0] - m_cpu[0]) / np.abs(m_cpu[0])
    record["check_maprt"] = {"frames": n_maprt, "statistic_max_rel_err": float(rel.max()),
                             "estimates_equal": int(np.sum((m_cpu[1] == m_gpu[1]) & (m_cpu[2] == m_gpu[2])))}

    # Throughput.
    sync = cuda.synchronize
    d_frames = cuda.to_device(f.Y_tilde)
    d_proj = cuda.to_device(C)
    maprt_args = (f.Y_tilde, f.theta_min, f.theta_max, f.r_min, f.r_max, spacing, params)
    maprt_cpu_args = (f.Y_tilde[:cpu_frames], f.theta_min[:cpu_frames], f.theta_max[:cpu_frames], f.r_min,
                      f.r_max, spacing, params)
    samples = {
        "mbml_cpu": (cpu_frames, _time(lambda: cpu_peak(cpu_frames), reps)),
        "mbml_projected_cpu": (cpu_frames, _time(lambda: cpu_peak(cpu_frames, C, True), reps)),
        "mbml_gpu_host_frames": (frames, _time(lambda: gpu_peak(f.Y_tilde), reps, sync)),
        "mbml_gpu_device_frames": (frames, _time(lambda: gpu_peak(d_frames), reps, sync)),
        "mbml_projected_gpu_device_frames": (frames, _time(lambda: gpu_peak(d_proj, projected=True), reps, sync)),
        "maprt_cpu": (cpu_frames, _time(lambda: maprt(*maprt_cpu_args), reps)),
        "maprt_gpu_host_frames": (frames, _time(lambda: maprt(*maprt_args, device="cuda"), reps, sync)),
    }
    record["samples_s"] = {k: v[1] for k, v in samples.items()}
    record["frames_per_s"] = {k: n / float(np.median(s)) for k, (n, s) in samples.items()}
    return record


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=4096)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--cpu-frames", type=int, default=2048)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="out/gpu.json")
    parser.add_argument("--small", action="store_true", help="tiny system, for a smoke run on the CUDA simulator")
    args = parser.parse_args(argv)
    import numba

    record = {"python": sys.version, "numpy": np.__version__, "numba": numba.__version__,
              "machine": platform.platform(), "cpu_count": os.cpu_count()}
    try:
        import importlib.metadata as md

        record["numba_cuda"] = md.version("numba-cuda")
    except Exception:
        record["numba_cuda"] = None
    return run_and_record(record, lambda: run(args.frames, args.reps, args.cpu_frames, args.seed, args.small),
                          args.out, ("device", "check_mbml", "check_mbml_projected", "check_maprt", "frames_per_s"))


def run_and_record(record: dict, measure, out: str, summary: tuple[str, ...]) -> int:
    """Add `measure()`'s results (or the traceback of its failure, as ``error``) to `record`, write
    it as JSON to `out`, print the `summary` keys; the exit status (0, or 1 on failure)."""
    try:
        record.update(measure())
        status = 0
    except Exception:  # the record still says what failed
        import traceback

        record["error"] = traceback.format_exc()
        print(record["error"], file=sys.stderr)
        status = 1
    make_folder(os.path.dirname(os.path.abspath(out)))
    write_text(out, json.dumps(record, indent=2))
    print(json.dumps({k: record.get(k) for k in (*summary, "error")}, indent=2, default=str))
    return status


if __name__ == "__main__":
    sys.exit(main())
