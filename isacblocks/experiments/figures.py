"""The figures of ``isac reproduce``, one function per figure, drawn from the typed results.

Every Pmd curve carries its 95 % Clopper-Pearson interval as a shaded band (error bars for
isolated points); legends sit outside the axes so that they hide no data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..safeio import save_figure
from .results import FIGURE_FIELDS, Estimate, Evaluation, Fig3, Fig4, Fig5, Reproduction, Scaling


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _band(ax, xs, estimates: list[Estimate], label: str, **style) -> None:
    """A Pmd curve with its interval as a shaded band."""
    line, = ax.plot(xs, [e.pmd for e in estimates], label=label, **style)
    ax.fill_between(xs, [e.pmd_ci[0] for e in estimates], [e.pmd_ci[1] for e in estimates],
                    color=line.get_color(), alpha=0.12, linewidth=0)


def _points(ax, xs, estimates: list[Estimate], label: str, **style) -> None:
    """Pmd points with their intervals as error bars."""
    yerr = np.array([[e.pmd - e.pmd_ci[0] for e in estimates], [e.pmd_ci[1] - e.pmd for e in estimates]])
    ax.errorbar(xs, [e.pmd for e in estimates], yerr=yerr, capsize=3, label=label, **style)


def _level(ax, estimate: Estimate, label: str, **style) -> None:
    """A horizontal reference (a baseline) with its interval."""
    line = ax.axhline(estimate.pmd, label=label, **style)
    ax.axhspan(*estimate.pmd_ci, color=line.get_color(), alpha=0.08, linewidth=0)


def _legend_outside(ax, below: bool = False) -> None:
    """The legend beside the axes (right), or `below` them (for side-by-side panels)."""
    if below:
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
    else:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, frameon=False)


def _pmd_axis(ax, pfa: float) -> None:
    ax.set_ylabel(f"P_md at P_fa = {pfa:g} (95% CI)")
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)


def _plain_numbers(ax) -> None:
    """Log-scale y ticks written as plain numbers (a short range gets no power-of-ten labels)."""
    from matplotlib.ticker import FormatStrFormatter

    ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.yaxis.set_minor_formatter(FormatStrFormatter("%g"))


def _save(figure, path: Path) -> None:
    try:
        save_figure(figure, path, dpi=120, bbox_inches="tight")
    finally:
        _pyplot().close(figure)


def _baselines(ax, baselines: dict[str, Evaluation]) -> None:
    for (label, res), style in zip(baselines.items(), (":", "-.")):
        _level(ax, res.estimate, f"baseline, {label} d" if label == "known" else f"baseline, {label}",
               color="k", linestyle=style)


def plot_fig3(result: Fig3, path: Path, pfa: float) -> None:
    """Fig. 3: Pmd vs training iterations for every schedule, with the baselines."""
    plt = _pyplot()
    figure, ax = plt.subplots(figsize=(8, 4.5))
    for name, run in result.runs.items():
        _band(ax, [c.iteration for c in run.curve], [c.estimate for c in run.curve], name, marker="o", ms=3,
              linestyle="--" if "curriculum" in name else "-")
    _baselines(ax, result.baselines)
    ax.set_xlabel("training iteration")
    _pmd_axis(ax, pfa)
    ax.set_title("Fig. 3: misdetection vs training iterations")
    _legend_outside(ax)
    _save(figure, path)


def plot_fig4(result: Fig4, path: Path, pfa: float) -> None:
    """Fig. 4: Pmd vs labelled-data ratio (SSL, SL at 1, curriculum UL), and vs labelled frames
    for the learned spacings and the classical calibration."""
    plt = _pyplot()
    figure, (ax, ax2) = plt.subplots(1, 2, figsize=(13, 4.5))
    ssl = sorted(result.ssl.values(), key=lambda r: r.labeled_ratio)
    ratios = [r.labeled_ratio for r in ssl]
    _band(ax, ratios, [r.final.estimate for r in ssl], "SL→UL", marker="o")
    _points(ax, [1.0], [result.sl.final.estimate], "_nolegend_", marker="s", color="C1", linestyle="none")
    _level(ax, result.sl.final.estimate, "SL (ratio 1)", color="C1", linestyle="--")
    _level(ax, result.ul_curriculum.final.estimate, "UL with sector curriculum (no labels)", color="C2",
           linestyle="-.")
    _level(ax, result.baselines["known"].estimate, "baseline, known d", color="k", linestyle=":")
    ax.set_xscale("log")
    ax.set_xticks([*ratios, 1.0])
    ax.set_xticklabels([f"{r:g}" for r in [*ratios, 1.0]], rotation=45)
    ax.minorticks_off()
    ax.set_xlabel("labelled-data ratio (SL iterations / all iterations)")
    _pmd_axis(ax, pfa)
    ax.set_title("Fig. 4: misdetection vs labelled-data ratio")
    _legend_outside(ax, below=True)
    calib = result.calibration
    _points(ax2, [c.labeled_frames for c in calib], [c.evaluation.estimate for c in calib],
            "classical LS calibration", marker="s")
    learned = [*ssl, result.sl]
    _points(ax2, [r.labeled_frames for r in learned], [r.final.estimate for r in learned], "SL→UL and SL (learned)",
            marker="o")
    _level(ax2, result.baselines["known"].estimate, "baseline, known d", color="k", linestyle=":")
    ax2.set_xscale("log")
    ax2.set_xlabel("labelled frames used")
    _pmd_axis(ax2, pfa)
    ax2.set_title("labels needed: calibration vs learning")
    _legend_outside(ax2, below=True)
    figure.tight_layout()
    _save(figure, path)


def plot_fig5(result: Fig5, path: Path, pfa: float) -> None:
    """Fig. 5: ISAC Pareto fronts, Pmd vs SER and position RMSE vs SER."""
    plt = _pyplot()
    figure, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    for label, curve in result.curves().items():
        front = sorted((p for p in curve.points if p.pareto_pmd_ser), key=lambda p: p.ser)
        _band(ax1, [p.ser for p in front], [p.estimate for p in front], label, marker="o", ms=3)
        front = sorted((p for p in curve.points if p.pareto_rmse_ser), key=lambda p: p.ser)
        ax2.plot([p.ser for p in front], [p.rmse_position for p in front], marker="o", ms=3, label=label)
    ax1.set_xlabel("SER")
    ax1.set_xscale("log")
    _pmd_axis(ax1, pfa)
    ax1.set_title("Fig. 5: ISAC trade-off (Pareto points)")
    ax2.set_xlabel("SER")
    ax2.set_ylabel("position RMSE (m)")
    ax2.set_xscale("log")
    ax2.set_yscale("log")
    ax2.grid(True, which="both", alpha=0.3)
    _legend_outside(ax1, below=True)
    _legend_outside(ax2, below=True)
    figure.tight_layout()
    _save(figure, path)


def plot_scaling(result: Scaling, path: Path, pfa: float) -> None:
    """Pmd and element-position error vs training frames seen, per schedule and batch size, with
    each schedule's power-law fit drawn out to the paper's budget."""
    plt = _pyplot()
    figure, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.5))
    schedules = list(dict.fromkeys(label.split(" b=")[0] for label in result.series))
    markers = dict(zip(sorted({s.batch_size for s in result.series.values()}), "os^Dv"))
    for label, series in result.series.items():
        color = f"C{schedules.index(label.split(' b=')[0])}"
        frames = [p.frames_seen for p in series.points]
        _band(ax1, frames, [p.estimate for p in series.points], label, color=color,
              marker=markers[series.batch_size], ms=4)
        ax2.plot(frames, [p.errors.position_error_mm for p in series.points], color=color,
                 marker=markers[series.batch_size], ms=4, label=label)
    target = max((f.target_frames for f in result.fits.values()), default=0)
    lo = min((p.frames_seen for s in result.series.values() for p in s.points), default=1)
    xs = np.geomspace(max(lo, 1), max(target, lo * 10), 50)
    for schedule in schedules:
        color = f"C{schedules.index(schedule)}"
        for ax, key in ((ax1, f"{schedule} Pmd"), (ax2, f"{schedule} position error")):
            fit = result.fits.get(key)
            if fit is None or not np.isfinite(fit.exponent):
                continue
            ax.plot(xs, fit.floor + fit.coefficient * xs ** -fit.exponent, color=color, linestyle=":", linewidth=1,
                    label=f"{schedule} fit, exponent {fit.exponent:.2f}")
            ax.errorbar([fit.target_frames], [fit.extrapolated],
                        yerr=[[fit.extrapolated - fit.extrapolated_ci[0]], [fit.extrapolated_ci[1] - fit.extrapolated]],
                        color=color, marker="*", ms=9, capsize=3, linestyle="none")
    _level(ax1, result.baselines["known"].estimate, "baseline, known d", color="k", linestyle=":")
    for ax in (ax1, ax2):
        ax.set_xscale("log")
        ax.set_xlabel("training frames seen (iterations x batch); star: fit at the paper's budget")
        ax.grid(True, which="both", alpha=0.3)
    _pmd_axis(ax1, pfa)
    ax1.set_title("scaling: misdetection vs training frames")
    ax2.set_ylabel("element-position error (mm)")
    ax2.set_yscale("log")
    _plain_numbers(ax2)
    ax2.set_title("scaling: element-position error vs training frames")
    _legend_outside(ax1, below=True)
    _legend_outside(ax2, below=True)
    figure.tight_layout()
    _save(figure, path)


PLOTS = {"3": plot_fig3, "4": plot_fig4, "5": plot_fig5, "scaling": plot_scaling}


def figure_name(fig: str) -> str:
    """The PNG of ``--fig`` choice `fig`: fig3.png ... scaling.png."""
    return f"{FIGURE_FIELDS[fig]}.png"


def plot_all(result: Reproduction, out: Path, pfa: float) -> list[str]:
    """Every figure `result` holds, written into `out`; the file names."""
    names = []
    for fig in result.figures:
        data = getattr(result, FIGURE_FIELDS[fig])
        if data is not None:
            PLOTS[fig](data, Path(out) / figure_name(fig), pfa)
            names.append(figure_name(fig))
    return names
