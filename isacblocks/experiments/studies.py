"""The paper's studies (Sec. V): Figs. 3-5, the classical calibration, and the claims report.

Every learning run uses the same true array and the same test frames (evaluation seed),
so differences between schedules are the schedules'.  Runs that share a prefix share
it literally: the SL→UL run with labelled ratio r continues the SL run's state at
iteration r N (same data, same Adam state), as a run from scratch with the same seed would.
"""

from __future__ import annotations

import time

import numpy as np

from ..dsp.calibration import calibrate_positions
from ..dsp.precoder import beampattern_precoder
from ..dsp.scenario import training_sectors
from ..dsp.spacing import spacing_errors
from ..dsp.steering import ula_steering
from ..errors import IsacError
from ..executor import Executor, ProgressLine, SerialExecutor, Task
from ..learning.model import SpacingModel
from ..learning.trainer import TrainConfig, Trainer
from ..sim.evaluation import evaluate_spacing, isac_evaluation, run_evaluations, spacing_evaluation
from ..sim.montecarlo import ProjectedBasis, draw_projected_frames, projected_snapshots
from .baseline import isac_tradeoff_grid, mark_pareto
from .scales import Scale


def _report_dict(report) -> dict:
    return {"pmd": report.pmd, "pmd_ci": report.pmd_ci, "rmse_position": report.rmse_position,
            "threshold": report.threshold, "pfa_check": report.pfa_check, "pfa_check_ci": report.pfa_check_ci,
            "frames_per_hypothesis": report.n_h1}


def training_run(params, true_spacing, config: TrainConfig, final_eval_frames: int, eval_seed: int,
                 resume_state: dict | None = None, keep_states_at: tuple[int, ...] = ()) -> dict:
    """One task: a learning curve (from `resume_state` if given) and its final evaluation;
    ``{"run": ..., "states": {iteration: trainer state}}`` with the states at `keep_states_at`."""
    trainer = Trainer(params, true_spacing, config)
    if resume_state is not None:
        trainer.load_state_dict(resume_state)
    start = time.perf_counter()
    states = {}
    for stop in sorted(set(keep_states_at)) + [config.iterations]:
        if stop > trainer.iteration:
            trainer.run(until=stop)
        if stop in keep_states_at:
            states[stop] = trainer.state_dict()
    result = trainer.run()
    report = evaluate_spacing(params, true_spacing, result.spacing, final_eval_frames, seed=eval_seed)
    final = {**_report_dict(report), **spacing_errors(result.spacing, true_spacing)}
    run = {"schedule": config.schedule, "labeled_ratio": config.sl_iterations / max(config.iterations, 1),
           "curriculum": config.curriculum, "iterations": config.iterations, "batch_size": config.batch_size,
           "lr_m": config.lr, "curve": result.evaluations, "final": final, "spacing": result.spacing.tolist(),
           "labeled_frames": result.labeled_frames, "wall_s": time.perf_counter() - start}
    return {"run": run, "states": states}


