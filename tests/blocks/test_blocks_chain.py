"""The ISAC signal chain as blocks in a Flowgraph: wiring, tags on the right frames,
reproducibility (same seeds, different batch sizes), OFDM waveforms, run-time messages."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from isacblocks import SystemParams
from isacblocks.blocks import (
    DetectionMetricsSink,
    ImpairedULA,
    ISACCombiner,
    MAPRTDetector,
    MLDemapper,
    OFDMDemodulator,
    OFDMModulator,
    ReciprocalFilter,
    ScenarioSource,
    SectorBeamformer,
    SERSink,
    SymbolSource,
    TargetChannel,
    UEChannel,
)
from isacblocks.core import Flowgraph, VectorSink, run_block
from isacblocks.dsp import beampattern_precoder, constellation, draw_spacing, isac_precoder, reciprocal_filter
from isacblocks.errors import BlockError, ConfigError

N_FRAMES = 200
TRUTH_KEYS = ("seq", "target_present", "theta", "range", "sector")


@pytest.fixture(scope="module")
def chain_params():
    """Small system, strong sensing echo (so estimates tie frames to their tags), weak comm link
    (so symbol errors happen)."""
    return SystemParams(n_antennas=16, n_subcarriers=64, n_angle_grid=180, n_range_grid=50,
                        snr_radar_db=25.0, snr_comm_db=0.0)


def build_chain(p, n_frames, max_items, seed=1, spacing_seed=2, eta=0.5, n_theta=60, n_range=40):
    """Scenario -> sensing/comm precoders -> ISAC combiner -> target channel + UE channel
    -> reciprocal filter -> MAPRT -> metrics; UE -> ML demapper -> SER.  Taps (VectorSinks)
    on the estimates and on the CSI by fan-out."""
    ula = ImpairedULA.drawn(p, seed=spacing_seed)
    s = p.n_subcarriers
    b = dict(
        scen=ScenarioSource(p, n_frames=n_frames, sector="test", seed=seed, name="scenario"),
        syms=SymbolSource(p, n_frames=n_frames, seed=seed + 1, name="symbols"),
        mod=OFDMModulator(p, name="mod"),
        bf_r=SectorBeamformer(p, spacing=ula.spacing, name="bf_r"),
        bf_c=SectorBeamformer(p, spacing=ula.spacing, fixed_sector=p.ue_sector, name="bf_c"),
        comb=ISACCombiner(p, eta=eta, phi=0.0, name="combiner"),
        tgt=TargetChannel(p, ula, seed=seed + 2, name="target"),
        rf=ReciprocalFilter(p, name="recip"),
        det=MAPRTDetector(p, spacing=ula.spacing, n_theta=n_theta, n_range=n_range, name="maprt"),
        metrics=DetectionMetricsSink(p, name="metrics"),
        est_tap=VectorSink(np.float64, (3,), name="est_tap"),
        ue=UEChannel(p, ula, seed=seed + 3, name="ue"),
        demap=MLDemapper(p, name="demap"),
        ser=SERSink(p, name="ser"),
        csi_tap=VectorSink(np.complex64, (s,), name="csi_tap"),
        sent_tap=VectorSink(np.int32, (s,), name="sent_tap"),
    )
    fg = Flowgraph(max_items=max_items, name=f"chain{max_items}")
    fg.connect(b["scen"], b["bf_r"])
    fg.connect(b["scen"], b["bf_c"])
    fg.connect(b["bf_r"], (b["comb"], "f_sensing"))
    fg.connect(b["bf_c"], (b["comb"], "f_comm"))
    fg.connect((b["syms"], "symbols"), b["mod"])
    fg.connect(b["comb"], (b["tgt"], "precoder"))
    fg.connect(b["mod"], (b["tgt"], "symbols"))
    fg.connect(b["tgt"], (b["rf"], "Y_r"))
    fg.connect(b["mod"], (b["rf"], "symbols"))
    fg.connect(b["rf"], b["det"], b["metrics"])
    fg.connect(b["det"], b["est_tap"])
    fg.connect(b["comb"], (b["ue"], "precoder"))
    fg.connect(b["mod"], (b["ue"], "symbols"))
    fg.connect((b["ue"], "y_c"), (b["demap"], "y_c"))
    fg.connect((b["ue"], "csi"), (b["demap"], "csi"))
    fg.connect((b["ue"], "csi"), b["csi_tap"])
    fg.connect(b["demap"], (b["ser"], "decided"))
    fg.connect((b["syms"], "messages"), (b["ser"], "sent"))
    fg.connect((b["syms"], "messages"), b["sent_tap"])
    return fg, b, ula


def truth_by_frame(tags, n):
    """{offset: {key: value}} from a tag list (duplicates must agree)."""
    frames = [dict() for _ in range(n)]
    for t in tags:
        if t.key in TRUTH_KEYS:
            assert frames[t.offset].get(t.key, t.value) == t.value, t
            frames[t.offset][t.key] = t.value
    return frames


@pytest.fixture(scope="module")
def chain_runs(chain_params):
    runs = {}
    for label, max_items in (("a64", 64), ("b64", 64), ("c7", 7)):
        fg, blocks, ula = build_chain(chain_params, N_FRAMES, max_items)
        fg.run()
        runs[label] = (fg, blocks, ula)
    return runs


def test_chain_runs_and_every_frame_reaches_the_sinks(chain_runs):
    _, b, _ = chain_runs["a64"]
    assert b["est_tap"].data.shape == (N_FRAMES, 3)
    assert b["metrics"].records.shape == (N_FRAMES, 6) and b["metrics"].invalid_frames == 0
    assert b["ser"].symbols == N_FRAMES * b["scen"].params.n_subcarriers
    assert b["csi_tap"].data.shape == (N_FRAMES, b["scen"].params.n_subcarriers)


def test_chain_tags_arrive_on_the_right_frames(chain_runs, chain_params):
    p = chain_params
    _, b, _ = chain_runs["a64"]
    frames = truth_by_frame(b["est_tap"].tags, N_FRAMES)
    # the scenario source alone, same seed: the reference truth per frame
    ref = run_block(ScenarioSource(p, n_frames=N_FRAMES, sector="test", seed=1), max_items=64)
    ref_frames = truth_by_frame(ref.tags[0], N_FRAMES)
    lo, hi = p.test_sector
    for i, (got, want) in enumerate(zip(frames, ref_frames)):
        assert got == want, i
        assert got["seq"] == i
        assert got["sector"] == pytest.approx((lo, hi, p.range_min_m, p.range_max_m))
        assert ("theta" in got) == ("range" in got) == got["target_present"]
        if got["target_present"]:
            assert lo <= got["theta"] <= hi and p.range_min_m <= got["range"] <= p.range_max_m
    np.testing.assert_allclose(ref.outputs[0], np.tile([lo, hi, p.range_min_m, p.range_max_m], (N_FRAMES, 1)))
    present = np.array([f["target_present"] for f in frames])
    assert abs(present.mean() - 0.5) < 6 * 0.5 / math.sqrt(N_FRAMES)
    # the metrics sink saw the same truth on the same rows
    rec = b["metrics"].records
    np.testing.assert_array_equal(rec[:, 3], present.astype(float))
    np.testing.assert_array_equal(rec[present, 4], [f["theta"] for f in frames if f["target_present"]])
    np.testing.assert_array_equal(rec[:, :3], b["est_tap"].data)
    # ue_angle tags from the UE channel: one value per frame (duplicates agree), inside the UE sector
    ue_angle: dict[int, float] = {}
    for t in b["csi_tap"].tags:
        if t.key == "ue_angle":
            assert ue_angle.setdefault(t.offset, t.value) == t.value
    assert sorted(ue_angle) == list(range(N_FRAMES))
    assert all(p.ue_sector[0] <= v <= p.ue_sector[1] for v in ue_angle.values())


def test_chain_estimates_match_their_frames_truth(chain_runs, chain_params):
    """Physics ties each estimate to its frame: with a strong echo, the estimated angle and range
    sit near the tagged truth on (almost) every target frame, and not near the neighbour's."""
    p = chain_params
    _, b, _ = chain_runs["a64"]
    frames = truth_by_frame(b["est_tap"].tags, N_FRAMES)
    est = b["est_tap"].data
    present = np.array([f["target_present"] for f in frames])
    idx = np.flatnonzero(present)
    theta = np.array([frames[i]["theta"] for i in idx])
    rng = np.array([frames[i]["range"] for i in idx])
    du = np.abs(np.sin(est[idx, 1]) - np.sin(theta))
    dr = np.abs(est[idx, 2] - rng)
    near = (du < 2.0 / p.n_antennas) & (dr < p.range_resolution)
    assert near.mean() > 0.9, near.mean()
    # shifted truth (each estimate against the next target frame's truth) does not match
    du_shift = np.abs(np.sin(est[idx[:-1], 1]) - np.sin(theta[1:]))
    dr_shift = np.abs(est[idx[:-1], 2] - rng[1:])
    assert ((du_shift < 2.0 / p.n_antennas) & (dr_shift < p.range_resolution)).mean() < 0.3
    # detection statistic: target frames stand out of the noise frames
    h0, h1 = est[~present, 0], est[present, 0]
    assert np.median(h1) > np.quantile(h0, 0.95)
    # H0 statistic scale: max over the grid of |a^H N rho^*| with E|.|^2 = K S N0 per cell
    ks = p.n_antennas * p.n_subcarriers
    assert math.sqrt(ks) < np.median(h0) < 4 * math.sqrt(ks)
    report = b["metrics"].report(threshold=float(np.quantile(h0, 0.95)))
    assert report.n_h0 + report.n_h1 == N_FRAMES and report.n_h1 == present.sum()


