"""``isac bench``: receiver, training, runtime, ZeroMQ and memory benchmarks in one run.

The benchmarks live in ``benchmarks/`` beside the package in the source tree (they hold
dense reference implementations that are no part of the library, and are not installed),
so ``isac bench`` needs a source checkout, e.g. the editable install ``pip install -e .``:
the ``isac`` command finds this module there (`isacblocks.cli.register_bench`).  Also
runnable as ``python -m benchmarks.cli`` (or ``python -m benchmarks.suite``).
"""

from __future__ import annotations

import argparse
import sys

from isacblocks.experiments.options import add_device_option, add_json_option, add_run_options, output_dir
from isacblocks.experiments.runner import run_command

SECTION_NAMES = "roofline, receivers, training, chain, work_overhead, zmq, gnuradio, memory; gpu with --device cuda"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``isac bench``, ``python -m benchmarks.cli`` and ``python -m benchmarks.suite``."""
    parser.add_argument("--quick", action="store_true",
                        help="small batches and few repetitions (CI smoke run, under a minute)")
    parser.add_argument("--out", default="out/bench", type=output_dir,
                        help="folder for bench.json and bench.md (default out/bench)")
    add_run_options(parser, seed_help="seed of the frames and of the drawn true array")
    add_json_option(parser)
    parser.add_argument("--only", metavar="SECTIONS", default=None,
                        help=f"comma-separated sections to run (default all: {SECTION_NAMES})")
    parser.add_argument("--stream-seconds", type=float, default=None, metavar="S",
                        help="how long the memory section streams the receiver flowgraph (default 60; "
                             "the 10-minute check: --only memory --stream-seconds 600)")
    parser.add_argument("--readme", default=None, metavar="FILE",
                        help="also replace the benchmark section of this README (between its bench markers)")
    add_device_option(parser, "the gpu section (the CUDA kernel against the CPU one; cuda adds it to the run)")


def bench_main(args) -> int:
    from . import suite  # the sections import torch and the dense references: only when the command runs

    _, code = suite.run(quick=args.quick, out=args.out, seed=args.seed, config_file=args.config, only=args.only,
                        json_path=args.json, stream_seconds=args.stream_seconds, device=args.device,
                        readme=args.readme)
    return code


def register(sub) -> None:
    parser = sub.add_parser("bench", help="throughput, overhead and memory benchmarks (Markdown + JSON)",
                            description="Measure in one run, on the same inputs: receiver frames/s (MB-ML, MAPRT, "
                                        "dense numpy and torch references) with cross-checks, the roofline, the "
                                        "training step vs dense torch autograd, the whole flowgraph and the "
                                        "scheduler's overhead, work() call overhead, ZeroMQ loopback throughput, "
                                        "and memory.  Writes OUT/bench.json and OUT/bench.md and prints the tables.")
    add_arguments(parser)
    parser.set_defaults(func=bench_main)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cli")
    register(parser.add_subparsers(dest="command", required=True))
    return run_command(parser, ["bench", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
