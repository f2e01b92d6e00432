"""The paper's studies (Sec. V): Figs. 3-5, the classical calibration and the scaling study,
each returned as the typed results of `results` (runs keyed by label).

Every learning run uses the same true array and the same test frames (evaluation seed),
so differences between schedules are the schedules'.  Runs that share a prefix share
it literally: the SL→UL run with labelled ratio r continues the SL run's state at
iteration r N (same data, same Adam state), as a run from scratch with the same seed would.
"""

from __future__ import annotations

import time

import numpy as np

from ..dsp.calibration import calibrate_positions
from ..dsp.spacing import spacing_errors
from ..errors import IsacError
from ..executor import Executor, ProgressLine, SerialExecutor, Task
from ..learning.model import SpacingModel
from ..learning.trainer import TrainConfig, Trainer
from ..sim.evaluation import evaluate_spacing, isac_evaluation, run_evaluations, spacing_evaluation
from ..sim.montecarlo import calibration_snapshots
from .baseline import isac_tradeoff_grid, mark_pareto
from .results import (
    CalibrationPoint,
    CurvePoint,
    Evaluation,
    Fig3,
    Fig4,
    Fig5,
    IsacCurve,
    IsacPoint,
    Run,
    Scaling,
    ScalingPoint,
    ScalingSeries,
    errors_of,
    estimate_of,
)
from .scales import Scale
from .scaling import fit_power_law, paper_frames


def evaluation_of(report, spacing, true_spacing) -> Evaluation:
    """The typed `Evaluation` of a `DetectionReport` for an assumed `spacing`."""
    return Evaluation(estimate_of({"pmd": report.pmd, "pmd_ci": report.pmd_ci, "frames": report.n_h1}),
                      float(report.rmse_position), float(report.threshold), float(report.pfa_check),
                      tuple(map(float, report.pfa_check_ci)), errors_of(spacing_errors(spacing, true_spacing)))


def curve_point(record: dict, frames: int) -> CurvePoint:
    """A trainer evaluation record (see `Trainer.evaluate`) with `frames` frames per hypothesis."""
    return CurvePoint(int(record["iteration"]), int(record["labeled_frames"]),
                      estimate_of({**record, "frames": frames}), float(record["rmse_position"]), errors_of(record))


def training_run(label: str, params, true_spacing, config: TrainConfig, final_eval_frames: int, eval_seed: int,
                 resume_state: dict | None = None, keep_states_at: tuple[int, ...] = ()) -> dict:
    """One task: a learning curve (from `resume_state` if given) and its final evaluation;
    ``{"run": Run, "states": {iteration: trainer state}}`` with the states at `keep_states_at`."""
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
    report = evaluate_spacing(params, true_spacing, result.spacing, final_eval_frames, seed=eval_seed,
                              device=config.device)
    run = Run(label=label, schedule=config.schedule, labeled_ratio=config.sl_iterations / max(config.iterations, 1),
              curriculum=config.curriculum, iterations=config.iterations, batch_size=config.batch_size,
              lr_m=config.lr, curve=tuple(curve_point(r, config.eval_frames) for r in result.evaluations),
              final=evaluation_of(report, result.spacing, true_spacing),
              spacing_m=tuple(float(x) for x in result.spacing), labeled_frames=int(result.labeled_frames),
              wall_s=time.perf_counter() - start)
    return {"run": run, "states": states}