def test_chain_ser_matches_closed_form_given_the_csi(chain_runs, chain_params):
    """Per-subcarrier ML over CN(0, N0) noise: P(error) = 2Q - Q^2 with Q = Q(|kappa| / sqrt(N0))."""
    p = chain_params
    _, b, _ = chain_runs["a64"]
    kappa = b["csi_tap"].data.astype(np.complex128)
    q = stats.norm.sf(np.abs(kappa) / math.sqrt(p.noise_power))
    pe = 2 * q - q * q
    n = pe.size
    assert b["ser"].symbols == n
    assert abs(b["ser"].errors - pe.sum()) < 6 * math.sqrt(np.sum(pe * (1 - pe)))
    assert b["ser"].errors > 50  # the test point actually has errors
    rep = b["ser"].report()
    assert rep["ser_ci"][0] <= rep["ser"] <= rep["ser_ci"][1] and rep["errors"] == b["ser"].errors


@pytest.mark.parametrize("other", ["b64", "c7"])
def test_chain_is_reproducible_for_same_seeds_and_any_batch_size(chain_runs, other):
    _, a, _ = chain_runs["a64"]
    fg_o, o, _ = chain_runs[other]
    np.testing.assert_array_equal(o["est_tap"].data, a["est_tap"].data)
    np.testing.assert_array_equal(o["csi_tap"].data, a["csi_tap"].data)
    np.testing.assert_array_equal(o["sent_tap"].data, a["sent_tap"].data)
    assert (o["ser"].errors, o["ser"].symbols) == (a["ser"].errors, a["ser"].symbols)
    key = lambda t: (t.offset, t.key, repr(t.value))  # noqa: E731
    assert sorted(map(key, o["est_tap"].tags)) == sorted(map(key, a["est_tap"].tags))
    assert sorted(map(key, o["csi_tap"].tags)) == sorted(map(key, a["csi_tap"].tags))
    if other == "c7":
        assert fg_o.work_calls["maprt"] >= N_FRAMES // 7


