"""The angle-delay map kernel (eq. 15-17) and the MB-ML estimator (Algorithm 1, eq. 18-19)
against dense numpy computations of the full 720 x 200 map."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from isacblocks.dsp.angle_delay import AngleDictionary, RangeDictionary, angle_delay_map_dense, angle_delay_peak
from isacblocks.dsp.mbml import (
    angle_dictionary,
    delay_dictionary,
    mbml_estimate,
    mbml_estimate_projected,
    mbml_peak,
    mbml_peak_projected,
    range_dictionary,
    range_factors,
    sector_cols,
    sector_rows,
    steering_dictionary,
    window_indices,
)
from isacblocks.dsp.steering import range_steering, ula_steering
from isacblocks.errors import ConfigError, ShapeError
from isacblocks.params import SystemParams

PARAMS = SystemParams()
K, S = PARAMS.n_antennas, PARAMS.n_subcarriers
HALF_A, HALF_R = PARAMS.window_half_angle, PARAMS.window_half_range


@pytest.fixture(scope="module")
def spacing():
    rng = np.random.default_rng(7)
    return PARAMS.wavelength / 2 + PARAMS.spacing_std * rng.standard_normal(K)


def noise(rng, n_frames):
    return (rng.standard_normal((n_frames, K, S)) + 1j * rng.standard_normal((n_frames, K, S))) / np.sqrt(2)


def echo(theta, ranges, spacing, amplitude=1.0):
    """``alpha a(theta) rho(tau)^T`` per frame (eq. 7 with t = 1, no noise)."""
    a = ula_steering(theta, spacing, PARAMS.wavelength)  # (K, B)
    rho = range_steering(ranges, PARAMS)  # (S, B)
    return amplitude * np.einsum("kb,sb->bks", a, rho)


def dense_map(Y, spacing):
    """The full map ``|Phi^H Y~ Phi_d^*|`` (eq. 15) in complex128, (B, 720, 200)."""
    angle_h = ula_steering(PARAMS.angle_grid, spacing, PARAMS.wavelength).conj().T
    range_c = range_steering(PARAMS.range_grid, PARAMS).conj()
    return np.abs(angle_h @ np.asarray(Y, dtype=np.complex128) @ range_c)


def dense_window(L, i, j):
    """Eq. 17 window with NaN for entries outside the map."""
    out = np.full((2 * HALF_A + 1, 2 * HALF_R + 1), np.nan)
    for n in range(out.shape[0]):
        for m in range(out.shape[1]):
            r, c = i + n - HALF_A, j + m - HALF_R
            if 0 <= r < L.shape[0] and 0 <= c < L.shape[1]:
                out[n, m] = L[r, c]
    return out


def dense_mbml(Y, theta_min, theta_max, r_min, r_max, spacing):
    """Algorithm 1 on the full map: mask the sector, arg-max, window, softmax, eq. 18-19."""
    n_frames = len(Y)
    bounds = [np.broadcast_to(np.asarray(v, dtype=float), (n_frames,))
              for v in (theta_min, theta_max, r_min, r_max)]
    L = dense_map(Y, spacing)
    angles, ranges = PARAMS.angle_grid, PARAMS.range_grid
    stat, theta_hat, range_hat = np.empty(n_frames), np.empty(n_frames), np.empty(n_frames)
    for b in range(n_frames):
        t0, t1, r0, r1 = (v[b] for v in bounds)
        mask = ((angles >= t0) & (angles <= t1))[:, None] & ((ranges >= r0) & (ranges <= r1))[None, :]
        i, j = np.unravel_index(np.argmax(np.where(mask, L[b], -np.inf)), mask.shape)
        stat[b] = L[b, i, j]
        theta_sum = range_sum = total = 0.0
        for r in range(i - HALF_A, i + HALF_A + 1):
            for c in range(j - HALF_R, j + HALF_R + 1):
                if 0 <= r < len(angles) and 0 <= c < len(ranges):
                    weight = np.exp(L[b, r, c] - stat[b])
                    theta_sum += weight * angles[r]
                    range_sum += weight * ranges[c]
                    total += weight
        theta_hat[b], range_hat[b] = theta_sum / total, range_sum / total
    return stat, theta_hat, range_hat


def random_sectors(rng, n_frames):
    center = rng.uniform(-70, 70, n_frames)
    width = rng.uniform(10, 20, n_frames)
    r_min = rng.uniform(0, 100, n_frames)
    r_max = r_min + rng.uniform(20, 100, n_frames)
    return np.radians(center - width / 2), np.radians(center + width / 2), r_min, r_max


def test_kernel_matches_dense_map_with_per_frame_sectors(spacing):
    rng = np.random.default_rng(1)
    n_frames = 6
    Y = noise(rng, n_frames)
    row_lo = np.array([0, 100, 640, 300, 5, 700])
    row_hi = np.array([80, 171, 720, 381, 6, 720])
    col_lo = np.array([0, 20, 150, 0, 199, 3])
    col_hi = np.array([200, 90, 200, 1, 200, 4])
    peak = angle_delay_peak(Y, ula_steering(PARAMS.angle_grid, spacing, PARAMS.wavelength),
                            range_dictionary(PARAMS), row_lo, row_hi, col_lo, col_hi, HALF_A, HALF_R)
    L = angle_delay_map_dense(Y, spacing, PARAMS)
    assert L.shape == (n_frames, 720, 200) and L.dtype == np.float32
    np.testing.assert_allclose(L, dense_map(Y, spacing), rtol=0, atol=1e-5 * L.max())
    for b in range(n_frames):
        sector = L[b, row_lo[b]:row_hi[b], col_lo[b]:col_hi[b]]
        i, j = np.unravel_index(np.argmax(sector), sector.shape)
        i, j = i + row_lo[b], j + col_lo[b]
        assert (peak.i_hat[b], peak.j_hat[b]) == (i, j)
        np.testing.assert_allclose(peak.statistic[b], L[b, i, j], rtol=1e-4)
        expected = dense_window(L[b], i, j)
        np.testing.assert_array_equal(peak.valid[b], ~np.isnan(expected))
        np.testing.assert_allclose(peak.window[b], expected, rtol=0, atol=1e-4 * L[b, i, j])
    assert peak.window.shape == (n_frames, 2 * HALF_A + 1, 2 * HALF_R + 1)
    assert peak.window.dtype == np.float32 and peak.valid.dtype == bool


@pytest.mark.parametrize("rtol", [1e-10, 0.0])
def test_small_odd_sized_system_matches_dense(rtol):
    """K = 9 antennas and (with rtol = 0) an odd rank exercise the kernel's partial blocks."""
    params = SystemParams(n_antennas=9, n_subcarriers=40, n_taps=1, n_angle_grid=101, n_range_grid=37)
    rng = np.random.default_rng(9)
    d = params.wavelength / 2 + params.spacing_std * rng.standard_normal(9)
    Y = rng.standard_normal((5, 9, 40)) + 1j * rng.standard_normal((5, 9, 40))
    phi = ula_steering(params.angle_grid, d, params.wavelength)
    phi_d = range_steering(params.range_grid, params)
    range_dict = RangeDictionary.from_steering(phi_d, rtol=rtol)
    if rtol == 0.0:
        assert range_dict.rank == 37
    row_lo, row_hi = np.array([0, 3, 50, 97, 10]), np.array([101, 4, 61, 101, 17])
    col_lo, col_hi = np.array([0, 0, 30, 5, 36]), np.array([37, 2, 37, 6, 37])
    peak = angle_delay_peak(Y, phi, range_dict, row_lo, row_hi, col_lo, col_hi, 3, 2)
    L = np.abs(phi.conj().T @ Y @ phi_d.conj())
    for b in range(5):
        sector = L[b, row_lo[b]:row_hi[b], col_lo[b]:col_hi[b]]
        i, j = np.unravel_index(np.argmax(sector), sector.shape)
        i, j = i + row_lo[b], j + col_lo[b]
        assert (peak.i_hat[b], peak.j_hat[b]) == (i, j)
        np.testing.assert_allclose(peak.statistic[b], L[b, i, j], rtol=1e-4)
        rows, cols = np.arange(i - 3, i + 4), np.arange(j - 2, j + 3)
        inside = ((rows >= 0) & (rows < 101))[:, None] & ((cols >= 0) & (cols < 37))[None, :]
        np.testing.assert_array_equal(peak.valid[b], inside)
        expected = L[b][np.clip(rows, 0, 100)][:, np.clip(cols, 0, 36)]
        np.testing.assert_allclose(peak.window[b][inside], expected[inside], rtol=0, atol=1e-4 * L[b, i, j])
        assert np.isnan(peak.window[b][~inside]).all()


