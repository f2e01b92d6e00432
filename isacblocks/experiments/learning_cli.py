"""``isac reproduce``, ``isac train`` and ``isac evaluate``."""

from __future__ import annotations

import argparse
import dataclasses

from ..dsp.impairments import impairment_errors, save_array, spacing_of
from ..errors import ConfigError
from ..executor import ProgressLine, add_executor_options, executor_from_args
from ..params import SystemParams
from ..safeio import make_folder, write_text
from ..sim.evaluation import EVAL_CHUNK, evaluate_spacing
from .common import (
    HEARTBEAT_S,
    add_study_options,
    array_record,
    assumed_spacing,
    check_memory,
    load_params,
    memory_estimate,
    run_record,
    scale_memory,
    tasks_at_once,
    true_array,
    uses_coupling,
    write_json,
)
from .options import (
    add_assume_option,
    add_device_option,
    add_impairments_option,
    count_value,
    impairments_value,
    output_dir,
    output_file,
    positive_real,
    ratio_value,
)
from .scales import SCALES

FIGURES = ("3", "4", "5")
#: What ``--fig all`` runs: the paper's figures and the scaling study.
ALL_FIGURES = (*FIGURES, "scaling")
SSL_SCHEDULES = ("sl+ul", "ul+sl")
DEFAULT_LABELED_RATIO = 0.5


def figures_value(text: str) -> tuple[str, ...]:
    """``type=`` of ``--fig``: 3, 4, 5, scaling, a comma list of them, or all."""
    if text == "all":
        return ALL_FIGURES
    figs = tuple(f.strip() for f in text.split(","))
    bad = [f for f in figs if f not in ALL_FIGURES]
    if bad or not figs:
        raise argparse.ArgumentTypeError(f"{text!r}: figure {bad[0] if bad else text!r} does not exist; "
                                         f"choose from {', '.join(ALL_FIGURES)}, a comma list of them, or all")
    return tuple(dict.fromkeys(figs))


def reproduce_main(args) -> int:
    from .reproduce import reproduce
    from .results import to_json

    params = load_params(args)
    check_memory(scale_memory(params, SCALES[args.scale], args, scaling="scaling" in args.fig))
    ula = true_array(params, args.seed, args.true_spacing)
    with executor_from_args(args) as executor:
        result = reproduce(params, ula, figs=args.fig, scale=args.scale, out=args.out, seed=args.seed, args=args,
                           executor=executor, progress=True)
    if args.json:
        to_json(result, args.json)
        print(f"wrote {args.json}")
    return 0


def report_main(args) -> int:
    """``isac report``: tables, claims and figures regenerated from a saved ``results.json``; the
    claims are decided again from its numbers by the current rules."""
    from .claims import claims_of, claims_table
    from .figures import plot_all
    from .report import results_markdown, update_readme
    from .results import from_json, to_json

    result = from_json(args.results)
    result = dataclasses.replace(result, claims=claims_of(result))
    if args.readme:
        update_readme(args.readme, result)
        print(f"updated the results section of {args.readme}")
    if args.out:
        out = make_folder(args.out)
        write_text(out / "results.md", results_markdown(result) + "\n")
        write_text(out / "claims.md", claims_table(result.claims, result.scale, result.wall_s) + "\n")
        pfa = result.run.get("params", {}).get("pfa", SystemParams().pfa)
        names = plot_all(result, out, pfa) if args.figures else []
        print(f"wrote {out}/{', '.join(['results.md', 'claims.md', *names])}")
    if args.json:
        to_json(result, args.json)
        print(f"wrote {args.json}")
    if not (args.readme or args.out or args.json):
        print(results_markdown(result))
    return 0


