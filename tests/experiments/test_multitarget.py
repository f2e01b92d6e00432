"""Multi-target sensing: scenes, the successive-detection receiver, GOSPA, the blocks and the command.

Every check compares with an independent calculation: Algorithm 1 itself (T = 1), GOSPA cases
worked by hand, the count law (chi-square), the separation rule with explicit loops, the
echo written out element by element, and the closed-form least-squares residual.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from isacblocks import SystemParams
from isacblocks.blocks import (
    ImpairedULA,
    MultiTargetChannel,
    MultiTargetMetricsSink,
    ReciprocalFilter,
    ScenarioSource,
    SectorBeamformer,
    SuccessiveDetector,
    SymbolSource,
)
from isacblocks.cli import main
from isacblocks.core import Flowgraph, NullSink, VectorSink
from isacblocks.dsp.channels import complex_normal
from isacblocks.dsp.detection import proportion_interval, threshold_at_pfa
from isacblocks.dsp.gospa import gospa, multitarget_report
from isacblocks.dsp.mbml import mbml_estimate, mbml_peak
from isacblocks.dsp.multitarget import (
    Detections,
    Scenes,
    draw_scenes,
    fit_gains,
    minimum_separation,
    scene_echo,
    subtract_targets,
    successive_detection,
    supervised_loss,
    target_atoms,
    target_count_pmf,
    unsupervised_loss,
    well_separated,
)
from isacblocks.dsp.precoder import beampattern_precoder
from isacblocks.dsp.spacing import draw_spacing
from isacblocks.errors import ConfigError

C_LIGHT = 299_792_458.0


@pytest.fixture(scope="module")
def p():
    return SystemParams(n_antennas=16, n_subcarriers=64, n_angle_grid=180, n_range_grid=50, snr_radar_db=10.0)


@pytest.fixture(scope="module")
def true_d(p):
    return draw_spacing(np.random.default_rng(5), p)


def sector_of(p):
    return np.array([*p.test_sector, p.range_min_m, p.range_max_m])


def h0_threshold(p, d, n=400, pfa=0.02, seed=11):
    noise = complex_normal(np.random.default_rng(seed), (n, p.n_antennas, p.n_subcarriers))
    return threshold_at_pfa(mbml_peak(noise, *sector_of(p), d, p).statistic, pfa)


def frames_with_targets(p, d, n_frames, max_targets, seed, snr_db=None):
    """Scenes in the test sector and their reciprocal-filtered frames (x = 1) with unit noise."""
    q = p if snr_db is None else p.replace(snr_radar_db=snr_db)
    rngs = [np.random.default_rng([seed, i]) for i in range(n_frames)]
    scenes = draw_scenes(rngs, q, np.tile(sector_of(q), (n_frames, 1)), max_targets)
    f = beampattern_precoder(*q.test_sector, d, q)
    echo = scene_echo(q, d, scenes, np.tile(f, (n_frames, 1)))
    noise = complex_normal(np.random.default_rng(seed + 1), echo.shape)
    return scenes, (echo + noise).astype(np.complex64), f


# ------------------------------------------------------------------------------------------ scenes
def test_count_law_uniform_and_binomial(p):
    """The channel's count follows U{0..T} / Binomial(T, q): chi-square on 900 frames."""
    for distribution, prob in (("uniform", 0.5), ("binomial", 0.3)):
        rngs = [np.random.default_rng([7, i]) for i in range(900)]
        scenes = draw_scenes(rngs, p, np.tile(sector_of(p), (900, 1)), 3, distribution, prob)
        observed = np.bincount(scenes.count, minlength=4)
        expected = 900 * (np.full(4, 0.25) if distribution == "uniform"
                          else np.array([math.comb(3, n) * prob ** n * (1 - prob) ** (3 - n) for n in range(4)]))
        assert np.allclose(target_count_pmf(3, distribution, prob) * 900, expected)
        assert stats.chisquare(observed, expected).pvalue > 1e-3, (distribution, observed)


