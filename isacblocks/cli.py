"""The ``isac`` command: one entry point for the studies, flowgraphs and tools.

Each command module under `isacblocks.experiments` has ``register(subparsers)``, which
adds its sub-commands and sets ``func`` on each (a callable taking the parsed args and
returning an exit code).  ``isac bench`` is registered the same way by ``benchmarks.cli``,
which lives in the source tree beside the package (not installed; `register_bench`).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from . import __version__
from .errors import ConfigError
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
    """Add ``isac bench`` from ``benchmarks/cli.py`` of the source tree that holds this package.

    Without that folder (an installed wheel) the command exists but says what it needs.
    """
    root = Path(__file__).resolve().parents[1]
    if not (root / "benchmarks" / "cli.py").is_file():
        def missing(args) -> int:
            raise ConfigError(f"isac bench needs the source tree: no benchmarks/ folder beside isacblocks/ in {root} "
                              "(install the checkout with `pip install -e .`)")

        parser = sub.add_parser("bench", help="benchmarks (needs the source tree)")
        parser.add_argument("rest", nargs=argparse.REMAINDER)
        parser.set_defaults(func=missing)
        return
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    module = importlib.import_module("benchmarks.cli")
    if Path(module.__file__).resolve().parent != root / "benchmarks":
        raise ConfigError(f"isac bench: `benchmarks` resolves to {module.__file__}, not to {root / 'benchmarks'}; "
                          "another package of that name shadows the checkout's")
    module.register(sub)


def main(argv=None) -> int:
    return run_command(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