def test_chain_different_seeds_give_different_noise(chain_params, chain_runs):
    fg, b, _ = build_chain(chain_params, 20, 64, seed=99)
    fg.run()
    _, a, _ = chain_runs["a64"]
    assert not np.array_equal(b["est_tap"].data[:, 0], a["est_tap"].data[:20, 0])


def test_full_size_chain_runs_with_paper_params(paper_params):
    fg, b, _ = build_chain(paper_params, 24, 16, eta=1.0, n_theta=720, n_range=200)
    fg.run()
    frames = truth_by_frame(b["est_tap"].tags, 24)
    assert [f["seq"] for f in frames] == list(range(24))
    assert b["est_tap"].data.shape == (24, 3) and np.all(np.isfinite(b["est_tap"].data))
    lo, hi = paper_params.test_sector
    assert np.all((b["est_tap"].data[:, 1] >= lo) & (b["est_tap"].data[:, 1] <= hi))


# --------------------------------------------------------------------------- sources and batching
@pytest.mark.parametrize("sector", ["test", "train", (-0.3, 0.2)])
def test_scenario_source_output_does_not_depend_on_batch_size(chain_params, sector):
    """liquid-dsp style: the same stream cut into different batches is the same stream."""
    runs = [run_block(ScenarioSource(chain_params, n_frames=40, sector=sector, seed=5), max_items=m)
            for m in (1, 7, 64)]
    key = lambda t: (t.offset, t.key, repr(t.value))  # noqa: E731
    for r in runs[1:]:
        np.testing.assert_array_equal(r.outputs[0], runs[0].outputs[0])
        assert sorted(map(key, r.tags[0])) == sorted(map(key, runs[0].tags[0]))


