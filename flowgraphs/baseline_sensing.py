#!/usr/bin/env python3
"""Baseline sensing: Pmd at Pfa = 1e-2 on the test sector, known vs lambda/2 spacing (``isac sensing``).

The chain (see `isacblocks.blocks.chains.isac_flowgraph`):
ScenarioSource -> SectorBeamformer -> TargetChannel <- SymbolSource/OFDMModulator,
ReciprocalFilter -> MAPRTDetector -> DetectionMetricsSink.

    python flowgraphs/baseline_sensing.py --frames 20000 --json out/sensing.json
"""

import sys

from isacblocks.cli import main

if __name__ == "__main__":
    sys.exit(main(["sensing", *sys.argv[1:]]))
