"""The impairments study (beyond the paper): learning a whole impaired array without labels.

The true array has displacement, gain and coupling errors (`dsp.impairments`, any subset).
On the test sector, with the same evaluation frames for every row, it compares the MB-ML
receiver (and LS precoder) assuming

* the known array (all its impairments) and its spacing alone (the paper's model of it);
* lambda/2 (the start of every learner);
* UL with the sector curriculum, no labels, learning every impairment of the true array;
* the same learning only the spacing (the paper's parametrisation under a richer truth);
* the classical LS calibration of every impairment from N labelled frames (`calibrate_array`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..dsp.calibration import calibrate_array
from ..dsp.impairments import ArrayImpairments, impairment_errors, spacing_of
from ..learning.trainer import TrainConfig, Trainer
from ..params import SystemParams
from ..sim.evaluation import evaluate_spacing
from ..sim.montecarlo import calibration_snapshots

#: Seed of the test-sector frames every row is evaluated on (common random numbers).
EVAL_SEED = 12345


@dataclass
class ImpairmentRow:
    label: str
    pmd: float
    pmd_ci: tuple[float, float]
    rmse_position: float
    errors: dict
    frames_used: int = 0  # training or calibration frames (0: nothing learned)
    labelled: bool = False
    wall_s: float = 0.0
    history: list = field(default_factory=list)  # (iteration, Pmd) along a training run
    array: object = None  # the array assumed: a spacing vector or an ArrayImpairments

    def to_dict(self) -> dict:
        return {"label": self.label, "pmd": self.pmd, "pmd_ci": list(self.pmd_ci), "rmse_position": self.rmse_position,
                "errors": self.errors, "frames_used": self.frames_used, "labelled": self.labelled,
                "wall_s": self.wall_s, "history": self.history}


def impairments_study(params: SystemParams, true_array, kinds, iterations: int = 400, batch_size: int = 256,
                      eval_frames: int = 10000, calibration_frames: int = 2000, seed: int = 0, log=print,
                      progress: bool = False) -> list[ImpairmentRow]:
    """The rows of the module docstring, in that order."""
    def row(label, array, **extra) -> ImpairmentRow:
        report = evaluate_spacing(params, true_array, array, eval_frames, seed=EVAL_SEED)
        out = ImpairmentRow(label, report.pmd, tuple(report.pmd_ci), report.rmse_position,
                            impairment_errors(array, true_array), array=array, **extra)
        log(f"  {label:<40} Pmd {out.pmd:.4f} [{out.pmd_ci[0]:.4f}, {out.pmd_ci[1]:.4f}]")
        return out

    rows = [row("known array", true_array)]
    if isinstance(true_array, ArrayImpairments):
        rows.append(row("known spacing only", spacing_of(true_array)))
    rows.append(row("lambda/2", params.nominal_spacing))
    checkpoints = tuple(range(0, iterations + 1, max(iterations // 5, 1)))
    learners = [(f"UL curriculum, learns {'+'.join(kinds)}", kinds)]
    if kinds != ("spacing",):
        learners.append(("UL curriculum, learns spacing only", ("spacing",)))
    for label, learn in learners:
        config = TrainConfig(schedule="ul", curriculum=True, iterations=iterations, batch_size=batch_size,
                             impairments=learn, seed=seed, eval_at=checkpoints,
                             eval_frames=max(eval_frames // 5, 1000), progress=progress)
        start = time.perf_counter()
        result = Trainer(params, true_array, config).run()
        history = [(e["iteration"], e["pmd"]) for e in result.evaluations]
        rows.append(row(label, result.array, frames_used=iterations * batch_size,
                        wall_s=time.perf_counter() - start, history=history))
    rng = np.random.default_rng(np.random.SeedSequence([seed, 11, calibration_frames]))
    snapshots, theta = calibration_snapshots(rng, params, true_array, calibration_frames)
    start = time.perf_counter()
    calibrated = calibrate_array(snapshots, theta, params, kinds)
    rows.append(row(f"LS calibration ({calibration_frames} labelled frames)", calibrated,
                    frames_used=calibration_frames, labelled=True, wall_s=time.perf_counter() - start))
    return rows


def rows_markdown(rows: list[ImpairmentRow]) -> str:
    """The study's table: Pmd with its interval and the errors per impairment kind."""
    kinds = [("position_error_rms_mm", "element-position error rms (mm)", "{:.2f}"),
             ("gain_error_rms", "gain error (rms, relative)", "{:.3f}"),
             ("coupling_error_rms", "coupling error (rms)", "{:.3f}")]
    present = [k for k in kinds if any(k[0] in r.errors for r in rows)]
    head = ["array assumed", "frames (labelled)", "Pmd [95% CI]", "position RMSE (m)", *[k[1] for k in present]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        frames = "–" if not r.frames_used else f"{r.frames_used:,}" + (" (all)" if r.labelled else " (none)")
        cells = [r.label, frames, f"{r.pmd:.4f} [{r.pmd_ci[0]:.4f}, {r.pmd_ci[1]:.4f}]", f"{r.rmse_position:.3f}",
                 *[fmt.format(r.errors[key]) if key in r.errors else "–" for key, _, fmt in present]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
