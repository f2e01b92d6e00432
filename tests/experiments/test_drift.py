"""The drifting array (dsp.drift), its block, the tracker and the drift study's scoring."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from isacblocks.blocks import ImpairedULA, TargetChannel
from isacblocks.blocks.drift import TRUE_ARRAY_TAG, DriftingTargetChannel
from isacblocks.core import run_block
from isacblocks.dsp.drift import ArrayDrift, DriftParams, load_drift_config
from isacblocks.dsp.impairments import ArrayImpairments, draw_impairments, impairment_errors
from isacblocks.errors import ConfigError
from isacblocks.params import SystemParams

P = SystemParams()
BASE = draw_impairments(3, P, ("spacing", "gain"))


# ------------------------------------------------------------------ the process against closed forms
@pytest.mark.parametrize("reversion", [0.0, 400.0])
def test_walk_variance_follows_the_closed_form(reversion):
    """Var s(n) = n sigma^2 (random walk) or sigma^2 (1 - rho^2n) / (1 - rho^2) (OU), from 40 seeds x 64
    elements = 2 560 independent walks; tolerance 5 standard errors of a variance estimate."""
    drift = DriftParams(gain_phase_deg=20.0, gain_log_amplitude=0.1, reference_frames=1000, reversion_frames=reversion,
                        thermal_coefficient=0.0)
    checkpoints = np.array([100, 600, 1500])
    walks = np.stack([ArrayDrift(P, BASE, drift, seed).advance(1501).walk[checkpoints] for seed in range(40)])
    samples = walks.shape[0] * walks.shape[3]  # (seeds, checkpoints, 2, K)
    measured = np.mean(walks ** 2, axis=(0, 3))  # zero-mean walks: E s^2 = Var s
    sigma = np.array([0.1, math.radians(20.0)]) / math.sqrt(1000)
    rho = 1.0 if reversion == 0 else math.exp(-1 / reversion)
    for i, n in enumerate(checkpoints):
        expected = sigma ** 2 * (n if rho == 1 else (1 - rho ** (2 * n)) / (1 - rho ** 2))
        np.testing.assert_allclose(measured[i], expected, rtol=5 * math.sqrt(2 / samples))
        np.testing.assert_allclose(drift.walk_variance(n), expected, rtol=1e-12)


def test_increments_are_independent_gaussians():
    """The walk's per-frame increments: N(0, sigma^2), uncorrelated from frame to frame (KS test and lag-1)."""
    drift = DriftParams(gain_phase_deg=10.0, reference_frames=100)
    walk = ArrayDrift(P, BASE, drift, 5).advance(2001).walk[:, 1]  # phases (n, K)
    steps = np.diff(walk, axis=0) / drift.sigmas[1]
    assert stats.kstest(steps.ravel(), "norm").pvalue > 1e-3
    lag1 = np.mean(steps[1:] * steps[:-1])
    assert abs(lag1) < 5 / math.sqrt(steps.size)


def test_thermal_scale_and_the_base_array():
    """Positions scale by 1 + alpha dT(n), dT = ramp n / N_ref + swing sin(2 pi n / period); frame 0 is the base."""
    drift = DriftParams(gain_phase_deg=0.0, gain_log_amplitude=0.0, thermal_coefficient=2e-5, temperature_ramp_k=8.0,
                        reference_frames=500, temperature_swing_k=3.0, temperature_period_frames=700)
    states = ArrayDrift(P, BASE, drift, 1).advance(2000)
    n = np.arange(2000)
    scale = 1 + 2e-5 * (8.0 * n / 500 + 3.0 * np.sin(2 * np.pi * n / 700))
    np.testing.assert_allclose(states.spacing, BASE.spacing[None] * scale[:, None], rtol=1e-14)
    np.testing.assert_allclose(states.gain, np.broadcast_to(BASE.gain, states.gain.shape), rtol=1e-14)
    assert states.array(0) == BASE