def test_prepared_dictionaries_give_the_same_peak(spacing):
    rng = np.random.default_rng(2)
    Y = noise(rng, 3).astype(np.complex64)
    Y.setflags(write=False)  # e.g. a buffer from a ZeroMQ message
    phi = ula_steering(PARAMS.angle_grid, spacing, PARAMS.wavelength)
    range_dict = range_dictionary(PARAMS)
    raw = angle_delay_peak(Y, phi, range_dict, 200, 300, half_angle=2, half_range=1)
    prepared = angle_delay_peak(Y, angle_dictionary(spacing, PARAMS), range_dict, np.full(3, 200),
                                np.full(3, 300), np.zeros(3, int), np.full(3, 200), 2, 1)
    for got, want in zip(prepared, raw):
        np.testing.assert_array_equal(got, want)
    assert isinstance(range_dict, RangeDictionary) and range_dict.rank < min(S, PARAMS.n_range_grid)
    assert AngleDictionary.from_steering(phi).re.shape == (PARAMS.n_angle_grid, K)


def test_mbml_matches_dense_algorithm_1(spacing):
    rng = np.random.default_rng(3)
    n_frames = 8
    theta_min, theta_max, r_min, r_max = random_sectors(rng, n_frames)
    theta = rng.uniform(theta_min, theta_max)
    ranges = rng.uniform(r_min, r_max)
    Y = echo(theta, ranges, spacing, amplitude=0.05) + noise(rng, n_frames)
    Y[::2] = noise(rng, n_frames // 2)  # H0 frames
    got = mbml_estimate(Y, theta_min, theta_max, r_min, r_max, spacing, PARAMS)
    want = dense_mbml(Y, theta_min, theta_max, r_min, r_max, spacing)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-4)
    np.testing.assert_allclose(got[1], want[1], rtol=0, atol=1e-4)
    np.testing.assert_allclose(got[2], want[2], rtol=0, atol=1e-2)
    assert all(v.shape == (n_frames,) and v.dtype == np.float64 for v in got)


