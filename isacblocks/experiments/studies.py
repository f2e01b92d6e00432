"""The paper's studies (Sec. V): Figs. 3-5, the classical calibration, and the claims report.

Every learning run uses the same true array and the same test frames (evaluation seed),
so differences between schedules are the schedules'.  Runs that share a prefix share
it literally: the SL→UL run with labelled ratio r continues the SL run's state at
iteration r N (same data, same Adam state), as a run from scratch with the same seed would.
"""

from __future__ import annotations

import time

import numpy as np

from ..dsp.calibration import calibrate_positions, projected_snapshots
from ..dsp.evaluation import evaluate_spacing, isac_point_evaluation
from ..dsp.montecarlo import ProjectedBasis, draw_projected_frames
from ..dsp.precoder import beampattern_precoder
from ..dsp.scenario import training_sectors
from ..dsp.steering import ula_steering
from ..errors import IsacError
from ..dsp.spacing import spacing_errors
from ..learning.trainer import TrainConfig, Trainer
from .baseline import isac_tradeoff_grid, pareto_mask
from .scales import Scale


def _report_dict(report) -> dict:
    return {"pmd": report.pmd, "pmd_ci": report.pmd_ci, "rmse_position": report.rmse_position,
            "threshold": report.threshold, "pfa_check": report.pfa_check, "pfa_check_ci": report.pfa_check_ci,
            "frames_per_hypothesis": report.n_h1}


class Study:
    """Shared state of one `reproduce` run: parameters, the true array, scale, seeds."""

    def __init__(self, params, true_spacing, scale: Scale, seed: int = 0, log=print):
        self.params = params
        self.true_spacing = np.asarray(true_spacing)
        self.scale = scale
        self.seed = seed
        self.log = log
        self.eval_seed = int(np.random.SeedSequence([seed, 7]).generate_state(1)[0])
        self.runs: dict[str, dict] = {}
        self._states: dict[tuple[str, int], dict] = {}

    # ----------------------------------------------------------- evaluation
    def evaluate(self, spacing, frames: int | None = None) -> dict:
        report = evaluate_spacing(self.params, self.true_spacing, spacing, frames or self.scale.final_eval_frames,
                                  seed=self.eval_seed)
        return {**_report_dict(report), **spacing_errors(spacing, self.true_spacing)}

    def baselines(self) -> dict:
        if "baselines" not in self.runs:
            self.runs["baselines"] = {"known": self.evaluate(self.true_spacing),
                                      "lambda/2": self.evaluate(self.params.nominal_spacing)}
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
        if name in self.runs:
            return self.runs[name]
        cfg = self.config(schedule, labeled_ratio, curriculum)
        trainer = Trainer(self.params, self.true_spacing, cfg)
        if resume_from is not None:
            trainer.load_state_dict(self._states[resume_from])
        start = time.perf_counter()
        for stop in sorted(set(keep_states_at)) + [cfg.iterations]:
            if stop > trainer.iteration:
                trainer.run(until=stop)
            if stop in keep_states_at:
                self._states[(name, stop)] = trainer.state_dict()
        result = trainer.run()
        final = self.evaluate(result.spacing)
        run = {"schedule": schedule, "labeled_ratio": cfg.sl_iterations / max(cfg.iterations, 1),
               "curriculum": curriculum, "iterations": cfg.iterations, "batch_size": cfg.batch_size,
               "lr_m": cfg.lr, "curve": result.evaluations, "final": final, "spacing": result.spacing.tolist(),
               "labeled_frames": result.labeled_frames, "wall_s": time.perf_counter() - start}
        self.runs[name] = run
        self.log(f"  {name:<24} Pmd {final['pmd']:.4f} [{final['pmd_ci'][0]:.4f}, {final['pmd_ci'][1]:.4f}]  "
                 f"position error {final['position_error_mm']:.2f} mm  ({run['wall_s']:.0f} s)")
        return run

    # ------------------------------------------------------------- studies
    def sl(self) -> dict:
        """The SL run, keeping its state where the SL→UL runs of Figs. 4 and 5 branch off."""
        n = self.scale.iterations
        ratios = (*self.scale.labeled_ratios, self.scale.limited_ratio, 0.5)
        return self.train("SL", "sl", keep_states_at=tuple(sorted({int(round(r * n)) for r in ratios})))

    def fig3(self) -> dict:
        """Pmd vs iterations: baselines, SL, UL, SL→UL, UL→SL, and the curriculum schedules."""
        self.baselines()
        runs = {"SL": self.sl(), "UL": self.train("UL", "ul"), "SL→UL": self.ssl(0.5),
                "UL→SL": self.train("UL→SL", "ul+sl", 0.5),
                "UL (curriculum)": self.train("UL (curriculum)", "ul", curriculum=True)}
        if self.scale.curriculum_ssl:
            runs["SL→UL (curriculum)"] = self.train("SL→UL (curriculum)", "sl+ul", 0.5, curriculum=True)
        return {"baselines": self.baselines(), "runs": runs}

    def ssl(self, ratio: float) -> dict:
        """SL for ``ratio`` of the iterations, then UL: branches off the SL run's state."""
        n = self.scale.iterations
        k = int(round(ratio * n))
        self.sl()
        return self.train(f"SL→UL r={k / n:g}", "sl+ul", k / n, resume_from=("SL", k))

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
                             @ beampattern_precoder(lo, hi, p.nominal_spacing, p.wavelength, p.n_angle_grid)
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
        limited = self._states[("SL", k)]["model"]["u"].numpy()
        spacings = {"baseline (known d)": self.true_spacing,
                    "SL (full)": np.asarray(self.runs["SL"]["spacing"]),
                    f"SL (limited, {k} iterations)": self.params.wavelength / 2 * (1 + limited),
                    "SSL (from limited SL)": np.asarray(ssl["spacing"])}
        grid = isac_tradeoff_grid(self.scale.isac_grid)
        curves = {}
        for label, spacing in spacings.items():
            start = time.perf_counter()
            points = isac_point_evaluation(self.params, self.true_spacing, spacing, grid, self.scale.isac_frames,
                                           seed=self.eval_seed, h0_frames=self.scale.final_eval_frames)
            pm = pareto_mask(np.array([[q["pmd"], q["ser"]] for q in points]))
            pr = pareto_mask(np.array([[q["rmse_position"], q["ser"]] for q in points]))
            for q, a, b in zip(points, pm, pr):
                q["pareto_pmd_ser"], q["pareto_rmse_ser"] = bool(a), bool(b)
            curves[label] = {"points": points, **spacing_errors(spacing, self.true_spacing),
                             "wall_s": time.perf_counter() - start}
            self.log(f"  ISAC sweep {label:<28} {len(points)} points ({curves[label]['wall_s']:.0f} s)")
        return curves