def test_the_same_arrays_for_any_chunking_and_replacement_steps():
    drift = DriftParams(replace_at=(5, 300))
    whole = ArrayDrift(P, BASE, drift, 2).advance(700)
    process = ArrayDrift(P, BASE, drift, 2)
    parts = [process.advance(n) for n in (1, 4, 1, 294, 300, 100)]
    np.testing.assert_array_equal(whole.walk, np.concatenate([s.walk for s in parts]))
    np.testing.assert_allclose(whole.gain, np.concatenate([s.gain for s in parts]), rtol=1e-15, atol=0)
    # at frame 300 one element gets a new gain and restarts its walk; no other element jumps
    (_, element, new_gain), = [r for r in process.replacements if r[0] == 300]
    assert whole.walk[300, :, element].tolist() != [0.0, 0.0]  # restarted from 0 at 299 -> one step
    assert np.all(np.abs(whole.walk[300, :, element]) < 5 * drift.sigmas)
    jump = np.abs(whole.gain[300] / whole.gain[299] - 1)
    assert jump[element] > 10 * np.max(np.delete(jump, element))
    np.testing.assert_allclose(whole.gain[300, element] / new_gain, np.exp(whole.walk[300, 0, element]
                                                                           + 1j * whole.walk[300, 1, element]))


def test_bad_parameters_are_named_before_work(tmp_path):
    with pytest.raises(ConfigError, match="gain_phase_deg"):
        DriftParams(gain_phase_deg=-1)
    with pytest.raises(ConfigError, match="temperature_swing_k"):
        DriftParams(temperature_swing_k=2.0)
    config = tmp_path / "drift.toml"
    config.write_text("[system]\nn_antennas = 16\n[drift]\ngain_phase_deg = 5.0\nreplace_at = [100]\n")
    params, drift = load_drift_config(config)
    assert params.n_antennas == 16 and drift.gain_phase_deg == 5.0 and drift.replace_at == (100,)
    config.write_text("[drift]\ngain_phase = 5.0\n")
    with pytest.raises(ConfigError, match="gain_phase"):
        load_drift_config(config)


# ------------------------------------------------------------------ the block
def _channel_inputs(params, n, seed=0):
    rng = np.random.default_rng(seed)
    k, s = params.n_antennas, params.n_subcarriers
    precoders = (rng.standard_normal((n, k)) + 1j * rng.standard_normal((n, k))).astype(np.complex64) / math.sqrt(2 * k)
    symbols = np.exp(1j * np.pi / 4 * (2 * rng.integers(0, 4, (n, s)) + 1)).astype(np.complex64)
    theta = rng.uniform(-1, 1, n)
    tags = [(i, key, value) for i in range(n) for key, value in
            (("target_present", bool(i % 3)), ("theta", float(theta[i])), ("range", 50.0 + i))]
    return [precoders, symbols], [tags, []]


def test_block_without_drift_is_the_target_channel_and_tags_the_truth():
    """With every rate 0 the drifting channel gives the TargetChannel's frames on the base array (the same
    seed), whatever the chunking; each item carries the true array of its frame."""
    params = SystemParams(n_antennas=16, n_subcarriers=64)
    base = draw_impairments(1, params, ("spacing", "gain"))
    still = DriftParams(gain_phase_deg=0.0, gain_log_amplitude=0.0, thermal_coefficient=0.0)
    inputs, tags = _channel_inputs(params, 40)
    reference = run_block(TargetChannel(params, ImpairedULA(params, base), seed=4), inputs, tags, max_items=40)
    for max_items in (40, 7):
        out = run_block(DriftingTargetChannel(params, base, still, seed=4), inputs, tags, max_items=max_items)
        np.testing.assert_allclose(out.outputs[0], reference.outputs[0], rtol=0, atol=1e-6)
    drift = DriftParams(gain_phase_deg=30.0, reference_frames=10)
    out = run_block(DriftingTargetChannel(params, base, drift, seed=4, drift_seed=9), inputs, tags, max_items=16)
    truth = [t.value for t in out.tags[0] if t.key == TRUE_ARRAY_TAG]
    expected = ArrayDrift(params, base, drift, 9).advance(40)
    assert len(truth) == 40 and all(isinstance(a, ArrayImpairments) for a in truth)
    np.testing.assert_allclose(np.array([a.gain for a in truth]), expected.gain, rtol=1e-14)