def test_scenes_are_separated_inside_the_sector(p):
    """Every pair differs by >= 7 angle steps (pi/179 each) or >= 4 range steps (200/49 m each):
    checked pair by pair; the draws stay in the sector; uniform positions (KS test)."""
    rngs = [np.random.default_rng([8, i]) for i in range(300)]
    scenes = draw_scenes(rngs, p, np.tile(sector_of(p), (300, 1)), 5, "binomial", 1.0)
    assert np.all(scenes.count == 5)
    d_theta, d_range = minimum_separation(p)
    assert d_theta == pytest.approx(7 * math.pi / 179) and d_range == pytest.approx(4 * 200 / 49)
    for b in range(300):
        theta, ranges = scenes.frame(b)
        for i in range(5):
            for j in range(i + 1, 5):
                assert abs(theta[i] - theta[j]) >= d_theta or abs(ranges[i] - ranges[j]) >= d_range
    lo, hi = p.test_sector
    assert np.all((scenes.theta >= lo) & (scenes.theta <= hi)) and np.all((scenes.ranges >= 0) & (scenes.ranges <= 200))
    assert stats.kstest(scenes.theta.ravel(), stats.uniform(lo, hi - lo).cdf).pvalue > 1e-3
    assert not well_separated([0.0, 0.5 * d_theta], [10.0, 10.0 + 0.5 * d_range], p)
    assert well_separated([0.0, 0.5 * d_theta], [10.0, 10.0 + d_range], p)


def test_scene_echo_element_by_element(p, true_d):
    """Sum over targets of psi a_rx a_tx^T f [x * rho]^T / sqrt(S), written out with explicit phases."""
    scenes = Scenes(np.array([2, 0]), np.array([[-0.5, -0.45], [np.nan, np.nan]]),
                    np.array([[30.0, 120.5], [np.nan, np.nan]]), np.array([[1 + 2j, -0.5j], [0, 0]]))
    rng = np.random.default_rng(3)
    f = complex_normal(rng, (2, p.n_antennas), dtype=np.complex128)
    x = np.exp(1j * rng.uniform(0, 2 * np.pi, (2, p.n_subcarriers)))
    out = scene_echo(p, true_d, scenes, f, x)
    k = np.arange(p.n_antennas)
    pos = (k - (p.n_antennas - 1) / 2) * true_d
    s = np.arange(p.n_subcarriers)
    expected = np.zeros_like(out[0])
    sigma = math.sqrt(10 ** (p.snr_radar_db / 10) / p.n_antennas)
    for t in range(2):
        a = np.exp(-2j * np.pi * pos * math.sin(scenes.theta[0, t]) / p.wavelength)
        rho = np.exp(-2j * np.pi * s * p.subcarrier_spacing_hz * 2 * scenes.ranges[0, t] / C_LIGHT)
        expected += sigma * scenes.unit_gain[0, t] * (a @ f[0]) * np.outer(a, x[0] * rho) / math.sqrt(p.n_subcarriers)
    assert np.allclose(out[0], expected, rtol=1e-10, atol=1e-12)
    assert np.all(out[1] == 0)


# ---------------------------------------------------------------------------------------- receiver
def test_one_target_receiver_is_algorithm_1(p, true_d):
    """T = 1: the same statistic and estimates as `mbml_estimate` on the same frames, bit for bit;
    declared exactly where the statistic exceeds the threshold.  For T = 3 the first slot is too."""
    _, Y, f = frames_with_targets(p, true_d, 40, 1, seed=21)
    sector = sector_of(p)
    stat, theta, rng = mbml_estimate(Y, *sector, true_d, p)
    threshold = float(np.median(stat))
    for T in (1, 3):
        det = successive_detection(Y, sector, true_d, p, threshold, T, f)
        assert np.array_equal(det.statistic[:, 0], stat)
        assert np.array_equal(det.theta_hat[:, 0], theta) and np.array_equal(det.range_hat[:, 0], rng)
        assert np.array_equal(det.count > 0, stat > threshold)
    assert np.all(det.count <= 3) and np.all(np.isnan(det.statistic[det.count == 0, 1]))


