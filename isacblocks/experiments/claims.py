"""The paper's claims, each decided from the numbers and intervals of a `reproduce` run.

"A better than B" means A's Pmd interval lies entirely below B's (95% Clopper-Pearson);
"A performs like B" means the intervals overlap or A is better.  A claim whose data were
not computed (figure not run) is reported as not evaluated.
"""

from __future__ import annotations

CLAIMS = {
    "C1": "UL improves faster at first, SL ends better",
    "C2": "SL→UL beats UL→SL",
    "C3": "SSL with about 1.2% labelled iterations performs like SL",
    "C4": "far fewer labels make SSL clearly worse than SL",
    "C5": "SL reaches the known-spacing baseline on the ISAC trade-off",
    "C6": "SL with limited labels suffers; SSL started from it recovers",
}


def better(a: dict, b: dict) -> bool:
    """a's Pmd interval lies below b's."""
    return a["pmd_ci"][1] < b["pmd_ci"][0]


def like(a: dict, b: dict) -> bool:
    """a's Pmd interval overlaps b's, or a is better."""
    return a["pmd_ci"][0] <= b["pmd_ci"][1]


def _fmt(name: str, r: dict) -> str:
    return f"{name} {r['pmd']:.4f} [{r['pmd_ci'][0]:.4f}, {r['pmd_ci'][1]:.4f}]"


def evaluate_claims(results: dict, baselines: dict) -> list[dict]:
    claims = []

    def add(cid: str, held, evidence: str) -> None:
        claims.append({"id": cid, "claim": CLAIMS[cid], "held": held, "evidence": evidence})

    fig3, fig4, fig5 = results.get("fig3"), results.get("fig4"), results.get("fig5")
    if fig3:
        runs = fig3["runs"]
        sl, ul = runs["SL"], runs["UL"]
        first = 1 if len(sl["curve"]) > 1 else 0
        early_sl, early_ul = sl["curve"][first], ul["curve"][first]
        faster = better(early_ul, early_sl)
        ends = better(sl["final"], ul["final"])
        add("C1", faster and ends,
            f"iteration {early_sl['iteration']}: {_fmt('UL', early_ul)} vs {_fmt('SL', early_sl)}; final: "
            f"{_fmt('SL', sl['final'])} vs {_fmt('UL', ul['final'])}")
        add("C2", better(runs["SL→UL"]["final"], runs["UL→SL"]["final"]),
            f"{_fmt('SL→UL', runs['SL→UL']['final'])} vs {_fmt('UL→SL', runs['UL→SL']['final'])}")
    else:
        add("C1", None, "Fig. 3 not run")
        add("C2", None, "Fig. 3 not run")
    if fig4:
        sl = fig4["sl"]["final"]
        ssl = sorted(fig4["ssl"].values(), key=lambda r: r["labeled_ratio"])
        near = min(ssl, key=lambda r: abs(r["labeled_ratio"] - 0.012))
        add("C3", like(near["final"], sl),
            f"{_fmt('SSL r=%.4f' % near['labeled_ratio'], near['final'])} vs {_fmt('SL', sl)}")
        fewest = ssl[0]
        note = "" if fewest["labeled_ratio"] < 0.012 else " (no ratio below 1.2% at this scale)"
        add("C4", better(sl, fewest["final"]),
            f"{_fmt('SSL r=%.4f' % fewest['labeled_ratio'], fewest['final'])} vs {_fmt('SL', sl)}{note}")
    else:
        add("C3", None, "Fig. 4 not run")
        add("C4", None, "Fig. 4 not run")
    if fig5:
        names = list(fig5)  # known baseline, SL (full), SL (limited), SSL (from limited SL)
        sense = {name: _endpoint(c, 1.0) for name, c in fig5.items()}
        comm_known, comm_sl = (_endpoint(fig5[n], 0.0)["ser"] for n in names[:2])
        add("C5", like(sense[names[1]], sense[names[0]]) and comm_sl <= 1.1 * comm_known,
            f"eta=1: {_fmt('SL', sense[names[1]])} vs {_fmt('known', sense[names[0]])}; eta=0 SER "
            f"{comm_sl:.2e} vs {comm_known:.2e}")
        add("C6", better(sense[names[1]], sense[names[2]]) and like(sense[names[3]], sense[names[1]]),
            f"eta=1: {_fmt('SL limited', sense[names[2]])}, {_fmt('SSL', sense[names[3]])}, "
            f"{_fmt('SL full', sense[names[1]])}")
    else:
        add("C5", None, "Fig. 5 not run")
        add("C6", None, "Fig. 5 not run")
    return claims


def _endpoint(curve: dict, eta: float) -> dict:
    return next(p for p in curve["points"] if abs(p["eta"] - eta) < 1e-9)


def claims_table(claims: list[dict], scale: str, wall_s: float) -> str:
    lines = [f"# Claims of the paper at scale `{scale}` (wall time {wall_s:.0f} s)", "",
             "| id | claim | held | evidence (Pmd at Pfa 1e-2, 95% CI) |", "|---|---|---|---|"]
    for c in claims:
        held = "not evaluated" if c["held"] is None else ("held" if c["held"] else "not held")
        lines.append(f"| {c['id']} | {c['claim']} | {held} | {c['evidence']} |")
    return "\n".join(lines)