def training_config(args):
    """The `TrainConfig` of ``isac train``; a ``--labeled-ratio`` that the schedule would ignore is refused."""
    from ..learning.trainer import TrainConfig

    if args.labeled_ratio is not None and args.schedule not in SSL_SCHEDULES:
        raise ConfigError(f"--labeled-ratio {args.labeled_ratio}: only the schedules {' and '.join(SSL_SCHEDULES)} "
                          f"mix labelled and unlabelled iterations; --schedule {args.schedule} has no ratio")
    ratio = None
    if args.schedule in SSL_SCHEDULES:
        ratio = DEFAULT_LABELED_RATIO if args.labeled_ratio is None else args.labeled_ratio
    step = max(args.iterations // 5, 1)
    return TrainConfig(schedule=args.schedule, iterations=args.iterations, labeled_ratio=ratio,
                       batch_size=args.batch_size, lr=args.lr, curriculum=args.curriculum,
                       eval_at=tuple(range(0, args.iterations + 1, step)) if args.eval else (),
                       eval_frames=args.eval_frames, seed=args.seed, checkpoint=args.checkpoint,
                       checkpoint_every=args.checkpoint_every, device=args.device,
                       impairments=args.learn or args.impairments)


def train_main(args) -> int:
    from ..learning.trainer import Trainer

    if args.resume and not args.checkpoint:
        raise ConfigError("--resume needs --checkpoint FILE (the checkpoint to resume from)")
    config = training_config(args)
    if config.impairments != ("spacing",) and not str(args.out).endswith(".npz"):
        raise ConfigError(f"--out {args.out}: a model with {', '.join(config.impairments)} impairments is written as "
                          ".npz (spacing, gain, coupling); name the file *.npz")
    params = load_params(args)
    evaluated = args.eval_frames if args.eval else 0
    check_memory(memory_estimate(
        params, batch=args.batch_size, iterations=args.iterations, results_frames=2 * evaluated,
        task_frames=min(evaluated, EVAL_CHUNK), coupling=uses_coupling(args),
        options={"batch": f"--batch-size {args.batch_size}", "iterations": f"--iterations {args.iterations}",
                 **dict.fromkeys(("results_frames", "task_frames"), f"--eval-frames {args.eval_frames}")}))
    ula = true_array(params, args.seed, args.true_spacing, args.impairments)
    trainer = Trainer(params, ula.array, config)
    if args.resume:
        trainer.load_checkpoint(args.checkpoint)
        print(f"resumed from {args.checkpoint} at iteration {trainer.iteration}")
    result = trainer.run()
    save_array(args.out, result.array)
    for record in result.evaluations:
        print(f"iteration {record['iteration']:>6}: Pmd {record['pmd']:.4f} [{record['pmd_ci'][0]:.4f}, "
              f"{record['pmd_ci'][1]:.4f}]  ||d - d_true|| {record['spacing_error_mm']:.3f} mm  "
              f"element-position error {record['position_error_mm']:.2f} mm{_other_errors(record)}")
    print(f"wrote {args.out} ({result.wall_s:.1f} s, {result.labeled_frames} labelled frames)")
    if args.json:
        write_json(args.json, {**run_record(args, params, ula), "train_config": result.config,
                               "spacing_m": result.spacing, **array_record(result.array),
                               "evaluations": result.evaluations,
                               "labeled_frames": result.labeled_frames, "wall_s": result.wall_s,
                               **impairment_errors(result.array, ula.array)})
        print(f"wrote {args.json}")
    return 0


def evaluate_main(args) -> int:
    params = load_params(args)
    check_memory(memory_estimate(
        params, tasks=tasks_at_once(args), results_frames=2 * args.frames, task_frames=min(args.frames, EVAL_CHUNK),
        coupling=uses_coupling(args), options={"results_frames": f"--frames {args.frames}",
                                                 "task_frames": f"--frames {args.frames}"}))
    ula = true_array(params, args.seed, args.true_spacing, args.impairments)
    spacing = assumed_spacing(args.assume, params, ula)
    with executor_from_args(args) as executor, ProgressLine("evaluate", heartbeat_s=HEARTBEAT_S) as progress:
        report = evaluate_spacing(params, ula.array, spacing, args.frames, seed=args.seed, executor=executor,
                                  device=args.device, progress=progress)
    errors = impairment_errors(spacing, ula.array)
    print(f"MB-ML receiver assuming {args.assume}: Pmd {report.pmd:.4f} [{report.pmd_ci[0]:.4f}, "
          f"{report.pmd_ci[1]:.4f}] at Pfa {params.pfa:g} ({args.frames} frames per hypothesis), position RMSE "
          f"{report.rmse_position:.3f} m, ||d - d_true|| {errors['spacing_error_mm']:.3f} mm, element-position error "
          f"{errors['position_error_mm']:.2f} mm{_other_errors(errors)}")
    if args.json:
        write_json(args.json, {**run_record(args, params, ula), "assume": args.assume,
                               "assumed_spacing_m": spacing_of(spacing), **array_record(spacing, "assumed_"),
                               "frames_per_hypothesis": args.frames, "report": report.to_dict(), **errors})
        print(f"wrote {args.json}")
    return 0


def _other_errors(record: dict) -> str:
    """The gain and coupling errors of `impairment_errors`, where present, for a printed line."""
    parts = [f"{label} {record[key]:.4f}" for key, label in (("gain_error_rms", "gain error (rms, relative)"),
                                                            ("coupling_error_rms", "coupling error (rms)"))
             if key in record]
    return ("  " + "  ".join(parts)) if parts else ""


def register(sub) -> None:
    rep = sub.add_parser("reproduce", help="the paper's studies: Figs. 3-5, JSON and the claims table",
                         description="Run the paper's studies and write Figs. 3-5 (PNG), results.json and "
                                     "claims.md.  Scales: " + ", ".join(SCALES))
    rep.add_argument("--fig", default=FIGURES, type=figures_value,
                     help="3, 4, 5, scaling, a comma list, or all (default 3,4,5; all adds the scaling study)")
    rep.add_argument("--scale", default="default", choices=sorted(SCALES), help="how big the studies run")
    rep.add_argument("--out", default="out/reproduce", type=output_dir,
                     help="output folder, replaced as a whole when the run ends")
    add_study_options(rep)
    add_executor_options(rep)
    add_device_option(rep, "training (torch's parts) and every receiver's map kernel")
    rep.set_defaults(func=reproduce_main)

    rp = sub.add_parser("report", help="tables, claims and figures from a saved results.json (no rerun)",
                        description="Read a results.json written by `isac reproduce` and print its tables, "
                                    "replace the README's results section (between <!-- results:begin --> and "
                                    "<!-- results:end -->), or write results.md, claims.md and the figures.")
    rp.add_argument("results", help="results.json of an `isac reproduce` run")
    rp.add_argument("--readme", default=None, help="README whose results section to replace")
    rp.add_argument("--out", default=None, type=output_dir, help="folder for results.md and claims.md")
    rp.add_argument("--figures", action="store_true", help="also redraw the figures into --out")
    rp.add_argument("--json", metavar="PATH", type=output_file, default=None,
                    help="write the results read, with the claims decided again, to this JSON file")
    rp.set_defaults(func=report_main)

    tr = sub.add_parser("train", help="learn the spacing vector d (SL, UL, SL+UL, UL+SL)")
    tr.add_argument("--schedule", choices=("sl", "ul") + SSL_SCHEDULES, default="ul", help="training schedule")
    tr.add_argument("--labeled-ratio", type=ratio_value, default=None,
                    help=f"SL iterations / all, for sl+ul and ul+sl only (default {DEFAULT_LABELED_RATIO})")
    tr.add_argument("--curriculum", action="store_true", help="widen training sectors from broadside")
    tr.add_argument("--iterations", type=count_value, default=1000, help="training iterations")
    tr.add_argument("--batch-size", type=count_value, default=256, help="frames per iteration")
    tr.add_argument("--lr", type=positive_real, default=6.25e-6, help="Adam step in metres")
    tr.add_argument("--eval", action="store_true", help="evaluate Pmd five times along the run")
    tr.add_argument("--eval-frames", type=count_value, default=10000, help="frames per hypothesis of each evaluation")
    tr.add_argument("--checkpoint", default=None, type=output_file,
                    help="checkpoint file (written every --checkpoint-every iterations)")
    tr.add_argument("--checkpoint-every", type=count_value, default=100, metavar="N",
                    help="iterations between checkpoints")
    tr.add_argument("--resume", action="store_true",
                    help="resume from --checkpoint (written by a run with the same configuration)")
    add_device_option(tr, "training (torch's parts and the map kernel)")
    tr.add_argument("--out", required=True, type=output_file,
                    help="where to write the learned spacing (.npy or text), or the learned array (.npz) with "
                         "--impairments gain or coupling")
    add_impairments_option(tr, ", and what the model learns unless --learn says otherwise")
    tr.add_argument("--learn", metavar="KINDS", type=impairments_value, default=None,
                    help="the impairments the model learns, a comma list of spacing, gain, coupling "
                         "(default: those of --impairments)")
    add_study_options(tr)
    tr.set_defaults(func=train_main)

    ev = sub.add_parser("evaluate", help="Pmd and RMSE of the MB-ML receiver assuming a spacing")
    add_assume_option(ev, default=None, required=True)
    ev.add_argument("--frames", type=count_value, default=10000, help="frames per hypothesis")
    add_study_options(ev)
    add_executor_options(ev)
    add_device_option(ev, "the receiver's map kernel")
    add_impairments_option(ev, "")
    ev.set_defaults(func=evaluate_main)
