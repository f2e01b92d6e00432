"""Multi-target study: GOSPA and per-target detection probability vs SNR_r for up to T targets,
for the successive-detection receiver assuming the known spacing, lambda/2 and a learned one.

Frames are full reciprocal-filtered frames on the test sector (the reciprocal filter removes
PSK symbols exactly, so x = 1 is drawn; the noise stays white).  Common random numbers: for
each T the scenes (counts, positions, unit gains) and the noise are drawn once and shared by
every spacing and SNR point; only the precoder (assumed spacing) and the gains' scale change.
The threshold of each assumed spacing is the ``(1 - Pfa)`` quantile of the first sector
maximum on target-free frames (`detection.threshold_at_pfa`), so a target-free frame
declares a target with probability Pfa.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..dsp.channels import complex_normal
from ..dsp.detection import threshold_at_pfa
from ..dsp.gospa import multitarget_report
from ..dsp.impairments import impairment_errors
from ..dsp.mbml import mbml_peak
from ..dsp.metrics import position
from ..dsp.multitarget import draw_scenes, minimum_separation, scene_echo, successive_detection
from ..dsp.precoder import beampattern_precoder
from ..safeio import save_figure

#: Frames simulated at once (memory: about 0.5 MB per frame).
CHUNK_FRAMES = 64
H0_KEY, SCENE_KEY, NOISE_KEY = 0, 1, 2


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def h0_threshold(params, spacing, sector, pfa: float, n_frames: int, seed: int, tick=None) -> float:
    """``(1 - pfa)`` quantile of the sector maximum (eq. 16) of `n_frames` noise-only frames;
    ``tick(key)`` after each chunk of `CHUNK_FRAMES`."""
    rng, stats = _rng(seed, H0_KEY), []
    for start in range(0, n_frames, CHUNK_FRAMES):
        n = min(CHUNK_FRAMES, n_frames - start)
        noise = complex_normal(rng, (n, params.n_antennas, params.n_subcarriers), params.noise_power)
        stats.append(mbml_peak(noise, *sector, spacing, params).statistic)
        if tick:
            tick(f"threshold frames {start + n}/{n_frames}")
    return threshold_at_pfa(np.concatenate(stats), pfa)


def chunks(n_frames: int) -> int:
    """Chunks of `CHUNK_FRAMES` in `n_frames` frames."""
    return -(-n_frames // CHUNK_FRAMES)


def multitarget_study(params, true_spacing, spacings: dict, snrs_db, max_targets_list, frames: int, pfa: float,
                      h0_frames: int, seed: int = 0, c: float = 10.0, p: float = 2.0, distribution: str = "uniform",
                      progress=None) -> dict:
    """``{label: {"threshold", spacing errors, "curves": {T: {"snr_db", report fields as lists}}}}``;
    ``progress(done, total, key)`` after each chunk of frames (`executor.ProgressLine`)."""
    sector = (*params.test_sector, params.range_min_m, params.range_max_m)
    precoders = {label: beampattern_precoder(*params.test_sector, d, params)
                 for label, d in spacings.items()}
    done, total = 0, len(spacings) * chunks(h0_frames) + len(max_targets_list) * chunks(frames)

    def tick(key: str) -> None:
        nonlocal done
        done += 1
        if progress:
            progress(done, total, key)

    out = {label: {"threshold": h0_threshold(params, d, sector, pfa, h0_frames, seed, tick), "curves": {},
                   **impairment_errors(d, true_spacing)} for label, d in spacings.items()}
    for T in max_targets_list:
        truth, estimates = [], {(label, snr): [] for label in spacings for snr in snrs_db}
        for start in range(0, frames, CHUNK_FRAMES):
            n = min(CHUNK_FRAMES, frames - start)
            scenes = draw_scenes([_rng(seed, SCENE_KEY, T, start + i) for i in range(n)], params,
                                 np.tile(sector, (n, 1)), T, distribution)
            noise = complex_normal(_rng(seed, NOISE_KEY, T, start), (n, params.n_antennas, params.n_subcarriers),
                                   params.noise_power)
            truth += [position(*scenes.frame(b)).reshape(-1, 2) for b in range(n)]
            for label, d in spacings.items():
                unit_echo = (scene_echo(params, true_spacing, scenes, np.tile(precoders[label], (n, 1)))
                             / np.sqrt(params.target_gain_variance))
                for snr in snrs_db:
                    p_snr = params.replace(snr_radar_db=snr)
                    frame = (unit_echo * np.sqrt(p_snr.target_gain_variance) + noise).astype(np.complex64)
                    det = successive_detection(frame, sector, d, p_snr, out[label]["threshold"], T, precoders[label])
                    estimates[(label, snr)] += [position(*det.frame(b)).reshape(-1, 2) for b in range(n)]
            tick(f"T={T} frames {start + n}/{frames}")
        for label in spacings:
            reports = [multitarget_report(truth, estimates[(label, snr)], c, p).to_dict() for snr in snrs_db]
            out[label]["curves"][T] = {"snr_db": list(snrs_db),
                                       **{key: [r[key] for r in reports] for key in reports[0]}}
    d_theta, d_range = minimum_separation(params)
    return {"spacings": out, "separation": {"angle_rad": d_theta, "range_m": d_range,
                                            "angle_cells": params.window_half_angle,
                                            "range_cells": params.window_half_range}}


def plot_multitarget(result: dict, path: Path, pfa: float, c: float) -> None:
    """GOSPA (top) and per-target detection probability (bottom) vs SNR, one column per T."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    spacings = result["spacings"]
    ts = list(next(iter(spacings.values()))["curves"])
    figure, axes = plt.subplots(2, len(ts), figsize=(3.2 * len(ts) + 1, 6.5), squeeze=False, sharey="row")
    for column, T in enumerate(ts):
        for label, entry in spacings.items():
            curve = entry["curves"][T]
            axes[0, column].plot(curve["snr_db"], curve["gospa_mean"], marker="o", ms=3, label=label)
            pd, ci = np.asarray(curve["detection_probability"]), np.asarray(curve["detection_probability_ci"]).T
            axes[1, column].errorbar(curve["snr_db"], pd, yerr=[pd - ci[0], ci[1] - pd], marker="o", ms=3,
                                     capsize=2, label=label)
        axes[0, column].set_title(f"up to T = {T} targets")
        axes[1, column].set_xlabel("SNR_r per target (dB)")
        for row in (0, 1):
            axes[row, column].grid(True, alpha=0.3)
    axes[0, 0].set_ylabel(f"mean GOSPA (m), c = {c:g} m, p = 2, alpha = 2")
    axes[1, 0].set_ylabel(f"per-target P_D (frame P_fa = {pfa:g})")
    axes[0, 0].legend(fontsize=7)
    figure.tight_layout()
    try:
        save_figure(figure, path, dpi=110)
    finally:
        plt.close(figure)