class Study:
    """Shared state of one `reproduce` run: parameters, the true array, scale, seeds, and the
    executor that runs its learning curves and evaluations (default: this process)."""

    def __init__(self, params, true_spacing, scale: Scale, seed: int = 0, log=print,
                 executor: Executor | None = None, progress: bool = False):
        self.params = params
        self.true_spacing = np.asarray(true_spacing)
        self.scale = scale
        self.seed = seed
        self.log = log
        self.executor = executor or SerialExecutor()
        self.progress = progress
        self.eval_seed = int(np.random.SeedSequence([seed, 7]).generate_state(1)[0])
        self.runs: dict[str, dict] = {}
        self._states: dict[tuple[str, int], dict] = {}

    def _progress(self, label: str):
        return ProgressLine(label) if self.progress else None

    # ----------------------------------------------------------- evaluation
    def evaluate_many(self, spacings: dict, frames: int | None = None) -> dict:
        """Pmd, RMSE and spacing errors of each assumed spacing, all evaluations in one executor map."""
        frames = frames or self.scale.final_eval_frames
        evaluations = {label: spacing_evaluation(self.params, self.true_spacing, spacing, frames, seed=self.eval_seed)
                       for label, spacing in spacings.items()}
        reports = run_evaluations(evaluations, self.executor, self._progress("evaluations"))
        return {label: {**_report_dict(reports[label]), **spacing_errors(spacing, self.true_spacing)}
                for label, spacing in spacings.items()}

    def evaluate(self, spacing, frames: int | None = None) -> dict:
        return self.evaluate_many({"spacing": spacing}, frames)["spacing"]

    def baselines(self) -> dict:
        if "baselines" not in self.runs:
            self.runs["baselines"] = self.evaluate_many({"known": self.true_spacing,
                                                         "lambda/2": self.params.nominal_spacing})
        return self.runs["baselines"]

    # ------------------------------------------------------------- training
    def config(self, schedule: str, labeled_ratio=None, curriculum: bool = False) -> TrainConfig:
        sc = self.scale
        lr = sc.lr_sl if schedule in ("sl", "sl+ul") else sc.lr_ul
        decay = sc.lr_decay_sl if schedule == "sl" else 1.0
        step = max(sc.iterations // sc.eval_points, 1)
        return TrainConfig(schedule=schedule, iterations=sc.iterations, labeled_ratio=labeled_ratio,
                           batch_size=sc.batch_size, lr=lr, lr_decay=decay, lr_decay_at=sc.lr_decay_at,
                           curriculum=curriculum, eval_at=tuple(range(0, sc.iterations + 1, step)),
                           eval_frames=sc.eval_frames, eval_seed=self.eval_seed, seed=self.seed, progress=False)

    def train(self, name: str, schedule: str, labeled_ratio=None, curriculum: bool = False,
              keep_states_at: tuple[int, ...] = (), resume_from: tuple[str, int] | None = None) -> dict:
        """Run (or reuse) a learning curve; keep the trainer's state at `keep_states_at` iterations."""
        spec = {"schedule": schedule, "labeled_ratio": labeled_ratio, "curriculum": curriculum,
                "keep_states_at": keep_states_at, "resume_from": resume_from}
        return self.train_many({name: spec})[name]

    def train_many(self, specs: dict[str, dict]) -> dict:
        """The learning curves of `specs` (name -> `train` keywords) not run yet, as one executor map."""
        todo = {name: spec for name, spec in specs.items() if name not in self.runs}
        tasks = []
        for name, spec in todo.items():
            resume = spec.get("resume_from")
            kwargs = {"params": self.params, "true_spacing": self.true_spacing,
                      "config": self.config(spec["schedule"], spec.get("labeled_ratio"), spec.get("curriculum", False)),
                      "final_eval_frames": self.scale.final_eval_frames, "eval_seed": self.eval_seed,
                      "resume_state": self._states[resume] if resume is not None else None,
                      "keep_states_at": tuple(spec.get("keep_states_at", ()))}
            tasks.append(Task(name, training_run, kwargs))
        for name, out in zip(todo, self.executor.map(tasks, self._progress("learning curves"))):
            run = self.runs[name] = out["run"]
            self._states.update({(name, stop): state for stop, state in out["states"].items()})
            final = run["final"]
            self.log(f"  {name:<24} Pmd {final['pmd']:.4f} [{final['pmd_ci'][0]:.4f}, {final['pmd_ci'][1]:.4f}]  "
                     f"position error {final['position_error_mm']:.2f} mm  ({run['wall_s']:.0f} s)")
        return {name: self.runs[name] for name in specs}

    def prefetch(self, figs) -> None:
        """Every learning curve the figures need, in two executor maps: the independent runs, then
        the SL→UL runs that branch off the SL run."""
        figs = set(figs)
        if not figs & {"3", "4", "5"}:
            return
        first = {"SL": self._sl_spec()}
        if "3" in figs:
            first.update({"UL": {"schedule": "ul"}, "UL→SL": {"schedule": "ul+sl", "labeled_ratio": 0.5},
                          "UL (curriculum)": {"schedule": "ul", "curriculum": True}})
            if self.scale.curriculum_ssl:
                first["SL→UL (curriculum)"] = {"schedule": "sl+ul", "labeled_ratio": 0.5, "curriculum": True}
        if "4" in figs:
            first["UL (curriculum)"] = {"schedule": "ul", "curriculum": True}
        self.train_many(first)
        ratios = ({0.5} if "3" in figs else set()) | (set(self.scale.labeled_ratios) if "4" in figs else set())
        ratios |= {self.scale.limited_ratio} if "5" in figs else set()
        self.train_many(dict(self._ssl_spec(r) for r in sorted(ratios)))

    # ------------------------------------------------------------- studies
    def _sl_spec(self) -> dict:
        """The SL run, keeping its state where the SL→UL runs of Figs. 3-5 branch off."""
        n = self.scale.iterations
        ratios = (*self.scale.labeled_ratios, self.scale.limited_ratio, 0.5)
        return {"schedule": "sl", "keep_states_at": tuple(sorted({int(round(r * n)) for r in ratios}))}

    def sl(self) -> dict:
        return self.train_many({"SL": self._sl_spec()})["SL"]

    def fig3(self) -> dict:
        """Pmd vs iterations: baselines, SL, UL, SL→UL, UL→SL, and the curriculum schedules."""
        self.baselines()
        runs = {"SL": self.sl(), "UL": self.train("UL", "ul"), "SL→UL": self.ssl(0.5),
                "UL→SL": self.train("UL→SL", "ul+sl", 0.5),
                "UL (curriculum)": self.train("UL (curriculum)", "ul", curriculum=True)}
        if self.scale.curriculum_ssl:
            runs["SL→UL (curriculum)"] = self.train("SL→UL (curriculum)", "sl+ul", 0.5, curriculum=True)
        return {"baselines": self.baselines(), "runs": runs}

    def _ssl_spec(self, ratio: float) -> tuple[str, dict]:
        n = self.scale.iterations
        k = int(round(ratio * n))
        return f"SL→UL r={k / n:g}", {"schedule": "sl+ul", "labeled_ratio": k / n, "resume_from": ("SL", k)}

    def ssl(self, ratio: float) -> dict:
        """SL for ``ratio`` of the iterations, then UL: branches off the SL run's state."""
        self.sl()
        name, spec = self._ssl_spec(ratio)
        return self.train_many({name: spec})[name]

    def fig4(self) -> dict:
        """Pmd vs labelled-data ratio (SL then UL), SL as reference, curriculum UL at ratio 0, and
        the classical calibration vs labelled frames."""
        points = {f"r={ratio:g}": self.ssl(ratio) for ratio in self.scale.labeled_ratios}
        curriculum = self.train("UL (curriculum)", "ul", curriculum=True)
        return {"ssl": points, "sl": self.runs["SL"], "ul_curriculum": curriculum,
                "calibration": self.calibration(), "baselines": self.baselines()}

    def calibration(self) -> list[dict]:
        """Classical LS calibration from N labelled frames (training sectors, lambda/2 precoder)."""
        if "calibration" in self.runs:
            return self.runs["calibration"]
        p, out = self.params, []
        basis = ProjectedBasis.for_params(p)
        for n_frames in self.scale.calibration_frames:
            rng = np.random.default_rng(np.random.SeedSequence([self.seed, 11, n_frames]))
            theta_min, theta_max = training_sectors(rng, p, n_frames)
            frames = draw_projected_frames(rng, p, self.true_spacing, basis, theta_min, theta_max, n_frames)
            gain = np.array([ula_steering(t, self.true_spacing, p.wavelength)[:, 0]
                             @ beampattern_precoder(lo, hi, p.nominal_spacing, p)
                             for t, lo, hi in zip(frames.theta, theta_min, theta_max)])
            snapshots = projected_snapshots(frames.combine(gain), frames.ranges, basis, p)
            start = time.perf_counter()
            try:
                spacing, status = calibrate_positions(snapshots, frames.theta, p), "ok"
            except IsacError as exc:
                spacing, status = p.nominal_spacing, f"failed ({exc}); lambda/2 kept"
            result = {"labeled_frames": n_frames, "status": status, "wall_s": time.perf_counter() - start,
                      **self.evaluate(spacing)}
            out.append(result)
            self.log(f"  calibration N={n_frames:<4} Pmd {result['pmd']:.4f}  position error "
                     f"{result['position_error_mm']:.2f} mm  {status}")
        self.runs["calibration"] = out
        return out

    def fig5(self) -> dict:
        """ISAC trade-off (Pareto fronts) for the known-spacing baseline, SL (full), SL with
        limited labels and SSL started from it."""
        n = self.scale.iterations
        k = int(round(self.scale.limited_ratio * n))
        ssl = self.ssl(self.scale.limited_ratio)
        limited = SpacingModel.spacing_from_state(self._states[("SL", k)]["model"], self.params)
        spacings = {"baseline (known d)": self.true_spacing,
                    "SL (full)": np.asarray(self.runs["SL"]["spacing"]),
                    f"SL (limited, {k} iterations)": limited,
                    "SSL (from limited SL)": np.asarray(ssl["spacing"])}
        grid = isac_tradeoff_grid(self.scale.isac_grid)
        evaluations = {label: isac_evaluation(self.params, self.true_spacing, spacing, grid, self.scale.isac_frames,
                                              seed=self.eval_seed, h0_frames=self.scale.final_eval_frames)
                       for label, spacing in spacings.items()}
        start = time.perf_counter()
        sweeps = run_evaluations(evaluations, self.executor, self._progress("ISAC sweep"))
        curves = {}
        for label, spacing in spacings.items():
            points = sweeps[label]
            mark_pareto(points)
            curves[label] = {"points": points, **spacing_errors(spacing, self.true_spacing)}
        wall = time.perf_counter() - start
        self.log(f"  ISAC sweep: {len(spacings)} spacings x {len(grid)} points ({wall:.0f} s)")
        return curves
