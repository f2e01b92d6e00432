"""The BLAS search of the sector map (`dsp.angle_delay.gemm`, ``method="gemm"``, the default for
range-projected and factored frames).

Its claim is strong: the statistic, arg-max, window and window columns are the fused
kernel's bit for bit, because the fused kernel's own arithmetic recomputes every block that
can hold the maximum.  So the tests compare bit patterns with ``method="fused"``, on training
sectors (one per frame), the test sector with the eq.-17 window, per-frame range columns,
exact ties (an all-zero frame), non-finite and overflowing frames; and they check the search's
own error against a complex128 dense map, which the margin must exceed by far.
"""

import numpy as np
import pytest

from isacblocks import SystemParams
from isacblocks.dsp.angle_delay import angle_delay_peak, angle_delay_peak_factored
from isacblocks.dsp.angle_delay.gemm import SEARCH_MARGIN, search_blocks, search_synthesis
from isacblocks.dsp.mbml import angle_dictionary, range_dictionary, range_factors, sector_rows, steering_dictionary
from isacblocks.dsp.scenario import training_sectors
from isacblocks.dsp.spacing import draw_spacing
from isacblocks.errors import ConfigError
from isacblocks.sim.montecarlo import ProjectedBasis, draw_projected_frames

P = SystemParams()
SPACING = draw_spacing(np.random.default_rng(5), P)
BASIS = ProjectedBasis.for_params(P)


def training_frames(n, seed, spacing=SPACING):
    rng = np.random.default_rng(seed)
    lo, hi = training_sectors(rng, P, n)
    frames = draw_projected_frames(rng, P, spacing, BASIS, lo, hi, n)
    gain = 0.5 + rng.random(n)  # a precoder gain per frame, as in training
    return frames, gain, sector_rows(lo, hi, P)


def bits(array):
    array = np.asarray(array)
    return array.view(np.uint32 if array.dtype.itemsize == 4 else np.uint64)


def assert_same_peak(gemm, fused):
    for name, a, b in zip(gemm._fields, gemm, fused):
        assert a.dtype == b.dtype and a.shape == b.shape, name
        if a.dtype.kind == "f":
            assert np.array_equal(bits(a), bits(b)), f"{name}: {np.flatnonzero(bits(a) != bits(b))[:5]}"
        else:
            assert np.array_equal(a, b), f"{name}: frames {np.flatnonzero(a != b)[:5]}"


def peak(C, rows, method, cols=(0, None), half=(0, 0), spacing=SPACING):
    return angle_delay_peak(C, angle_dictionary(spacing, P), range_dictionary(P), rows[0], rows[1], cols[0], cols[1],
                            *half, projected=True, method=method)


def test_training_frames_bit_for_bit_with_the_fused_kernel():
    frames, gain, rows = training_frames(600, 1)
    C = frames.combine(gain)
    assert_same_peak(peak(C, rows, "gemm"), peak(C, rows, "fused"))


def test_window_and_per_frame_columns_bit_for_bit():
    frames, _, _ = training_frames(300, 2)
    C = frames.combine(np.ones(300))
    rng = np.random.default_rng(3)
    rows = sector_rows(np.full(300, P.test_sector[0]), np.full(300, P.test_sector[1]), P)
    col_lo = rng.integers(0, 150, 300)
    col_hi = col_lo + rng.integers(1, 200 - col_lo + 1)
    half = (P.window_half_angle, P.window_half_range)
    assert_same_peak(peak(C, rows, "gemm", (col_lo, col_hi), half), peak(C, rows, "fused", (col_lo, col_hi), half))


def test_factored_frames_and_window_columns_bit_for_bit():
    frames, gain, rows = training_frames(400, 4)
    scale = (frames.amplitude * gain).astype(np.complex64)
    spacing = SPACING * (1 + 0.01 * np.random.default_rng(4).standard_normal(P.n_antennas))  # a learner's d
    args = (frames.noise, frames.steering, scale, frames.delay, angle_dictionary(spacing, P), range_dictionary(P),
            rows[0], rows[1])
    gemm = angle_delay_peak_factored(*args, window_cols=P.window_half_range, method="gemm")
    fused = angle_delay_peak_factored(*args, window_cols=P.window_half_range, method="fused")
    assert_same_peak(gemm[0], fused[0])
    for a, b in zip(gemm[1:], fused[1:]):
        assert np.array_equal(bits(a.view(np.float32)), bits(b.view(np.float32)))


