"""``isac reproduce``, ``isac train`` and ``isac evaluate``."""

from __future__ import annotations

from ..dsp.evaluation import evaluate_spacing
from ..dsp.spacing import load_spacing, save_spacing, spacing_errors
from ..errors import ConfigError
from ..executor import add_executor_options, executor_from_args
from .common import add_study_options, load_params, true_array, write_json
from .scales import SCALES


def reproduce_main(args) -> int:
    from .reproduce import reproduce

    params = load_params(args)
    ula = true_array(params, args.seed, args.true_spacing)
    figs = ("3", "4", "5") if args.fig == "all" else tuple(args.fig.split(","))
    with executor_from_args(args) as executor:
        reproduce(params, ula, figs=figs, scale=args.scale, out=args.out, seed=args.seed, args=args,
                  executor=executor, progress=True)
    return 0


def train_main(args) -> int:
    from ..learning.trainer import TrainConfig, Trainer

    if args.resume and not args.checkpoint:
        raise ConfigError("--resume needs --checkpoint FILE (the checkpoint to resume from)")
    params = load_params(args)
    ula = true_array(params, args.seed, args.true_spacing)
    ratio = args.labeled_ratio if args.schedule in ("sl+ul", "ul+sl") else None
    lr = args.lr if args.lr is not None else 6.25e-6
    step = max(args.iterations // 5, 1)
    config = TrainConfig(schedule=args.schedule, iterations=args.iterations, labeled_ratio=ratio,
                         batch_size=args.batch_size, lr=lr, curriculum=args.curriculum,
                         eval_at=tuple(range(0, args.iterations + 1, step)) if args.eval else (),
                         eval_frames=args.eval_frames, seed=args.seed, checkpoint=args.checkpoint,
                         checkpoint_every=args.checkpoint_every, device=args.device)
    trainer = Trainer(params, ula.spacing, config)
    if args.resume:
        trainer.load_checkpoint(args.checkpoint)
        print(f"resumed from {args.checkpoint} at iteration {trainer.iteration}")
    result = trainer.run()
    save_spacing(args.out, result.spacing)
    for record in result.evaluations:
        print(f"iteration {record['iteration']:>6}: Pmd {record['pmd']:.4f} [{record['pmd_ci'][0]:.4f}, "
              f"{record['pmd_ci'][1]:.4f}]  ||d - d_true|| {record['spacing_error_mm']:.3f} mm  "
              f"element-position error {record['position_error_mm']:.2f} mm")
    print(f"wrote {args.out} ({result.wall_s:.1f} s, {result.labeled_frames} labelled frames)")
    return 0


def evaluate_main(args) -> int:
    params = load_params(args)
    ula = true_array(params, args.seed, args.true_spacing)
    spacing = load_spacing(args.spacing, params.n_antennas)
    with executor_from_args(args) as executor:
        report = evaluate_spacing(params, ula.spacing, spacing, args.frames, seed=args.seed, executor=executor)
    errors = spacing_errors(spacing, ula.spacing)
    print(f"MB-ML receiver with {args.spacing}: Pmd {report.pmd:.4f} [{report.pmd_ci[0]:.4f}, {report.pmd_ci[1]:.4f}] "
          f"at Pfa {params.pfa:g} ({args.frames} frames per hypothesis), position RMSE {report.rmse_position:.3f} m, "
          f"||d - d_true|| {errors['spacing_error_mm']:.3f} mm, element-position error "
          f"{errors['position_error_mm']:.2f} mm")
    if args.json:
        write_json(args.json, {"spacing": args.spacing, "report": report.to_dict(), **errors})
    return 0


def register(sub) -> None:
    rep = sub.add_parser("reproduce", help="the paper's studies: Figs. 3-5, JSON and the claims table",
                         description="Run the paper's studies and write Figs. 3-5 (PNG), results.json and "
                                     "claims.md.  Scales: " + ", ".join(SCALES))
    rep.add_argument("--fig", default="all", help="3, 4, 5, a comma list, or all (default)")
    rep.add_argument("--scale", default="default", choices=sorted(SCALES))
    rep.add_argument("--out", default="out/reproduce", help="output folder (default out/reproduce)")
    add_study_options(rep)
    add_executor_options(rep)
    rep.set_defaults(func=reproduce_main)

    tr = sub.add_parser("train", help="learn the spacing vector d (SL, UL, SL+UL, UL+SL)")
    tr.add_argument("--schedule", choices=("sl", "ul", "sl+ul", "ul+sl"), default="ul")
    tr.add_argument("--labeled-ratio", type=float, default=0.5, help="SL iterations / all (sl+ul, ul+sl)")
    tr.add_argument("--curriculum", action="store_true", help="widen training sectors from broadside")
    tr.add_argument("--iterations", type=int, default=1000)
    tr.add_argument("--batch-size", type=int, default=256)
    tr.add_argument("--lr", type=float, default=None, help="Adam step in metres (default 6.25e-6)")
    tr.add_argument("--eval", action="store_true", help="evaluate Pmd five times along the run")
    tr.add_argument("--eval-frames", type=int, default=10000)
    tr.add_argument("--checkpoint", default=None, help="checkpoint file (written every --checkpoint-every iterations)")
    tr.add_argument("--checkpoint-every", type=int, default=100, metavar="N",
                    help="iterations between checkpoints (default 100)")
    tr.add_argument("--resume", action="store_true", help="resume from --checkpoint")
    tr.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                    help="where the torch parts and the map kernel run (cuda: a CUDA build of torch and numba-cuda)")
    tr.add_argument("--out", required=True, help="where to write the learned spacing (.npy or text)")
    add_study_options(tr)
    tr.set_defaults(func=train_main)

    ev = sub.add_parser("evaluate", help="Pmd and RMSE of the MB-ML receiver with a given spacing")
    ev.add_argument("--spacing", required=True, help="the spacing the transceiver assumes (.npy or text)")
    ev.add_argument("--frames", type=int, default=10000, help="frames per hypothesis")
    ev.add_argument("--json", default=None)
    add_study_options(ev)
    add_executor_options(ev)
    ev.set_defaults(func=evaluate_main)
