"""``isac train`` (learning the spacing vector d, `isacblocks.learning.trainer`) and ``isac
evaluate`` (Pmd and RMSE of the MB-ML receiver assuming a spacing, `isacblocks.sim.evaluation`)."""

from __future__ import annotations

from ..blocks.ula import true_array
from ..dsp.impairments import impairment_errors, save_array, spacing_of
from ..errors import ConfigError
from ..executor import ProgressLine, add_executor_options, executor_from_args
from ..experiments.common import array_record, run_record
from ..safeio import write_json
from ..sim.evaluation import EVAL_CHUNK, evaluate_spacing
from .memory import check_memory, memory_estimate, tasks_at_once, uses_coupling
from .options import (
    add_assume_option,
    add_device_option,
    add_impairments_option,
    add_study_options,
    assumed_spacing,
    count_value,
    impairments_value,
    load_params,
    output_file,
    positive_real,
    ratio_value,
)
from .runner import HEARTBEAT_S

SSL_SCHEDULES = ("sl+ul", "ul+sl")
DEFAULT_LABELED_RATIO = 0.5


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


def run_train(args) -> int:
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


def run_evaluate(args) -> int:
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
    tr.set_defaults(run=run_train)

    ev = sub.add_parser("evaluate", help="Pmd and RMSE of the MB-ML receiver assuming a spacing")
    add_assume_option(ev, default=None, required=True)
    ev.add_argument("--frames", type=count_value, default=10000, help="frames per hypothesis")
    add_study_options(ev)
    add_executor_options(ev)
    add_device_option(ev, "the receiver's map kernel")
    add_impairments_option(ev, "")
    ev.set_defaults(run=run_evaluate)