def test_least_squares_residual_closed_form(p, true_d):
    """LS fit of one atom: ``beta = <h, Y>/||h||^2`` and ``||Y - beta h||^2 = ||Y||^2 - |<h, Y>|^2/||h||^2``;
    on a noiseless on-grid target the fit recovers its amplitude and the residual map's peak is
    gone (below 1e-4 of the original)."""
    rng = np.random.default_rng(4)
    Y = complex_normal(rng, (3, p.n_antennas, p.n_subcarriers), dtype=np.complex128)
    steering, delay = target_atoms(np.array([[-0.5], [-0.4], [-0.6]]), np.array([[20.0], [77.7], [150.0]]),
                                   true_d, p)
    beta = fit_gains(Y, steering, delay)
    h = steering[:, 0, :, None] * delay[:, 0, None, :]
    inner = np.sum(h.conj() * Y, axis=(1, 2))
    norm2 = p.n_antennas * p.n_subcarriers
    assert np.allclose(beta[:, 0], inner / norm2, rtol=1e-5)
    residual = subtract_targets(Y, steering, delay, beta)
    assert np.allclose(np.sum(np.abs(residual) ** 2, axis=(1, 2)),
                       np.sum(np.abs(Y) ** 2, axis=(1, 2)) - np.abs(inner) ** 2 / norm2, rtol=1e-4)
    # noiseless target on grid cells: Algorithm 1 lands on them, subtraction removes the peak
    i, j = 120, 17
    theta, ranges = p.angle_grid[i], p.range_grid[j]
    st, de = target_atoms(np.array([[theta]]), np.array([[ranges]]), true_d, p)
    target = (5 - 3j) * st[:, 0, :, None] * de[:, 0, None, :]
    sector = (theta - 0.1, theta + 0.1, 0.0, 200.0)
    peak = mbml_peak(target, *sector, true_d, p)
    assert (peak.i_hat[0], peak.j_hat[0]) == (i, j)
    det = successive_detection(target.astype(np.complex64), sector, true_d, p, 1e-3 * peak.statistic[0], 2)
    assert det.theta_hat[0, 0] == pytest.approx(theta, abs=1e-9) and det.range_hat[0, 0] == pytest.approx(ranges)
    assert det.count[0] == 1 and det.statistic[0, 1] < 1e-4 * det.statistic[0, 0]
    assert det.gain_hat[0, 0] / math.sqrt(p.n_subcarriers) == pytest.approx(5 - 3j, rel=1e-5)


def test_separated_targets_are_found(p, true_d):
    """Up to 3 separated targets at 15 dB each (K = 16, S = 64: resolution 7.2 deg x 19.5 m): most
    targets are matched within c = 10 m, few false targets, matched error well under a
    resolution cell.  (At much higher SNR the grid-quantised estimate leaves a residual that
    can be declared again: docs/multi-target.md.)"""
    scenes, Y, f = frames_with_targets(p, true_d, 30, 3, seed=31, snr_db=15.0)
    det = successive_detection(Y, sector_of(p), true_d, p, h0_threshold(p, true_d), 3, f)
    report = multitarget_report([pos(*scenes.frame(b)) for b in range(30)], [pos(*det.frame(b)) for b in range(30)],
                                c=10.0)
    assert report.n_targets > 30
    assert report.detection_probability > 0.85 and report.false_per_frame < 0.15 and report.rmse_position < 3.0


def pos(theta, ranges):
    return np.stack([ranges * np.cos(theta), ranges * np.sin(theta)], axis=-1).reshape(-1, 2)


def test_losses_by_hand():
    det = Detections(np.array([[5.0, 3.0, 1.0], [2.0, np.nan, np.nan]]), np.array([[0.0, 0.5, 0.0], [0.0] * 3]),
                     np.array([[10.0, 20.0, 0.0], [5.0, 0, 0]]), np.zeros((2, 3), complex), np.array([2, 0]))
    assert unsupervised_loss(det) == pytest.approx(-(5 + 3 + 0) / 2)
    scenes = Scenes(np.array([1, 1]), np.array([[0.5, np.nan], [0.0, np.nan]]),
                    np.array([[21.0, np.nan], [9.0, np.nan]]), np.zeros((2, 2), complex))
    # frame 0: the target at (0.5 rad, 21 m) matches the estimate at (0.5 rad, 20 m): 1 m^2; frame 1: none declared
    assert supervised_loss(det, scenes) == pytest.approx(1.0)


