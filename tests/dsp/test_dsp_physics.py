"""Physics (paper Sec. II-III, eq. 1-10) and SystemParams, checked against independent
closed forms and statistics.

Statistical tolerances are a multiple (5-6) of the standard error implied by the sample
count, with fixed seeds, so a correct library fails far less than once in a thousand
suite runs and a wrong constant or sign fails every time.  Steering vectors used as a
reference are written out here from the paper's formula, not taken from the library.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy import stats

from isacblocks import SystemParams
from isacblocks.blocks import ImpairedULA, TargetChannel, UEChannel
from isacblocks.core import Tag, run_block
from isacblocks.dsp import (
    beampattern_precoder,
    complex_normal,
    constellation,
    delay_steering,
    draw_spacing,
    draw_targets,
    element_positions,
    frame_noise,
    isac_precoder,
    load_spacing,
    maprt,
    ml_demap,
    proportion_interval,
    range_steering,
    reciprocal_filter,
    save_spacing,
    symbol_error_rate_qpsk,
    threshold_at_pfa,
    threshold_interval,
    training_sectors,
    ue_channel_frequency_response,
    ula_steering,
)
from isacblocks.dsp.metrics import detection_report, position
from isacblocks.errors import ConfigError, ShapeError

C = 299_792_458.0


# --------------------------------------------------------------------------- reference formulas
def ref_steering(theta, spacing, wavelength):
    """[a(theta)]_k = exp(-j 2 pi (k - (K-1)/2) d_k sin(theta) / lambda), written out (K,)."""
    spacing = np.asarray(spacing, dtype=float)
    k = np.arange(spacing.size)
    return np.exp(-2j * np.pi * (k - (spacing.size - 1) / 2) * spacing * np.sin(theta) / wavelength)


def ref_delay(tau, n_sub, delta_f):
    """[rho(tau)]_s = exp(-j 2 pi s Delta_f tau) (S,)."""
    return np.exp(-2j * np.pi * np.arange(n_sub) * delta_f * tau)


def dirichlet(n, x):
    """|sum_{m=0}^{n-1} exp(j pi m x)| = |sin(n pi x / 2) / sin(pi x / 2)| (n when x = 0)."""
    x = np.asarray(x, dtype=float)
    den = np.sin(np.pi * x / 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.abs(np.sin(n * np.pi * x / 2) / den)
    return np.where(np.abs(den) < 1e-15, float(n), out)


# =========================================================================== SystemParams
def test_paper_defaults_and_derived_values(paper_params):
    p = paper_params
    assert (p.n_antennas, p.n_subcarriers, p.n_taps, p.n_angle_grid, p.n_range_grid) == (64, 256, 5, 720, 200)
    assert p.subcarrier_spacing_hz == 120e3 and p.carrier_hz == 60e9 and p.noise_power == 1.0
    assert p.wavelength == pytest.approx(C / 60e9, rel=1e-15)
    assert p.wavelength == pytest.approx(4.9965e-3, abs=5e-8)
    assert p.spacing_std == pytest.approx(p.wavelength / 25, rel=1e-15)  # ~0.2 mm
    assert p.spacing_std == pytest.approx(0.2e-3, abs=2e-6)
    np.testing.assert_array_equal(p.nominal_spacing, np.full(64, C / 60e9 / 2))
    assert p.target_gain_variance == pytest.approx(10 ** 1.5 / 64, rel=1e-12)
    assert p.tap_powers.shape == (5,)
    assert p.tap_powers.sum() == pytest.approx(10 ** 2 * 256, rel=1e-12)
    np.testing.assert_allclose(p.tap_powers[1:] / p.tap_powers[:-1], np.exp(-1.0), rtol=1e-12)
    assert p.angle_resolution == pytest.approx(2 / 64)
    assert p.range_resolution == pytest.approx(C / (2 * 256 * 120e3), rel=1e-12)  # ~4.88 m
    assert p.window_half_angle == 7 and p.window_half_range == 4
    assert p.angle_grid.shape == (720,) and p.angle_grid[0] == -np.pi / 2 and p.angle_grid[-1] == np.pi / 2
    assert p.range_grid.shape == (200,) and p.range_grid[0] == 0.0 and p.range_grid[-1] == 200.0
    with pytest.raises(ValueError):
        p.angle_grid[0] = 1.0  # shared grids are read-only
    np.testing.assert_allclose(p.test_sector, np.radians([-40.0, -20.0]))
    np.testing.assert_allclose(p.ue_sector, np.radians([30.0, 50.0]))
    assert p.range_to_delay(150.0) == pytest.approx(300.0 / C)
    assert p.pfa == 0.01
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.n_antennas = 8


@pytest.mark.parametrize("field, value, rule", [
    ("n_antennas", 1, "K >= 2"),
    ("n_antennas", 64.5, "integer"),
    ("n_antennas", True, "integer"),
    ("n_subcarriers", 0, "S >= 1"),
    ("pfa", 1.5, "(0, 1)"),
    ("pfa", 0.0, "(0, 1)"),
    ("noise_power", 0.0, "> 0"),
    ("carrier_hz", -60e9, "> 0"),
    ("n_taps", 300, "L <= n_subcarriers"),
    ("tap_decay", -1.0, ">= 0"),
    ("range_max_m", -5.0, "> range_min_m"),
    ("spacing_std_wavelengths", -0.1, ">= 0"),
    ("snr_radar_db", float("nan"), "finite"),
    ("subcarrier_spacing_hz", "120e3", "real number"),
    ("constellation", "16qam", "one of"),
    ("test_sector_deg", (-100.0, 0.0), "-90 <= min < max <= 90"),
    ("ue_sector_deg", (50.0, 30.0), "-90 <= min < max <= 90"),
    ("train_width_deg", (0.0, 20.0), "0 < min"),
    ("test_sector_deg", "abc", "pair"),
])
def test_invalid_field_raises_config_error_naming_field_value_rule(field, value, rule):
    with pytest.raises(ConfigError) as info:
        SystemParams(**{field: value})
    msg = str(info.value)
    assert f"SystemParams.{field}" in msg, msg
    assert rule in msg, msg
    shown = repr(tuple(float(v) for v in value)) if isinstance(value, tuple) else repr(value)
    assert shown in msg or repr(value) in msg, msg


def test_replace_and_dict_round_trip_and_unknown_field():
    p = SystemParams().replace(n_antennas=32, snr_radar_db=10.0)
    assert p.n_antennas == 32 and p.target_gain_variance == pytest.approx(10.0 / 32)
    assert SystemParams.from_dict(p.to_dict()) == p
    with pytest.raises(ConfigError, match="did you mean 'n_subcarriers'"):
        p.replace(n_subcarrier=10)
    with pytest.raises(ConfigError, match="n_antennas"):
        p.replace(n_antennas=0)


def test_toml_loading_with_and_without_system_table(tmp_path):
    a = tmp_path / "a.toml"
    a.write_text('[system]\nn_antennas = 32\nsnr_radar_db = 10.0\ntest_sector_deg = [-30, -10]\n'
                 'constellation = "qpsk"\n')
    p = SystemParams.from_toml(a)
    assert p.n_antennas == 32 and p.test_sector_deg == (-30.0, -10.0)
    assert p.target_gain_variance == pytest.approx(10 / 32)
    assert p.n_subcarriers == 256  # untouched fields keep the paper's defaults
    b = tmp_path / "b.toml"
    b.write_text("n_subcarriers = 128\n")
    assert SystemParams.from_toml(b).n_subcarriers == 128


def test_toml_unknown_key_suggests_the_nearest_valid_name(tmp_path):
    f = tmp_path / "typo.toml"
    f.write_text("[system]\nn_antenas = 32\n")
    with pytest.raises(ConfigError) as info:
        SystemParams.from_toml(f)
    msg = str(info.value)
    assert "n_antenas" in msg and "did you mean 'n_antennas'" in msg and "typo.toml" in msg
    g = tmp_path / "far.toml"
    g.write_text("zzzz_qqqq = 1\n")
    with pytest.raises(ConfigError, match="valid names: .*n_antennas"):
        SystemParams.from_toml(g)


def test_toml_bad_values_bad_syntax_and_missing_file(tmp_path):
    f = tmp_path / "bad.toml"
    f.write_text("[system]\npfa = 2.0\n")
    with pytest.raises(ConfigError) as info:
        SystemParams.from_toml(f)
    assert "bad.toml" in str(info.value) and "SystemParams.pfa" in str(info.value)
    g = tmp_path / "syntax.toml"
    g.write_text("[system\nn = \n")
    with pytest.raises(ConfigError, match="syntax.toml"):
        SystemParams.from_toml(g)
    with pytest.raises(ConfigError, match="missing.toml"):
        SystemParams.from_toml(tmp_path / "missing.toml")
    h = tmp_path / "extra.toml"
    h.write_text("other = 1\n[system]\nn_antennas = 8\n")
    with pytest.raises(ConfigError, match="other"):
        SystemParams.from_toml(h)


# =========================================================================== steering (eq. 1, 13, 14)
def test_steering_unit_modulus_and_matches_paper_formula(paper_params):
    p = paper_params
    d = draw_spacing(np.random.default_rng(1), p)
    theta = np.radians([-89.0, -35.0, 0.0, 12.5, 71.0])
    a = ula_steering(theta, d, p.wavelength)
    assert a.shape == (64, 5)
    np.testing.assert_allclose(np.abs(a), 1.0, atol=1e-12)
    for n, t in enumerate(theta):
        np.testing.assert_allclose(a[:, n], ref_steering(t, d, p.wavelength), atol=1e-9)
    np.testing.assert_allclose(ula_steering(0.0, d, p.wavelength)[:, 0], 1.0)  # broadside: all in phase
    np.testing.assert_allclose(ula_steering(-0.3, d, p.wavelength), np.conj(ula_steering(0.3, d, p.wavelength)))
    pos = element_positions(p.nominal_spacing)
    np.testing.assert_allclose(pos, (np.arange(64) - 31.5) * p.wavelength / 2)
    np.testing.assert_allclose(np.diff(pos), p.wavelength / 2)


def test_half_wavelength_ula_first_null_is_orthogonal(paper_params):
    p = paper_params
    d = p.nominal_spacing
    k = p.n_antennas
    theta0 = np.radians(-30.0)
    theta_null = np.arcsin(np.sin(theta0) + 2.0 / k)  # first null: sin moves by 2/K
    a0 = ula_steering(theta0, d, p.wavelength)[:, 0]
    a1 = ula_steering(theta_null, d, p.wavelength)[:, 0]
    assert abs(np.vdot(a0, a1)) < 1e-9 * k
    assert abs(np.vdot(a0, a0)) == pytest.approx(k)
    # the whole beam: |a(t0)^H a(t)| is the Dirichlet kernel of du = sin t - sin t0 (geometric series)
    theta = np.arcsin(np.clip(np.sin(theta0) + np.linspace(-0.5, 0.5, 101), -1, 1))
    inner = np.abs(ula_steering(theta, d, p.wavelength).conj().T @ a0)
    np.testing.assert_allclose(inner, dirichlet(k, np.sin(theta) - np.sin(theta0)), atol=1e-8)


def test_delay_steering_one_range_resolution_apart_is_orthogonal(paper_params):
    p = paper_params
    s = p.n_subcarriers
    r0 = 37.0
    dr = C / (2 * s * p.subcarrier_spacing_hz)  # Delta_R, eq. 11
    rho = range_steering(np.array([r0, r0 + dr, r0 + 2 * dr]), p)
    assert rho.shape == (s, 3)
    np.testing.assert_allclose(rho[:, 0], ref_delay(2 * r0 / C, s, p.subcarrier_spacing_hz), atol=1e-9)
    assert abs(np.vdot(rho[:, 0], rho[:, 1])) < 1e-8 * s
    assert abs(np.vdot(rho[:, 1], rho[:, 2])) < 1e-8 * s
    # general delay offset: Dirichlet kernel of 2 Delta_f Delta_tau
    dtau = np.linspace(-3, 3, 61) / (s * p.subcarrier_spacing_hz)
    tau0 = 2 * r0 / C
    rho_all = delay_steering(tau0 + dtau, s, p.subcarrier_spacing_hz)
    inner = np.abs(rho_all.conj().T @ rho[:, 0])
    np.testing.assert_allclose(inner, dirichlet(s, 2 * p.subcarrier_spacing_hz * dtau), atol=1e-7)
    # sign convention: the phase falls along the subcarriers for a positive delay
    ratio = rho[1, 0] / rho[0, 0]
    assert np.angle(ratio) == pytest.approx(-2 * np.pi * p.subcarrier_spacing_hz * tau0)


def test_steering_rejects_bad_shapes(paper_params):
    with pytest.raises(ShapeError):
        ula_steering(np.zeros((2, 2)), paper_params.nominal_spacing, paper_params.wavelength)
    with pytest.raises(ShapeError):
        ula_steering(0.1, [1.0], paper_params.wavelength)
    with pytest.raises(ShapeError):
        delay_steering(np.zeros((2, 2)), 8, 1.0)


# =========================================================================== precoder (eq. 4-6)
def _beam_fraction_in_sector(f, spacing, wavelength, lo, hi, n=4000):
    """Fraction of the beampattern energy |a^T f|^2, integrated over u = sin(theta), inside the sector,
    and the mean of |a^T f|^2 over u in [-1, 1] (midpoint rule: exact for a lambda/2 array, whose
    pattern is a trigonometric polynomial of degree < n in pi u)."""
    u = -1 + (np.arange(n) + 0.5) * 2 / n
    theta = np.arcsin(u)
    pos = (np.arange(spacing.size) - (spacing.size - 1) / 2) * spacing
    gain = np.abs(np.exp(-2j * np.pi / wavelength * np.outer(u, pos)) @ f) ** 2
    np.testing.assert_allclose(gain[::400], [abs(ref_steering(t, spacing, wavelength) @ f) ** 2
                                             for t in theta[::400]], rtol=1e-9, atol=1e-9)
    inside = (theta >= lo) & (theta <= hi)
    return gain[inside].sum() / gain.sum(), gain.mean()


@pytest.mark.parametrize("sector_deg", [(-40.0, -20.0), (30.0, 50.0), (-5.0, 5.0)])
@pytest.mark.parametrize("spacing_kind", ["half_wavelength", "drawn"])
def test_beampattern_precoder_unit_norm_and_energy_in_sector(paper_params, sector_deg, spacing_kind):
    p = paper_params
    d = p.nominal_spacing if spacing_kind == "half_wavelength" else draw_spacing(np.random.default_rng(7), p)
    lo, hi = np.radians(sector_deg)
    f = beampattern_precoder(lo, hi, d, p)
    assert f.shape == (64,)
    assert np.linalg.norm(f) == pytest.approx(1.0, abs=1e-12)
    fraction, mean_gain = _beam_fraction_in_sector(f, d, p.wavelength, lo, hi)
    assert fraction > 0.8, fraction
    if spacing_kind == "half_wavelength":
        # Parseval for a lambda/2 ULA: (1/2) int_{-1}^{1} |a(u)^T f|^2 du = ||f||^2 = 1
        assert mean_gain == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("spacing_kind", ["half_wavelength", "drawn"])
def test_beampattern_precoder_is_the_eq6_ls_solution(paper_params, spacing_kind):
    p = paper_params
    d = p.nominal_spacing if spacing_kind == "half_wavelength" else draw_spacing(np.random.default_rng(3), p)
    lo, hi = np.radians([-40.0, -20.0])
    grid = np.linspace(-np.pi / 2, np.pi / 2, 720)
    A = np.stack([ref_steering(t, d, p.wavelength) for t in grid], axis=1)  # (K, N)
    b = np.where((grid >= lo) & (grid <= hi), 64.0, 0.0)
    f6 = np.linalg.solve(A.conj() @ A.T, A.conj() @ b)  # eq. 6
    f6 /= np.linalg.norm(f6)
    f = beampattern_precoder(lo, hi, d, p)
    np.testing.assert_allclose(f, f6, atol=1e-8)


def test_beampattern_precoder_rejects_bad_sectors(paper_params):
    p = paper_params
    with pytest.raises(ConfigError):
        beampattern_precoder(0.2, 0.1, p.nominal_spacing, p)
    with pytest.raises(ConfigError, match="no point"):
        beampattern_precoder(0.10001, 0.10002, p.nominal_spacing, p)


def test_isac_precoder_limits_and_eq4(paper_params):
    p = paper_params
    d = p.nominal_spacing
    f_r = beampattern_precoder(*p.test_sector, d, p)
    f_c = beampattern_precoder(*p.ue_sector, d, p)
    phi = 3 * np.pi / 4
    np.testing.assert_allclose(isac_precoder(f_r, f_c, 1.0, phi), f_r, atol=1e-12)
    f0 = isac_precoder(f_r, f_c, 0.0, phi)
    np.testing.assert_allclose(f0, np.exp(1j * phi) * f_c, atol=1e-12)
    assert abs(np.vdot(f_c, f0)) == pytest.approx(1.0, abs=1e-12)
    eta = 0.3
    ref = math.sqrt(eta) * f_r + math.sqrt(1 - eta) * np.exp(1j * phi) * f_c
    np.testing.assert_allclose(isac_precoder(f_r, f_c, eta, phi), ref / np.linalg.norm(ref), atol=1e-12)
    # the two beams share the power: both sectors are lit, each less than by its own precoder
    mid_r, mid_c = np.mean(p.test_sector), np.mean(p.ue_sector)
    gain = lambda f, t: abs(ref_steering(t, d, p.wavelength) @ f) ** 2  # noqa: E731
    f_mix = isac_precoder(f_r, f_c, 0.5, 0.0)
    assert 0.25 * gain(f_r, mid_r) < gain(f_mix, mid_r) < gain(f_r, mid_r)
    assert 0.25 * gain(f_c, mid_c) < gain(f_mix, mid_c) < gain(f_c, mid_c)
    with pytest.raises(ConfigError):
        isac_precoder(f_r, f_c, 1.2, 0.0)
    with pytest.raises(ConfigError, match="zero"):
        isac_precoder(f_r, -f_r, 0.5, 0.0)
    with pytest.raises(ShapeError):
        isac_precoder(f_r, f_c[:10], 0.5, 0.0)


# =========================================================================== spacing (impairment)
def test_draw_spacing_statistics_and_increasing_positions(paper_params):
    p = paper_params
    rng = np.random.default_rng(2024)
    draws = np.stack([draw_spacing(rng, p) for _ in range(300)])  # 19 200 spacings
    n = draws.size
    sigma = p.spacing_std
    assert abs(draws.mean() - p.wavelength / 2) < 6 * sigma / math.sqrt(n)
    assert abs(draws.std(ddof=1) - sigma) < 6 * sigma / math.sqrt(2 * (n - 1))
    positions = (np.arange(64) - 31.5) * draws
    gaps = np.diff(positions, axis=1)
    assert np.all(gaps > 0)
    assert np.all(gaps.min(axis=1) >= draws.min(axis=1) * (1 - 1e-12))
    np.testing.assert_array_equal(draw_spacing(np.random.default_rng(9), p),
                                  draw_spacing(np.random.default_rng(9), p))


def test_draw_spacing_with_large_spread_still_gives_increasing_positions():
    p = SystemParams(spacing_std_wavelengths=0.12)
    rng = np.random.default_rng(11)
    for _ in range(50):
        d = draw_spacing(rng, p)
        assert np.all(d > 0) and np.all(np.diff(element_positions(d)) > 0)
    zero = SystemParams(spacing_std_wavelengths=0.0)
    np.testing.assert_array_equal(draw_spacing(rng, zero), zero.nominal_spacing)


@pytest.mark.parametrize("suffix", [".npy", ".txt", ".csv"])
def test_spacing_file_round_trip(tmp_path, paper_params, suffix):
    d = draw_spacing(np.random.default_rng(4), paper_params)
    path = tmp_path / f"d{suffix}"
    save_spacing(path, d)
    back = load_spacing(path, 64)
    np.testing.assert_allclose(back, d, rtol=1e-12, atol=0)
    ula = ImpairedULA.from_file(paper_params, path)
    np.testing.assert_allclose(ula.spacing, d, rtol=1e-12)


def test_bad_spacing_files_are_rejected(tmp_path, paper_params):
    lam2 = paper_params.wavelength / 2
    short = tmp_path / "short.npy"
    np.save(short, np.full(10, lam2))
    with pytest.raises(ShapeError, match="64"):
        load_spacing(short, 64)
    negative = tmp_path / "neg.txt"
    np.savetxt(negative, np.r_[np.full(63, lam2), -lam2])
    with pytest.raises(ConfigError, match="> 0"):
        load_spacing(negative, 64)
    crossing = tmp_path / "cross.npy"
    np.save(crossing, np.array([1.0, 3.5, 1.0, 1.0]) * lam2)  # element 1 sits left of element 0
    load_spacing(crossing, 4)  # a spacing a receiver assumes may cross; a physical array may not:
    with pytest.raises(ConfigError, match="cross"):
        ImpairedULA.from_file(paper_params.replace(n_antennas=4), crossing)
    nan = tmp_path / "nan.txt"
    nan.write_text("nan\n" + f"{lam2}\n" * 63)
    with pytest.raises(ConfigError):
        load_spacing(nan, 64)
    garbage = tmp_path / "garbage.txt"
    garbage.write_text("two point five millimetres\n")
    with pytest.raises(ConfigError, match="garbage.txt"):
        load_spacing(garbage, 64)
    pickled = tmp_path / "obj.npy"
    np.save(pickled, np.array([{"d": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ConfigError, match="obj.npy"):
        load_spacing(pickled, 1)
    with pytest.raises(ConfigError, match="nowhere"):
        load_spacing(tmp_path / "nowhere.npy", 64)


# =========================================================================== noise and channels
@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_complex_normal_variance_and_circularity(dtype):
    n, v = 400_000, 2.5
    z = complex_normal(np.random.default_rng(8), n, v, dtype=dtype)
    assert z.dtype == dtype and z.shape == (n,)
    z = z.astype(np.complex128)
    assert abs(np.mean(np.abs(z) ** 2) - v) < 6 * v / math.sqrt(n)  # |z|^2 ~ Exp(v)
    assert abs(np.mean(z)) < 6 * math.sqrt(v / n)
    assert abs(np.mean(z * z)) < 6 * v * math.sqrt(2 / n)  # pseudo-variance E z^2 = 0
    var_half_se = (v / 2) * math.sqrt(2 / n)
    assert abs(np.var(z.real) - v / 2) < 6 * var_half_se
    assert abs(np.var(z.imag) - v / 2) < 6 * var_half_se
    assert abs(np.mean(z.real * z.imag)) < 6 * (v / 2) / math.sqrt(n)
    assert complex_normal(np.random.default_rng(0), (3, 4)).shape == (3, 4)


def test_frame_noise_statistics_and_independence_of_batching_and_threads(monkeypatch):
    import isacblocks.dsp.channels as channels

    seed, v = np.random.SeedSequence(5), 2.5
    whole = np.empty((12, 64, 80), np.complex64)
    frame_noise(seed, 0, whole, v)
    z = whole.ravel().astype(np.complex128)
    assert abs(np.mean(np.abs(z) ** 2) - v) < 6 * v / math.sqrt(z.size)
    assert abs(np.mean(z * z)) < 6 * v * math.sqrt(2 / z.size)
    assert abs(np.mean(z.real * z.imag)) < 6 * (v / 2) / math.sqrt(z.size)
    assert not np.array_equal(whole[0], whole[1])
    for threads in (1, 3):
        monkeypatch.setattr(channels, "_NOISE_THREADS", threads)
        monkeypatch.setattr(channels, "PARALLEL_NOISE_SAMPLES", 1)
        cut = np.empty_like(whole)
        frame_noise(seed, 0, cut[:5], v)
        frame_noise(seed, 5, cut[5:], v)
        np.testing.assert_array_equal(cut, whole)


def test_frame_noise_streams_of_several_frames(monkeypatch):
    """Streams of 4 frames: the same noise whatever the thread count and for batches cut on stream
    boundaries; a batch starting inside a stream is refused."""
    import isacblocks.dsp.channels as channels

    seed = np.random.SeedSequence(9)
    whole = np.empty((10, 16, 40), np.complex64)
    frame_noise(seed, 0, whole, 1.0, frames_per_stream=4)
    z = whole.ravel().astype(np.complex128)
    assert abs(np.mean(np.abs(z) ** 2) - 1.0) < 6 / math.sqrt(z.size)
    monkeypatch.setattr(channels, "PARALLEL_NOISE_SAMPLES", 1)
    for threads in (1, 2):
        monkeypatch.setattr(channels, "_NOISE_THREADS", threads)
        cut = np.empty_like(whole)
        frame_noise(seed, 0, cut[:8], 1.0, frames_per_stream=4)
        frame_noise(seed, 8, cut[8:], 1.0, frames_per_stream=4)
        np.testing.assert_array_equal(cut, whole)
    with pytest.raises(ConfigError, match="first_frame = 6 must be a multiple of frames_per_stream = 4"):
        frame_noise(seed, 6, cut[6:], 1.0, frames_per_stream=4)


def _sensing_run(params, ula, precoder, theta, rng_range, n_frames, seed):
    """TargetChannel over `n_frames` frames, target on odd frames at (theta, range); returns
    (Y_tilde, symbols, present) with the reciprocal filter applied."""
    rng = np.random.default_rng(seed)
    points = constellation("qpsk")
    symbols = points[rng.integers(0, 4, (n_frames, params.n_subcarriers))]
    precoders = np.tile(precoder.astype(np.complex64), (n_frames, 1))
    present = np.arange(n_frames) % 2 == 1
    tags = []
    for i in range(n_frames):
        tags.append(Tag(i, "target_present", bool(present[i])))
        if present[i]:
            tags += [Tag(i, "theta", theta), Tag(i, "range", rng_range)]
    result = run_block(TargetChannel(params, ula, seed=seed), [precoders, symbols], tags=[tags, []],
                       max_items=512)
    Y = result.outputs[0]
    return reciprocal_filter(Y, symbols).astype(np.complex128), symbols, present


def test_sensing_echo_energy_matches_closed_form_after_reciprocal_filter():
    """Eq. 1 and 7: Y~ = alpha a rho^T + N with alpha = psi a^T f / sqrt(S), so per target frame
    E||alpha a rho^T||^2 = K S |a^T f|^2 sigma_r^2 / S, and the echo is rank one along a(theta) rho(tau)^T."""
    p = SystemParams(n_antennas=8, n_subcarriers=16, noise_power=2.0, snr_radar_db=20.0)
    k, s, n0 = p.n_antennas, p.n_subcarriers, p.noise_power
    ula = ImpairedULA.drawn(p, seed=5)
    theta, rng_range = math.radians(-28.0), 61.3
    f = beampattern_precoder(*p.test_sector, ula.spacing, p)
    Yt, _, present = _sensing_run(p, ula, f, theta, rng_range, 6000, seed=21)

    a = ref_steering(theta, ula.spacing, p.wavelength)
    rho = ref_delay(2 * rng_range / C, s, p.subcarrier_spacing_hz)
    g2 = abs(a @ f.astype(np.complex64).astype(np.complex128)) ** 2  # |a^T f|^2
    sigma_r2 = 10 ** 2 * n0 / k
    assert p.target_gain_variance == pytest.approx(sigma_r2)
    echo = k * s * g2 * sigma_r2 / s  # closed form, from eq. 1 / 7

    energy = np.sum(np.abs(Yt) ** 2, axis=(1, 2))
    h0, h1 = energy[~present], energy[present]
    n0_frames, n1_frames = h0.size, h1.size
    # H0: ||N||^2 = (N0/2) chi^2_{2KS}: mean K S N0, std sqrt(K S) N0
    assert abs(h0.mean() - k * s * n0) < 6 * math.sqrt(k * s) * n0 / math.sqrt(n0_frames)
    # H1: mean K S N0 + echo; per-frame std <= echo (exponential |psi|^2) + noise and cross terms
    sd1 = math.sqrt(echo ** 2 + k * s * n0 ** 2 + 2 * echo * n0)
    assert abs(h1.mean() - (k * s * n0 + echo)) < 6 * sd1 / math.sqrt(n1_frames)

    # matched projection z = a^H Y~ rho^* / (K S): E|z|^2 = |a^T f|^2 sigma_r^2 / S + N0 / (K S)
    z = np.einsum("k,bks,s->b", a.conj(), Yt, rho.conj()) / (k * s)
    z1_expected = g2 * sigma_r2 / s + n0 / (k * s)
    assert abs(np.mean(np.abs(z[present]) ** 2) - z1_expected) < 6 * z1_expected / math.sqrt(n1_frames)
    z0_expected = n0 / (k * s)
    assert abs(np.mean(np.abs(z[~present]) ** 2) - z0_expected) < 6 * z0_expected / math.sqrt(n0_frames)
    # everything off the rank-one echo direction is noise: residual energy (K S - 1) N0
    residual = Yt - z[:, None, None] * np.outer(a, rho)[None]
    res_energy = np.sum(np.abs(residual[present]) ** 2, axis=(1, 2))
    assert abs(res_energy.mean() - (k * s - 1) * n0) < 6 * math.sqrt(k * s) * n0 / math.sqrt(n1_frames)


def test_target_channel_missing_truth_tags_raise_block_error(small_params):
    from isacblocks.errors import BlockError

    p = small_params
    ula = ImpairedULA(p)
    f = np.ones((3, p.n_antennas), np.complex64) / math.sqrt(p.n_antennas)
    x = np.ones((3, p.n_subcarriers), np.complex64)
    with pytest.raises(BlockError, match="target_present"):
        run_block(TargetChannel(p, ula), [f, x], tags=[[Tag(0, "target_present", False)], []])
    with pytest.raises(BlockError, match="theta"):
        run_block(TargetChannel(p, ula), [f, x],
                  tags=[[Tag(i, "target_present", True) for i in range(3)] + [Tag(i, "range", 5.0)
                                                                               for i in range(3)], []])


def test_ue_channel_frequency_response_power_and_correlation(paper_params):
    """beta = F [beta_0..beta_{L-1}, 0..]: E|beta_s|^2 = sum sigma_l^2 / S = SNR_c N0 on every
    subcarrier, and E beta_s beta_{s+1}^* = (1/S) sum_l sigma_l^2 exp(j 2 pi l / S)."""
    p = paper_params
    s, n = p.n_subcarriers, 4000
    powers = p.tap_powers
    beta = ue_channel_frequency_response(np.random.default_rng(12), powers, s, n)
    assert beta.shape == (n, s)
    mean_power = powers.sum() / s
    assert mean_power == pytest.approx(10 ** (p.snr_comm_db / 10) * p.noise_power)
    per_frame = np.mean(np.abs(beta) ** 2, axis=1)  # = sum_l |beta_l|^2 / S (Parseval)
    se = math.sqrt(np.sum(powers ** 2)) / s / math.sqrt(n)
    assert abs(per_frame.mean() - mean_power) < 6 * se
    for sub in (0, 1, s // 2, s - 1):
        assert abs(np.mean(np.abs(beta[:, sub]) ** 2) - mean_power) < 6 * mean_power / math.sqrt(n)
    lag1 = np.mean(beta[:, :-1] * beta[:, 1:].conj(), axis=1)
    expected = np.sum(powers * np.exp(2j * np.pi * np.arange(p.n_taps) / s)) / s
    assert abs(lag1.mean() - expected) < 6 * np.std(lag1) / math.sqrt(n)
    taps = np.fft.ifft(beta, axis=1, norm="ortho")
    assert np.max(np.abs(taps[:, p.n_taps:])) < 1e-9 * math.sqrt(mean_power)  # only L taps


def test_ue_channel_block_comm_snr_matches_closed_form():
    """Per-subcarrier SNR E|kappa|^2 / N0 = SNR_c |f^T a(phi)|^2 at a fixed UE angle, noise CN(0, N0)."""
    phi_deg = 40.0
    p = SystemParams(n_antennas=8, n_subcarriers=16, noise_power=0.5, snr_comm_db=10.0,
                     ue_sector_deg=(phi_deg, phi_deg + 1e-9))
    s, n0 = p.n_subcarriers, p.noise_power
    ula = ImpairedULA.drawn(p, seed=8)
    f = beampattern_precoder(math.radians(30), math.radians(50), ula.spacing, p)
    n = 6000
    rng = np.random.default_rng(30)
    x = constellation("qpsk")[rng.integers(0, 4, (n, s))]
    res = run_block(UEChannel(p, ula, seed=31), [np.tile(f.astype(np.complex64), (n, 1)), x], max_items=1000)
    y, kappa = (o.astype(np.complex128) for o in res.outputs)
    g2 = abs(f.astype(np.complex64).astype(np.complex128) @ ref_steering(math.radians(phi_deg), ula.spacing,
                                                                         p.wavelength)) ** 2
    snr_c = 10 ** (p.snr_comm_db / 10)
    per_frame = np.mean(np.abs(kappa) ** 2, axis=1) / n0
    se = g2 * math.sqrt(np.sum(p.tap_powers ** 2)) / s / n0 / math.sqrt(n)
    assert abs(per_frame.mean() - snr_c * g2) < 6 * se
    noise = y - x * kappa
    assert abs(np.mean(np.abs(noise) ** 2) - n0) < 6 * n0 / math.sqrt(n * s)
    assert abs(np.mean(noise * noise)) < 6 * n0 * math.sqrt(2 / (n * s))
    angles = [t.value for t in res.tags[0] if t.key == "ue_angle"]
    assert len(angles) == n and np.allclose(angles, math.radians(phi_deg), atol=1e-9)
    assert [t.offset for t in res.tags[1] if t.key == "ue_angle"] == list(range(n))


# =========================================================================== reciprocal filter (eq. 7)
def test_reciprocal_filter_keeps_noise_white_with_variance_n0():
    rng = np.random.default_rng(40)
    b, k, s, n0 = 500, 8, 16, 1.5
    W = complex_normal(rng, (b, k, s), n0, dtype=np.complex128)
    x = constellation("qpsk")[rng.integers(0, 4, (b, s))]
    N = reciprocal_filter(W, x)
    m = N.size
    assert abs(np.mean(np.abs(N) ** 2) - n0) < 6 * n0 / math.sqrt(m)
    assert abs(np.mean(N * N)) < 6 * n0 * math.sqrt(2 / m)  # circular
    pairs_s = N[:, :, :-1] * N[:, :, 1:].conj()
    pairs_k = N[:, :-1, :] * N[:, 1:, :].conj()
    assert abs(pairs_s.mean()) < 6 * n0 / math.sqrt(pairs_s.size)  # white across subcarriers
    assert abs(pairs_k.mean()) < 6 * n0 / math.sqrt(pairs_k.size)  # and across antennas


def test_reciprocal_filter_removes_symbols_exactly_and_rejects_zero():
    rng = np.random.default_rng(41)
    k, s = 4, 8
    echo = np.outer(ref_steering(0.3, np.full(k, 0.5), 1.0), ref_delay(1e-7, s, 120e3))[None] * (0.7 - 0.2j)
    qpsk = constellation("qpsk")[rng.integers(0, 4, (1, s))]
    general = (1 + rng.random((1, s))) * np.exp(2j * rng.random((1, s)))  # non-PSK: a true division
    for x in (qpsk, general):
        np.testing.assert_allclose(reciprocal_filter(echo * x[:, None, :], x), echo, atol=1e-6)
    x = np.ones((2, s), np.complex64)
    x[1, 5] = 0
    with pytest.raises(ShapeError, match=r"x\[1, 5\]"):
        reciprocal_filter(np.ones((2, k, s)), x)
    with pytest.raises(ShapeError):
        reciprocal_filter(np.ones((2, k, s)), np.ones((2, s + 1)))


# =========================================================================== MAPRT (eq. 9-10)
def test_maprt_finds_high_snr_target_within_one_grid_cell(paper_params):
    p = paper_params
    k, s = p.n_antennas, p.n_subcarriers
    d = draw_spacing(np.random.default_rng(17), p)
    lo, hi = p.test_sector
    rng = np.random.default_rng(18)
    thetas = np.radians([-38.7, -31.234, -20.5, -25.0])
    ranges = np.array([3.2, 97.31, 199.0, 150.5])
    alpha = np.exp(2j * np.pi * rng.random(4))
    Y = np.stack([alpha[i] * np.outer(ref_steering(thetas[i], d, p.wavelength),
                                      ref_delay(2 * ranges[i] / C, s, p.subcarrier_spacing_hz)) for i in range(4)])
    Y = Y + complex_normal(rng, Y.shape, 1.0, dtype=np.complex128)
    stat, th_hat, r_hat = maprt(Y.astype(np.complex64), lo, hi, 0.0, 200.0, d, p, 720, 200)
    assert np.all(np.abs(th_hat - thetas) <= (hi - lo) / 719 + 1e-12)
    assert np.all(np.abs(r_hat - ranges) <= 200.0 / 199 + 1e-9)
    assert np.all(th_hat >= lo) and np.all(th_hat <= hi)
    # eq. 9 statistic at the peak: |alpha| K S up to grid straddle loss (< 5 %) and noise (~ sqrt(K S))
    assert np.all(stat > 0.9 * k * s) and np.all(stat < 1.05 * k * s)
    # the receiver that assumes lambda/2 on this impaired array loses most of the peak
    stat_nominal, _, _ = maprt(Y.astype(np.complex64), lo, hi, 0.0, 200.0, p.nominal_spacing, p, 720, 200)
    assert np.all(stat_nominal < 0.8 * stat)


def test_maprt_per_frame_sectors_and_h0_statistic_scale(small_params):
    p = small_params
    k, s = p.n_antennas, p.n_subcarriers
    d = p.nominal_spacing
    rng = np.random.default_rng(50)
    # two frames, two different sectors: each estimate lies in its own sector
    t = np.radians([-30.0, 40.0])
    Y = np.stack([np.outer(ref_steering(t[i], d, p.wavelength), ref_delay(2 * 50.0 / C, s, p.subcarrier_spacing_hz))
                  for i in range(2)]) * 10
    _, th_hat, _ = maprt(Y.astype(np.complex64), np.radians([-40.0, 30.0]), np.radians([-20.0, 50.0]),
                         0.0, 200.0, d, p, 90, 40)
    assert np.all(np.abs(th_hat - t) < np.radians(20.0) / 89 + 1e-12)
    # a single-cell grid: under H0 the statistic is |a^H N rho^*| with E stat^2 = K S N0 (Rayleigh)
    n = 3000
    N = complex_normal(rng, (n, k, s), 1.0)
    stat, _, _ = maprt(N, 0.3, 0.4, 20.0, 30.0, d, p, 1, 1)
    assert abs(np.mean(stat ** 2) - k * s) < 6 * k * s / math.sqrt(n)
    with pytest.raises(ShapeError):
        maprt(np.zeros((2, k + 1, s), np.complex64), 0.1, 0.2, 0.0, 1.0, d, p)
    with pytest.raises(ShapeError):
        maprt(np.zeros((2, k, s), np.complex64), np.zeros(3), 0.2, 0.0, 1.0, d, p)


# =========================================================================== communication receiver
def test_ml_demapper_ser_matches_closed_form_qpsk():
    rng = np.random.default_rng(60)
    points = constellation("qpsk")
    np.testing.assert_allclose(np.abs(points), 1.0, rtol=1e-6)
    np.testing.assert_allclose(points, np.exp(1j * (np.pi / 4 + np.pi / 2 * np.arange(4))), atol=1e-6)
    n = 400_000
    kappa = 0.8 * np.exp(0.3j)
    snr = 10 ** 0.7  # |kappa|^2 / N0 = 7 dB
    n0 = abs(kappa) ** 2 / snr
    m = rng.integers(0, 4, n)
    y = kappa * points[m] + complex_normal(rng, n, n0, dtype=np.complex128)
    decided = ml_demap(y[None], np.full((1, n), kappa), points)[0]
    ser = np.mean(decided != m)
    q = stats.norm.sf(math.sqrt(snr))
    expected = 2 * q - q * q
    assert abs(ser - expected) < 6 * math.sqrt(expected * (1 - expected) / n)
    # noise-free: exact for any channel phase (the CSI de-rotates)
    for phase in (0.0, 1.0, 2.5, -2.0):
        kap = np.full((1, 4), 0.3 * np.exp(1j * phase))
        np.testing.assert_array_equal(ml_demap(kap * points[None], kap, points), [[0, 1, 2, 3]])
    with pytest.raises(ShapeError):
        ml_demap(np.zeros((1, 3)), np.zeros((1, 4)), points)


def test_symbol_error_rate_qpsk_closed_form():
    snr = np.array([0.0, 1.0, 4.0, 10.0, 100.0])
    q = stats.norm.sf(np.sqrt(snr))
    np.testing.assert_allclose(symbol_error_rate_qpsk(snr), 2 * q - q ** 2, rtol=1e-12)
    assert symbol_error_rate_qpsk(0.0) == pytest.approx(0.75)


# =========================================================================== thresholds and intervals
@pytest.mark.parametrize("law, pfa", [("exponential", 0.01), ("rayleigh", 0.05)])
def test_threshold_at_pfa_gives_target_pfa_on_fresh_h0_data(law, pfa):
    rng = np.random.default_rng(70)
    n, m = 100_000, 200_000
    draw = (lambda size: rng.exponential(size=size)) if law == "exponential" else \
        (lambda size: rng.rayleigh(scale=2.0, size=size))
    train = draw(n)
    thr = threshold_at_pfa(train, pfa)
    assert np.count_nonzero(train > thr) <= pfa * n  # at most pfa on its own statistics
    true_pfa = math.exp(-thr) if law == "exponential" else math.exp(-thr ** 2 / (2 * 2.0 ** 2))
    assert abs(true_pfa - pfa) < 6 * math.sqrt(pfa * (1 - pfa) / n)
    fresh = np.mean(draw(m) > thr)
    assert abs(fresh - pfa) < 6 * math.sqrt(pfa * (1 - pfa) * (1 / n + 1 / m))


def test_threshold_at_pfa_rejects_unresolvable_and_bad_input():
    with pytest.raises(ConfigError, match="100"):
        threshold_at_pfa(np.arange(50.0), 0.01)
    with pytest.raises(ConfigError):
        threshold_at_pfa(np.arange(500.0), 1.0)
    with pytest.raises(ShapeError, match="NaN"):
        threshold_at_pfa(np.r_[np.arange(500.0), np.nan], 0.01)
    with pytest.raises(ShapeError):
        threshold_at_pfa(np.array([]), 0.01)


def test_threshold_interval_covers_the_true_quantile():
    rng = np.random.default_rng(71)
    reps, n, pfa = 800, 400, 0.05
    x = rng.exponential(size=(reps, n))
    q = -math.log(pfa)
    intervals = np.array([threshold_interval(row, pfa) for row in x])
    assert np.all(intervals[:, 0] <= intervals[:, 1])
    coverage = np.mean((intervals[:, 0] <= q) & (q <= intervals[:, 1]))
    assert coverage > 0.95 - 6 * math.sqrt(0.95 * 0.05 / reps)
    assert coverage < 0.995  # not trivially wide


def test_proportion_interval_known_cases():
    n, level = 20, 0.95
    lo, hi = proportion_interval(0, n, level)
    assert lo == 0.0 and hi == pytest.approx(1 - 0.025 ** (1 / n), rel=1e-9)
    lo, hi = proportion_interval(n, n, level)
    assert hi == 1.0 and lo == pytest.approx(0.025 ** (1 / n), rel=1e-9)
    lo, hi = proportion_interval(5, 10)
    assert (lo, hi) == pytest.approx((0.187086, 0.812914), abs=1e-6)  # textbook Clopper-Pearson
    for k in (0, 3, 7, 10):
        a, b = proportion_interval(k, 10)
        c, d = proportion_interval(10 - k, 10)
        assert a == pytest.approx(1 - d, abs=1e-12) and b == pytest.approx(1 - c, abs=1e-12)
    assert proportion_interval(0, 0) == (0.0, 1.0)
    for p, trials in ((0.1, 50), (0.02, 200), (0.5, 11)):  # exact coverage of the exact interval
        cover = sum(stats.binom.pmf(k, trials, p) for k in range(trials + 1)
                    if proportion_interval(k, trials)[0] <= p <= proportion_interval(k, trials)[1])
        assert cover >= 0.95


def test_detection_report_pmd_matches_swerling_closed_form():
    """|z|^2 with z ~ CN(0, 1) (H0) and CN(0, 1 + snr) (H1): at Pfa p the threshold is -ln p and
    Pmd = 1 - p^(1/(1+snr))."""
    rng = np.random.default_rng(72)
    n, snr, pfa = 40_000, 10.0, 0.01
    h0 = rng.exponential(size=n)
    h1 = rng.exponential(scale=1 + snr, size=n)
    theta = rng.uniform(-0.5, 0.5, n)
    ranges = rng.uniform(0, 200, n)
    rep = detection_report(h0, h1, theta + 0.01, ranges - 2.0, theta, ranges, pfa)
    pmd = 1 - pfa ** (1 / (1 + snr))
    # binomial spread of the misses, plus the threshold's spread (sd sqrt(p(1-p)/n) / f0(t), f0(t) = p)
    # carried through dPmd/dt = p^(1/(1+snr)) / (1 + snr)
    se_threshold = pfa ** (1 / (1 + snr)) / (1 + snr) * math.sqrt(pfa * (1 - pfa) / n) / pfa
    se = math.hypot(math.sqrt(pmd * (1 - pmd) / n), se_threshold)
    assert abs(rep.pmd - pmd) < 6 * se
    assert rep.pmd_ci[0] <= rep.pmd <= rep.pmd_ci[1]
    assert rep.threshold == pytest.approx(-math.log(pfa), abs=6 * math.sqrt(pfa * (1 - pfa) / n) / pfa)
    # Pfa check: threshold on half of the H0 frames, false alarms counted on the other half
    assert abs(rep.pfa_check - pfa) < 6 * math.sqrt(pfa * (1 - pfa) * 4 / n)
    detected = h1 > rep.threshold
    assert rep.n_detected == detected.sum()
    assert rep.rmse_angle == pytest.approx(0.01) and rep.rmse_range == pytest.approx(2.0)
    err = position(theta + 0.01, ranges - 2.0) - position(theta, ranges)
    assert rep.rmse_position == pytest.approx(np.sqrt(np.mean(np.sum(err[detected] ** 2, axis=1))), rel=1e-9)
    np.testing.assert_allclose(position(np.pi / 6, 2.0), [math.sqrt(3), 1.0])


# =========================================================================== scenario draws
def test_training_sectors_and_targets_follow_their_uniform_laws(paper_params):
    rng = np.random.default_rng(80)
    n = 20_000
    lo, hi = training_sectors(rng, paper_params, n)
    center, width = np.degrees((lo + hi) / 2), np.degrees(hi - lo)
    assert np.all(width >= 10 - 1e-9) and np.all(width <= 20 + 1e-9)
    assert abs(center.mean()) < 6 * (120 / math.sqrt(12)) / math.sqrt(n)
    assert abs(width.mean() - 15) < 6 * (10 / math.sqrt(12)) / math.sqrt(n)
    lo5, hi5 = training_sectors(rng, paper_params, 1000, max_center_deg=5.0)
    assert np.all(np.abs(np.degrees((lo5 + hi5) / 2)) <= 5 + 1e-9)
    theta, ranges = draw_targets(rng, lo, hi, 0.0, 200.0, n)
    assert np.all((theta >= lo) & (theta <= hi)) and np.all((ranges >= 0) & (ranges <= 200))
    u = (theta - lo) / (hi - lo)  # uniform on [0, 1] within each frame's sector
    assert abs(u.mean() - 0.5) < 6 * math.sqrt(1 / 12 / n)