def test_sector_at_grid_edge_clips_the_window(spacing):
    rng = np.random.default_rng(4)
    theta = np.radians([89.9, 89.95, -89.9])
    ranges = np.array([199.8, 0.2, 100.0])
    Y = echo(theta, ranges, spacing, amplitude=0.2) + noise(rng, 3)
    theta_min = np.array([np.radians(80.0), np.radians(75.0), -np.pi / 2])
    theta_max = np.array([np.pi / 2, np.pi / 2, np.radians(-70.0)])
    assert sector_rows(theta_min, theta_max, PARAMS)[1][0] == PARAMS.n_angle_grid
    got = mbml_estimate(Y, theta_min, theta_max, 0.0, 200.0, spacing, PARAMS)
    want = dense_mbml(Y, theta_min, theta_max, 0.0, 200.0, spacing)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-4)
    np.testing.assert_allclose(got[1], want[1], rtol=0, atol=1e-4)
    np.testing.assert_allclose(got[2], want[2], rtol=0, atol=1e-2)
    peak = mbml_peak(Y, theta_min, theta_max, 0.0, 200.0, spacing, PARAMS)
    assert peak.i_hat[0] > 720 - 1 - HALF_A and peak.i_hat[2] < HALF_A  # the window leaves the map
    rows, cols, row_valid, col_valid = window_indices(peak.i_hat, peak.j_hat, PARAMS)
    assert not row_valid[0].all() and not row_valid[2].all()
    assert rows.min() >= 0 and rows.max() <= 719 and cols.min() >= 0 and cols.max() <= 199


