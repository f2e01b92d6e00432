#!/usr/bin/env python3
"""Baseline sensing: Pmd at Pfa = 1e-2 on the test sector, known vs lambda/2 spacing.

The chain (see `isacblocks.experiments.baseline.isac_flowgraph`):
ScenarioSource -> SectorBeamformer -> TargetChannel <- SymbolSource/OFDMModulator,
ReciprocalFilter -> MAPRTDetector -> DetectionMetricsSink.

    python flowgraphs/baseline_sensing.py --frames 20000 --json out/sensing.json
"""

import sys

from isacblocks.experiments.baseline_cli import sensing_main

if __name__ == "__main__":
    sys.exit(sensing_main())
