"""The ``isac`` command: one entry point for the studies, flowgraphs and tools.

Each command module under `isacblocks.experiments` has ``register(subparsers)``, which
adds its sub-commands and sets ``func`` on each (a callable taking the parsed args and
returning an exit code).  ``isac bench`` is registered the same way by `isacblocks.bench.cli`
(`register_bench`).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from . import __version__
from .experiments.options import HelpFormatter
from .experiments.runner import run_command

COMMAND_MODULES = ("learning_cli", "baseline_cli", "snr_cli", "link_cli", "tools_cli", "multitarget_cli",
                   "impairments_cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="isac", description="isacblocks: GNU Radio-style ISAC blocks and studies")
    parser.add_argument("--version", action="version", version=f"isac (isacblocks) {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f".experiments.{name}", __package__).register(sub)
    register_bench(sub)
    for command in sub.choices.values():
        command.formatter_class = HelpFormatter
    return parser


def register_bench(sub) -> None:
    """Add ``isac bench`` from `isacblocks.bench.cli` (installed with the package)."""
    from .bench import cli as bench_cli

    bench_cli.register(sub)


def main(argv=None) -> int:
    return run_command(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