def test_projected_frames_give_the_same_outputs(spacing):
    """``C = Y~ G`` with G from the truncated SVD of ``Phi_d^*`` (as Monte Carlo studies draw it)."""
    rng = np.random.default_rng(11)
    n_frames = 6
    theta_min, theta_max, r_min, r_max = random_sectors(rng, n_frames)
    Y = echo(rng.uniform(theta_min, theta_max), rng.uniform(0, 200, n_frames), spacing, 0.05) + noise(rng, n_frames)
    sigma = np.linalg.svd(range_steering(PARAMS.range_grid, PARAMS).conj(), compute_uv=False)
    rank = range_dictionary(PARAMS).rank
    assert np.count_nonzero(sigma > 1e-10 * sigma[0]) == rank
    g, _, _ = range_factors(PARAMS)  # the receiver's own factorisation (singular vectors carry a free phase)
    assert g.shape == (PARAMS.n_subcarriers, rank)
    C = Y @ g
    full = mbml_estimate(Y, theta_min, theta_max, r_min, r_max, spacing, PARAMS)
    projected = mbml_estimate_projected(C, theta_min, theta_max, r_min, r_max, spacing, PARAMS)
    np.testing.assert_allclose(projected[0], full[0], rtol=1e-4)
    np.testing.assert_allclose(projected[1], full[1], rtol=0, atol=1e-4)
    np.testing.assert_allclose(projected[2], full[2], rtol=0, atol=1e-2)
    peak, peak_projected = (f(X, theta_min, theta_max, r_min, r_max, spacing, PARAMS)
                            for f, X in ((mbml_peak, Y), (mbml_peak_projected, C)))
    np.testing.assert_array_equal(peak_projected.i_hat, peak.i_hat)
    np.testing.assert_array_equal(peak_projected.j_hat, peak.j_hat)
    with pytest.raises(ShapeError, match=rf"C must have shape \(B, 64, {rank}\), got \(6, 64, 256\)"):
        mbml_estimate_projected(Y, theta_min, theta_max, r_min, r_max, spacing, PARAMS)


def test_scalar_and_per_frame_sectors_agree(spacing):
    rng = np.random.default_rng(5)
    Y = noise(rng, 4)
    lo, hi = np.radians(-40.0), np.radians(-20.0)
    scalar = mbml_estimate(Y, lo, hi, 0.0, 200.0, spacing, PARAMS)
    per_frame = mbml_estimate(Y, np.full(4, lo), np.full(4, hi), np.zeros(4), np.full(4, 200.0), spacing, PARAMS)
    for a, b in zip(scalar, per_frame):
        np.testing.assert_array_equal(a, b)
    # A mixed batch gives each frame what it gets alone.
    theta_min, theta_max, r_min, r_max = random_sectors(rng, 4)
    batch = mbml_estimate(Y, theta_min, theta_max, r_min, r_max, spacing, PARAMS)
    for b in range(4):
        single = mbml_estimate(Y[b:b + 1], theta_min[b], theta_max[b], r_min[b], r_max[b], spacing, PARAMS)
        for a, s in zip(batch, single):
            np.testing.assert_allclose(a[b], s[0], rtol=1e-6)


def test_high_snr_target_found_within_one_grid_cell(spacing):
    rng = np.random.default_rng(6)
    n_frames = 16
    theta_min, theta_max, _, _ = random_sectors(rng, n_frames)
    theta = rng.uniform(theta_min, theta_max)
    ranges = rng.uniform(0, 200, n_frames)
    Y = echo(theta, ranges, spacing) + 0.01 * noise(rng, n_frames)
    stat, theta_hat, range_hat = mbml_estimate(Y, theta_min, theta_max, 0, 200, spacing, PARAMS)
    assert np.all(np.abs(theta_hat - theta) <= np.pi / (PARAMS.n_angle_grid - 1))
    assert np.all(np.abs(range_hat - ranges) <= 200 / (PARAMS.n_range_grid - 1))
    assert np.all(stat > 0.9 * K * S)


