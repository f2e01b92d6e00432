"""The verdict rules of the claims on hand-built results (no study is run)."""

import math

import pytest

from isacblocks.experiments import claims
from isacblocks.experiments.results import (
    CurvePoint,
    Estimate,
    Evaluation,
    Fig5,
    IsacCurve,
    IsacPoint,
    Reproduction,
    Run,
    SpacingErrors,
)

ERR = SpacingErrors(1.0, 10.0, 3.0, 5.0)


def est(pmd: float, half: float, frames: int = 10_000) -> Estimate:
    return Estimate(pmd, (pmd - half, pmd + half), frames)


def evaluation(e: Estimate) -> Evaluation:
    return Evaluation(e, 5.0, 1.0, 0.01, (0.008, 0.012), ERR)


def run(label: str, final: Estimate, curve=(), ratio: float = 0.0, schedule: str = "sl+ul") -> Run:
    points = tuple(CurvePoint(i, 0, e, 5.0, ERR) for i, e in curve)
    return Run(label, schedule, ratio, False, 400, 256, 6.25e-6, points, evaluation(final), (0.0,), 0, 1.0)


def test_better_is_held_not_held_or_undecided_by_the_intervals():
    assert claims.compare("A", est(0.05, 0.01), "B", est(0.10, 0.01)).verdict == claims.HELD
    assert claims.compare("A", est(0.10, 0.01), "B", est(0.05, 0.01)).verdict == claims.NOT_HELD
    out = claims.compare("A", est(0.06, 0.01), "B", est(0.07, 0.01))
    assert out.verdict == claims.UNDECIDED and "toward held" in out.trend
    out = claims.compare("A", est(0.07, 0.01), "B", est(0.06, 0.01))
    assert out.verdict == claims.UNDECIDED and "toward not held" in out.trend


def test_like_is_held_when_not_worse_and_undecided_when_worse_within_the_intervals():
    assert claims.compare("A", est(0.06, 0.01), "B", est(0.07, 0.01), "like").verdict == claims.HELD
    assert claims.compare("A", est(0.02, 0.005), "B", est(0.07, 0.01), "like").verdict == claims.HELD
    assert claims.compare("A", est(0.10, 0.01), "B", est(0.05, 0.01), "like").verdict == claims.NOT_HELD
    assert claims.compare("A", est(0.07, 0.01), "B", est(0.06, 0.01), "like").verdict == claims.UNDECIDED


def test_frames_to_separate_scale_as_one_over_sqrt_frames():
    # Gap 0.01, half-widths 0.01 each at 10 000 frames: they separate when 2 * 0.01 * sqrt(1e4 / n) < 0.01,
    # i.e. at n = 4 * 1e4 frames.
    assert claims.frames_to_separate(est(0.06, 0.01), est(0.07, 0.01)) == pytest.approx(40_000)
    assert claims.frames_to_separate(est(0.06, 0.01), est(0.06, 0.01)) == math.inf


def test_undecided_runs_report_their_slopes_and_the_iterations_to_separate():
    # A falls 0.01 per 100 iterations, B is flat; A's upper bound 0.07 is 0.01 above B's lower 0.06.
    a = run("A", est(0.06, 0.01), [(200, est(0.08, 0.02)), (300, est(0.07, 0.02)), (400, est(0.06, 0.01))])
    b = run("B", est(0.07, 0.01), [(200, est(0.07, 0.02)), (300, est(0.07, 0.02)), (400, est(0.07, 0.01))])
    out = claims.compare_runs("A", a, "B", b)
    assert out.verdict == claims.UNDECIDED
    assert "A -0.0100" in out.trend and "B +0.0000" in out.trend
    assert "≈ 100 more iterations" in out.to_decide and "40,000 frames" in out.to_decide
    assert claims.curve_slope(a) == pytest.approx(-1e-4)


def test_a_claim_of_parts_is_held_only_when_every_part_is():
    held, no, open_ = (claims.Outcome(v, v) for v in (claims.HELD, claims.NOT_HELD, claims.UNDECIDED))
    assert claims.combine(held, held).verdict == claims.HELD
    assert claims.combine(held, no).verdict == claims.NOT_HELD
    assert claims.combine(open_, no).verdict == claims.NOT_HELD
    assert claims.combine(held, open_).verdict == claims.UNDECIDED


def test_c3_uses_only_a_ratio_near_the_papers_and_c4_only_ratios_below_it():
    sl = run("SL", est(0.06, 0.005), schedule="sl")
    far = [run("r=0.05", est(0.06, 0.005), ratio=0.05), run("r=0.2", est(0.06, 0.005), ratio=0.2)]
    c3 = claims.claim_c3(far, sl)
    assert c3.verdict == claims.NOT_EVALUATED and "no ratio near 1.2 %" in c3.evidence
    assert claims.claim_c4(far, sl).verdict == claims.NOT_EVALUATED
    near = [run("r=0.0125", est(0.058, 0.005), ratio=0.0125), *far]
    c3 = claims.claim_c3(near, sl)
    assert c3.verdict == claims.HELD and "r=0.0125" in c3.evidence
    # 0.0125 is not below 1.2 %; 0.005 is, and clearly worse than SL.
    assert claims.claim_c4(near, sl).verdict == claims.NOT_EVALUATED
    fewer = [run("r=0.005", est(0.15, 0.01), ratio=0.005), *near]
    c4 = claims.claim_c4(fewer, sl)
    assert c4.verdict == claims.HELD and "r=0.0050" in c4.evidence


def _curve(label: str, pmd_sensing: float, ser_comm: float) -> IsacCurve:
    points = (IsacPoint(0.0, 0.0, est(0.9, 0.02, 1000), 9.0, ser_comm, 1.0, True, True),
              IsacPoint(1.0, 0.0, est(pmd_sensing, 0.01, 1000), 3.0, 0.5, 1.0, True, True))
    return IsacCurve(label, points, ERR)


def test_fig5_claims_compare_the_roles_by_name():
    # The curves' labels say nothing of their roles: the claims read the named fields.
    fig5 = Fig5(known=_curve("x", 0.05, 1e-3), sl_full=_curve("y", 0.048, 1.05e-3),
                sl_limited=_curve("z", 0.20, 2e-3), ssl_from_limited=_curve("w", 0.045, 1e-3))
    result = Reproduction("hand", {}, ("5",), "serial", {}, None, None, fig5, None, (), 0.0)
    c5, c6 = claims.claims_of(result)[4:]
    assert c5.verdict == claims.HELD and c6.verdict == claims.HELD
    swapped = Fig5(known=fig5.known, sl_full=fig5.sl_limited, sl_limited=fig5.sl_full,
                   ssl_from_limited=fig5.ssl_from_limited)
    c5, c6 = claims.claims_of(Reproduction("hand", {}, ("5",), "serial", {}, None, None, swapped, None, (), 0.0))[4:]
    assert c5.verdict == claims.NOT_HELD and c6.verdict == claims.NOT_HELD


def test_figures_not_run_are_not_evaluated():
    result = Reproduction("hand", {}, (), "serial", {}, None, None, None, None, (), 0.0)
    assert {c.verdict for c in claims.claims_of(result)} == {claims.NOT_EVALUATED}
