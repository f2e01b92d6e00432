"""Receiver throughput: MB-ML (Numba), MAPRT, dense numpy and dense torch on the same frames.

Every implementation gets the same batch of frames (half with a target, the test
sector), the spacing the receiver assumes is the true one, and the repetitions of the
four are interleaved.  The outputs of the timed calls are cross-checked in the same
run:

* MB-ML, dense numpy and dense torch search the same 720 x 200 grid, so their arg-max
  must be the same cell.  A different cell counts as agreeing only if it is a tie at
  float32 precision: the dense map's values at the two cells differ by at most
  `TIE_RTOL` of the maximum.  Their statistics and soft estimates are compared too.
* MAPRT searches its own grid spread over the sector, so on the frames where the
  dense statistic exceeds every target-free frame's by a factor `CLEAR_MARGIN` (a clear
  detection) its estimate must lie within one cell of the 720 x 200 grid of the dense
  arg-max; its statistic is reported as a ratio to the dense one (MAPRT's grid is finer
  in angle, so slightly higher).
"""

from __future__ import annotations

import numpy as np

from isacblocks.dsp.maprt import maprt
from isacblocks.dsp.mbml import mbml_estimate, mbml_peak

from .dense_reference import DenseEstimate, DenseReceiverNumpy, DenseReceiverTorch
from .roofline import flops_per_frame, roof_for, summarise
from .timing import Timing, round_robin
from .workload import SensingFrames, sensing_frames

#: Relative tolerance for two map cells to count as a tie (float32 products, rank-r range factor).
TIE_RTOL = 1e-4
#: Statistics must agree this closely where the arg-max is the same cell (the soft estimates are reported).
STAT_RTOL = 1e-3
#: Share of clearly detected frames on which MAPRT must land within one grid cell.
MAPRT_MIN_AGREEMENT = 0.99
#: A clear detection: the dense statistic exceeds the largest target-free frame's by this factor.
CLEAR_MARGIN = 1.25

IMPLEMENTATIONS = ("mbml", "mbml lowrank", "maprt", "dense numpy", "dense torch")


def _receivers(params, spacing, dense_chunk: int):
    dense_np = DenseReceiverNumpy(params, spacing, dense_chunk)
    dense_torch = DenseReceiverTorch(params, spacing, dense_chunk)

    def args(f: SensingFrames):
        return f.Y_tilde, f.theta_min, f.theta_max, f.r_min, f.r_max

    return {
        "mbml": lambda f: mbml_estimate(*args(f), spacing, params),
        "mbml lowrank": lambda f: mbml_estimate(*args(f), spacing, params, method="lowrank"),
        "maprt": lambda f: maprt(*args(f), spacing, params),
        "dense numpy": lambda f: dense_np(*args(f)),
        "dense torch": lambda f: dense_torch(*args(f)),
    }, dense_np


def run(params, ula, batches, warmup: int, reps: int, seed: int, gflops: dict, bandwidth_gbs: float,
        dense_chunk: int = 64) -> dict:
    """Frames/s of each implementation at each batch size, roofline fractions, cross-checks."""
    batches = sorted(batches)  # the largest last: its outputs are the ones cross-checked
    frames = sensing_frames(params, ula.spacing, batches[-1], seed)
    receivers, dense_np = _receivers(params, ula.spacing, dense_chunk)
    outputs: dict[str, object] = {}
    throughput: dict[str, dict] = {name: {} for name in IMPLEMENTATIONS}
    largest_timings: dict[str, Timing] = {}

    def timed(name: str, batch_frames: SensingFrames):
        def call():
            outputs[name] = receivers[name](batch_frames)
        return call

    for batch in batches:
        sub = frames.head(batch)
        timings = round_robin({name: timed(name, sub) for name in IMPLEMENTATIONS}, warmup, reps)
        for name, timing in timings.items():
            throughput[name][str(batch)] = {"frames_per_s": timing.rate(batch), "timing": timing.to_dict(1e3, "ms")}
        largest_timings = timings

    largest = batches[-1]
    sector = (float(frames.theta_min[0]), float(frames.theta_max[0]), frames.r_min, frames.r_max)
    counts = flops_per_frame(params, *sector)
    roofline = {}
    for name in IMPLEMENTATIONS:
        achieved = summarise(largest_timings[name], largest, counts["flops"][name])
        roof = roof_for(name, gflops, bandwidth_gbs, counts["flops"][name], counts["bytes"][name])
        roofline[name] = {"batch": largest, "mflop_per_frame": counts["flops"][name] / 1e6,
                          "achieved_gflops": achieved, **roof,
                          "fraction_of_roof": achieved["median"] / roof["attainable_gflops"]}
    checks = cross_checks(params, frames, outputs, dense_np, ula.spacing)
    ratios = {str(b): throughput["mbml"][str(b)]["frames_per_s"]["median"]
              / throughput["dense torch"][str(b)]["frames_per_s"]["median"] for b in batches}
    lowrank_ratios = {str(b): throughput["mbml lowrank"][str(b)]["frames_per_s"]["median"]
                      / throughput["mbml"][str(b)]["frames_per_s"]["median"] for b in batches}
    return {"batches": list(batches), "warmup": warmup, "repetitions": reps,
            "frames": {"count": largest, "seed": seed, "targets": int(frames.present.sum()), "sector": sector},
            "dense_chunk": dense_chunk, "throughput": throughput, "flop_counts": counts, "roofline": roofline,
            "mbml_over_dense_torch": ratios, "lowrank_over_fused": lowrank_ratios, "cross_checks": checks,
            "cross_checks_ok": all(c["ok"] for c in checks)}


