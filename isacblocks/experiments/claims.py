"""The paper's claims, each decided from the numbers and intervals of a `reproduce` run.

Three verdicts (plus "not evaluated" when the data a claim speaks of were not computed):

- "A better than B" (lower Pmd): **held** when A's 95 % Clopper-Pearson interval lies entirely
  below B's, **not held** when it lies entirely above, otherwise **not decided at this scale**.
- "A performs like B": **held** when the intervals overlap and A's Pmd is at most B's (or A is
  better), **not held** when A's interval lies entirely above B's, otherwise (overlap, A's point
  estimate worse) **not decided at this scale**.
- A claim made of parts is held when every part is, not held when any part is, else not decided.

An undecided comparison reports its trend (the gap between the point estimates, and for
learning curves the slope of their last evaluations) and roughly what would decide it: the
frames per hypothesis at which the intervals, whose half-widths shrink as 1/sqrt(frames),
become narrower than the gap; and, where the curves still move apart, the iterations at which
their last slopes would separate the intervals.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .results import VERDICTS, Claim, Estimate, Reproduction, Run

HELD, NOT_HELD, UNDECIDED, NOT_EVALUATED = VERDICTS

CLAIMS = {
    "C1": "UL improves faster at first, SL ends better",
    "C2": "SL→UL beats UL→SL",
    "C3": "SSL with about 1.2% labelled iterations performs like SL",
    "C4": "far fewer labels make SSL clearly worse than SL",
    "C5": "SL reaches the known-spacing baseline on the ISAC trade-off",
    "C6": "SL with limited labels suffers; SSL started from it recovers",
}

#: The paper's labelled ratio of C3 (Fig. 4), and how far (a factor) a run's ratio may be from it.
PAPER_SSL_RATIO = 0.012
RATIO_TOLERANCE = 1.5
#: Evaluations at the end of a learning curve whose slope is its trend.
TREND_POINTS = 3


@dataclass(frozen=True)
class Outcome:
    """The verdict of one comparison (or of a claim's parts together)."""

    verdict: str
    evidence: str
    trend: str = ""
    to_decide: str = ""


def better(a: Estimate, b: Estimate) -> bool:
    """a's Pmd interval lies below b's."""
    return a.pmd_ci[1] < b.pmd_ci[0]


def like(a: Estimate, b: Estimate) -> bool:
    """a's Pmd interval overlaps b's, or a is better."""
    return a.pmd_ci[0] <= b.pmd_ci[1]


def frames_to_separate(a: Estimate, b: Estimate) -> float:
    """Frames per hypothesis (both estimates) at which the two intervals, shrinking as 1/sqrt(frames),
    would no longer overlap at the present gap; infinite when the point estimates are equal."""
    gap = abs(a.pmd - b.pmd)
    if gap == 0:
        return math.inf
    return ((a.half_width * math.sqrt(a.frames) + b.half_width * math.sqrt(b.frames)) / gap) ** 2


def _frames_text(a: Estimate, b: Estimate) -> str:
    need = frames_to_separate(a, b)
    if not math.isfinite(need):
        return "equal point estimates: more frames would not separate them"
    return f"≈ {need:,.0f} frames per hypothesis (now {max(a.frames, b.frames):,}) would separate the intervals"


def compare(name_a: str, a: Estimate, name_b: str, b: Estimate, claim: str = "better") -> Outcome:
    """The verdict on "A better than B" (`claim` "better") or "A performs like B" ("like")."""
    evidence = f"{a.text(name_a)} vs {b.text(name_b)}"
    gap = b.pmd - a.pmd  # > 0: A's point estimate is the lower (better) Pmd
    if better(a, b):
        return Outcome(HELD, evidence)
    if better(b, a):
        return Outcome(NOT_HELD, evidence)
    if claim == "like" and gap >= 0:
        return Outcome(HELD, evidence)
    toward = HELD if gap > 0 else NOT_HELD
    trend = (f"{name_a} {'below' if gap > 0 else 'above'} {name_b} by {abs(gap):.4f}, intervals overlap: "
             f"toward {toward}")
    return Outcome(UNDECIDED, evidence, trend, _frames_text(a, b))


def curve_slope(run: Run, points: int = TREND_POINTS) -> float:
    """Least-squares slope of Pmd over the last `points` evaluations of a learning curve (per iteration)."""
    tail = run.curve[-points:]
    if len(tail) < 2:
        return 0.0
    xs = [c.iteration for c in tail]
    ys = [c.estimate.pmd for c in tail]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else 0.0


def compare_runs(name_a: str, a: Run, name_b: str, b: Run, claim: str = "better") -> Outcome:
    """`compare` of two runs' final evaluations; an undecided one adds the curves' last slopes and
    the iterations at which they would separate the intervals if they kept them."""
    out = compare(name_a, a.final.estimate, name_b, b.final.estimate, claim)
    if out.verdict != UNDECIDED:
        return out
    sa, sb = curve_slope(a), curve_slope(b)
    trend = f"{out.trend}; last slopes {name_a} {sa * 100:+.4f}, {name_b} {sb * 100:+.4f} per 100 iterations"
    to_decide = out.to_decide
    ea, eb = a.final.estimate, b.final.estimate
    if sb > sa:  # A falls faster than B: the curves move toward "A better"
        more = (ea.pmd_ci[1] - eb.pmd_ci[0]) / (sb - sa)
        to_decide += f"; or ≈ {more:,.0f} more iterations at these slopes ({name_a} below {name_b})"
    elif sa > sb:
        more = (eb.pmd_ci[1] - ea.pmd_ci[0]) / (sa - sb)
        to_decide += f"; or ≈ {more:,.0f} more iterations at these slopes ({name_b} below {name_a})"
    return Outcome(out.verdict, out.evidence, trend, to_decide)


def combine(*parts: Outcome) -> Outcome:
    """A claim made of parts: held if all are, not held if any is, else not decided."""
    verdicts = [p.verdict for p in parts]
    verdict = NOT_HELD if NOT_HELD in verdicts else HELD if all(v == HELD for v in verdicts) else UNDECIDED
    undecided = [p for p in parts if p.verdict == UNDECIDED] if verdict == UNDECIDED else []
    return Outcome(verdict, "; ".join(p.evidence for p in parts), "; ".join(p.trend for p in undecided),
                   "; ".join(p.to_decide for p in undecided))


def _claim(cid: str, outcome: Outcome) -> Claim:
    return Claim(cid, CLAIMS[cid], outcome.verdict, outcome.evidence, outcome.trend, outcome.to_decide)


def _not_evaluated(cid: str, why: str) -> Claim:
    return Claim(cid, CLAIMS[cid], NOT_EVALUATED, why)


def _ssl_name(run: Run) -> str:
    return f"SSL r={run.labeled_ratio:.4f}"


def claims_of(result: Reproduction) -> tuple[Claim, ...]:
    """Decide C1-C6 from the typed results (figures not run: not evaluated)."""
    claims = []
    if result.fig3:
        runs = result.fig3.runs
        sl, ul = runs["SL"], runs["UL"]
        first = 1 if len(sl.curve) > 1 else 0
        early = compare(f"UL at iteration {ul.curve[first].iteration}", ul.curve[first].estimate, "SL",
                        sl.curve[first].estimate)
        claims.append(_claim("C1", combine(early, compare_runs("SL", sl, "UL", ul))))
        claims.append(_claim("C2", compare_runs("SL→UL", runs["SL→UL"], "UL→SL", runs["UL→SL"])))
    else:
        claims += [_not_evaluated("C1", "Fig. 3 not run"), _not_evaluated("C2", "Fig. 3 not run")]
    if result.fig4:
        claims += [claim_c3(result.fig4.ssl.values(), result.fig4.sl),
                   claim_c4(result.fig4.ssl.values(), result.fig4.sl)]
    else:
        claims += [_not_evaluated("C3", "Fig. 4 not run"), _not_evaluated("C4", "Fig. 4 not run")]
    if result.fig5:
        f5 = result.fig5
        sense = {role: curve.at_eta(1.0).estimate for role, curve in
                 (("known", f5.known), ("sl", f5.sl_full), ("limited", f5.sl_limited), ("ssl", f5.ssl_from_limited))}
        ser_known, ser_sl = f5.known.at_eta(0.0).ser, f5.sl_full.at_eta(0.0).ser
        comm = Outcome(HELD if ser_sl <= 1.1 * ser_known else NOT_HELD,
                       f"eta=0 SER SL {ser_sl:.2e} vs known {ser_known:.2e} (within 10 %)")
        claims.append(_claim("C5", combine(compare("eta=1: SL", sense["sl"], "known", sense["known"], "like"),
                                           comm)))
        claims.append(_claim("C6", combine(compare("eta=1: SL full", sense["sl"], "SL limited", sense["limited"]),
                                           compare("SSL", sense["ssl"], "SL full", sense["sl"], "like"))))
    else:
        claims += [_not_evaluated("C5", "Fig. 5 not run"), _not_evaluated("C6", "Fig. 5 not run")]
    return tuple(claims)


def _ratios_text(ssl) -> str:
    return ", ".join(f"{r.labeled_ratio:g}" for r in sorted(ssl, key=lambda r: r.labeled_ratio)) or "none"


def claim_c3(ssl, sl: Run) -> Claim:
    """C3 with the SSL run whose labelled ratio is nearest 1.2 %, if within a factor 1.5 of it."""
    ssl = list(ssl)
    near = [r for r in ssl if PAPER_SSL_RATIO / RATIO_TOLERANCE <= r.labeled_ratio <= PAPER_SSL_RATIO * RATIO_TOLERANCE]
    if not near:
        return _not_evaluated("C3", f"not evaluated at this scale: no ratio near 1.2 % (within x{RATIO_TOLERANCE:g}; "
                                    f"ratios {_ratios_text(ssl)})")
    run = min(near, key=lambda r: abs(math.log(r.labeled_ratio / PAPER_SSL_RATIO)))
    return _claim("C3", compare_runs(_ssl_name(run), run, "SL", sl, "like"))


def claim_c4(ssl, sl: Run) -> Claim:
    """C4 with the SSL run of the fewest labels, if its ratio is below 1.2 %."""
    ssl = list(ssl)
    below = [r for r in ssl if r.labeled_ratio < PAPER_SSL_RATIO]
    if not below:
        return _not_evaluated("C4", f"not evaluated at this scale: no ratio below 1.2 % (ratios {_ratios_text(ssl)})")
    fewest = min(below, key=lambda r: r.labeled_ratio)
    return _claim("C4", compare_runs("SL", sl, _ssl_name(fewest), fewest))


def claims_table(claims, scale: str, wall_s: float) -> str:
    """The claims as a markdown table."""
    lines = [f"# Claims of the paper at scale `{scale}` (wall time {wall_s:.0f} s)", "",
             "| id | claim | verdict | evidence (Pmd at Pfa 1e-2, 95% CI) | trend | what would decide it |",
             "|---|---|---|---|---|---|"]
    for c in claims:
        cells = (c.id, c.claim, c.verdict, c.evidence, c.trend or "–", c.to_decide or "–")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