def test_scenario_source_train_sectors_follow_the_paper_ranges(chain_params):
    out = run_block(ScenarioSource(chain_params, n_frames=300, sector="train", seed=6), max_items=300).outputs[0]
    center, width = np.degrees(out[:, :2].mean(axis=1)), np.degrees(out[:, 1] - out[:, 0])
    assert np.all((width >= 10 - 1e-9) & (width <= 20 + 1e-9)) and np.all(np.abs(center) <= 60 + 1e-9)
    tags = run_block(ScenarioSource(chain_params, n_frames=50, alternate=True, seed=6)).tags[0]
    present = [t.value for t in sorted(tags, key=lambda t: t.offset) if t.key == "target_present"]
    assert present == [i % 2 == 1 for i in range(50)]


def test_symbol_source_batches_and_uniform_messages(chain_params):
    a = run_block(SymbolSource(chain_params, n_frames=60, seed=3), max_items=7)
    b = run_block(SymbolSource(chain_params, n_frames=60, seed=3), max_items=64)
    np.testing.assert_array_equal(a.outputs[1], b.outputs[1])
    np.testing.assert_array_equal(a.outputs[0], constellation("qpsk")[a.outputs[1]])
    counts = np.bincount(a.outputs[1].ravel(), minlength=4)
    n = a.outputs[1].size
    assert np.all(np.abs(counts - n / 4) < 6 * math.sqrt(n * 0.25 * 0.75))


def test_sources_reject_bad_configuration(chain_params):
    with pytest.raises(ConfigError):
        ScenarioSource(chain_params, sector="north")
    with pytest.raises(ConfigError):
        ScenarioSource(chain_params, sector=(0.3, 0.2))
    with pytest.raises(ConfigError):
        ScenarioSource(chain_params, presence_probability=1.5)


# --------------------------------------------------------------------------- OFDM waveforms
def test_ofdm_time_domain_round_trip_with_cyclic_prefix(chain_params):
    p = chain_params
    s, cp = p.n_subcarriers, 16
    syms = SymbolSource(p, n_frames=50, seed=8)
    mod = OFDMModulator(p, time_domain=True, cyclic_prefix=cp)
    demod = OFDMDemodulator(p, cyclic_prefix=cp)
    back, wave_tap, sym_tap = (VectorSink(np.complex64, (s,)), VectorSink(np.complex64, (s + cp,)),
                               VectorSink(np.complex64, (s,)))
    fg = Flowgraph(max_items=9)
    fg.connect((syms, "symbols"), mod, demod, back)
    fg.connect(mod, wave_tap)
    fg.connect((syms, "symbols"), sym_tap)
    fg.connect((syms, "messages"), VectorSink(np.int32, (s,)))
    fg.run()
    x = sym_tap.data.astype(np.complex128)
    np.testing.assert_allclose(back.data, x, atol=2e-6)
    w = wave_tap.data.astype(np.complex128)
    np.testing.assert_array_equal(w[:, :cp], w[:, -cp:])  # the prefix is the symbol's tail
    n = np.arange(s)
    idft = np.exp(2j * np.pi * np.outer(n, n) / s) / math.sqrt(s)  # unitary inverse DFT
    np.testing.assert_allclose(w[:, cp:], x @ idft.T, atol=2e-6)
    # Parseval: the unitary IFFT keeps the energy of every OFDM symbol (QPSK: S)
    np.testing.assert_allclose(np.sum(np.abs(w[:, cp:]) ** 2, axis=1), np.sum(np.abs(x) ** 2, axis=1), rtol=1e-5)
    np.testing.assert_allclose(np.sum(np.abs(x) ** 2, axis=1), s, rtol=1e-5)


