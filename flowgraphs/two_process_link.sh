#!/usr/bin/env bash
# The ISAC chain split over two processes linked by ZeroMQ on loopback:
# `isac rx` (receivers + metrics) in the background, `isac tx` (scenario + channels) in front.
# The transmitter's end-of-stream tag ends the receiver; Ctrl-C stops both cleanly.
#
#   flowgraphs/two_process_link.sh [FRAMES] [extra options for both, e.g. --config small.toml --no-comm]
#
# Set PYTHON to choose the interpreter (default: python3), ADDRESS for the base address
# (default tcp://127.0.0.1:5555; the five streams use ports 5555-5559).
set -euo pipefail
PYTHON=${PYTHON:-python3}
ADDRESS=${ADDRESS:-tcp://127.0.0.1:5555}
FRAMES=${1:-1000}
shift || true
LINK=("$PYTHON" -m isacblocks.commands)

"${LINK[@]}" rx --address "$ADDRESS" "$@" &
RX=$!
trap 'kill -INT "$RX" 2>/dev/null || true' INT TERM
"${LINK[@]}" tx --address "$ADDRESS" --frames "$FRAMES" "$@"
wait "$RX"
