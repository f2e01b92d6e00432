"""Monte Carlo evaluation of an assumed spacing with the MB-ML receiver (Algorithm 1).

The transceiver assumes spacing ``d`` for its precoder (eq. 5-6) and its receiver
(eq. 13); the channel uses the true array.  Frames are drawn in the projected domain
(`montecarlo`), exactly in distribution, so 10 000 frames per hypothesis take about a
second.

Work is split into tasks of at most `EVAL_CHUNK` frames.  Chunk ``i`` of hypothesis
``h`` (0: no target, 1: target) draws from ``task_seed(seed, h, i)``, so a result depends
on the seed and the frame count only, not on the executor that runs the chunks.  An
`Evaluation` holds the tasks and the reduction of their outputs; `run_evaluations` runs
many in one executor map (a whole sweep at once).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..dsp.angle_delay import AngleDelayGrid, AngleDelaySearch, RangeProjectedFrames
from ..dsp.channels import ue_channel_frequency_response
from ..dsp.comm import symbol_error_rate_qpsk
from ..dsp.detection import threshold_at_pfa
from ..dsp.impairments import ArrayImpairments, array_steering
from ..dsp.mbml import estimate
from ..dsp.metrics import DetectionReport, detection_report
from ..dsp.precoder import beampattern_precoder, isac_precoder
from ..dsp.steering import array_gain
from ..executor.base import Executor, Task, task_seed
from ..executor.local import SerialExecutor
from ..params import SystemParams
from .montecarlo import ProjectedBasis, draw_projected_frames

#: Frames per evaluation task (fixed: the results must not depend on how work is split).
EVAL_CHUNK = 2000
STATISTIC_KEYS = ("statistic", "theta_hat", "range_hat", "theta", "range")
H0, H1, COMM = 0, 1, 2  # seed keys


def mbml_statistics(params: SystemParams, true_spacing, spacing, n_frames: int, rng: np.random.Generator, present: bool,
                    sector=None, chunk: int = EVAL_CHUNK, basis: ProjectedBasis | None = None, precoder=None,
                    device: str = "cpu"):
    """MB-ML outputs on `n_frames` frames of one hypothesis: dict of statistic, theta_hat,
    range_hat, theta, range, each (n_frames,).  The precoder defaults to the LS sector
    precoder for the assumed `spacing` (eq. 5-6); `device` runs the receiver's map kernel on
    "cpu" or "cuda" (one `AngleDelaySearch` for all chunks, `dsp.mbml.estimate`)."""
    sector = params.test_sector if sector is None else sector
    basis = basis or ProjectedBasis.for_params(params)
    if precoder is None:
        precoder = beampattern_precoder(*sector, spacing, params)
    search = AngleDelaySearch(AngleDelayGrid.of(params), spacing, device, owner="mbml_statistics")
    parts = []
    for start in range(0, n_frames, chunk):
        n = min(chunk, n_frames - start)
        frames = draw_projected_frames(rng, params, true_spacing, basis, *sector, n,
                                       present=np.full(n, present))
        gain = array_gain(array_steering(frames.theta, true_spacing, params.wavelength).T, precoder)
        stat, theta_hat, range_hat = estimate(search, RangeProjectedFrames(frames.combine(gain)), *sector,
                                              params.range_min_m, params.range_max_m)
        parts.append((stat, theta_hat, range_hat, frames.theta, frames.ranges))
    return concatenate_statistics([dict(zip(STATISTIC_KEYS, p)) for p in parts])


def concatenate_statistics(parts: list[dict]) -> dict:
    return {key: np.concatenate([p[key] for p in parts]) for key in STATISTIC_KEYS}


def statistics_chunk(params: SystemParams, true_spacing, spacing, n_frames: int, seed, present: bool, sector=None,
                     precoder=None, device: str = "cpu") -> dict:
    """One task: `mbml_statistics` on `n_frames` frames drawn from `seed`."""
    return mbml_statistics(params, true_spacing, spacing, n_frames, np.random.default_rng(seed), present, sector,
                           chunk=n_frames, precoder=precoder, device=device)


def statistics_tasks(name: str, params: SystemParams, true_spacing, spacing, n_frames: int, seed, hypothesis: int,
                     sector=None, precoder=None, device: str = "cpu") -> list[Task]:
    """`n_frames` frames of one hypothesis as tasks of `EVAL_CHUNK` frames; chunk ``i`` draws from
    ``task_seed(seed, hypothesis, i)``."""
    common = {"params": params, "true_spacing": _plain_array(true_spacing), "spacing": _plain_array(spacing),
              "present": hypothesis == H1, "sector": sector, "precoder": precoder, "device": device}
    return [Task(f"{name} h{hypothesis} frames {start}-{start + n - 1}", statistics_chunk,
                 {**common, "n_frames": n, "seed": task_seed(seed, hypothesis, index)})
            for index, (start, n) in enumerate(_chunks(n_frames))]


def _plain_array(array):
    """A spacing vector as a numpy array (a list would do too), an `ArrayImpairments` as it is."""
    return array if isinstance(array, ArrayImpairments) else np.asarray(array)


def _chunks(n_frames: int):
    return [(start, min(EVAL_CHUNK, n_frames - start)) for start in range(0, n_frames, EVAL_CHUNK)]


@dataclass
class Evaluation:
    """Tasks, and ``reduce(results)`` turning their outputs (in task order) into the result."""

    tasks: list[Task]
    reduce: Callable[[list], Any]


def run_evaluations(evaluations: dict[str, Evaluation], executor: Executor | None = None, progress=None) -> dict:
    """Every evaluation's tasks in one executor map; ``{name: reduced result}``."""
    tasks, spans = [], {}
    for name, evaluation in evaluations.items():
        spans[name] = (len(tasks), len(tasks) + len(evaluation.tasks))
        tasks.extend(Task(f"{name}: {t.key}", t.fn, t.kwargs) for t in evaluation.tasks)
    results = (executor or SerialExecutor()).map(tasks, progress)
    return {name: evaluations[name].reduce(results[a:b]) for name, (a, b) in spans.items()}


