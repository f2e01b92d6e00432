"""Array impairments beyond the spacing: gains and mutual coupling (`dsp.impairments`).

Each check is against an independent calculation: the steering vector written out element by
element, the coupling matrix from `scipy.linalg.toeplitz`, the seeded distributions against
their moments, the LS calibration against the noise floor of its sample count.
"""

import math

import numpy as np
import pytest
import scipy.linalg

from isacblocks import SystemParams
from isacblocks.blocks import ImpairedULA, MBMLEstimator
from isacblocks.dsp.calibration import calibrate_array
from isacblocks.dsp.impairments import (
    ArrayImpairments,
    ImpairmentSpec,
    array_rows,
    array_steering,
    coupling_matrix,
    draw_impairments,
    impairment_errors,
    load_array,
    parse_kinds,
    receiver_steering,
)
from isacblocks.dsp.mbml import mbml_estimate, steering_dictionary
from isacblocks.dsp.precoder import beampattern_precoder
from isacblocks.dsp.spacing import draw_spacing
from isacblocks.errors import ConfigError, ShapeError
from isacblocks.learning.model import SpacingModel
from isacblocks.learning.trainer import TrainConfig, Trainer
from isacblocks.sim.evaluation import evaluate_spacing

P = SystemParams()
K = P.n_antennas
ALL = ("spacing", "gain", "coupling")


def explicit_steering(theta, spacing, wavelength):
    """eq. 13 element by element: exp(-j 2 pi (k - (K-1)/2) d_k sin(theta) / lambda), (K, N)."""
    out = np.empty((len(spacing), len(theta)), dtype=np.complex128)
    for n, t in enumerate(theta):
        for k, d in enumerate(spacing):
            out[k, n] = complex(math.cos(-2 * math.pi * (k - (len(spacing) - 1) / 2) * d * math.sin(t) / wavelength),
                                math.sin(-2 * math.pi * (k - (len(spacing) - 1) / 2) * d * math.sin(t) / wavelength))
    return out


@pytest.fixture(scope="module")
def impaired():
    return draw_impairments(7, P, ALL)


def test_unit_gains_and_no_coupling_steer_exactly_like_the_spacing_vector():
    spacing = draw_spacing(np.random.default_rng(3), P)
    theta = np.radians(np.linspace(-80, 80, 17))
    reference = explicit_steering(theta, spacing, P.wavelength)
    for array in (spacing, ArrayImpairments(spacing), ArrayImpairments(spacing, np.ones(K), np.zeros(2))):
        np.testing.assert_allclose(array_steering(theta, array, P.wavelength), reference, rtol=0, atol=1e-12)
        np.testing.assert_allclose(receiver_steering(theta, array, P.wavelength), reference, rtol=0, atol=1e-12)
    # no gains and no coupling: the very same bits as the spacing vector (today's numbers do not move)
    assert np.array_equal(array_steering(theta, ArrayImpairments(spacing), P.wavelength),
                          array_steering(theta, spacing, P.wavelength))