def test_wrong_shapes_raise_shape_error(spacing):
    with pytest.raises(ShapeError, match=r"\(B, 64, 256\).*\(3, 63, 256\)"):
        mbml_estimate(np.zeros((3, 63, 256), complex), 0.0, 0.3, 0, 200, spacing, PARAMS)
    with pytest.raises(ShapeError, match=r"\(B, 64, 256\).*\(64, 256\)"):
        mbml_peak(np.zeros((64, 256), complex), 0.0, 0.3, 0, 200, spacing, PARAMS)
    with pytest.raises(ShapeError, match=r"theta_min.*\(2,\).*\(3,\)"):
        mbml_estimate(np.zeros((2, 64, 256), complex), np.zeros(3), 0.3, 0, 200, spacing, PARAMS)
    with pytest.raises(ShapeError, match=r"spacing.*\(64,\).*\(63,\)"):
        mbml_estimate(np.zeros((2, 64, 256), complex), 0.0, 0.3, 0, 200, spacing[:63], PARAMS)


def test_empty_or_out_of_range_sector_raises_config_error(spacing):
    Y = np.zeros((2, K, S), np.complex64)
    step = np.pi / (PARAMS.n_angle_grid - 1)
    with pytest.raises(ConfigError, match="frame 1.*no point of the angle grid"):
        mbml_estimate(Y, [0.0, 0.6 * step], [0.3, 0.9 * step], 0, 200, spacing, PARAMS)
    with pytest.raises(ConfigError, match="col sector"):
        angle_delay_peak(Y, steering_dictionary(spacing, PARAMS), range_dictionary(PARAMS), 0, 10, 5, 201)


def test_sector_bounds_select_the_grid_points_inside():
    lo, hi = sector_rows(-np.pi / 2, np.pi / 2, PARAMS)
    assert (lo, hi) == (0, PARAMS.n_angle_grid)
    theta_min, theta_max = np.radians([-40.0, 30.0]), np.radians([-20.0, 50.0])
    lo, hi = sector_rows(theta_min, theta_max, PARAMS)
    for b in range(2):
        inside = np.flatnonzero((PARAMS.angle_grid >= theta_min[b]) & (PARAMS.angle_grid <= theta_max[b]))
        assert (lo[b], hi[b]) == (inside[0], inside[-1] + 1)
    assert sector_cols(0.0, 200.0, PARAMS) == (0, PARAMS.n_range_grid)
    assert sector_cols(10.0, 20.0, PARAMS) == (10, 20)  # grid step 200/199 m


def test_nan_frame_does_not_leak_into_others(spacing):
    rng = np.random.default_rng(8)
    Y = noise(rng, 3)
    clean = mbml_estimate(Y, -0.5, -0.2, 0, 200, spacing, PARAMS)
    Y[1, 3, 7] = np.nan
    dirty = mbml_estimate(Y, -0.5, -0.2, 0, 200, spacing, PARAMS)
    assert all(np.isnan(v[1]) for v in dirty)
    for a, b in zip(clean, dirty):
        np.testing.assert_array_equal(a[[0, 2]], b[[0, 2]])


def test_concurrent_calls_from_threads_agree(spacing):
    """Blocks of a flowgraph call the estimator from several threads at once (the kernel drops the GIL)."""
    rng = np.random.default_rng(10)
    batches = [noise(rng, 8) for _ in range(4)]
    sequential = [mbml_estimate(Y, -0.6, -0.3, 0, 200, spacing, PARAMS) for Y in batches]
    with ThreadPoolExecutor(max_workers=2) as pool:
        concurrent = list(pool.map(lambda Y: mbml_estimate(Y, -0.6, -0.3, 0, 200, spacing, PARAMS), batches))
    for want, got in zip(sequential, concurrent):
        for a, b in zip(want, got):
            np.testing.assert_array_equal(a, b)