def spacing_evaluation(params: SystemParams, true_spacing, spacing, frames_per_hypothesis: int, seed=0, sector=None,
                       pfa: float | None = None, device: str = "cpu") -> Evaluation:
    """`evaluate_spacing` as tasks."""
    n0 = len(_chunks(frames_per_hypothesis))
    tasks = [*statistics_tasks("", params, true_spacing, spacing, frames_per_hypothesis, seed, H0, sector,
                               device=device),
             *statistics_tasks("", params, true_spacing, spacing, frames_per_hypothesis, seed, H1, sector,
                               device=device)]

    def reduce(results):
        h0, h1 = concatenate_statistics(results[:n0]), concatenate_statistics(results[n0:])
        return detection_report(h0["statistic"], h1["statistic"], h1["theta_hat"], h1["range_hat"], h1["theta"],
                                h1["range"], params.pfa if pfa is None else pfa)

    return Evaluation(tasks, reduce)


def evaluate_spacing(params: SystemParams, true_spacing, spacing, frames_per_hypothesis: int, seed=0, sector=None,
                     pfa: float | None = None, executor: Executor | None = None, progress=None,
                     device: str = "cpu") -> DetectionReport:
    """Pmd at `pfa` (default ``params.pfa``) and position RMSE of the MB-ML receiver assuming
    `spacing`, on the test sector (or `sector`), with fresh H0 and H1 frames from `seed`;
    ``progress(done, total, key)`` as the executor's tasks finish; the receiver on `device`."""
    evaluation = spacing_evaluation(params, true_spacing, spacing, frames_per_hypothesis, seed, sector, pfa, device)
    return run_evaluations({"evaluation": evaluation}, executor, progress)["evaluation"]


def isac_evaluation(params: SystemParams, true_spacing, spacing, grid, frames_per_point: int, seed=0,
                    h0_frames: int = 10000, device: str = "cpu") -> Evaluation:
    """Sensing and communication at each ``(eta, phi)`` of `grid` with the ISAC precoder (eq. 4)
    built from LS sector precoders for the assumed `spacing` (test sector and UE sector).

    Sensing: Pmd at ``params.pfa`` (threshold from `h0_frames` target-free frames; the H0
    statistic does not depend on the precoder) and position RMSE of the MB-ML receiver.
    Every point sees the same target frames (common random numbers).
    Communication: the SER of per-subcarrier ML detection given the CSI, averaged in
    closed form over the noise (``2Q - Q^2`` at SNR ``|kappa_s|^2 / N0``), over
    ``phi ~ U(UE sector)`` and the multipath channel (eq. 3).
    """
    f_sensing = beampattern_precoder(*params.test_sector, spacing, params)
    f_comm = beampattern_precoder(*params.ue_sector, spacing, params)
    precoders = [isac_precoder(f_sensing, f_comm, eta, phi) for eta, phi in grid]
    tasks = statistics_tasks("", params, true_spacing, spacing, h0_frames, seed, H0, device=device)
    n0, per_point = len(tasks), len(_chunks(frames_per_point))
    for (eta, phi), precoder in zip(grid, precoders):
        tasks += statistics_tasks(f"eta {eta:.3f} phi {phi:.3f}", params, true_spacing, spacing, frames_per_point,
                                  seed, H1, precoder=precoder, device=device)

    def reduce(results):
        h0 = concatenate_statistics(results[:n0])
        threshold = threshold_at_pfa(h0["statistic"], params.pfa)
        sers = expected_ser(params, true_spacing, precoders, frames_per_point, task_seed(seed, COMM))
        points = []
        for j, ((eta, phi), ser) in enumerate(zip(grid, sers)):
            h1 = concatenate_statistics(results[n0 + j * per_point:n0 + (j + 1) * per_point])
            report = detection_report(h0["statistic"], h1["statistic"], h1["theta_hat"], h1["range_hat"],
                                      h1["theta"], h1["range"], params.pfa, threshold=threshold)
            points.append({"eta": float(eta), "phi": float(phi), "pmd": report.pmd, "pmd_ci": report.pmd_ci,
                           "rmse_position": report.rmse_position, "ser": ser, "threshold": threshold,
                           "frames": frames_per_point})
        return points

    return Evaluation(tasks, reduce)


def expected_ser(params: SystemParams, true_spacing, precoders, n_channels: int, seed) -> list[float]:
    """The SER of each precoder averaged over `n_channels` draws of the UE angle and channel (eq. 3),
    the noise in closed form."""
    rng = np.random.default_rng(seed)
    ue_angle = rng.uniform(*params.ue_sector, n_channels)
    beta = ue_channel_frequency_response(rng, params.tap_powers, params.n_subcarriers, n_channels)
    ue_steering = array_steering(ue_angle, true_spacing, params.wavelength)  # (K, B)
    sers = []
    for precoder in precoders:
        csi = beta * array_gain(ue_steering.T, precoder)[:, None]  # kappa = beta f^T a_tx(phi)
        sers.append(float(np.mean(symbol_error_rate_qpsk(np.abs(csi) ** 2 / params.noise_power))))
    return sers
