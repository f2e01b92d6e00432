#!/usr/bin/env python3
"""Online semi-supervised learning of the antenna spacing inside a running flowgraph.

The transceiver starts with lambda/2 spacing.  The first --labelled frames keep their
label tags (theta, range); after that a TagFilter drops them, so the trainer sees only
unlabelled frames.  Every --batch frames the OnlineSpacingTrainer takes one Adam step
and publishes the new d on its message port, which the MB-ML estimator and the sensing
beamformer follow.  Pmd is reported per segment of the stream, and the spacing in force at
points along the stream is evaluated on the test sector.

    ScenarioSource ─► SectorBeamformer ─► TargetChannel ─► ReciprocalFilter ─┬─► MBMLEstimator ─► DetectionMetricsSink
    SymbolSource ─► OFDMModulator ──────────┘                  │             └─► TagFilter ─► OnlineSpacingTrainer
                                                                                              │ (message: spacing)
                                      SectorBeamformer.spacing ◄─┴─► MBMLEstimator.spacing ◄──┘

    python flowgraphs/online_ssl.py --frames 12000 --labelled 512
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
from isacblocks.experiments.baseline import block_seeds
from isacblocks.experiments.common import true_array
from isacblocks.learning.online import OnlineSpacingTrainer
from isacblocks.sim.evaluation import evaluate_spacing


def build(params, ula, frames: int, labelled: int, batch: int, lr: float, seed: int):
    seeds = block_seeds(seed)
    k, s = params.n_antennas, params.n_subcarriers
    scenario = ScenarioSource(params, frames, sector="train", seed=seeds["scenario"])
    symbols = SymbolSource(params, frames, seed=seeds["symbols"])
    ofdm = OFDMModulator(params)
    beam = SectorBeamformer(params, params.nominal_spacing)
    channel = TargetChannel(params, ula, seed=seeds["target"])
    recip = ReciprocalFilter(params)
    estimator = MBMLEstimator(params, params.nominal_spacing)
    metrics = DetectionMetricsSink(params)
    labels = TagFilter(np.complex64, (k, s), drop_keys=("theta", "range"), from_item=labelled)
    trainer = OnlineSpacingTrainer(params, batch_size=batch, lr=lr, seed=seed)

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
    return fg, metrics, trainer, estimator, published


def segment_table(records: np.ndarray, pfa: float, segments: int) -> list[tuple]:
    """Pmd per consecutive segment of the stream, threshold from that segment's H0 frames."""
    rows = []
    for index, part in enumerate(np.array_split(records, segments)):
        h0, h1 = part[part[:, 3] == 0, 0], part[part[:, 3] == 1, 0]
        threshold = threshold_at_pfa(h0, pfa)
        misses = int(np.count_nonzero(h1 <= threshold))
        rows.append((index, len(part), misses / len(h1), proportion_interval(misses, len(h1))))
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=12000)
    parser.add_argument("--labelled", type=int, default=512, help="frames that keep their label tags")
    parser.add_argument("--batch", type=int, default=128, help="frames per learning step")
    parser.add_argument("--lr", type=float, default=6.25e-6, help="Adam step in metres")
    parser.add_argument("--segments", type=int, default=4)
    parser.add_argument("--eval-frames", type=int, default=4000, help="test-sector frames per hypothesis")
    parser.add_argument("--max-center", type=float, default=20.0,
                        help="sector centres drawn from U[-m, m] degrees (default 20: a forward-looking sensor)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--true-spacing", default=None, help="true spacing file (default: drawn from --seed)")
    args = parser.parse_args(argv)
    params = SystemParams().replace(train_center_deg=(-args.max_center, args.max_center))
    ula = true_array(params, args.seed, args.true_spacing)
    fg, metrics, trainer, estimator, published = build(params, ula, args.frames, args.labelled, args.batch, args.lr,
                                                       args.seed)
    start = time.perf_counter()
    fg.run()
    print(f"{args.frames} frames ({args.labelled} labelled) in {time.perf_counter() - start:.0f} s, "
          f"{len(trainer.updates)} learning steps "
          f"({sum(u['kind'] == 'sl' for u in trainer.updates)} supervised)")
    print("| segment | frames | Pmd (training sectors) [95% CI] |")
    print("|---|---|---|")
    for index, n, pmd, ci in segment_table(metrics.records, params.pfa, args.segments):
        print(f"| {index} | {n} | {pmd:.4f} [{ci[0]:.4f}, {ci[1]:.4f}] |")
    print("\nThe spacing in force along the stream, evaluated on the test sector "
          f"({args.eval_frames} fresh frames per hypothesis):")
    print("| learning steps | Pmd (test sector) [95% CI] | element-position error (mm) |")
    print("|---|---|---|")
    spacings = [params.nominal_spacing, *published.messages]
    for step in np.unique(np.linspace(0, len(spacings) - 1, args.segments + 1).astype(int)):
        report = evaluate_spacing(params, ula.spacing, spacings[step], args.eval_frames, seed=args.seed + 1)
        error = spacing_errors(spacings[step], ula.spacing)["position_error_mm"]
        print(f"| {step} | {report.pmd:.4f} [{report.pmd_ci[0]:.4f}, {report.pmd_ci[1]:.4f}] | {error:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
