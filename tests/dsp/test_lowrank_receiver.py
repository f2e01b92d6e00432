"""The low-rank form of the sector map (`dsp.angle_delay.lowrank`, ``method="lowrank"``).

Checked against the dense map ``|Phi_pert^H Y~ Phi_d^*|`` (`angle_delay_map_dense`, plain
complex64 matrix products over the whole grid): the same arg-max cell (or a tie at float32
precision), the statistic and the window to float32 rounding; and a frame's outputs must not
depend on the other frames of its batch.
"""

import numpy as np
import pytest

from isacblocks import SystemParams
from isacblocks.blocks import MBMLEstimator
from isacblocks.dsp.angle_delay import angle_delay_map_dense
from isacblocks.dsp.angle_delay.lowrank import sector_factors
from isacblocks.dsp.channels import complex_normal
from isacblocks.dsp.impairments import array_steering, draw_impairments
from isacblocks.dsp.mbml import mbml_estimate, mbml_peak, sector_cols, sector_rows, steering_dictionary
from isacblocks.dsp.spacing import draw_spacing
from isacblocks.dsp.steering import range_steering
from isacblocks.errors import ConfigError

P = SystemParams()
TIE_RTOL = 1e-5


def frames_with_targets(spacing, n, seed, theta_min, theta_max):
    """Reciprocal-filtered frames (x = 1), a target in the sector in every other frame, 12 dB above the noise."""
    rng = np.random.default_rng(seed)
    Y = complex_normal(rng, (n, P.n_antennas, P.n_subcarriers), P.noise_power, dtype=np.complex128)
    theta = rng.uniform(theta_min, theta_max)
    ranges = rng.uniform(5.0, 190.0, n)
    a = array_steering(theta, spacing, P.wavelength).T  # (n, K)
    rho = range_steering(ranges, P).T  # (n, S)
    Y[::2] += 4.0 * a[::2, :, None] * rho[::2, None, :]
    return Y.astype(np.complex64)


def check_against_dense(Y, lo, hi, r_lo, r_hi, spacing):
    theta_min, theta_max = np.asarray(lo), np.asarray(hi)
    peak = mbml_peak(Y, theta_min, theta_max, r_lo, r_hi, spacing, P, method="lowrank")
    dense = angle_delay_map_dense(Y, spacing, P)  # (B, N_theta, N_tau)
    rows = sector_rows(theta_min, theta_max, P)
    cols = sector_cols(np.broadcast_to(r_lo, theta_min.shape), np.broadcast_to(r_hi, theta_min.shape), P)
    for b in range(len(Y)):
        sector = dense[b, rows[0][b]:rows[1][b], cols[0][b]:cols[1][b]]
        i, j = np.unravel_index(np.argmax(sector), sector.shape)
        best = sector[i, j]
        got = dense[b, peak.i_hat[b], peak.j_hat[b]]
        assert rows[0][b] <= peak.i_hat[b] < rows[1][b] and cols[0][b] <= peak.j_hat[b] < cols[1][b]
        assert (peak.i_hat[b], peak.j_hat[b]) == (i + rows[0][b], j + cols[0][b]) or best - got <= TIE_RTOL * best
        assert peak.statistic[b] == pytest.approx(best, rel=TIE_RTOL)


def test_sector_factor_is_exact_to_float32_with_fewer_rows():
    spacing = draw_spacing(np.random.default_rng(3), P)
    phi_h = steering_dictionary(spacing, P).conj().T  # (N_theta, K)
    lo, hi = (int(v) for v in sector_rows(*P.test_sector, P))
    left, right = sector_factors(phi_h, lo, hi)
    rows = phi_h[lo:hi].astype(np.complex128)
    error = np.linalg.norm(left.astype(np.complex128) @ right - rows) / np.linalg.norm(rows)
    assert error < 1e-6  # float32 rounding of the factors themselves
    assert right.shape[0] <= 30 < hi - lo == 80  # the test sector: 80 grid angles, under 30 latent rows


def test_same_peak_as_the_dense_map_for_one_sector_and_for_per_frame_sectors():
    spacing = draw_spacing(np.random.default_rng(4), P)
    Y = frames_with_targets(spacing, 24, 1, *P.test_sector)
    check_against_dense(Y, np.full(24, P.test_sector[0]), np.full(24, P.test_sector[1]), P.range_min_m,
                        P.range_max_m, spacing)
    rng = np.random.default_rng(5)
    centres = rng.choice(np.radians([-50.0, -10.0, 25.0]), 24)  # three sectors in one batch
    check_against_dense(Y, centres - 0.1, centres + 0.1, 30.0, 150.0, spacing)


def test_impaired_array_and_the_soft_estimates_match_the_fused_kernel():
    array = draw_impairments(6, P, ("spacing", "gain", "coupling"))
    Y = frames_with_targets(array, 20, 2, *P.test_sector)
    sector = (*P.test_sector, P.range_min_m, P.range_max_m)
    check_against_dense(Y, np.full(20, sector[0]), np.full(20, sector[1]), sector[2], sector[3], array)
    fused = mbml_estimate(Y, *sector, array, P)
    lowrank = mbml_estimate(Y, *sector, array, P, method="lowrank")
    np.testing.assert_allclose(lowrank[0], fused[0], rtol=1e-5)
    np.testing.assert_allclose(lowrank[1], fused[1], atol=1e-5)  # rad
    np.testing.assert_allclose(lowrank[2], fused[2], atol=1e-3)  # m


def test_outputs_do_not_depend_on_the_batch_and_bad_frames_stay_alone():
    spacing = draw_spacing(np.random.default_rng(7), P)
    Y = frames_with_targets(spacing, 40, 3, *P.test_sector)
    Y[5, 3, 7] = np.nan
    sector = (*P.test_sector, P.range_min_m, P.range_max_m)
    whole = mbml_estimate(Y, *sector, spacing, P, method="lowrank")
    parts = [mbml_estimate(Y[s:s + 7], *sector, spacing, P, method="lowrank") for s in range(0, 40, 7)]
    for k in range(3):
        assert np.array_equal(whole[k], np.concatenate([p[k] for p in parts]), equal_nan=True)
    assert np.isnan(whole[0][5]) and np.isfinite(np.delete(whole[0], 5)).all()


def test_method_is_validated():
    with pytest.raises(ConfigError, match="method = 'svd': full frames take one of 'fused', 'lowrank'"):
        mbml_estimate(np.zeros((1, P.n_antennas, P.n_subcarriers), np.complex64), *P.test_sector, 0.0, 200.0,
                      P.nominal_spacing, P, method="svd")
    with pytest.raises(ConfigError, match="mbml_estimator.*method = 'x'"):
        MBMLEstimator(P, method="x")
