"""``isac bench``: receiver, training, runtime, stream, ZeroMQ and memory benchmarks in one run.

Installed with the package: ``isac`` registers the command from here like any other
(`isacblocks.cli`), and ``python -m isacblocks.bench`` runs the same.  Importing this module
imports neither torch nor the sections; they load when the command runs.
"""

from __future__ import annotations

import argparse
import sys

from isacblocks.commands.options import add_device_option, add_json_option, add_run_options, output_dir
from isacblocks.commands.runner import run_command

SECTION_NAMES = ("roofline, receivers, training, chain, work_overhead, stream, zmq, gnuradio, memory; "
                 "gpu with --device cuda")


DESCRIPTION = ("Measure in one run, on the same inputs: receiver frames/s (MB-ML, MAPRT, dense numpy and torch "
               "references) with cross-checks, the roofline, the training step vs dense torch autograd, the whole "
               "flowgraph and the scheduler's overhead, work() call overhead, one stream (kernel, chain per "
               "scheduler, two-process link, online) against the kernel alone, ZeroMQ loopback throughput, and "
               "memory.  Writes OUT/bench.json and OUT/bench.md and prints the tables.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``isac bench`` and ``python -m isacblocks.bench``."""
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
                            description=DESCRIPTION)
    add_arguments(parser)
    parser.set_defaults(run=bench_main)


def main(argv=None) -> int:
    """``python -m isacblocks.bench [options]``: the options of ``isac bench``."""
    parser = argparse.ArgumentParser(prog="python -m isacblocks.bench", description=DESCRIPTION)
    add_arguments(parser)
    parser.set_defaults(run=bench_main, command="bench")
    return run_command(parser, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