def test_dictionaries_are_cached_complex64(spacing):
    phi = steering_dictionary(spacing, PARAMS)
    assert phi.shape == (K, PARAMS.n_angle_grid) and phi.dtype == np.complex64 and not phi.flags.writeable
    assert steering_dictionary(spacing.copy(), PARAMS) is phi
    np.testing.assert_allclose(phi, ula_steering(PARAMS.angle_grid, spacing, PARAMS.wavelength), atol=1e-6)
    phi_d = delay_dictionary(PARAMS)
    assert phi_d.shape == (S, PARAMS.n_range_grid) and phi_d.dtype == np.complex64
    assert delay_dictionary(PARAMS.replace(snr_radar_db=0.0)) is phi_d


def test_cache_loaded_kernel_gives_bitwise_the_freshly_compiled_results(tmp_path):
    """A process that compiles the kernel and one that loads it from Numba's cache must agree
    bit for bit (a cross-process run compares them); inline="always" once broke this."""
    import subprocess
    import sys

    script = (
        "import sys, numpy as np\n"
        "from isacblocks import SystemParams\n"
        "from isacblocks.dsp.mbml import mbml_estimate\n"
        "p = SystemParams(); rng = np.random.default_rng(0)\n"
        "Y = (rng.standard_normal((8, 64, 256)) + 1j * rng.standard_normal((8, 64, 256))).astype(np.complex64)\n"
        "np.save(sys.argv[1], np.stack(mbml_estimate(Y, -0.7, -0.35, 0, 200, p.nominal_spacing, p)))\n")
    env = {**__import__("os").environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    for name in ("fresh", "cached"):
        subprocess.run([sys.executable, "-c", script, str(tmp_path / f"{name}.npy")], check=True, env=env,
                       timeout=300)
    assert np.load(tmp_path / "fresh.npy").tobytes() == np.load(tmp_path / "cached.npy").tobytes()


def test_search_object_recreate_execute_and_the_backend_table(spacing):
    """create / recreate / execute: a recreated search is a fresh one for the new d, bit for bit,
    and gives `mbml_peak`'s outputs; each frame kind has its table's default method."""
    from isacblocks.dsp.angle_delay import AngleDelayGrid, AngleDelaySearch, Frames, RangeProjectedFrames, backends

    grid = AngleDelayGrid.of(PARAMS)
    assert AngleDelayGrid.of(PARAMS.replace(snr_radar_db=0.0)) is grid
    assert grid.factors is range_factors(PARAMS) and grid.delay is delay_dictionary(PARAMS)
    search = AngleDelaySearch(grid, PARAMS.nominal_spacing)
    search.recreate(spacing)
    fresh = AngleDelaySearch(grid, spacing)
    rng = np.random.default_rng(12)
    Y = noise(rng, 5).astype(np.complex64)
    sectors = grid.sectors(5, -0.6, -0.2, 0.0, 200.0, "test")
    got, want = (s.execute(Frames(Y), sectors, HALF_A, HALF_R) for s in (search, fresh))
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)
    peak = mbml_peak(Y, -0.6, -0.2, 0.0, 200.0, spacing, PARAMS)
    np.testing.assert_array_equal(peak.statistic, got.statistic.astype(np.float64))
    np.testing.assert_array_equal(peak.i_hat, got.i_hat)
    assert backends.methods("cpu", Frames) == ("fused", "lowrank")
    assert backends.methods("cpu", RangeProjectedFrames) == ("gemm", "fused")
    assert backends.methods("cuda", Frames) == ("fused",)
    with pytest.raises(ConfigError, match="method = 'gemm': full frames take one of 'fused', 'lowrank'"):
        search.execute(Frames(Y), sectors, method="gemm")


def test_receiver_blocks_own_a_search_recreated_on_a_new_spacing(spacing):
    from isacblocks.blocks import MBMLEstimator
    from isacblocks.dsp.angle_delay import AngleDelaySearch

    block = MBMLEstimator(PARAMS, sector=(-0.6, -0.2))
    search = block.search
    assert isinstance(search, AngleDelaySearch)
    np.testing.assert_array_equal(search.steering, steering_dictionary(PARAMS.nominal_spacing, PARAMS))
    block.apply_settings({"spacing": spacing})  # what message port ``spacing`` does between work() calls
    assert block.search is search
    np.testing.assert_array_equal(search.steering, steering_dictionary(spacing, PARAMS))