# ------------------------------------------------------------------------------------------ GOSPA
def test_gospa_hand_cases():
    r = gospa([[0, 0]], [[3, 4]], c=10)
    assert (r.distance, r.localisation, r.missed, r.false) == (5.0, 25.0, 0, 0)
    r = gospa([[0, 0], [100, 0]], [[3, 4]], c=10)  # one missed: 25 + 100/2
    assert r.distance == pytest.approx(math.sqrt(75)) and (r.missed, r.false) == (1, 0)
    r = gospa(np.empty((0, 2)), [[1, 1], [2, 2]], c=10)  # two false: 2 * 100/2
    assert r.distance == pytest.approx(10.0) and (r.missed, r.false) == (0, 2)
    r = gospa([[0, 0]], [[20, 0]], c=10)  # beyond the cut-off: a miss and a false target
    assert r.distance == pytest.approx(10.0) and (r.missed, r.false) == (1, 1) and r.errors.size == 0
    r = gospa([[0, 0], [10, 0]], [[9, 0], [1, 0]], c=5)  # the optimal pairing, not the index order
    assert r.distance == pytest.approx(math.sqrt(2)) and sorted(map(tuple, r.pairs)) == [(0, 1), (1, 0)]
    r = gospa([[0, 0]], [[3, 4], [50, 50]], c=10, p=1)  # p = 1: 5 + 10/2
    assert r.distance == pytest.approx(10.0)
    assert gospa(np.empty((0, 2)), np.empty((0, 2)), c=3).distance == 0.0
    with pytest.raises(ConfigError, match="cut-off"):
        gospa([[0, 0]], [[0, 0]], c=0)


def test_report_counts_by_hand():
    truth = [np.array([[0, 0], [50, 0]]), np.empty((0, 2)), np.empty((0, 2)), np.array([[10, 10]])]
    est = [np.array([[0, 3]]), np.array([[5, 5]]), np.empty((0, 2)), np.array([[10, 14], [80, 80]])]
    r = multitarget_report(truth, est, c=10)
    assert (r.n_targets, r.n_estimates, r.n_empty_frames) == (3, 4, 2)
    assert r.detection_probability == pytest.approx(2 / 3)
    assert r.frame_pfa == pytest.approx(0.5) and r.false_per_frame == pytest.approx(2 / 4)
    assert r.rmse_position == pytest.approx(math.sqrt((9 + 16) / 2))
    d = [math.sqrt(9 + 50), math.sqrt(50), 0.0, math.sqrt(16 + 50)]
    assert r.gospa_mean == pytest.approx(np.mean(d)) and r.gospa_rms == pytest.approx(math.sqrt(np.mean(np.square(d))))
    assert r.detection_probability_ci == proportion_interval(2, 3)


# ------------------------------------------------------------------------------------------ blocks
def run_chain(p, ula, threshold, max_items, n_frames=24, T=3):
    fg = Flowgraph(max_items=max_items)
    scen = ScenarioSource(p, n_frames=n_frames, presence_probability=1.0, seed=1)
    syms = SymbolSource(p, n_frames=n_frames, seed=2)
    bf = SectorBeamformer(p, spacing=ula.spacing)
    chan = MultiTargetChannel(p, ula, max_targets=T, seed=3)
    rf = ReciprocalFilter(p)
    det = SuccessiveDetector(p, threshold, max_targets=T, spacing=ula.spacing)
    sink = MultiTargetMetricsSink(p, max_targets=T, c=10.0)
    tap = VectorSink(np.float64, (T, 6))
    fg.connect(scen, bf)
    fg.connect(bf, (chan, "precoder"))
    fg.connect((syms, "symbols"), (chan, "symbols"))
    fg.connect((syms, "messages"), NullSink(np.int32, (p.n_subcarriers,)))
    fg.connect(chan, (rf, "Y_r"))
    fg.connect((syms, "symbols"), (rf, "symbols"))
    fg.connect(rf, (det, "Y_tilde"))
    fg.connect(bf, (det, "precoder"))
    fg.connect(det, sink)
    fg.connect(det, tap)
    fg.run()
    return sink, tap


def test_blocks_chain_batch_independent_and_tagged(true_d):
    q = SystemParams(n_antennas=16, n_subcarriers=64, n_angle_grid=180, n_range_grid=50, snr_radar_db=30.0)
    ula = ImpairedULA(q, true_d)
    threshold = h0_threshold(q, true_d)
    sink_a, tap_a = run_chain(q, ula, threshold, max_items=64)
    sink_b, tap_b = run_chain(q, ula, threshold, max_items=5)
    assert np.array_equal(tap_a.data, tap_b.data, equal_nan=True)
    counts = [len(t) for t in sink_a.truth]
    assert [len(t) for t in sink_b.truth] == counts and len(set(counts)) > 1
    keys = {t.key for t in tap_a.tags}
    assert {"n_targets", "target_thetas", "target_ranges", "sector", "seq"} <= keys
    assert not keys & {"target_present", "theta", "range"}
    report = sink_a.report()
    assert report.n_frames == 24 and report.detection_probability > 0.9
    assert report.to_dict() == sink_b.report().to_dict()


