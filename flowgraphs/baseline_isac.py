#!/usr/bin/env python3
"""Baseline ISAC trade-off: the (eta, phi) sweep with Pmd, position RMSE and SER, and its Pareto points.

    python flowgraphs/baseline_isac.py --frames 300 --json out/isac.json
"""

import sys

from isacblocks.experiments.baseline_cli import isac_main

if __name__ == "__main__":
    sys.exit(isac_main())
