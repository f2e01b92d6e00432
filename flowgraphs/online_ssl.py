#!/usr/bin/env python3
"""Online semi-supervised learning of the antenna spacing inside a running flowgraph.

The transceiver starts with lambda/2 spacing.  The first --labelled frames keep their
label tags (theta, range); after that a TagFilter drops them, so the trainer sees only
unlabelled frames.  The OnlineSpacingTrainer keeps the last --replay frames; after every
--batch received frames it takes --steps Adam steps on frames drawn from them, using only
frames whose angle (the label, else the MB-ML estimate) lies inside a gate that widens
from --gate-start to --gate-end degrees over --gate-frames frames (learn near broadside
first), and publishes the new d on its message port, which the MB-ML estimator and the
sensing beamformer follow.  An unlabelled frame's gradient flows through the receiver and,
with the frame's snapshot standing in for the true steering vector, through the transmit
precoder of its sector (--receiver-only: the receiver alone, which cannot see a common
scaling of the element positions and stalls above the known-spacing Pmd).

    ScenarioSource ─► SectorBeamformer ─► TargetChannel ─► ReciprocalFilter ─┬─► MBMLEstimator ─► DetectionMetricsSink
    SymbolSource ─► OFDMModulator ──────────┘                  │             └─► TagFilter ─► OnlineSpacingTrainer
                                                                                              │ (message: spacing)
                                      SectorBeamformer.spacing ◄─┴─► MBMLEstimator.spacing ◄──┘

At the end the spacing in force at --curve-points points along the stream is evaluated on
the test sector (--curve-frames frames per hypothesis; the final spacing and the known
spacing with --eval-frames), printed as a table and drawn with --plot.

    python flowgraphs/online_ssl.py --frames 20000 --labelled 0 --out d.npy --plot curve.png
"""

import argparse
import sys
import time

import numpy as np

from isacblocks import SystemParams
from isacblocks.blocks import (
    DetectionMetricsSink,
    MBMLEstimator,
    OFDMModulator,
    ReciprocalFilter,
    ScenarioSource,
    SectorBeamformer,
    SymbolSource,
    TargetChannel,
)
from isacblocks.core import Flowgraph, MessageCollector, NullSink, TagFilter
from isacblocks.dsp.detection import proportion_interval, threshold_at_pfa
from isacblocks.dsp.spacing import spacing_errors
from isacblocks.errors import IsacError
from isacblocks.experiments.baseline import block_seeds
from isacblocks.experiments.common import true_array
from isacblocks.experiments.options import (
    HelpFormatter,
    add_true_spacing_option,
    count_value,
    integer_at_least,
    output_file,
    positive_real,
    real_in,
    seed_value,
)
from isacblocks.learning.online import OnlineSpacingTrainer
from isacblocks.sim.evaluation import evaluate_spacing

MIN_SEGMENT_FRAMES = 400  # per segment of the stream's Pmd table (half of them target-free)
EVAL_SEED = 12345  # test-sector frames of every evaluation (common random numbers along the curve)


def build(params, ula, args):
    """The flowgraph of the module docstring; returns (flowgraph, metrics sink, trainer, collector)."""
    seeds = block_seeds(args.seed)
    k, s = params.n_antennas, params.n_subcarriers
    scenario = ScenarioSource(params, args.frames, sector="train", seed=seeds["scenario"])
    symbols = SymbolSource(params, args.frames, seed=seeds["symbols"])
    ofdm = OFDMModulator(params)
    beam = SectorBeamformer(params, params.nominal_spacing)
    channel = TargetChannel(params, ula, seed=seeds["target"])
    recip = ReciprocalFilter(params)
    estimator = MBMLEstimator(params, params.nominal_spacing)
    metrics = DetectionMetricsSink(params)
    labels = TagFilter(np.complex64, (k, s), drop_keys=("theta", "range"), from_item=args.labelled)
    gate_frames = round(0.75 * args.frames) if args.gate_frames is None else args.gate_frames
    trainer = OnlineSpacingTrainer(params, batch_size=args.batch, lr=args.lr, steps_per_batch=args.steps,
                                   step_frames=args.step_frames, replay=args.replay,
                                   gate_start_deg=args.gate_start, gate_end_deg=args.gate_end,
                                   gate_frames=gate_frames, transmit_gradient=not args.receiver_only,
                                   seed=args.seed)

    fg = Flowgraph(max_items=64, name="online_ssl")
    fg.connect(scenario, beam, (channel, "precoder"))
    fg.connect((symbols, "symbols"), ofdm, (channel, "symbols"))
    fg.connect((symbols, "messages"), NullSink(np.int32, s))
    fg.connect(ofdm, (recip, "symbols"))
    fg.connect(channel, recip, estimator, metrics)
    fg.connect(recip, labels, trainer)
    fg.msg_connect(trainer, "spacing", estimator, "spacing")
    fg.msg_connect(trainer, "spacing", beam, "spacing")
    published = MessageCollector(name="published_spacings")
    fg.msg_connect(trainer, "spacing", published, "in")
    return fg, metrics, trainer, published