def test_ofdm_frequency_domain_mode_and_bad_prefix(chain_params):
    p = chain_params
    x = constellation("qpsk")[np.random.default_rng(0).integers(0, 4, (5, p.n_subcarriers))]
    np.testing.assert_array_equal(run_block(OFDMModulator(p), [x]).outputs[0], x)
    with pytest.raises(ConfigError):
        OFDMModulator(p, cyclic_prefix=4)
    with pytest.raises(ConfigError):
        OFDMModulator(p, time_domain=True, cyclic_prefix=p.n_subcarriers + 1)
    with pytest.raises(ConfigError):
        OFDMDemodulator(p, cyclic_prefix=-1)


# --------------------------------------------------------------------------- block shells vs dsp
def test_reciprocal_filter_and_demapper_blocks_equal_their_functions(chain_params):
    p = chain_params
    rng = np.random.default_rng(9)
    k, s = p.n_antennas, p.n_subcarriers
    Y = (rng.standard_normal((6, k, s)) + 1j * rng.standard_normal((6, k, s))).astype(np.complex64)
    x = constellation("qpsk")[rng.integers(0, 4, (6, s))]
    out = run_block(ReciprocalFilter(p), [Y, x], tags=[[(2, "k", 1)], [(3, "j", 2)]], max_items=4)
    np.testing.assert_allclose(out.outputs[0], reciprocal_filter(Y, x), rtol=1e-6)
    assert sorted((t.offset, t.key) for t in out.tags[0]) == [(2, "k"), (3, "j")]
    kappa = (rng.standard_normal((6, s)) + 1j * rng.standard_normal((6, s))).astype(np.complex64)
    m = rng.integers(0, 4, (6, s))
    y = (kappa * constellation("qpsk")[m]).astype(np.complex64)
    np.testing.assert_array_equal(run_block(MLDemapper(p), [y, kappa]).outputs[0], m)


def test_beamformer_spacing_message_and_combiner_tradeoff_message(chain_params):
    p = chain_params
    sectors = np.tile([*p.test_sector, p.range_min_m, p.range_max_m], (4, 1))
    new_d = draw_spacing(np.random.default_rng(12), p)
    bf = SectorBeamformer(p)
    out = run_block(bf, [sectors], messages=[("spacing", new_d)]).outputs[0]
    expected = beampattern_precoder(*p.test_sector, new_d, p)
    np.testing.assert_allclose(out, np.tile(expected, (4, 1)), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)
    with pytest.raises((BlockError, ConfigError), match="bf_bad"):  # a bad spacing is refused, naming the block
        run_block(SectorBeamformer(p, name="bf_bad"), [sectors], messages=[("spacing", -new_d)])
    f_r = np.tile(expected, (3, 1)).astype(np.complex64)
    f_c = np.tile(beampattern_precoder(*p.ue_sector, new_d, p), (3, 1)).astype(np.complex64)
    comb = ISACCombiner(p, eta=1.0)
    res = run_block(comb, [f_r, f_c], messages=[("tradeoff", {"eta": 0.25, "phi": 1.0})])
    np.testing.assert_allclose(res.outputs[0][0], isac_precoder(f_r[0], f_c[0], 0.25, 1.0), atol=1e-6)
    with pytest.raises(ConfigError):
        ISACCombiner(p, eta=-0.1)


def test_maprt_detector_fixed_sector_spacing_message_and_missing_sector_tag(chain_params):
    p = chain_params
    k, s = p.n_antennas, p.n_subcarriers
    d = draw_spacing(np.random.default_rng(13), p)
    theta, r = math.radians(-31.0), 80.0
    a = np.exp(-2j * np.pi * (np.arange(k) - (k - 1) / 2) * d * math.sin(theta) / p.wavelength)
    rho = np.exp(-2j * np.pi * np.arange(s) * p.subcarrier_spacing_hz * 2 * r / 299_792_458.0)
    Y = np.tile(np.outer(a, rho), (2, 1, 1)).astype(np.complex64)
    det = MAPRTDetector(p, sector=p.test_sector, n_theta=121, n_range=101, name="maprt_fixed")
    est = run_block(det, [Y], messages=[("spacing", d)]).outputs[0]
    assert np.all(np.abs(est[:, 1] - theta) <= np.radians(20) / 120 + 1e-12)
    assert np.all(np.abs(est[:, 2] - r) <= 2.0 + 1e-9)
    assert np.allclose(est[:, 0], k * s, rtol=0.05)
    with pytest.raises(BlockError, match="sector"):
        run_block(MAPRTDetector(p, name="maprt_untagged"), [Y])
