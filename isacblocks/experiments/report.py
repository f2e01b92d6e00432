"""Markdown tables of a `Reproduction`, and the README section they replace.

`results_markdown` is a pure function of the results (nothing read from the clock or the
machine), so the README's results section is regenerated from ``results.json`` by
`update_readme` (``isac report out/reproduce/results.json --readme README.md``): the text
between `BEGIN` and `END` is replaced.
"""

from __future__ import annotations

import math

from ..errors import ConfigError
from ..safeio import read_text, write_text
from .claims import claims_table
from .results import Evaluation, Reproduction, Run

BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"


def _mm(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.2f}"


def _frames(n: int) -> str:
    return f"{n:,}".replace(",", " ")


def _row(name: str, ev: Evaluation, labeled: str, wall: str) -> list[str]:
    return [name, ev.estimate.text(), _mm(ev.errors.spacing_error_mm), _mm(ev.errors.position_error_mm), labeled, wall]


def _run_name(run: Run) -> str:
    if run.schedule in ("sl+ul", "ul+sl"):
        arrow = "SL→UL" if run.schedule == "sl+ul" else "UL→SL"
        return f"{arrow} ratio {run.labeled_ratio:g}" + (" (curriculum)" if run.curriculum else "")
    return run.label


def runs_table(result: Reproduction) -> str:
    """Baselines, every learning run once (by label) and the calibration points."""
    rows = [_row(f"baseline, {'known d' if label == 'known' else label}", ev, "–", "–")
            for label, ev in result.baselines.items()]
    runs: dict[str, Run] = {}
    if result.fig3:
        runs.update({run.label: run for run in result.fig3.runs.values()})
    if result.fig4:
        ssl = sorted(result.fig4.ssl.values(), key=lambda r: r.labeled_ratio)
        for run in (result.fig4.sl, result.fig4.ul_curriculum, *ssl):
            runs.setdefault(run.label, run)
    rows += [_row(_run_name(run), run.final, _frames(run.labeled_frames), f"{run.wall_s:.0f}") for run in runs.values()]
    if result.fig4:
        rows += [_row(f"LS calibration, {c.labeled_frames} frames", c.evaluation, _frames(c.labeled_frames),
                      "< 1" if c.wall_s < 1 else f"{c.wall_s:.0f}") for c in result.fig4.calibration]
    head = ["run", "Pmd [95% CI]", "‖d − d_true‖ (mm)", "element-position error (mm)", "labelled frames",
            "wall (s)"]
    return _markdown(head, rows)


def scaling_table(result: Reproduction) -> str:
    """The scaling study's fits, extrapolated to the paper's budget."""
    if result.scaling is None:
        return ""
    rows = []
    for name, f in result.scaling.fits.items():
        rows.append([name, f"{f.exponent:.3f} [{f.exponent_ci[0]:.3f}, {f.exponent_ci[1]:.3f}]", f"{f.floor:.4g}",
                     f"{f.target_frames:.3g}",
                     f"{f.extrapolated:.4g} [{f.extrapolated_ci[0]:.4g}, {f.extrapolated_ci[1]:.4g}]", f.note])
    head = ["quantity", "exponent a [95% bootstrap]", "floor", "frames", "extrapolated [95% bootstrap]", "fit"]
    return _markdown(head, rows)


def _markdown(head: list[str], rows: list[list[str]]) -> str:
    return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head),
                      *("| " + " | ".join(r) + " |" for r in rows)])


def results_markdown(result: Reproduction) -> str:
    """The results section: header, runs table, scaling fits (if run) and the claims."""
    seed = result.run.get("seed", "–")
    pfa = result.run.get("params", {}).get("pfa")
    frames = next(iter(result.baselines.values())).estimate.frames if result.baselines else 0
    parts = [f"### Latest results (`isac reproduce`, scale `{result.scale}`, seed {seed}, "
             f"{result.wall_s:.0f} s of studies)", "",
             f"MB-ML receiver, test sector, Pfa = {'–' if pfa is None else f'{pfa:g}'}, {_frames(frames)} frames "
             f"per hypothesis, same true array and "
             f"same test frames for every row (SSL rows branch off the SL run; their wall time is the part after the "
             f"branch).  Executor: {result.executor}; any executor gives the same numbers.", "",
             runs_table(result)]
    if result.scaling is not None:
        parts += ["", "Scaling study (Pmd − Pmd(known d) and element-position error ∝ frames^−a):", "",
                  scaling_table(result)]
    table = claims_table(result.claims, result.scale, result.wall_s).split("\n", 2)[2]
    parts += ["", "Claims at this scale:", "", table]
    return "\n".join(parts)


def replace_section(text: str, section: str, where: str = "README", begin: str = BEGIN, end: str = END) -> str:
    """`text` with the part between the `begin` and `end` markers replaced by `section`."""
    if text.count(begin) != 1 or text.count(end) != 1 or text.index(begin) > text.index(end):
        raise ConfigError(f"{where}: expected one {begin} line followed by one {end} line")
    before, rest = text.split(begin)
    _, after = rest.split(end)
    return f"{before}{begin}\n{section}\n{end}{after}"


def check_section(path, begin: str, end: str) -> None:
    """Refuse, before any work, a file without one `begin` ... `end` pair of markers."""
    replace_section(read_text(path, "document"), "", str(path), begin, end)


def update_section(readme, section: str, begin: str = BEGIN, end: str = END) -> None:
    """Replace the part of the file `readme` between `begin` and `end` by `section`."""
    text = read_text(readme, "document")
    write_text(readme, replace_section(text, section, str(readme), begin, end))


def update_readme(readme, result: Reproduction) -> None:
    """The README's results section from `result`."""
    update_section(readme, results_markdown(result))
