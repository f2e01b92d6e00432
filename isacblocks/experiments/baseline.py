"""The model-based baseline (Sec. III) as flowgraphs: sensing Pmd and the ISAC (eta, phi) sweep.

The studies run the whole chain of Fig. 2 (`isacblocks.blocks.chains.isac_flowgraph`) with the
true impairment known to the transceiver ("known") and with the nominal lambda/2 spacing
assumed ("unknown").
"""

from __future__ import annotations

import time

import numpy as np

from ..blocks import ImpairedULA
from ..blocks.chains import isac_flowgraph
from ..blocks.sinks import records_report
from ..dsp.detection import threshold_at_pfa
from ..dsp.impairments import ArrayImpairments, impairment_errors
from ..executor import Executor, SerialExecutor, Task, task_seed


def chain_run(params, true_spacing, spacing, n_frames: int, seed, max_items: int = 64, **chain_options) -> dict:
    """One task: run `isac_flowgraph` and return the detection sink's records, the SER counts
    (with comm) and the wall time."""
    chain = isac_flowgraph(params, ImpairedULA(params, true_spacing), spacing, n_frames, seed=seed,
                           max_items=max_items, **chain_options)
    start = time.perf_counter()
    chain.flowgraph.run()
    return {"records": chain.detection.records, "invalid_frames": chain.detection.invalid_frames,
            "ser": chain.ser.report() if chain.ser is not None else None, "wall_s": time.perf_counter() - start}


def _chain_task(key: str, params, ula: ImpairedULA, spacing, n_frames: int, seed, max_items: int, **options) -> Task:
    return Task(key, chain_run, {"params": params, "true_spacing": ula.array,
                                 "spacing": spacing if isinstance(spacing, ArrayImpairments) else np.asarray(spacing),
                                 "n_frames": n_frames, "seed": seed,
                                 "max_items": max_items, **options})


def baseline_sensing(params, ula: ImpairedULA, frames_per_hypothesis: int, seed=0, max_items: int = 64,
                     spacings: dict | None = None, executor: Executor | None = None, progress=None) -> dict:
    """Pmd at ``params.pfa`` on the test sector for each assumed spacing (default: the
    known impairment and lambda/2), with ``frames_per_hypothesis`` H0 and H1 frames each;
    one task per spacing.

    Every receiver sees the same scenario, symbols and noise (same seed), so their
    difference is the spacing alone.
    """
    spacings = spacings or {"known": ula.array, "unknown": params.nominal_spacing}
    tasks = [_chain_task(label, params, ula, spacing, 2 * frames_per_hypothesis, seed, max_items, with_comm=False,
                         alternate=True) for label, spacing in spacings.items()]
    results = {}
    for (label, spacing), run in zip(spacings.items(), (executor or SerialExecutor()).map(tasks, progress)):
        report = records_report(run["records"], params.pfa)
        results[label] = {"detection": report.to_dict(), "invalid_frames": run["invalid_frames"],
                          "wall_s": run["wall_s"], "frames_per_s": 2 * frames_per_hypothesis / run["wall_s"],
                          **impairment_errors(spacing, ula.array)}
    return results


def isac_tradeoff_grid(n_points: int = 8) -> list[tuple[float, float]]:
    """``eta`` in linspace(0, 1, n), ``phi`` in {0, 2 pi / n, ..., 2 pi (n-1)/n}; at eta = 0 and
    eta = 1 the phase has no effect, so those appear once."""
    points = []
    for eta in np.linspace(0.0, 1.0, n_points):
        phases = [0.0] if eta in (0.0, 1.0) else 2 * np.pi * np.arange(n_points) / n_points
        points.extend((float(eta), float(phi)) for phi in phases)
    return points


def pareto_mask(costs) -> np.ndarray:
    """Rows of `costs` (n, m) not dominated by another row (all <=, one <); NaN counts as worst."""
    costs = np.where(np.isnan(costs), np.inf, np.asarray(costs, dtype=np.float64))
    keep = np.ones(len(costs), dtype=bool)
    for i, row in enumerate(costs):
        dominated = np.all(costs <= row, axis=1) & np.any(costs < row, axis=1)
        keep[i] = not dominated.any()
    return keep


def mark_pareto(points: list[dict]) -> list[dict]:
    """Flag each trade-off point (dicts with ``pmd``, ``rmse_position`` and ``ser``) with
    ``pareto_pmd_ser`` and ``pareto_rmse_ser``: not dominated in (Pmd, SER), (RMSE, SER)."""
    on_pmd = pareto_mask(np.array([[q["pmd"], q["ser"]] for q in points]))
    on_rmse = pareto_mask(np.array([[q["rmse_position"], q["ser"]] for q in points]))
    for q, a, b in zip(points, on_pmd, on_rmse):
        q["pareto_pmd_ser"], q["pareto_rmse_ser"] = bool(a), bool(b)
    return points


def isac_sweep(params, ula: ImpairedULA, frames_per_point: int, seed=0, h0_frames: int | None = None,
               spacings: dict | None = None, n_grid: int = 8, max_items: int = 64, executor: Executor | None = None,
               progress=None) -> dict:
    """The (eta, phi) sweep of Sec. V-C for each assumed spacing, one flowgraph run per task.

    The H0 statistic does not depend on the precoder (noise only), so the threshold
    at ``params.pfa`` is set once per receiver from `h0_frames` target-free frames;
    each trade-off point then runs `frames_per_point` frames with a target.  Point ``i``
    draws from ``task_seed(seed, i)`` and the H0 run from ``task_seed(seed, len(grid))``
    for every spacing (common random numbers).
    """
    h0_frames = h0_frames or max(10 * frames_per_point, int(np.ceil(20 / params.pfa)))
    spacings = spacings or {"known": ula.array, "unknown": params.nominal_spacing}
    grid = isac_tradeoff_grid(n_grid)
    tasks = []
    for label, spacing in spacings.items():
        tasks.append(_chain_task(f"{label} H0", params, ula, spacing, h0_frames, task_seed(seed, len(grid)),
                                 max_items, with_comm=False, presence_probability=0.0))
        tasks += [_chain_task(f"{label} eta {eta:.3f} phi {phi:.3f}", params, ula, spacing, frames_per_point,
                              task_seed(seed, index), max_items, eta=eta, phi=phi, presence_probability=1.0)
                  for index, (eta, phi) in enumerate(grid)]
    runs = iter((executor or SerialExecutor()).map(tasks, progress))
    out = {}
    for label, spacing in spacings.items():
        h0 = next(runs)["records"]
        threshold = threshold_at_pfa(h0[h0[:, 3] == 0, 0], params.pfa)
        points = []
        for (eta, phi), run in zip(grid, runs):
            report = records_report(run["records"], params.pfa, threshold)
            points.append({"eta": eta, "phi": phi, "pmd": report.pmd, "pmd_ci": report.pmd_ci,
                           "rmse_position": report.rmse_position, "rmse_angle": report.rmse_angle,
                           "rmse_range": report.rmse_range, "ser": run["ser"]["ser"], "ser_ci": run["ser"]["ser_ci"],
                           "frames": frames_per_point})
        mark_pareto(points)
        out[label] = {"threshold": threshold, "h0_frames": h0_frames,
                      "points": points, **impairment_errors(spacing, ula.array)}
    return out
