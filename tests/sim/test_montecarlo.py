"""The fast Monte Carlo path (projected frames) and the streaming blocks (full frames) give the
same distribution of the MB-ML detection statistic and estimates; the classical calibration
recovers the element positions."""

import numpy as np
import pytest
from scipy import stats

from isacblocks import SystemParams
from isacblocks.blocks import ImpairedULA, MBMLEstimator
from isacblocks.blocks.chains import isac_flowgraph
from isacblocks.dsp import draw_spacing, element_positions
from isacblocks.dsp.calibration import calibrate_from_frames, calibrate_positions
from isacblocks.dsp.precoder import beampattern_precoder
from isacblocks.dsp.steering import ula_steering
from isacblocks.sim.evaluation import mbml_statistics
from isacblocks.sim.montecarlo import ProjectedBasis, draw_projected_frames, projected_snapshots

P = SystemParams()
N = 800  # frames per hypothesis on each path


@pytest.fixture(scope="module")
def ula():
    return ImpairedULA.drawn(P, 21)


@pytest.fixture(scope="module")
def both_paths(ula):
    assumed = P.nominal_spacing
    chain = isac_flowgraph(P, ula, assumed, 2 * N, seed=5, with_comm=False, alternate=True,
                           estimator=MBMLEstimator(P, assumed))
    chain.flowgraph.run()
    rec = chain.detection.records
    blocks = {h: rec[rec[:, 3] == h] for h in (0, 1)}
    rng = np.random.default_rng(9)
    fast = {h: mbml_statistics(P, ula.spacing, assumed, N, rng, bool(h)) for h in (0, 1)}
    return blocks, fast


@pytest.mark.parametrize("hypothesis", [0, 1])
def test_detection_statistic_has_the_same_distribution_on_both_paths(both_paths, hypothesis):
    blocks, fast = both_paths
    result = stats.ks_2samp(blocks[hypothesis][:, 0], fast[hypothesis]["statistic"])
    assert result.pvalue > 1e-3, result


def test_estimates_have_the_same_error_distribution_on_both_paths(both_paths):
    blocks, fast = both_paths
    err_blocks = blocks[1][:, 2] - blocks[1][:, 5]
    err_fast = fast[1]["range_hat"] - fast[1]["range"]
    assert stats.ks_2samp(err_blocks, err_fast).pvalue > 1e-3


def test_projected_noise_has_the_white_noise_covariance():
    """N G = (N U) Sigma: each column q has variance N0 sigma_q^2, columns uncorrelated."""
    basis = ProjectedBasis.for_params(P)
    frames = draw_projected_frames(np.random.default_rng(1), P, P.nominal_spacing, basis, -0.5, 0.5, 400,
                                   present=np.zeros(400, dtype=bool))
    noise = frames.noise.reshape(-1, basis.rank)  # 25 600 samples per column
    var = np.mean(np.abs(noise) ** 2, axis=0) / (P.noise_power * basis.sigma ** 2)
    assert np.all(np.abs(var - 1) < 6 / np.sqrt(noise.shape[0]))
    corr = np.abs(np.mean(noise[:, 0] * noise[:, 1].conj())) / (basis.sigma[0] * basis.sigma[1])
    assert corr < 6 / np.sqrt(noise.shape[0])


@pytest.mark.parametrize("n_frames", [32, 64])
def test_classical_calibration_recovers_element_positions(n_frames):
    true = draw_spacing(np.random.default_rng(5), P)
    basis = ProjectedBasis.for_params(P)
    rng = np.random.default_rng(n_frames)
    lo, hi = rng.uniform(-1.0, 0.8, n_frames), None
    hi = lo + np.radians(15)
    frames = draw_projected_frames(rng, P, true, basis, lo, hi, n_frames)
    gain = np.array([ula_steering(t, true, P.wavelength)[:, 0] @ beampattern_precoder(a, b, P.nominal_spacing, P)
                     for t, a, b in zip(frames.theta, lo, hi)])
    spacing = calibrate_positions(projected_snapshots(frames.combine(gain), frames.ranges, basis, P), frames.theta, P)
    error = np.linalg.norm(element_positions(spacing) - element_positions(true)) * 1e3
    nominal = np.linalg.norm(element_positions(P.nominal_spacing) - element_positions(true)) * 1e3
    assert error < 3.0 < nominal  # mm: from ~30 mm off to a few mm


def test_calibration_from_full_frames_matches_the_model():
    """Noise-free full frames alpha a(theta) rho(tau)^T: positions recovered to the grid step."""
    true = draw_spacing(np.random.default_rng(6), P)
    rng = np.random.default_rng(0)
    theta = rng.uniform(-1.0, 1.0, 24)
    ranges = rng.uniform(10, 190, 24)
    alpha = np.exp(2j * np.pi * rng.random(24))
    a = ula_steering(theta, true, P.wavelength).T
    rho = np.exp(-2j * np.pi * P.subcarrier_spacing_hz * np.outer(P.range_to_delay(ranges),
                                                                  np.arange(P.n_subcarriers)))
    frames = alpha[:, None, None] * a[:, :, None] * rho[:, None, :]
    spacing = calibrate_from_frames(frames, theta, ranges, P)
    error = element_positions(spacing) - element_positions(true)
    assert np.max(np.abs(error - error.mean())) < 0.05e-3
