"""The scaling study's power-law fit on data with a known exponent (no study is run)."""

import math

import numpy as np
import pytest

from isacblocks.experiments.scaling import fit_power_law, paper_frames


def test_an_exact_power_law_is_recovered_and_extrapolated():
    frames = np.geomspace(256, 600_000, 8)
    values = 0.055 + 0.4 * frames ** -0.3
    fit = fit_power_law("pmd", frames, values, 0.055, paper_frames())
    assert fit.exponent == pytest.approx(0.3, rel=1e-9) and fit.coefficient == pytest.approx(0.4, rel=1e-9)
    assert fit.extrapolated == pytest.approx(0.055 + 0.4 * 255e6 ** -0.3, rel=1e-9)
    # Every bootstrap sample of exact data refits the same line.
    assert fit.exponent_ci == pytest.approx((0.3, 0.3), rel=1e-6)


def test_noisy_points_give_an_interval_around_the_true_exponent():
    rng = np.random.default_rng(5)
    frames = np.geomspace(100, 1e6, 12)
    values = 0.4 * frames ** -0.5 * np.exp(rng.normal(0, 0.1, frames.size))
    fit = fit_power_law("position_error_mm", frames, values, 0.0, paper_frames())
    lo, hi = fit.exponent_ci
    assert lo < 0.5 < hi and hi - lo < 0.1
    assert fit.extrapolated_ci[0] < 0.4 * paper_frames() ** -0.5 < fit.extrapolated_ci[1]


def test_points_at_or_below_the_floor_are_left_out_and_too_few_are_not_fitted():
    fit = fit_power_law("pmd", [10, 100, 1000, 10000], [0.2, 0.1, 0.05, 0.04], 0.05, paper_frames())
    assert fit.points_used == 2 and math.isnan(fit.exponent) and "not fitted" in fit.note