class Study:
    """Shared state of one `reproduce` run: parameters, the true array, scale, seeds, and the
    executor that runs its learning curves and evaluations (default: this process)."""

    def __init__(self, params, true_spacing, scale: Scale, seed: int = 0, log=print,
                 executor: Executor | None = None, progress: bool = False, device: str = "cpu"):
        self.params = params
        self.device = device  # where the map kernel (and training's torch parts) run: "cpu" or "cuda"
        self.true_spacing = np.asarray(true_spacing)
        self.scale = scale
        self.seed = seed
        self.log = log
        self.executor = executor or SerialExecutor()
        self.progress = progress
        self.eval_seed = int(np.random.SeedSequence([seed, 7]).generate_state(1)[0])
        self.runs: dict[str, Run] = {}
        self._baselines: dict[str, Evaluation] | None = None
        self._calibration: tuple[CalibrationPoint, ...] | None = None
        self._states: dict[tuple[str, int], dict] = {}

    def _progress(self, label: str):
        return ProgressLine(label) if self.progress else None

    # ----------------------------------------------------------- evaluation
    def evaluate_many(self, spacings: dict, frames: int | None = None) -> dict[str, Evaluation]:
        """Pmd, RMSE and spacing errors of each assumed spacing, all evaluations in one executor map."""
        frames = frames or self.scale.final_eval_frames
        evaluations = {label: spacing_evaluation(self.params, self.true_spacing, spacing, frames, seed=self.eval_seed,
                                                 device=self.device)
                       for label, spacing in spacings.items()}
        reports = run_evaluations(evaluations, self.executor, self._progress("evaluations"))
        return {label: evaluation_of(reports[label], spacing, self.true_spacing) for label, spacing in spacings.items()}

    def evaluate(self, spacing, frames: int | None = None) -> Evaluation:
        return self.evaluate_many({"spacing": spacing}, frames)["spacing"]

    def baselines(self) -> dict[str, Evaluation]:
        if self._baselines is None:
            self._baselines = self.evaluate_many({"known": self.true_spacing, "lambda/2": self.params.nominal_spacing})
        return self._baselines

    # ------------------------------------------------------------- training
    def config(self, schedule: str, labeled_ratio=None, curriculum: bool = False, iterations: int | None = None,
               batch_size: int | None = None, eval_at: tuple[int, ...] | None = None,
               eval_frames: int | None = None) -> TrainConfig:
        """The scale's configuration of a run; the keywords override its length, batch and evaluations."""
        sc = self.scale
        n = iterations or sc.iterations
        lr = sc.lr_sl if schedule in ("sl", "sl+ul") else sc.lr_ul
        decay = sc.lr_decay_sl if schedule == "sl" else 1.0
        step = max(n // sc.eval_points, 1)
        return TrainConfig(schedule=schedule, iterations=n, labeled_ratio=labeled_ratio,
                           batch_size=batch_size or sc.batch_size, lr=lr, lr_decay=decay, lr_decay_at=sc.lr_decay_at,
                           curriculum=curriculum,
                           eval_at=eval_at if eval_at is not None else tuple(range(0, n + 1, step)),
                           eval_frames=eval_frames or sc.eval_frames, eval_seed=self.eval_seed, seed=self.seed,
                           progress=False, device=self.device)

    def train(self, name: str, schedule: str, labeled_ratio=None, curriculum: bool = False,
              keep_states_at: tuple[int, ...] = (), resume_from: tuple[str, int] | None = None) -> Run:
        """Run (or reuse) a learning curve; keep the trainer's state at `keep_states_at` iterations."""
        spec = {"schedule": schedule, "labeled_ratio": labeled_ratio, "curriculum": curriculum,
                "keep_states_at": keep_states_at, "resume_from": resume_from}
        return self.train_many({name: spec})[name]

    def train_many(self, specs: dict[str, dict]) -> dict[str, Run]:
        """The learning curves of `specs` (name -> `train` keywords, plus `config` overrides under
        ``"config"`` and ``"final_eval_frames"``) not run yet, as one executor map."""
        todo = {name: spec for name, spec in specs.items() if name not in self.runs}
        tasks = []
        for name, spec in todo.items():
            resume = spec.get("resume_from")
            config = self.config(spec["schedule"], spec.get("labeled_ratio"), spec.get("curriculum", False),
                                 **spec.get("config", {}))
            kwargs = {"label": name, "params": self.params, "true_spacing": self.true_spacing, "config": config,
                      "final_eval_frames": spec.get("final_eval_frames", self.scale.final_eval_frames),
                      "eval_seed": self.eval_seed,
                      "resume_state": self._states[resume] if resume is not None else None,
                      "keep_states_at": tuple(spec.get("keep_states_at", ()))}
            tasks.append(Task(name, training_run, kwargs))
        for name, out in zip(todo, self.executor.map(tasks, self._progress("learning curves"))):
            run = self.runs[name] = out["run"]
            self._states.update({(name, stop): state for stop, state in out["states"].items()})
            self.log(f"  {name:<24} Pmd {run.final.estimate.text()}  position error "
                     f"{run.final.errors.position_error_mm:.2f} mm  ({run.wall_s:.0f} s)")
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

    def sl(self) -> Run:
        return self.train_many({"SL": self._sl_spec()})["SL"]

    def fig3(self) -> Fig3:
        """Pmd vs iterations: baselines, SL, UL, SL→UL, UL→SL, and the curriculum schedules."""
        runs = {"SL": self.sl(), "UL": self.train("UL", "ul"), "SL→UL": self.ssl(0.5),
                "UL→SL": self.train("UL→SL", "ul+sl", 0.5),
                "UL (curriculum)": self.train("UL (curriculum)", "ul", curriculum=True)}
        if self.scale.curriculum_ssl:
            runs["SL→UL (curriculum)"] = self.train("SL→UL (curriculum)", "sl+ul", 0.5, curriculum=True)
        return Fig3(baselines=self.baselines(), runs=runs)

    def _ssl_spec(self, ratio: float) -> tuple[str, dict]:
        n = self.scale.iterations
        k = int(round(ratio * n))
        return f"SL→UL r={k / n:g}", {"schedule": "sl+ul", "labeled_ratio": k / n, "resume_from": ("SL", k)}

    def ssl(self, ratio: float) -> Run:
        """SL for ``ratio`` of the iterations, then UL: branches off the SL run's state."""
        self.sl()
        name, spec = self._ssl_spec(ratio)
        return self.train_many({name: spec})[name]

    def fig4(self) -> Fig4:
        """Pmd vs labelled-data ratio (SL then UL), SL as reference, curriculum UL at ratio 0, and
        the classical calibration vs labelled frames."""
        points = {f"r={ratio:g}": self.ssl(ratio) for ratio in self.scale.labeled_ratios}
        curriculum = self.train("UL (curriculum)", "ul", curriculum=True)
        return Fig4(ssl=points, sl=self.runs["SL"], ul_curriculum=curriculum, calibration=self.calibration(),
                    baselines=self.baselines())

    def calibration(self) -> tuple[CalibrationPoint, ...]:
        """Classical LS calibration from N labelled frames (training sectors, lambda/2 precoder)."""
        if self._calibration is not None:
            return self._calibration
        p, out = self.params, []
        for n_frames in self.scale.calibration_frames:
            rng = np.random.default_rng(np.random.SeedSequence([self.seed, 11, n_frames]))
            snapshots, theta = calibration_snapshots(rng, p, self.true_spacing, n_frames)
            start = time.perf_counter()
            try:
                spacing, status = calibrate_positions(snapshots, theta, p), "ok"
            except IsacError as exc:
                spacing, status = p.nominal_spacing, f"failed ({exc}); lambda/2 kept"
            point = CalibrationPoint(n_frames, status, time.perf_counter() - start, self.evaluate(spacing))
            out.append(point)
            self.log(f"  calibration N={n_frames:<4} Pmd {point.evaluation.estimate.pmd:.4f}  position error "
                     f"{point.evaluation.errors.position_error_mm:.2f} mm  {status}")
        self._calibration = tuple(out)
        return self._calibration

    def fig5(self) -> Fig5:
        """ISAC trade-off (Pareto fronts) for the known-spacing baseline, SL (full), SL with
        limited labels and SSL started from it."""
        n = self.scale.iterations
        k = int(round(self.scale.limited_ratio * n))
        ssl = self.ssl(self.scale.limited_ratio)
        limited = SpacingModel.spacing_from_state(self._states[("SL", k)]["model"], self.params)
        roles = {"known": ("baseline (known d)", self.true_spacing),
                 "sl_full": ("SL (full)", np.asarray(self.runs["SL"].spacing_m)),
                 "sl_limited": (f"SL (limited, {k} iterations)", limited),
                 "ssl_from_limited": ("SSL (from limited SL)", np.asarray(ssl.spacing_m))}
        grid = isac_tradeoff_grid(self.scale.isac_grid)
        evaluations = {role: isac_evaluation(self.params, self.true_spacing, spacing, grid, self.scale.isac_frames,
                                             seed=self.eval_seed, h0_frames=self.scale.final_eval_frames,
                                             device=self.device)
                       for role, (_, spacing) in roles.items()}
        start = time.perf_counter()
        sweeps = run_evaluations(evaluations, self.executor, self._progress("ISAC sweep"))
        curves = {}
        for role, (label, spacing) in roles.items():
            points = mark_pareto(sweeps[role])
            curves[role] = IsacCurve(label, tuple(
                IsacPoint(float(q["eta"]), float(q["phi"]), estimate_of(q), float(q["rmse_position"]), float(q["ser"]),
                          float(q["threshold"]), bool(q["pareto_pmd_ser"]), bool(q["pareto_rmse_ser"]))
                for q in points),
                errors_of(spacing_errors(spacing, self.true_spacing)))
        wall = time.perf_counter() - start
        self.log(f"  ISAC sweep: {len(roles)} spacings x {len(grid)} points ({wall:.0f} s)")
        return Fig5(**curves)

    def scaling(self) -> Scaling:
        """Pmd and element-position error vs training frames seen for SL, UL and SL→UL (half SL) at
        each batch size of the scale's scaling plan, evaluated at log-spaced iterations along each
        run, with power-law fits extrapolated to the paper's budget."""
        plan = self.scale.scaling
        base = self.baselines()
        specs, branches = {}, {}
        for batch in plan.batch_sizes:
            n = plan.iterations
            eval_at = plan.eval_iterations()
            cfg = {"iterations": n, "batch_size": batch, "eval_at": eval_at, "eval_frames": plan.eval_frames}
            half = n // 2
            specs[f"SL b={batch}"] = {"schedule": "sl", "config": cfg, "keep_states_at": (half,),
                                      "final_eval_frames": plan.eval_frames}
            specs[f"UL b={batch}"] = {"schedule": "ul", "config": cfg, "final_eval_frames": plan.eval_frames}
            branches[f"SL→UL b={batch}"] = {"schedule": "sl+ul", "labeled_ratio": half / n, "config": cfg,
                                            "resume_from": (f"SL b={batch}", half),
                                            "final_eval_frames": plan.eval_frames}
        self.train_many(specs)
        self.train_many(branches)
        known = base["known"].estimate.pmd
        target = paper_frames()
        series, by_schedule = {}, {}
        for label in (*specs, *branches):
            run = self.runs[label]
            points = tuple(ScalingPoint(c.iteration, c.iteration * run.batch_size, c.labeled_frames, c.estimate,
                                        c.errors) for c in run.curve if c.iteration > 0)
            series[label] = ScalingSeries(label, run.schedule, run.batch_size, run.iterations, points,
                                          fit_power_law("pmd", _frames(points), _pmds(points), known, target),
                                          fit_power_law("position_error_mm", _frames(points), _positions(points),
                                                        0.0, target), run.wall_s)
            by_schedule.setdefault(label.split(" b=")[0], []).extend(points)
        fits = {}
        for schedule, points in by_schedule.items():
            fits[f"{schedule} Pmd"] = fit_power_law("pmd", _frames(points), _pmds(points), known, target)
            fits[f"{schedule} position error"] = fit_power_law("position_error_mm", _frames(points),
                                                               _positions(points), 0.0, target)
        for name, f in fits.items():
            self.log(f"  {name:<24} exponent {f.exponent:.3f} [{f.exponent_ci[0]:.3f}, {f.exponent_ci[1]:.3f}]  "
                     f"at {f.target_frames:.3g} frames: {f.extrapolated:.4g} "
                     f"[{f.extrapolated_ci[0]:.4g}, {f.extrapolated_ci[1]:.4g}]")
        return Scaling(series=series, baselines=base, fits=fits)


def _frames(points) -> np.ndarray:
    return np.array([p.frames_seen for p in points], dtype=float)


def _pmds(points) -> np.ndarray:
    return np.array([p.estimate.pmd for p in points])


def _positions(points) -> np.ndarray:
    return np.array([p.errors.position_error_mm for p in points])
