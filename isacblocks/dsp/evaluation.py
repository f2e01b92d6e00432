"""Monte Carlo evaluation of an assumed spacing with the MB-ML receiver (Algorithm 1).

The transceiver assumes spacing ``d`` for its precoder (eq. 5-6) and its receiver
(eq. 13); the channel uses the true array.  Frames are drawn in the projected domain
(`montecarlo`), exactly in distribution, so 10 000 frames per hypothesis take about a
second.
"""

from __future__ import annotations

import numpy as np

from .channels import ue_channel_frequency_response
from .comm import symbol_error_rate_qpsk
from .detection import threshold_at_pfa
from .mbml import mbml_estimate_projected
from .metrics import DetectionReport, detection_report
from .montecarlo import ProjectedBasis, draw_projected_frames
from .precoder import beampattern_precoder, isac_precoder
from .steering import ula_steering


def mbml_statistics(params, true_spacing, spacing, n_frames: int, rng: np.random.Generator, present: bool,
                    sector=None, chunk: int = 2000, basis: ProjectedBasis | None = None, precoder=None):
    """MB-ML outputs on `n_frames` frames of one hypothesis: dict of statistic, theta_hat,
    range_hat, theta, range, each (n_frames,).  The precoder defaults to the LS sector
    precoder for the assumed `spacing` (eq. 5-6)."""
    sector = params.test_sector if sector is None else sector
    basis = basis or ProjectedBasis.for_params(params)
    if precoder is None:
        precoder = beampattern_precoder(*sector, spacing, params.wavelength, params.n_angle_grid)
    parts = []
    for start in range(0, n_frames, chunk):
        n = min(chunk, n_frames - start)
        frames = draw_projected_frames(rng, params, true_spacing, basis, *sector, n,
                                       present=np.full(n, present))
        gain = ula_steering(frames.theta, true_spacing, params.wavelength).T @ precoder  # a_tx(theta)^T f
        stat, theta_hat, range_hat = mbml_estimate_projected(frames.combine(gain), *sector, params.range_min_m,
                                                             params.range_max_m, spacing, params)
        parts.append((stat, theta_hat, range_hat, frames.theta, frames.ranges))
    keys = ("statistic", "theta_hat", "range_hat", "theta", "range")
    return {key: np.concatenate([p[i] for p in parts]) for i, key in enumerate(keys)}


def evaluate_spacing(params, true_spacing, spacing, frames_per_hypothesis: int, seed=0, sector=None,
                     pfa: float | None = None) -> DetectionReport:
    """Pmd at `pfa` (default ``params.pfa``) and position RMSE of the MB-ML receiver assuming
    `spacing`, on the test sector (or `sector`), with fresh H0 and H1 frames from `seed`."""
    rng_h0, rng_h1 = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    basis = ProjectedBasis.for_params(params)
    h0 = mbml_statistics(params, true_spacing, spacing, frames_per_hypothesis, rng_h0, False, sector, basis=basis)
    h1 = mbml_statistics(params, true_spacing, spacing, frames_per_hypothesis, rng_h1, True, sector, basis=basis)
    return detection_report(h0["statistic"], h1["statistic"], h1["theta_hat"], h1["range_hat"], h1["theta"],
                            h1["range"], params.pfa if pfa is None else pfa)


def isac_point_evaluation(params, true_spacing, spacing, grid, frames_per_point: int, seed=0,
                          h0_frames: int = 10000) -> list[dict]:
    """Sensing and communication at each ``(eta, phi)`` of `grid` with the ISAC precoder (eq. 4)
    built from LS sector precoders for the assumed `spacing` (test sector and UE sector).

    Sensing: Pmd at ``params.pfa`` (threshold from `h0_frames` target-free frames; the H0
    statistic does not depend on the precoder) and position RMSE of the MB-ML receiver.
    Communication: the SER of per-subcarrier ML detection given the CSI, averaged in
    closed form over the noise (``2Q - Q^2`` at SNR ``|kappa_s|^2 / N0``), over
    ``phi ~ U(UE sector)`` and the multipath channel (eq. 3).
    """
    seeds = np.random.SeedSequence(seed).spawn(3)
    rng_h0, rng_h1, rng_c = (np.random.default_rng(s) for s in seeds)
    basis = ProjectedBasis.for_params(params)
    h0 = mbml_statistics(params, true_spacing, spacing, h0_frames, rng_h0, False, basis=basis)
    threshold = threshold_at_pfa(h0["statistic"], params.pfa)
    f_sensing = beampattern_precoder(*params.test_sector, spacing, params.wavelength, params.n_angle_grid)
    f_comm = beampattern_precoder(*params.ue_sector, spacing, params.wavelength, params.n_angle_grid)
    ue_angle = rng_c.uniform(*params.ue_sector, frames_per_point)
    beta = ue_channel_frequency_response(rng_c, params.tap_powers, params.n_subcarriers, frames_per_point)
    ue_steering = ula_steering(ue_angle, true_spacing, params.wavelength)  # (K, B)
    points = []
    for eta, phi in grid:
        precoder = isac_precoder(f_sensing, f_comm, eta, phi)
        state = rng_h1.bit_generator.state  # the same target frames at every point (common random numbers)
        h1 = mbml_statistics(params, true_spacing, spacing, frames_per_point, rng_h1, True, basis=basis,
                             precoder=precoder)
        rng_h1.bit_generator.state = state
        report = detection_report(h0["statistic"], h1["statistic"], h1["theta_hat"], h1["range_hat"], h1["theta"],
                                  h1["range"], params.pfa, threshold=threshold)
        csi = beta * (precoder @ ue_steering)[:, None]  # kappa = beta f^T a_tx(phi)
        ser = float(np.mean(symbol_error_rate_qpsk(np.abs(csi) ** 2 / params.noise_power)))
        points.append({"eta": float(eta), "phi": float(phi), "pmd": report.pmd, "pmd_ci": report.pmd_ci,
                       "rmse_position": report.rmse_position, "ser": ser, "threshold": threshold,
                       "frames": frames_per_point})
    return points