def test_impaired_steering_is_coupling_times_gains_times_eq13(impaired):
    theta = np.radians(np.array([-50.0, -3.0, 0.0, 21.0, 64.0]))
    band = np.concatenate([[1.0], impaired.coupling, np.zeros(K - 1 - impaired.coupling.size)])
    c = scipy.linalg.toeplitz(band, band)  # symmetric (reciprocal coupling), not Hermitian
    expected = c @ np.diag(impaired.gain) @ explicit_steering(theta, impaired.spacing, P.wavelength)
    np.testing.assert_allclose(array_steering(theta, impaired, P.wavelength), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(coupling_matrix(impaired.coupling, K), c, rtol=0, atol=0)
    ula = ImpairedULA(P, impaired)
    np.testing.assert_allclose(ula.steering(theta), expected, rtol=0, atol=1e-12)
    assert ula.kinds == ALL and np.array_equal(ula.spacing, impaired.spacing)
    # the learner's torch form gives the same rows on the angle grid
    model = SpacingModel(P, impaired, kinds=ALL)
    grid = model.grid_rows().detach().numpy()
    np.testing.assert_allclose(grid, array_steering(P.angle_grid, impaired, P.wavelength).T, rtol=0, atol=1e-12)


def test_receiver_rows_have_the_norm_of_the_ideal_array(impaired):
    phi = steering_dictionary(impaired, P)  # complex64 (K, N_theta)
    norms = np.linalg.norm(phi.astype(np.complex128), axis=0)
    np.testing.assert_allclose(norms, math.sqrt(K), rtol=1e-6)
    # and they point along a_pert: |cos| = 1 against the physical steering vector
    physical = array_steering(P.angle_grid, impaired, P.wavelength)
    cosine = np.abs(np.sum(physical.conj() * phi, axis=0)) / (np.linalg.norm(physical, axis=0) * norms)
    np.testing.assert_allclose(cosine, 1.0, atol=1e-6)


def test_draws_keep_the_spacing_and_follow_the_stated_distribution():
    spec = ImpairmentSpec()
    sequence = np.random.SeedSequence(11)
    assert np.array_equal(draw_impairments(sequence, P, ALL).spacing,
                          draw_spacing(np.random.default_rng(np.random.SeedSequence(11)), P))
    assert isinstance(draw_impairments(11, P, ("spacing",)), np.ndarray)  # spacing only: today's vector
    gains = np.concatenate([draw_impairments(seed, P, ("spacing", "gain")).gain for seed in range(60)])
    n = gains.size  # 3840 samples
    amplitude_std = np.std(np.abs(gains) - 1)
    phase_std = np.degrees(np.std(np.angle(gains)))
    # the std of n normals has a relative standard error 1/sqrt(2n) = 1.1 %; 5 of them
    assert abs(amplitude_std / spec.gain_amplitude_std - 1) < 5 / math.sqrt(2 * n)
    assert abs(phase_std / spec.gain_phase_std_deg - 1) < 5 / math.sqrt(2 * n)
    assert abs(np.mean(np.abs(gains)) - 1) < 5 * spec.gain_amplitude_std / math.sqrt(n)
    coupling = draw_impairments(5, P, ("coupling",)).coupling
    np.testing.assert_allclose(np.abs(coupling), 10 ** (np.array(spec.coupling_db) / 20), rtol=1e-12)
    # the same seed gives the same array; kinds in any order mean the same set
    assert draw_impairments(5, P, ("coupling", "gain")) == draw_impairments(5, P, "gain,coupling")


def test_array_files_round_trip_and_bad_ones_are_refused(tmp_path, impaired):
    path = tmp_path / "array.npz"
    impaired.save(path)
    assert load_array(path, K, P.wavelength) == impaired
    np.savez(tmp_path / "odd.npz", spacing=impaired.spacing, gains=np.ones(K))
    with pytest.raises(ConfigError, match="odd.npz.*unknown: \\['gains'\\]"):
        load_array(tmp_path / "odd.npz", K, P.wavelength)
    np.savez(tmp_path / "short.npz", spacing=impaired.spacing, gain=np.ones(3))
    with pytest.raises(ShapeError, match="short.npz.*64 gains"):
        load_array(tmp_path / "short.npz", K, P.wavelength)
    np.savez(tmp_path / "mm.npz", spacing=impaired.spacing * 1e3)
    with pytest.raises(ConfigError, match="millimetres"):
        load_array(tmp_path / "mm.npz", K, P.wavelength)
    with pytest.raises(ConfigError, match="foo is not an impairment type"):
        parse_kinds("gain,foo")
    with pytest.raises(ShapeError, match="1 <= B < K"):
        ArrayImpairments(impaired.spacing, None, np.zeros(K))


def test_ls_calibration_recovers_spacing_gains_and_coupling_to_its_noise_floor(impaired):
    """N = 500 range-matched snapshots at per-element noise sigma = 0.3 (|alpha| ~ 1): the gain
    LS has a floor of sigma / sqrt(N) = 0.013 per element (relative), the position search about
    0.015 mm rms; the coupling (K N equations for B = 2 unknowns) well below that."""
    rng = np.random.default_rng(1)
    n, sigma = 500, 0.3
    theta = rng.uniform(-math.radians(60), math.radians(60), n)
    alpha = (rng.standard_normal(n) + 1j * rng.standard_normal(n)) / math.sqrt(2)
    noise = sigma * (rng.standard_normal((n, K)) + 1j * rng.standard_normal((n, K))) / math.sqrt(2)
    v = alpha[:, None] * array_rows(theta, impaired, P.wavelength) + noise
    start = impairment_errors(P.nominal_spacing, impaired)
    errors = impairment_errors(calibrate_array(v, theta, P), impaired)
    assert errors["gain_error_rms"] < 3 * sigma / math.sqrt(n) < start["gain_error_rms"] / 4
    assert errors["coupling_error_rms"] < 0.01 < start["coupling_error_rms"] / 10
    assert errors["position_error_rms_mm"] < 0.06 < start["position_error_rms_mm"] / 50


def test_a_common_gain_factor_is_unobservable(impaired):
    """g -> s g: the receiver's rows are normalised, so the map is the same; the unit-norm precoder
    only turns by the conjugate phase of s, which rotates the target's CN(0, sigma^2) amplitude
    (the same distribution).  So the UL loss is invariant to a common amplitude exactly (its
    gradient along the common log-amplitude vanishes), and the detection statistic too."""
    factor = 1.7 * np.exp(0.6j)
    base = ArrayImpairments(P.nominal_spacing, np.exp(0.05j * np.arange(K)), [0.1 + 0.05j, 0.02])
    scaled = ArrayImpairments(P.nominal_spacing, factor * base.gain, base.coupling)
    f, f_scaled = (beampattern_precoder(*P.test_sector, a, P) for a in (base, scaled))
    np.testing.assert_allclose(f_scaled, f * np.exp(-1j * np.angle(factor)), atol=1e-10)
    frames = (np.random.default_rng(2).standard_normal((8, K, P.n_subcarriers)) * (1 + 1j)).astype(np.complex64)
    stat, _, _ = mbml_estimate(frames, *P.test_sector, P.range_min_m, P.range_max_m, base, P)
    stat_scaled, _, _ = mbml_estimate(frames, *P.test_sector, P.range_min_m, P.range_max_m, scaled, P)
    np.testing.assert_allclose(stat_scaled, stat, rtol=1e-5)

    config = TrainConfig(schedule="ul", iterations=1, batch_size=32, impairments=ALL, progress=False, seed=3)
    losses = []
    for start in (base, ArrayImpairments(P.nominal_spacing, abs(factor) * base.gain, base.coupling)):
        trainer = Trainer(P, impaired, config, init_spacing=start)
        loss = trainer.loss(trainer.draw_batch(labelled=False), "ul")
        loss.backward()
        grad = trainer.model.log_amplitude.grad
        losses.append(float(loss.detach()))
        assert abs(float(grad.sum())) < 1e-8 * float(grad.abs().max())
    assert losses[0] == pytest.approx(losses[1], rel=1e-9)


def test_the_known_impaired_array_detects_better_than_lambda_half(impaired):
    """Pmd on the test sector, 2 000 frames per hypothesis (the intervals do not overlap)."""
    known = evaluate_spacing(P, impaired, impaired, 2000, seed=4)
    nominal = evaluate_spacing(P, impaired, P.nominal_spacing, 2000, seed=4)
    assert known.pmd_ci[1] < nominal.pmd_ci[0]


def test_estimator_block_takes_an_impaired_array_on_its_spacing_port(impaired):
    block = MBMLEstimator(P, P.nominal_spacing)
    block.apply_settings({"spacing": impaired})
    assert block.spacing is impaired
    with pytest.raises(ShapeError, match="expected an array of 64 elements"):
        block.apply_settings({"spacing": ArrayImpairments(impaired.spacing[:8])})


def test_unsupervised_learning_recovers_gains_and_coupling():
    """UL, no labels, spacing held at the truth: 60 steps of 128 frames (lr 2e-5) take the gain
    error from ~0.2 to below 0.1 and the coupling error from 0.13 to below 0.095 (seeds 11-13
    gave 0.082-0.095 and 0.076-0.091); the test asks for 60 % and 80 % of the start."""
    true = draw_impairments(13, P, ALL)
    config = TrainConfig(schedule="ul", iterations=60, batch_size=128, impairments=ALL, progress=False, seed=3,
                         lr=2e-5)
    trainer = Trainer(P, true, config, init_spacing=true.spacing)
    trainer.model.u.requires_grad_(False)
    start, learned = impairment_errors(true.spacing, true), impairment_errors(trainer.run().array, true)
    assert learned["gain_error_rms"] < 0.6 * start["gain_error_rms"]
    assert learned["coupling_error_rms"] < 0.8 * start["coupling_error_rms"]
    assert learned["spacing_error_mm"] < 1e-9  # held (only the u <-> d round trip)


def test_streaming_chain_with_an_impaired_array():
    """The block chain (TargetChannel through the ULA's a_pert, MAPRT) on an array with gains and
    coupling: 400 frames per hypothesis; the known array's Pmd interval lies below lambda/2's."""
    from isacblocks.experiments.baseline import baseline_sensing

    ula = ImpairedULA.drawn(P, 0, ALL)
    results = baseline_sensing(P, ula, 400, seed=0)
    known, nominal = results["known"]["detection"], results["unknown"]["detection"]
    assert known["pmd_ci"][1] < nominal["pmd_ci"][0]
    assert results["known"]["gain_error_rms"] == 0.0 and results["unknown"]["coupling_error_rms"] > 0.1
