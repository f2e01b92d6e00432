#!/usr/bin/env python3
"""Online semi-supervised learning of the antenna spacing inside a running flowgraph.

The transceiver starts with lambda/2 spacing.  The first --labelled frames keep their
label tags (theta, range); after that a TagFilter drops them, so the trainer sees only
unlabelled frames.  The OnlineSpacingTrainer keeps the last --replay frames.  Its learner,
a thread beside the stream, takes Adam steps on --step-frames frames drawn from them, at
most --steps per --batch received frames: fewer when it is slower than the stream, which
never waits for it (--synchronous: exactly that many, inside the stream, which waits for
them: slower, but bit-reproducible).  It uses only frames whose angle (the label, else the
MB-ML estimate) lies inside a gate that widens from --gate-start to --gate-end degrees over
--gate-frames frames (learn near broadside first), and publishes each new d on its message
port, which the MB-ML estimator and the sensing beamformer follow.  An unlabelled frame's
gradient flows through the receiver and, with the frame's snapshot standing in for the true
steering vector, through the transmit precoder of its sector (--receiver-only: the receiver
alone, which cannot see a common scaling of the element positions and stalls above the
known-spacing Pmd).  The stream runs on one thread (--scheduler single), the learner on
another: on two cores a thread per block (--scheduler threaded) starves the learner.

    ScenarioSource ─► SectorBeamformer ─► TargetChannel ─► ReciprocalFilter ─┬─► MBMLEstimator ─► DetectionMetricsSink
    SymbolSource ─► OFDMModulator ──────────┘                  │             └─► TagFilter ─► OnlineSpacingTrainer
                                                                                              │ (message: spacing)
                                      SectorBeamformer.spacing ◄─┴─► MBMLEstimator.spacing ◄──┘

At the end the spacing in force at --curve-points points along the stream is evaluated on
the test sector (--curve-frames frames per hypothesis; the final spacing and the known
spacing with --eval-frames), printed as a table and drawn with --plot, with the seconds
from the stream's start at which each was published, the first point whose Pmd lies in
the known-spacing 95 % interval, the stream's rate and the run's total wall time.
--no-learner runs the same stream without the trainer, for its rate.

    python flowgraphs/online_ssl.py --frames 20000 --labelled 0 --out d.npy --plot curve.png
"""

import argparse
import sys
import time

_START = time.perf_counter()  # the run's wall time counts from here, imports included

import numpy as np  # noqa: E402

from isacblocks import SystemParams  # noqa: E402
from isacblocks.blocks import true_array  # noqa: E402
from isacblocks.commands.options import (  # noqa: E402
    HelpFormatter,
    add_true_spacing_option,
    count_value,
    integer_at_least,
    output_file,
    positive_real,
    real_in,
    seed_value,
)
from isacblocks.dsp.detection import proportion_interval, threshold_at_pfa  # noqa: E402
from isacblocks.dsp.spacing import spacing_errors  # noqa: E402
from isacblocks.errors import IsacError  # noqa: E402
from isacblocks.learning.transceiver import ONLINE_SCHEDULER, online_flowgraph  # noqa: E402
from isacblocks.sim.evaluation import evaluate_spacing  # noqa: E402

MIN_SEGMENT_FRAMES = 400  # per segment of the stream's Pmd table (half of them target-free)
EVAL_SEED = 12345  # test-sector frames of every evaluation (common random numbers along the curve)


def build(params, ula, args):
    """The flowgraph of the module docstring (`learning.transceiver.online_flowgraph`); returns
    (flowgraph, metrics sink, trainer), the trainer None with --no-learner."""
    if args.no_learner:
        return online_flowgraph(params, ula, args.frames, labelled=args.labelled, seed=args.seed, learner=False,
                                scheduler=args.scheduler)
    gate_frames = round(0.75 * args.frames) if args.gate_frames is None else args.gate_frames
    return online_flowgraph(params, ula, args.frames, labelled=args.labelled, seed=args.seed, batch_size=args.batch,
                            lr=args.lr, steps_per_batch=args.steps, step_frames=args.step_frames,
                            replay=args.replay, gate_start_deg=args.gate_start, gate_end_deg=args.gate_end,
                            gate_frames=gate_frames, transmit_gradient=not args.receiver_only,
                            asynchronous=not args.synchronous, scheduler=args.scheduler)


def segment_table(records: np.ndarray, pfa: float, segments: int) -> list[tuple]:
    """Pmd per consecutive segment of the stream, threshold from that segment's H0 frames."""
    rows = []
    for index, part in enumerate(np.array_split(records, segments)):
        h0, h1 = part[part[:, 3] == 0, 0], part[part[:, 3] == 1, 0]
        threshold = threshold_at_pfa(h0, pfa)
        misses = int(np.count_nonzero(h1 <= threshold))
        rows.append((index, len(part), misses / len(h1), proportion_interval(misses, len(h1))))
    return rows