def segment_table(records: np.ndarray, pfa: float, segments: int) -> list[tuple]:
    """Pmd per consecutive segment of the stream, threshold from that segment's H0 frames."""
    rows = []
    for index, part in enumerate(np.array_split(records, segments)):
        h0, h1 = part[part[:, 3] == 0, 0], part[part[:, 3] == 1, 0]
        threshold = threshold_at_pfa(h0, pfa)
        misses = int(np.count_nonzero(h1 <= threshold))
        rows.append((index, len(part), misses / len(h1), proportion_interval(misses, len(h1))))
    return rows


def spacing_after(params, trainer, published, frames: int) -> np.ndarray:
    """The spacing in force once `frames` frames had reached the trainer."""
    done = [i for i, u in enumerate(trainer.updates) if u["frames_received"] <= frames]
    return published.messages[done[-1]] if done else params.nominal_spacing


def learning_curve(params, ula, trainer, published, args) -> list[dict]:
    """Pmd on the test sector and element-position error of the spacing in force along the stream."""
    points = np.unique(np.linspace(0, args.frames, args.curve_points + 1).round().astype(int))
    curve = []
    for frames in points:
        spacing = spacing_after(params, trainer, published, frames)
        n = args.eval_frames if frames == points[-1] else args.curve_frames
        report = evaluate_spacing(params, ula.spacing, spacing, n, seed=EVAL_SEED)
        curve.append({"frames": int(frames), "pmd": report.pmd, "pmd_ci": report.pmd_ci, "eval_frames": n,
                      "position_error_mm": spacing_errors(spacing, ula.spacing)["position_error_mm"]})
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
    parser.add_argument("--step-frames", type=count_value, default=256, help="replayed frames per Adam step")
    parser.add_argument("--replay", type=count_value, default=4096, help="frames kept for replay")
    parser.add_argument("--lr", type=positive_real, default=6.25e-6, help="Adam step in metres")
    parser.add_argument("--gate-start", type=real_in(0.0, 90.0), default=15.0, help="angle gate at start (degrees)")
    parser.add_argument("--gate-end", type=real_in(0.0, 90.0), default=70.0, help="angle gate at the end (degrees)")
    parser.add_argument("--gate-frames", type=integer_at_least(0), default=None,
                        help="frames over which the gate widens (default: 3/4 of --frames)")
    parser.add_argument("--receiver-only", action="store_true",
                        help="gradient through the receiver only (not through the transmit precoder)")
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
    fg, metrics, trainer, published = build(params, ula, args)
    start = time.perf_counter()
    fg.run()
    wall = time.perf_counter() - start
    labelled_steps = sum(u["labelled"] > 0 for u in trainer.updates)
    print(f"{args.frames} frames ({args.labelled} labelled) in {wall:.0f} s, {len(trainer.updates)} learning steps "
          f"({labelled_steps} with labelled frames), replay buffer of {args.replay} frames")
    print("| segment | frames | Pmd (training sectors) [95% CI] |")
    print("|---|---|---|")
    for index, n, pmd, ci in segment_table(metrics.records, params.pfa, args.segments):
        print(f"| {index} | {n} | {pmd:.4f} [{ci[0]:.4f}, {ci[1]:.4f}] |")
    final = spacing_after(params, trainer, published, args.frames)
    if args.out:
        np.save(args.out, final)
    curve = learning_curve(params, ula, trainer, published, args)
    known = evaluate_spacing(params, ula.spacing, ula.spacing, args.eval_frames, seed=EVAL_SEED)
    print("\nThe spacing in force along the stream, evaluated on the test sector:")
    print("| frames streamed | frames per hypothesis | Pmd (test sector) [95% CI] | element-position error (mm) |")
    print("|---|---|---|---|")
    for c in curve:
        print(f"| {c['frames']} | {c['eval_frames']} | {c['pmd']:.4f} [{c['pmd_ci'][0]:.4f}, {c['pmd_ci'][1]:.4f}] "
              f"| {c['position_error_mm']:.2f} |")
    print(f"| known spacing | {args.eval_frames} | {known.pmd:.4f} [{known.pmd_ci[0]:.4f}, {known.pmd_ci[1]:.4f}] "
          f"| 0 |")
    inside = known.pmd_ci[0] <= curve[-1]["pmd"] <= known.pmd_ci[1]
    print(f"final Pmd {'inside' if inside else 'outside'} the known-spacing 95% interval")
    if args.plot:
        plot_curve(args.plot, curve, known)
    return 0


if __name__ == "__main__":
    sys.exit(main())
