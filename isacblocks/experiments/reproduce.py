"""``isac reproduce``: run the paper's studies, write JSON, PNG figures and the claims table."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from .claims import claims_table, evaluate_claims
from .common import run_record, write_json
from .scales import get_scale
from .studies import Study


def reproduce(params, ula, figs=("3", "4", "5"), scale: str = "default", out="out/reproduce", seed: int = 0,
              args=None, log=print, executor=None, progress: bool = False) -> dict:
    """Run Figs. `figs` at `scale`; write ``results.json``, ``fig3.png``... and ``claims.md`` in `out`.
    The learning curves and evaluations run on `executor` (default: this process); the results
    do not depend on it."""
    sc = get_scale(scale)
    with staged_folder(out) as stage:
        return _reproduce(params, ula, figs, sc, Path(out), stage, seed, args, log, executor, progress)


@contextlib.contextmanager
def staged_folder(out):
    """A temporary folder beside `out` to write into; when the block ends normally it replaces
    `out` as a whole, and when it is interrupted or fails it is removed, so `out` never holds
    files of two runs."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    stage.chmod(0o755)
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    if out.exists():
        out.replace(old)
    stage.replace(out)
    shutil.rmtree(old, ignore_errors=True)


def _reproduce(params, ula, figs, sc, final_out: Path, out: Path, seed, args, log, executor, progress) -> dict:
    scale = sc.name
    study = Study(params, ula.spacing, sc, seed=seed, log=log, executor=executor, progress=progress)
    start = time.perf_counter()
    results: dict = {}
    log(f"isac reproduce: scale {scale} ({sc.iterations} iterations, batch {sc.batch_size}), figures {', '.join(figs)}")
    log("baselines (MB-ML receiver, test sector):")
    base = study.baselines()
    for label, res in base.items():
        log(f"  {label:<24} Pmd {res['pmd']:.4f} [{res['pmd_ci'][0]:.4f}, {res['pmd_ci'][1]:.4f}]")
    log(f"learning curves ({study.executor.describe()}):")
    study.prefetch(figs)
    for fig in figs:
        log(f"Fig. {fig}:")
        results[f"fig{fig}"] = getattr(study, f"fig{fig}")()
        _plot(fig, results[f"fig{fig}"], out / f"fig{fig}.png", params)
    claims = evaluate_claims(results, base)
    wall = time.perf_counter() - start
    table = claims_table(claims, scale, wall)
    (out / "claims.md").write_text(table + "\n")
    record = {**(run_record(args, params, ula) if args is not None else {}), "scale": scale,
              "scale_config": sc.__dict__, "figures": list(figs), "executor": study.executor.describe(),
              "baselines": base, "results": results, "claims": claims, "wall_s": wall}
    write_json(out / "results.json", record)
    log("\n" + table)
    log(f"\nwrote {final_out}/results.json, {', '.join(f'fig{f}.png' for f in figs)}, claims.md  "
        f"(wall time {wall:.0f} s)")
    return record


def _plot(fig: str, result: dict, path: Path, params) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    if fig == "3":
        figure, ax = plt.subplots(figsize=(7, 4.5))
        for name, run in result["runs"].items():
            curve = run["curve"]
            ax.plot([c["iteration"] for c in curve], [c["pmd"] for c in curve], marker="o", ms=3, label=name,
                    linestyle="--" if "curriculum" in name else "-")
        for (label, res), style in zip(result["baselines"].items(), (":", "-.")):
            ax.axhline(res["pmd"], color="k", linestyle=style, label=f"baseline, {label}")
        ax.set_xlabel("training iteration")
        ax.set_ylabel(f"P_md at P_fa = {params.pfa:g}")
        ax.set_yscale("log")
        ax.set_title("Fig. 3: misdetection vs training iterations")
    elif fig == "4":
        figure, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.5))
        ssl = sorted(result["ssl"].values(), key=lambda r: r["labeled_ratio"])
        ax.errorbar([r["labeled_ratio"] for r in ssl], [r["final"]["pmd"] for r in ssl],
                    yerr=_yerr([r["final"] for r in ssl]), marker="o", label="SL→UL")
        ax.axhline(result["sl"]["final"]["pmd"], color="C1", linestyle="--", label="SL (ratio 1)")
        ax.axhline(result["ul_curriculum"]["final"]["pmd"], color="C2", linestyle="-.",
                   label="UL with sector curriculum (no labels)")
        ax.axhline(result["baselines"]["known"]["pmd"], color="k", linestyle=":", label="baseline, known d")
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("labelled-data ratio (SL iterations / all iterations)")
        ax.set_ylabel(f"P_md at P_fa = {params.pfa:g}")
        ax.set_title("Fig. 4: misdetection vs labelled-data ratio")
        ax.legend(fontsize=8)
        calib = result["calibration"]
        ax2.errorbar([c["labeled_frames"] for c in calib], [c["pmd"] for c in calib], yerr=_yerr(calib), marker="s",
                     label="classical LS calibration")
        ax2.errorbar([r["labeled_frames"] for r in ssl], [r["final"]["pmd"] for r in ssl],
                     yerr=_yerr([r["final"] for r in ssl]), marker="o", label="SL→UL (learned)")
        ax2.axhline(result["baselines"]["known"]["pmd"], color="k", linestyle=":", label="baseline, known d")
        ax2.set_xscale("log")
        ax2.set_xlabel("labelled frames used")
        ax2.set_title("labels needed: calibration vs learning")
        ax = ax2
    else:
        figure, (ax1, ax) = plt.subplots(1, 2, figsize=(11, 4.5))
        for name, curve in result.items():
            for axis, key in ((ax1, "pmd"), (ax, "rmse_position")):
                flag = "pareto_pmd_ser" if key == "pmd" else "pareto_rmse_ser"
                pts = sorted((p for p in curve["points"] if p[flag]), key=lambda p: p["ser"])
                axis.plot([p["ser"] for p in pts], [p[key] for p in pts], marker="o", ms=3, label=name)
        ax1.set_xlabel("SER")
        ax1.set_ylabel(f"P_md at P_fa = {params.pfa:g}")
        ax1.set_xscale("log")
        ax1.set_yscale("log")
        ax1.set_title("Fig. 5: ISAC trade-off (Pareto points)")
        ax.set_xlabel("SER")
        ax.set_ylabel("position RMSE (m)")
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _yerr(results) -> np.ndarray:
    lo = [r["pmd"] - r["pmd_ci"][0] for r in results]
    hi = [r["pmd_ci"][1] - r["pmd"] for r in results]
    return np.array([lo, hi])
