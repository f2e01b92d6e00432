#!/usr/bin/env python3
"""Baseline ISAC trade-off: the (eta, phi) sweep with Pmd, position RMSE and SER, and its Pareto points
(``isac isac-sweep``).

    python flowgraphs/baseline_isac.py --frames 300 --json out/isac.json
"""

import sys

from isacblocks.cli import main

if __name__ == "__main__":
    sys.exit(main(["isac-sweep", *sys.argv[1:]]))