def test_ties_non_finite_and_overflowing_frames_match_the_fused_kernel():
    frames, _, rows = training_frames(40, 6)
    C = frames.combine(np.ones(40))
    C[3] = 0.0  # every entry ties: the first cell of the sector wins
    C[7, 2, 5] = np.nan
    C[9, 0, 0] = np.inf
    C[11] *= np.float32(3e18)  # finite frame whose |L|^2 overflows float32
    half = (P.window_half_angle, P.window_half_range)
    gemm, fused = peak(C, rows, "gemm", half=half), peak(C, rows, "fused", half=half)
    for a, b in zip(gemm, fused):
        assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
    assert gemm.i_hat[3] == rows[0][3] and gemm.j_hat[3] == 0 and gemm.statistic[3] == 0
    assert np.isnan(gemm.statistic[7])


def test_outputs_do_not_depend_on_the_batch():
    frames, _, rows = training_frames(70, 8)
    C = frames.combine(np.ones(70))
    whole = peak(C, rows, "gemm")
    for start in range(0, 70, 9):
        part = peak(C[start:start + 9], (rows[0][start:start + 9], rows[1][start:start + 9]), "gemm")
        for a, b in zip(part, whole):
            assert np.array_equal(a, b[start:start + 9])


def test_search_error_is_far_inside_the_margin():
    """The search's |L|^2 against the complex128 map of the same frames: its error relative to the
    frame's maximum must stay 100 x below `SEARCH_MARGIN`, the ground of the bit-for-bit claim."""
    frames, _, rows = training_frames(200, 9)
    C = frames.combine(np.ones(200))
    herm = steering_dictionary(SPACING, P).conj().T  # (N_theta, K)
    _, sigma, v = range_factors(P)
    worst = 0.0
    # the search's power map, through the same code path as gemm_peak_projected
    from isacblocks.dsp.angle_delay import gemm as gemm_module

    captured = []
    original = gemm_module._candidate_blocks

    def capture(power, row_max, offsets, *rest):
        captured.append((power.copy(), offsets.copy()))
        return original(power, row_max, offsets, *rest)

    gemm_module._candidate_blocks = capture
    try:
        search_blocks(C, herm.astype(np.complex64), search_synthesis(v.astype(np.complex64), sigma), rows[0], rows[1],
                      np.zeros(200, np.int64), np.full(200, P.n_range_grid, np.int64))
    finally:
        gemm_module._candidate_blocks = original
    (power, offsets), = captured
    for f in range(200):
        exact = np.abs(herm[rows[0][f]:rows[1][f]] @ C[f].astype(np.complex128) @ v) ** 2
        approx = power[offsets[f]:offsets[f + 1]]
        worst = max(worst, np.abs(approx - exact).max() / exact.max())
    assert worst < SEARCH_MARGIN / 100, worst


def test_the_search_leaves_out_only_columns_it_bounds():
    """The search drops the range factor's columns below `SEARCH_RANK_RTOL` of its largest norm
    (53 of 62 for the paper's grid); frames whose left-out columns could move the map (here ones
    where those columns carry the target: 1e3 x the column's scale) are pinned whole and still
    give the fused kernel's result."""
    _, sigma, v = range_factors(P)
    synthesis = search_synthesis(v, sigma)
    assert synthesis.rank == int(np.count_nonzero(sigma >= 1e-5 * sigma.max())) < v.shape[0]
    frames, _, rows = training_frames(60, 12)
    C = frames.combine(np.ones(60))
    C[::2, :, synthesis.rank:] *= np.float32(1e3) * frames.steering[::2, :, None] / np.abs(C[::2, :, synthesis.rank:])
    half = (P.window_half_angle, P.window_half_range)
    assert_same_peak(peak(C, rows, "gemm", half=half), peak(C, rows, "fused", half=half))


def test_methods_are_checked_against_the_frames():
    frames, _, rows = training_frames(2, 10)
    C = frames.combine(np.ones(2))
    with pytest.raises(ConfigError, match="method = 'lowrank': projected frames take one of 'gemm', 'fused'"):
        peak(C, rows, "lowrank")
    Y = np.zeros((1, P.n_antennas, P.n_subcarriers), np.complex64)
    with pytest.raises(ConfigError, match="method = 'gemm': full frames take one of 'fused', 'lowrank'"):
        angle_delay_peak(Y, angle_dictionary(SPACING, P), range_dictionary(P), 0, 10, method="gemm")
