#!/usr/bin/env python3
"""Online semi-supervised learning of the antenna spacing inside a running flowgraph.

The transceiver starts with lambda/2 spacing.  The first --labelled frames keep their
label tags (theta, range); after that a TagFilter drops them, so the trainer sees only
unlabelled frames.  Every --batch frames the OnlineSpacingTrainer takes one Adam step
and publishes the new d on its message port, which the MB-ML estimator and the sensing
beamformer follow.  Pmd is reported per segment of the stream: it falls while it runs.

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
from isacblocks.blocks import (DetectionMetricsSink, MBMLEstimator, OFDMModulator, ReciprocalFilter, ScenarioSource,
                               SectorBeamformer, SymbolSource, TargetChannel)
from isacblocks.core import Flowgraph, NullSink, TagFilter
from isacblocks.dsp.detection import proportion_interval, threshold_at_pfa
from isacblocks.dsp.spacing import spacing_errors
from isacblocks.experiments.baseline import block_seeds
from isacblocks.experiments.common import true_array
from isacblocks.learning.online import OnlineSpacingTrainer


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
    return fg, metrics, trainer, estimator


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
    parser.add_argument("--max-center", type=float, default=20.0,
                        help="sector centres drawn from U[-m, m] degrees (default 20: a forward-looking sensor)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--spacing", default=None, help="true spacing file (default: drawn from --seed)")
    args = parser.parse_args(argv)
    params = SystemParams().replace(train_center_deg=(-args.max_center, args.max_center))
    ula = true_array(params, args.seed, args.spacing)
    fg, metrics, trainer, estimator = build(params, ula, args.frames, args.labelled, args.batch, args.lr, args.seed)
    start = time.perf_counter()
    fg.run()
    print(f"{args.frames} frames ({args.labelled} labelled) in {time.perf_counter() - start:.0f} s, "
          f"{len(trainer.updates)} learning steps "
          f"({sum(u['kind'] == 'sl' for u in trainer.updates)} supervised)")
    print("| segment | frames | Pmd (training sectors) [95% CI] |")
    print("|---|---|---|")
    for index, n, pmd, ci in segment_table(metrics.records, params.pfa, args.segments):
        print(f"| {index} | {n} | {pmd:.4f} [{ci[0]:.4f}, {ci[1]:.4f}] |")
    before = spacing_errors(params.nominal_spacing, ula.spacing)
    after = spacing_errors(estimator.spacing, ula.spacing)
    print(f"element-position error: {before['position_error_mm']:.2f} mm at start, "
          f"{after['position_error_mm']:.2f} mm at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