def test_block_parameters_refused(p, true_d):
    ula = ImpairedULA(p, true_d)
    with pytest.raises(ConfigError, match="max_targets"):
        MultiTargetChannel(p, ula, max_targets=0)
    with pytest.raises(ConfigError, match="distribution"):
        MultiTargetChannel(p, ula, distribution="poisson")
    with pytest.raises(ConfigError, match="threshold"):
        SuccessiveDetector(p, threshold=float("nan"))
    with pytest.raises(ConfigError, match="cut-off"):
        MultiTargetMetricsSink(p, c=-1.0)


# ------------------------------------------------------------------------------------------ command
@pytest.mark.parametrize("argv, message", [
    (["--max-targets", "0"], "--max-targets"), (["--pfa", "2"], "--pfa"), (["--gospa-c", "-1"], "--gospa-c"),
    (["--frames", "0"], "--frames"), (["--snr", "5:0:1"], "--snr"), (["--learned", "/nonexistent.npy"], "--learned"),
    (["--h0-frames", "10", "--pfa", "0.01"], "--h0-frames"),
])
def test_command_refuses_bad_values(argv, message, capsys, tmp_path):
    try:
        code = main(["multi-target", "--out", str(tmp_path), *argv])
    except SystemExit as exc:  # argparse's own checks
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err


def test_command_runs_small(tmp_path, capsys):
    config = tmp_path / "small.toml"
    config.write_text("[system]\nn_antennas = 16\nn_subcarriers = 64\nn_angle_grid = 180\nn_range_grid = 50\n")
    code = main(["multi-target", "--config", str(config), "--frames", "6", "--h0-frames", "200", "--snr", "0,20",
                 "--max-targets", "1,2", "--out", str(tmp_path / "out")])
    assert code == 0
    import json

    record = json.loads((tmp_path / "out" / "multitarget.json").read_text())
    assert set(record["spacings"]) == {"known d", "lambda/2"} and (tmp_path / "out" / "multitarget.png").exists()
    curve = record["spacings"]["known d"]["curves"]["2"]
    assert len(curve["gospa_mean"]) == 2 and record["gospa"] == {"c_m": 10.0, "p": 2, "alpha": 2}


@pytest.mark.slow
def test_frame_false_alarm_rate_is_pfa(paper_params):
    """On fresh target-free frames the receiver declares anything with probability Pfa (the first
    maximum is the single-target statistic): 4000 frames, binomial 99.9% interval."""
    p = paper_params
    d = p.nominal_spacing
    threshold = h0_threshold(p, d, n=4000, pfa=0.05, seed=1)
    rng, alarms = np.random.default_rng(2), 0
    for _ in range(8):
        noise = complex_normal(rng, (500, p.n_antennas, p.n_subcarriers))
        alarms += int(np.count_nonzero(successive_detection(noise, sector_of(p), d, p, threshold, 5).count > 0))
    lo, hi = stats.binom.ppf([0.0005, 0.9995], 4000, 0.05)
    assert lo <= alarms <= hi


@pytest.fixture(scope="module")
def impaired(p):
    from isacblocks.dsp.impairments import draw_impairments

    return draw_impairments(5, p, ("spacing", "gain", "coupling"))


def test_impaired_array_one_target_is_algorithm_1_and_targets_are_found(p, impaired):
    """With gains and coupling (`dsp.impairments`) in the channel and the receiver: T = 1 is still
    `mbml_estimate` bit for bit, and the separated-target check above holds on the known array."""
    _, Y, f = frames_with_targets(p, impaired, 40, 1, seed=21)
    stat, theta, rng = mbml_estimate(Y, *sector_of(p), impaired, p)
    det = successive_detection(Y, sector_of(p), impaired, p, float(np.median(stat)), 1, f)
    assert np.array_equal(det.statistic[:, 0], stat) and np.array_equal(det.theta_hat[:, 0], theta)
    scenes, Y, f = frames_with_targets(p, impaired, 30, 3, seed=31, snr_db=15.0)
    det = successive_detection(Y, sector_of(p), impaired, p, h0_threshold(p, impaired), 3, f)
    report = multitarget_report([pos(*scenes.frame(b)) for b in range(30)], [pos(*det.frame(b)) for b in range(30)],
                                c=10.0)
    assert report.detection_probability > 0.85 and report.false_per_frame < 0.15 and report.rmse_position < 3.0
