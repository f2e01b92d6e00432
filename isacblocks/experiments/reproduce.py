"""``isac reproduce``: run the paper's studies, write JSON, PNG figures and the claims table."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import tempfile
import time
from pathlib import Path

from ..safeio import OutputError, make_folder, write_text
from .claims import claims_of, claims_table
from .common import run_record
from .figures import plot_all
from .report import results_markdown
from .results import FIGURE_FIELDS, Reproduction, to_json, to_plain
from .scales import get_scale
from .studies import Study


def reproduce(params, ula, figs=("3", "4", "5"), scale: str = "default", out="out/reproduce", seed: int = 0,
              args=None, log=print, executor=None, progress: bool = False) -> Reproduction:
    """Run Figs. `figs` at `scale`; write ``results.json``, ``fig3.png``..., ``claims.md`` and
    ``results.md`` (the tables) in `out`; return the `Reproduction`.
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
    make_folder(out.parent)
    try:
        stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
        stage.chmod(0o755)
    except OSError as exc:
        raise OutputError(f"cannot write {out}: {exc.strerror}") from None
    try:
        yield stage
        _swap_into_place(stage, out)
    except OutputError as exc:  # a file of the stage that could not be written: named where it was going
        shutil.rmtree(stage, ignore_errors=True)
        raise OutputError(str(exc).replace(str(stage), str(out))) from None
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


def _swap_into_place(stage: Path, out: Path) -> None:
    """Replace the folder `out` by `stage`; if that fails, `out` is put back as it was."""
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    try:
        if out.exists():
            out.replace(old)
        try:
            stage.replace(out)
        except OSError:
            if old.exists():
                old.replace(out)
            raise
    except OSError as exc:
        raise OutputError(f"cannot write {out}: {exc.strerror or exc}") from None
    shutil.rmtree(old, ignore_errors=True)


def _reproduce(params, ula, figs, sc, final_out: Path, out: Path, seed, args, log, executor, progress) -> Reproduction:
    study = Study(params, ula.spacing, sc, seed=seed, log=log, executor=executor, progress=progress,
                  device=getattr(args, "device", "cpu"))
    start = time.perf_counter()
    log(f"isac reproduce: scale {sc.name} ({sc.iterations} iterations, batch {sc.batch_size}), "
        f"figures {', '.join(figs)}")
    log("baselines (MB-ML receiver, test sector):")
    base = study.baselines()
    for label, res in base.items():
        log(f"  {label:<24} Pmd {res.estimate.text()}")
    log(f"learning curves ({study.executor.describe()}):")
    study.prefetch(figs)
    studies = {}
    for fig in figs:
        log(f"Fig. {fig}:" if fig in ("3", "4", "5") else f"{fig}:")
        studies[FIGURE_FIELDS[fig]] = getattr(study, FIGURE_FIELDS[fig])()
    result = Reproduction(scale=sc.name, scale_config=to_plain(sc), figures=tuple(figs),
                          executor=study.executor.describe(), baselines=base, fig3=studies.get("fig3"),
                          fig4=studies.get("fig4"), fig5=studies.get("fig5"), scaling=studies.get("scaling"), claims=(),
                          wall_s=time.perf_counter() - start,
                          run=run_record(args, params, ula) if args is not None else {"params": params.to_dict()})
    result = dataclasses.replace(result, claims=claims_of(result))
    names = write_outputs(result, out, params.pfa)
    log("\n" + claims_table(result.claims, sc.name, result.wall_s))
    log(f"\nwrote {final_out}/{', '.join(names)}  (wall time {result.wall_s:.0f} s)")
    return result


def write_outputs(result: Reproduction, out: Path, pfa: float) -> list[str]:
    """``results.json``, the figures, ``claims.md`` and ``results.md`` of `result` in `out`; the names."""
    to_json(result, out / "results.json")
    figures = plot_all(result, out, pfa)
    write_text(out / "claims.md", claims_table(result.claims, result.scale, result.wall_s) + "\n")
    write_text(out / "results.md", results_markdown(result) + "\n")
    return ["results.json", *figures, "claims.md", "results.md"]