# ------------------------------------------------------------------ the tracker
def test_tracker_follows_a_slow_drift_on_a_small_array():
    """A 16-element array whose gain phases walk 25 degrees rms over 6 000 frames: the tracker, no labels,
    ends far closer to the truth than the array it started from (which was the truth at frame 0)."""
    from isacblocks.dsp.precoder import beampattern_precoder
    from isacblocks.dsp.steering import array_gain
    from isacblocks.experiments.drift import SCAN_SECTORS, scan_sectors
    from isacblocks.learning.tracker import ArrayTracker
    from isacblocks.sim.montecarlo import ProjectedBasis, draw_projected_frames

    params = SystemParams(n_antennas=16, n_subcarriers=64, n_range_grid=50, snr_radar_db=20.0)
    base = draw_impairments(2, params, ("spacing", "gain"))
    drift = DriftParams(gain_phase_deg=25.0 / math.sqrt(6), gain_log_amplitude=0.0, reference_frames=1000,
                        thermal_coefficient=0.0)
    process = ArrayDrift(params, base, drift, 7)
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small steps: one thread (two spin against each other on a busy machine)
    tracker = ArrayTracker(params, base, ("spacing", "gain"), follow=("gain",), asynchronous=False, lr=2e-5, seed=1)
    basis = ProjectedBasis.for_params(params)
    rng = np.random.default_rng(11)
    for _ in range(6144 // 256):
        states = process.advance(256)
        index, lo, hi = scan_sectors(states.frames)
        frames = draw_projected_frames(rng, params, base, basis, lo, hi, 256)
        rows = states.rows(frames.theta, params.wavelength)
        frames.steering = rows.astype(np.complex64)
        precoders = np.array([beampattern_precoder(math.radians(c - w / 2), math.radians(c + w / 2), tracker.array,
                                                   params) for c, w in SCAN_SECTORS])
        sectors = np.stack([lo, hi, np.zeros(256), np.full(256, params.range_max_m)], 1)
        tracker.receive(frames.combine(array_gain(rows, precoders[index])), sectors, np.full((256, 2), np.nan))
    torch.set_num_threads(threads)
    truth = states.array(-1)
    frozen = impairment_errors(base, truth)["gain_error_rms"]
    tracked = impairment_errors(tracker.array, truth)["gain_error_rms"]
    assert frozen > 0.25  # the drift is real: about 25 degrees rms
    assert tracked < 0.5 * frozen, (tracked, frozen)
    assert tracker.updates  # it stepped, and the spacing it does not follow stayed where it started
    np.testing.assert_allclose(tracker.array.spacing, base.spacing, rtol=1e-12)


def test_tracker_follows_only_kinds_its_model_holds():
    from isacblocks.learning.tracker import ArrayTracker

    params = SystemParams(n_antennas=8, n_subcarriers=16, n_range_grid=12, n_angle_grid=24)
    base = draw_impairments(2, params, ("spacing", "gain"))
    for follow in (("coupling",), ("phase",), ()):
        with pytest.raises(ConfigError, match="ArrayTracker.follow"):
            ArrayTracker(params, base, ("spacing", "gain"), follow=follow, asynchronous=False, threshold=1.0)


# ------------------------------------------------------------------ the study's scoring
def test_window_scoring_against_an_independent_computation():
    """`score_window` on statistics of a fixed array: the threshold as the (1 - Pfa) order statistic of
    the H0 frames, Pmd the share of H1 frames at or below it, Clopper-Pearson from the beta quantiles."""
    from isacblocks.experiments.drift import score_window

    rng = np.random.default_rng(0)
    present = rng.random(3000) < 0.5
    stat = np.where(present, rng.exponential(6.0, 3000) + 1.0, rng.exponential(1.0, 3000))
    theta, ranges = rng.uniform(-1, 1, 3000), rng.uniform(0, 200, 3000)
    theta_hat, range_hat = theta + 0.01 * rng.standard_normal(3000), ranges + rng.standard_normal(3000)
    chunks = np.array_split(np.arange(3000), 3)
    window = score_window({"known": [(stat[c], theta_hat[c], range_hat[c]) for c in chunks]},
                          [(present[c], theta[c], ranges[c]) for c in chunks], 0.01)
    h0 = np.sort(stat[~present])
    threshold = h0[math.ceil(0.99 * (h0.size - 1))]  # the 'higher' empirical quantile
    misses = int(np.sum(stat[present] <= threshold))
    n1 = int(present.sum())
    assert window["pmd"]["known"] == misses / n1
    low, high = stats.beta.ppf(0.025, misses, n1 - misses + 1), stats.beta.ppf(0.975, misses + 1, n1 - misses)
    np.testing.assert_allclose(window["ci"]["known"], [low, high], rtol=1e-12)
    hit = present & (stat > threshold)
    dx = ranges[hit] * np.cos(theta[hit]) - range_hat[hit] * np.cos(theta_hat[hit])
    dy = ranges[hit] * np.sin(theta[hit]) - range_hat[hit] * np.sin(theta_hat[hit])
    np.testing.assert_allclose(window["rmse_position"]["known"], np.sqrt(np.mean(dx ** 2 + dy ** 2)), rtol=1e-12)
