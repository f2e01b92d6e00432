"""The ``isac`` command: one entry point for the studies, flowgraphs and tools.

The commands are `isacblocks.commands` (one module per group, each with ``register(sub)``
setting every parser's ``run``); ``isac bench`` is the benchmark layer's
(`isacblocks.bench.cli`), registered here the same way.
"""

from __future__ import annotations

import argparse
import sys

from . import __version__, commands
from .commands.options import HelpFormatter
from .commands.runner import run_command
from .kernels import restart_with_pinned_kernels


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="isac", description="isacblocks: GNU Radio-style ISAC blocks and studies")
    parser.add_argument("--version", action="version", version=f"isac (isacblocks) {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.register(sub)
    register_bench(sub)
    for command in sub.choices.values():
        command.formatter_class = HelpFormatter
    return parser


def register_bench(sub) -> None:
    """Add ``isac bench`` from `isacblocks.bench.cli` (installed with the package)."""
    from .bench import cli as bench_cli

    bench_cli.register(sub)


def main(argv=None) -> int:
    if argv is None:  # the command itself, not a call from Python: one kernel set on every CPU
        restart_with_pinned_kernels()
    return run_command(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