def update_after(trainer, frames: int) -> dict | None:
    """The trainer's update in force once `frames` frames had reached it (None: none yet)."""
    done = [u for u in trainer.updates if u["frames_published"] <= frames]
    return done[-1] if done else None


def learning_curve(params, ula, trainer, args) -> list[dict]:
    """Pmd on the test sector and element-position error of the spacing in force along the stream,
    and when it was published (seconds from the stream's start; 0 for lambda/2)."""
    points = np.unique(np.linspace(0, args.frames, args.curve_points + 1).round().astype(int))
    curve = []
    for frames in points:
        update = update_after(trainer, frames)
        spacing = params.nominal_spacing if update is None else update["spacing"]
        n = args.eval_frames if frames == points[-1] else args.curve_frames
        report = evaluate_spacing(params, ula.spacing, spacing, n, seed=EVAL_SEED)
        curve.append({"frames": int(frames), "pmd": report.pmd, "pmd_ci": report.pmd_ci, "eval_frames": n,
                      "position_error_mm": spacing_errors(spacing, ula.spacing)["position_error_mm"],
                      "published_s": 0.0 if update is None else update["time_s"]})
    return curve


def plot_curve(path: str, curve: list[dict], known) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frames = [c["frames"] for c in curve]
    fig, (ax_pmd, ax_pos) = plt.subplots(1, 2, figsize=(10, 4))
    ax_pmd.plot(frames, [c["pmd"] for c in curve], "o-", label="learned (online)")
    ax_pmd.fill_between(frames, [c["pmd_ci"][0] for c in curve], [c["pmd_ci"][1] for c in curve], alpha=0.3)
    ax_pmd.axhline(known.pmd, color="k", ls="--", label="known spacing")
    ax_pmd.axhspan(*known.pmd_ci, color="k", alpha=0.15)
    ax_pmd.set(xlabel="frames streamed", ylabel="Pmd on the test sector (95 % CI)")
    ax_pmd.legend()
    ax_pos.plot(frames, [c["position_error_mm"] for c in curve], "o-")
    ax_pos.set(xlabel="frames streamed", ylabel="element-position error (mm)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter)
    parser.add_argument("--frames", type=count_value, default=20000, help="frames streamed")
    parser.add_argument("--labelled", type=integer_at_least(0), default=0, help="frames that keep their label tags")
    parser.add_argument("--batch", type=count_value, default=128, help="received frames per round of learning")
    parser.add_argument("--steps", type=count_value, default=8, help="Adam steps per round")
    parser.add_argument("--step-frames", type=count_value, default=128, help="replayed frames per Adam step")
    parser.add_argument("--replay", type=count_value, default=4096, help="frames kept for replay")
    parser.add_argument("--lr", type=positive_real, default=6.25e-6, help="Adam step in metres")
    parser.add_argument("--gate-start", type=real_in(0.0, 90.0), default=15.0, help="angle gate at start (degrees)")
    parser.add_argument("--gate-end", type=real_in(0.0, 90.0), default=70.0, help="angle gate at the end (degrees)")
    parser.add_argument("--gate-frames", type=integer_at_least(0), default=None,
                        help="frames over which the gate widens (default: 3/4 of --frames)")
    parser.add_argument("--receiver-only", action="store_true",
                        help="gradient through the receiver only (not through the transmit precoder)")
    parser.add_argument("--synchronous", action="store_true",
                        help="learn inside the stream: exactly --steps steps per --batch frames, the stream waiting "
                             "for them (bit-reproducible; slower)")
    parser.add_argument("--scheduler", choices=("single", "threaded"), default=ONLINE_SCHEDULER,
                        help="the flowgraph's scheduler: 'single' runs the stream on one thread, beside the learner's "
                             "thread; 'threaded' a thread per block, which on two cores starves the learner")
    parser.add_argument("--no-learner", action="store_true",
                        help="the same stream without the trainer: print its rate and the stream's Pmd table only")
    parser.add_argument("--segments", type=count_value, default=4, help="segments of the stream's Pmd table")
    parser.add_argument("--curve-points", type=count_value, default=4, help="evaluations along the stream")
    parser.add_argument("--curve-frames", type=integer_at_least(1000), default=2000,
                        help="test-sector frames per hypothesis of an evaluation along the stream")
    parser.add_argument("--eval-frames", type=integer_at_least(1000), default=10000,
                        help="test-sector frames per hypothesis of the final and the known-spacing evaluation")
    parser.add_argument("--seed", type=seed_value, default=0, help="seed of the stream and of the drawn true array")
    add_true_spacing_option(parser)
    parser.add_argument("--out", metavar="FILE.npy", type=output_file, default=None,
                        help="write the final spacing (metres) to this .npy file")
    parser.add_argument("--plot", metavar="FILE.png", type=output_file, default=None,
                        help="draw Pmd and element-position error vs frames streamed")
    args = parser.parse_args(argv)
    if args.labelled > args.frames:
        parser.error(f"argument --labelled: {args.labelled} exceeds --frames = {args.frames}")
    if args.frames // args.segments < MIN_SEGMENT_FRAMES:
        parser.error(f"argument --segments: {args.segments} segments of --frames = {args.frames} leave fewer than "
                     f"{MIN_SEGMENT_FRAMES} frames per segment (a Pfa threshold needs about 200 target-free frames)")
    if args.gate_end < args.gate_start:
        parser.error(f"argument --gate-end: {args.gate_end:g} is below --gate-start = {args.gate_start:g}")
    if args.replay < args.batch:
        parser.error(f"argument --replay: {args.replay} must hold at least one --batch ({args.batch}) of frames")
    for option, path, suffix in (("--out", args.out, ".npy"), ("--plot", args.plot, ".png")):
        if path is not None and not path.endswith(suffix):
            parser.error(f"argument {option}: {path!r}: the file name must end in {suffix}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    params = SystemParams()
    try:
        ula = true_array(params, args.seed, args.true_spacing)
    except IsacError as exc:
        print(f"online_ssl.py: error: argument --true-spacing: {exc}", file=sys.stderr)
        return 2
    fg, metrics, trainer = build(params, ula, args)
    start = time.perf_counter()
    fg.run()
    wall = time.perf_counter() - start
    if trainer is None:
        print(f"{args.frames} frames ({args.labelled} labelled) in {wall:.1f} s without a learner: "
              f"{args.frames / wall:.0f} frames/s")
    else:
        labelled_steps = sum(u["labelled"] > 0 for u in trainer.updates)
        mode = "synchronous" if args.synchronous else "asynchronous"
        print(f"{args.frames} frames ({args.labelled} labelled) in {wall:.1f} s with the {mode} learner: "
              f"{args.frames / wall:.0f} frames/s; {len(trainer.updates)} learning steps "
              f"({labelled_steps} with labelled frames), replay buffer of {args.replay} frames")
    print("| segment | frames | Pmd (training sectors) [95% CI] |")
    print("|---|---|---|")
    for index, n, pmd, ci in segment_table(metrics.records, params.pfa, args.segments):
        print(f"| {index} | {n} | {pmd:.4f} [{ci[0]:.4f}, {ci[1]:.4f}] |")
    if trainer is None:
        print(f"total {time.perf_counter() - _START:.1f} s")
        return 0
    final = trainer.spacing
    if args.out:
        np.save(args.out, final)
    curve = learning_curve(params, ula, trainer, args)
    known = evaluate_spacing(params, ula.spacing, ula.spacing, args.eval_frames, seed=EVAL_SEED)
    print("\nThe spacing in force along the stream, evaluated on the test sector:")
    print("| frames streamed | published (s) | frames per hypothesis | Pmd (test sector) [95% CI] "
          "| element-position error (mm) |")
    print("|---|---|---|---|---|")
    for c in curve:
        print(f"| {c['frames']} | {c['published_s']:.1f} | {c['eval_frames']} | {c['pmd']:.4f} "
              f"[{c['pmd_ci'][0]:.4f}, {c['pmd_ci'][1]:.4f}] | {c['position_error_mm']:.2f} |")
    print(f"| known spacing | | {args.eval_frames} | {known.pmd:.4f} [{known.pmd_ci[0]:.4f}, {known.pmd_ci[1]:.4f}] "
          f"| 0 |")
    reached = [c for c in curve if known.pmd_ci[0] <= c["pmd"] <= known.pmd_ci[1]]
    if reached:
        print(f"the spacing in force first lies in the known-spacing 95% interval at {reached[0]['frames']} frames: "
              f"published {reached[0]['published_s']:.1f} s after the stream started")
    inside = known.pmd_ci[0] <= curve[-1]["pmd"] <= known.pmd_ci[1]
    print(f"final Pmd {'inside' if inside else 'outside'} the known-spacing 95% interval")
    if args.plot:
        plot_curve(args.plot, curve, known)
    print(f"total {time.perf_counter() - _START:.1f} s (the stream {wall:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
