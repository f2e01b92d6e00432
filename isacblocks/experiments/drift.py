"""The drift study (beyond the paper): four receivers on the same stream through a drifting array.

The true array starts from a drawn impaired array (spacing and gain errors, `dsp.impairments`)
and drifts (`dsp.drift.ArrayDrift`).  The stream scans `SCAN_SECTORS` (one sector per frame, in
turn); a target is present on each frame with probability `present_share`.  Every frame is
received by four transceivers, each with its own assumed array for its LS precoder (eq. 5-6)
and its MB-ML receiver (Alg. 1), on the same targets and noise (common random numbers):

* ``known``: the true array at that time (taken at the start of each chunk of frames);
* ``frozen``: the array learned without labels at the start (UL with the sector curriculum,
  `learning.trainer`), then held;
* ``calibrated``: LS calibration (`dsp.calibration.calibrate_array`) from `calibration_frames`
  labelled frames every `calibration_every` frames (the first at frame 0), through the true
  array of that time;
* ``tracked``: the online tracker (`learning.tracker`), started from the same learned array,
  fed the tracked transceiver's own frames, no labels.

Frames are drawn in the projected domain (`sim.montecarlo`, exactly in distribution), each
with its own true array.  The tracker learns synchronously (after every `batch_size` frames):
bit-reproducible for a seed; in a flowgraph it runs beside the stream.  Each window of
`window` frames is scored per receiver by `dsp.metrics.detection_report`: Pmd at
``params.pfa`` (threshold from the window's target-free frames) with its Clopper-Pearson
interval, and the position RMSE on detected frames; and the error of each assumed array
against the truth at the window's end, per impairment kind (`impairment_errors`).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import numpy as np

from ..dsp.calibration import calibrate_array
from ..dsp.drift import ArrayDrift, DriftParams
from ..dsp.impairments import array_key, draw_impairments, impairment_errors
from ..dsp.mbml import mbml_estimate_projected
from ..dsp.metrics import detection_report
from ..dsp.precoder import beampattern_precoder
from ..dsp.steering import array_gain
from ..errors import ConfigError
from ..params import SystemParams
from ..sim.montecarlo import ProjectedBasis, calibration_snapshots, draw_projected_frames, projected_snapshots
from ..validation import is_integer, is_real

RECEIVERS = ("known", "frozen", "calibrated", "tracked")
#: The sectors the transmitter scans, (centre, width) in degrees, one per frame in turn.
SCAN_SECTORS = tuple((c, 15.0) for c in (-52.5, -37.5, -22.5, -7.5, 7.5, 22.5, 37.5, 52.5))
#: Seed keys of the study's independent streams.
ARRAY_KEY, DRIFT_KEY, FRAMES_KEY, CALIBRATION_KEY, TRAIN_KEY = range(5)


@dataclass(frozen=True)
class DriftStudyConfig:
    """The study's scale and receivers (module docstring); validated."""

    frames: int = 61440
    window: int = 6144
    seed: int = 0
    chunk: int = 256
    present_share: float = 0.5
    calibration_every: int = 10240
    calibration_frames: int = 64
    init_iterations: int = 400
    init_batch: int = 256
    tracker: str = "adam"  # "adam" (ArrayTracker) or "kalman" (KalmanGainTracker)
    kinds: tuple[str, ...] = ("spacing", "gain")
    follow: tuple[str, ...] = ("gain",)  # what the Adam tracker moves; the spacing is held (docs/drift.md)

    def __post_init__(self) -> None:
        def rule(ok: bool, name: str, text: str) -> None:
            if not ok:
                raise ConfigError(f"{name} = {getattr(self, name)!r}: {text}")

        for name in ("frames", "window", "chunk", "calibration_every", "calibration_frames", "init_batch"):
            rule(is_integer(getattr(self, name)) and getattr(self, name) >= 1, name, "must be an integer >= 1")
        rule(is_integer(self.init_iterations) and self.init_iterations >= 0, "init_iterations",
             "must be an integer >= 0")
        rule(is_integer(self.seed) and self.seed >= 0, "seed", "must be an integer >= 0")
        rule(self.window <= self.frames, "window", f"must be at most --frames ({self.frames})")
        for name in ("window", "calibration_every"):
            rule(getattr(self, name) % self.chunk == 0, name, f"must be a multiple of the chunk of {self.chunk} frames")
        rule(is_real(self.present_share) and 0 < self.present_share < 1, "present_share", "must lie in (0, 1)")
        rule(self.tracker in ("adam", "kalman"), "tracker", "must be 'adam' or 'kalman'")