def _as_estimate(result, peak=None) -> DenseEstimate:
    """A uniform view of an implementation's output (MB-ML's arg-max comes from `mbml_peak`)."""
    if isinstance(result, DenseEstimate):
        return result
    statistic, theta_hat, range_hat = (np.asarray(v) for v in result)
    i_hat = peak.i_hat if peak is not None else np.full(len(statistic), -1)
    j_hat = peak.j_hat if peak is not None else np.full(len(statistic), -1)
    return DenseEstimate(statistic, theta_hat, range_hat, i_hat, j_hat)


def cross_checks(params, frames: SensingFrames, outputs: dict, dense_np: DenseReceiverNumpy, spacing) -> list[dict]:
    """Compare the outputs of the last timed calls (all on the largest batch)."""
    peak = mbml_peak(frames.Y_tilde, frames.theta_min, frames.theta_max, frames.r_min, frames.r_max, spacing, params)
    lowrank_peak = mbml_peak(frames.Y_tilde, frames.theta_min, frames.theta_max, frames.r_min, frames.r_max, spacing,
                             params, method="lowrank")
    est = {"mbml": _as_estimate(outputs["mbml"], peak), "maprt": _as_estimate(outputs["maprt"]),
           "mbml lowrank": _as_estimate(outputs["mbml lowrank"], lowrank_peak),
           "dense numpy": outputs["dense numpy"], "dense torch": outputs["dense torch"]}
    reference = est["dense numpy"]
    checks = [_same_grid_check("dense torch", est["dense torch"], "dense numpy", reference, frames, dense_np),
              _same_grid_check("mbml", est["mbml"], "dense numpy", reference, frames, dense_np),
              _same_grid_check("mbml", est["mbml"], "dense torch", est["dense torch"], frames, dense_np),
              _same_grid_check("mbml lowrank", est["mbml lowrank"], "dense numpy", reference, frames, dense_np),
              _maprt_check(params, est["maprt"], reference, frames)]
    return checks


def _same_grid_check(name_a: str, a: DenseEstimate, name_b: str, b: DenseEstimate, frames: SensingFrames,
                     dense_np: DenseReceiverNumpy) -> dict:
    same = (a.i_hat == b.i_hat) & (a.j_hat == b.j_hat)
    differ = np.flatnonzero(~same)
    ties = 0
    worst_gap = 0.0
    if differ.size:
        L = dense_np.full_map(frames.Y_tilde[differ])
        for row, f in enumerate(differ):
            va, vb = L[row, a.i_hat[f], a.j_hat[f]], L[row, b.i_hat[f], b.j_hat[f]]
            gap = abs(float(va) - float(vb)) / max(float(L[row].max()), 1e-30)
            worst_gap = max(worst_gap, gap)
            ties += gap <= TIE_RTOL
    stat_rel = np.abs(a.statistic[same] / b.statistic[same] - 1) if same.any() else np.zeros(1)
    d_theta = np.abs(a.theta_hat[same] - b.theta_hat[same]) if same.any() else np.zeros(1)
    d_range = np.abs(a.range_hat[same] - b.range_hat[same]) if same.any() else np.zeros(1)
    agree = int(same.sum()) + ties
    ok = agree == len(same) and float(stat_rel.max()) <= STAT_RTOL
    return {"pair": f"{name_a} vs {name_b}", "frames": len(same), "same_argmax": int(same.sum()),
            "float32_ties": int(ties), "agreement": agree / len(same), "worst_tie_gap": worst_gap,
            "max_statistic_rel_diff": float(stat_rel.max()), "max_theta_hat_diff_deg": float(np.degrees(d_theta.max())),
            "max_range_hat_diff_m": float(d_range.max()), "ok": bool(ok),
            "criterion": f"same arg-max cell, or a tie within {TIE_RTOL:g} of the map maximum; "
                         f"statistic within {STAT_RTOL:g} where the cell is the same"}


def _maprt_check(params, m: DenseEstimate, dense: DenseEstimate, frames: SensingFrames) -> dict:
    h0_max = float(dense.statistic[~frames.present].max()) if (~frames.present).any() else 0.0
    detected = frames.present & (dense.statistic > CLEAR_MARGIN * h0_max)
    d_theta_grid = float(params.angle_grid[1] - params.angle_grid[0])
    d_range_grid = float(params.range_grid[1] - params.range_grid[0])
    theta_grid = np.asarray(params.angle_grid)[dense.i_hat]
    range_grid = np.asarray(params.range_grid)[dense.j_hat]
    close = (np.abs(m.theta_hat - theta_grid) <= d_theta_grid * (1 + 1e-9)) & \
            (np.abs(m.range_hat - range_grid) <= d_range_grid * (1 + 1e-9))
    n = int(detected.sum())
    agree = int((close & detected).sum())
    share = agree / n if n else float("nan")
    ratio = m.statistic[detected] / dense.statistic[detected] if n else np.array([np.nan])
    return {"pair": "maprt vs dense numpy", "frames": n, "within_one_cell": agree,
            "agreement": share, "statistic_ratio_median": float(np.median(ratio)),
            "statistic_ratio_min": float(np.min(ratio)),
            "max_theta_diff_deg": float(np.degrees(np.abs(m.theta_hat - theta_grid)[detected].max())) if n else None,
            "max_range_diff_m": float(np.abs(m.range_hat - range_grid)[detected].max()) if n else None,
            "ok": bool(n and share >= MAPRT_MIN_AGREEMENT),
            "criterion": f"on frames with a clear detection (dense statistic above {CLEAR_MARGIN:g} x every "
                         "target-free frame's), "
                         f"MAPRT's peak within one 720 x 200 grid cell of the dense arg-max on >= "
                         f"{MAPRT_MIN_AGREEMENT:.0%} of them"}