#: The scales of ``isac drift --scale``: quick for a look (about a minute), default for the results.
SCALES = {"quick": {"frames": 6144, "window": 2048, "init_iterations": 100, "calibration_every": 2048},
          "default": {}}


def scan_sectors(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sector index, theta_min, theta_max (rad) of frame numbers `frames` (the scan, in turn)."""
    index = np.asarray(frames) % len(SCAN_SECTORS)
    centre, width = (np.radians(np.array(v))[index] for v in zip(*SCAN_SECTORS))
    return index, centre - width / 2, centre + width / 2


class _Transceiver:
    """An assumed array and its precoders for the scan's sectors (recomputed when the array changes)."""

    def __init__(self, params):
        self.params, self.array, self._key, self.precoders = params, None, None, None

    def assume(self, array) -> None:
        key = array_key(array)
        if key != self._key:
            self.array, self._key = array, key
            self.precoders = np.array([beampattern_precoder(math.radians(c - w / 2), math.radians(c + w / 2), array,
                                                            self.params) for c, w in SCAN_SECTORS])


def drift_study(params: SystemParams, drift: DriftParams, config: DriftStudyConfig, log=print) -> dict:
    """Run the study; returns the record that ``isac drift`` writes as ``drift.json``."""
    import torch

    from ..learning import TrainConfig, Trainer  # torch: only when the study runs

    start_time = time.perf_counter()
    seeds = np.random.SeedSequence(config.seed).spawn(5)
    base = draw_impairments(seeds[ARRAY_KEY], params, config.kinds)
    process = ArrayDrift(params, base, drift, seeds[DRIFT_KEY])
    basis = ProjectedBasis.for_params(params)
    log(f"learning the array at the start: UL with the sector curriculum, {config.init_iterations} x "
        f"{config.init_batch} frames, no labels")
    train = TrainConfig(schedule="ul", curriculum=True, iterations=config.init_iterations,
                        batch_size=config.init_batch, impairments=config.kinds, progress=False,
                        seed=int(seeds[TRAIN_KEY].generate_state(1)[0]))
    learned = Trainer(params, base, train).run().array
    init_s = time.perf_counter() - start_time
    tracker = _make_tracker(params, learned, drift, config)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the tracker's small steps between the receivers' Numba kernels: one thread
    try:  # (as the asynchronous learner does; two OpenMP threads beside busy cores made a step 10x slower)
        return _stream(params, config, base, process, basis, learned, tracker, seeds, start_time, init_s, drift, log)
    finally:
        torch.set_num_threads(threads)


def _stream(params, config, base, process, basis, learned, tracker, seeds, start_time, init_s, drift, log) -> dict:
    """The stream of `drift_study`: every chunk through the four transceivers, scored per window."""
    rx = {name: _Transceiver(params) for name in RECEIVERS}
    rx["frozen"].assume(learned)
    rx["tracked"].assume(learned)
    frame_rng = np.random.default_rng(seeds[FRAMES_KEY])
    calibration_rng = np.random.default_rng(seeds[CALIBRATION_KEY])
    collected, truth_parts = {name: [] for name in RECEIVERS}, []
    windows, labelled = [], 0
    for first in range(0, config.frames - config.frames % config.window, config.chunk):
        n = config.chunk
        states = process.advance(n)
        rx["known"].assume(states.array(0))
        if first % config.calibration_every == 0:
            snapshots, theta = calibration_snapshots(calibration_rng, params, states.array(0),
                                                     config.calibration_frames, basis)
            rx["calibrated"].assume(calibrate_array(snapshots, theta, params, config.kinds))
            labelled += config.calibration_frames
        index, theta_min, theta_max = scan_sectors(states.frames)
        present = frame_rng.random(n) < config.present_share
        frames = draw_projected_frames(frame_rng, params, base, basis, theta_min, theta_max, n, present)
        rows = states.rows(frames.theta, params.wavelength)  # each frame through its own true array
        frames.steering = rows.astype(np.complex64)
        truth_parts.append((present, frames.theta, frames.ranges))
        for name, transceiver in rx.items():
            combined = frames.combine(array_gain(rows, transceiver.precoders[index]))
            collected[name].append(mbml_estimate_projected(combined, theta_min, theta_max, params.range_min_m,
                                                           params.range_max_m, transceiver.array, params))
            if name == "tracked":
                _feed(tracker, combined, theta_min, theta_max, basis, params)
        rx["tracked"].assume(tracker.array)
        if (first + n) % config.window == 0:
            window = score_window(collected, truth_parts, params.pfa)
            truth = states.array(-1)
            window.update(frames_end=first + n, labelled_frames=labelled,
                          temperature_k=float(states.temperature[-1]),
                          gain_drift_deg=float(np.degrees(np.sqrt(np.mean(states.walk[-1, 1] ** 2)))),
                          errors={k: impairment_errors(v.array, truth) for k, v in rx.items() if k != "known"})
            windows.append(window)
            collected, truth_parts = {name: [] for name in RECEIVERS}, []
            log(window_line(window))
    return {"config": asdict(config), "drift": drift.to_dict(), "params": params.to_dict(),
            "scan_sectors_deg": [list(s) for s in SCAN_SECTORS], "windows": windows,
            "tracker_updates": len(tracker.updates) if isinstance(tracker.updates, list) else tracker.updates,
            "init_s": init_s, "wall_s": time.perf_counter() - start_time}


def _make_tracker(params, learned, drift: DriftParams, config: DriftStudyConfig):
    from ..learning.tracker import ArrayTracker, KalmanGainTracker

    seed = int(np.random.SeedSequence([config.seed, 0x7AC]).generate_state(1)[0])
    adam = ArrayTracker(params, learned, config.kinds, follow=config.follow, asynchronous=False, seed=seed)
    if config.tracker == "adam":
        return adam
    return KalmanGainTracker(params, learned, drift.sigmas ** 2, adam.threshold)


def _feed(tracker, combined, theta_min, theta_max, basis, params) -> None:
    """The tracked transceiver's frames into its tracker, without labels."""
    n = len(combined)
    sectors = np.stack([theta_min, theta_max, np.full(n, params.range_min_m), np.full(n, params.range_max_m)], 1)
    if hasattr(tracker, "model"):  # ArrayTracker
        tracker.receive(combined, sectors, np.full((n, 2), np.nan))
    else:
        tracker.receive(combined, sectors, lambda c, r: projected_snapshots(c, r, basis, params))


def score_window(collected: dict, truth_parts: list, pfa: float) -> dict:
    """Pmd at `pfa` with its 95 % interval and the position RMSE of each receiver on a window's frames:
    `collected` ``{receiver: [(statistic, theta_hat, range_hat) per chunk]}``, `truth_parts`
    ``[(present, theta, range) per chunk]`` (`dsp.metrics.detection_report`)."""
    present, theta, ranges = (np.concatenate(v) for v in zip(*truth_parts))
    out = {"pmd": {}, "ci": {}, "rmse_position": {}, "n_h0": int(np.sum(~present)), "n_h1": int(np.sum(present))}
    for name, parts in collected.items():
        stat, theta_hat, range_hat = (np.concatenate(v) for v in zip(*parts))
        report = detection_report(stat[~present], stat[present], theta_hat[present], range_hat[present],
                                  theta[present], ranges[present], pfa)
        out["pmd"][name], out["ci"][name] = report.pmd, list(report.pmd_ci)
        out["rmse_position"][name] = report.rmse_position
    return out


def window_line(window: dict) -> str:
    cells = "  ".join(f"{k} {window['pmd'][k]:.3f}" for k in window["pmd"])
    return f"  frames {window['frames_end']:>6}: Pmd {cells}"


def drift_markdown(record: dict) -> str:
    """The study's tables (Pmd per window; errors per kind), written from its record."""
    c, d = record["config"], record["drift"]
    head = (f"Seed {c['seed']}, {c['frames']} frames in windows of {c['window']}, Pfa {record['params']['pfa']:g}; "
            f"drift: gain phase {d['gain_phase_deg']:g} deg and log-amplitude {d['gain_log_amplitude']:g} Np "
            f"(std per {d['reference_frames']} frames), thermal {d['thermal_coefficient']:g}/K x "
            f"{d['temperature_ramp_k']:g} K per {d['reference_frames']} frames; tracker {c['tracker']}; "
            f"calibration: {c['calibration_frames']} labelled frames every {c['calibration_every']}; "
            f"{record['wall_s']:.0f} s.\n\n")
    names = list(RECEIVERS)
    lines = ["| frames | gain drift (deg rms) | " + " | ".join(f"Pmd {n} [95% CI]" for n in names)
             + " | labelled frames spent |", "|" + "---|" * (len(names) + 3)]
    for w in record["windows"]:
        cells = [f"{w['pmd'][n]:.4f} [{w['ci'][n][0]:.4f}, {w['ci'][n][1]:.4f}]" for n in names]
        lines.append(f"| {w['frames_end']} | {w['gain_drift_deg']:.1f} | " + " | ".join(cells)
                     + f" | {w['labelled_frames']} |")
    errors = ["", "Errors against the truth at each window's end (position error rms mm / gain error rms) and "
              "position RMSE (m):", "",
              "| frames | " + " | ".join(f"{n} error" for n in names[1:]) + " | "
              + " | ".join(f"RMSE {n}" for n in names) + " |", "|" + "---|" * (2 * len(names))]
    for w in record["windows"]:
        e = w["errors"]
        errors.append(f"| {w['frames_end']} | "
                      + " | ".join(f"{e[n]['position_error_rms_mm']:.2f} / {e[n].get('gain_error_rms', 0):.3f}"
                                   for n in names[1:]) + " | "
                      + " | ".join(f"{w['rmse_position'][n]:.3f}" for n in names) + " |")
    return head + "\n".join(lines + errors)


def drift_figure(record: dict, path) -> None:
    """Pmd per window of each receiver with its 95 % interval as a band, and the gain drift."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..safeio import save_figure

    windows = record["windows"]
    xs = [w["frames_end"] for w in windows]
    fig, (ax, drift_ax) = plt.subplots(2, 1, figsize=(7, 6), sharex=True, height_ratios=(3, 1))
    for name in RECEIVERS:
        line, = ax.plot(xs, [w["pmd"][name] for w in windows], marker="o", label=name)
        ax.fill_between(xs, [w["ci"][name][0] for w in windows], [w["ci"][name][1] for w in windows],
                        color=line.get_color(), alpha=0.15, linewidth=0)
    ax.set_ylabel(f"Pmd at Pfa {record['params']['pfa']:g}")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(alpha=0.3)
    drift_ax.plot(xs, [w["gain_drift_deg"] for w in windows], color="gray")
    drift_ax.set_ylabel("gain phase drift\n(deg rms)")
    drift_ax.set_xlabel("frames streamed (window end)")
    drift_ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
