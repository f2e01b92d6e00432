"""The ``isac`` command: one entry point for the studies, flowgraphs and tools.

Each command module under `isacblocks.experiments` has ``register(subparsers)``, which
adds its sub-commands and sets ``func`` on each (a callable taking the parsed args and
returning an exit code).  ``isac bench`` is registered the same way by `isacblocks.bench.cli`
(`register_bench`); ``isac keys`` here (`register_keys`).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings

from . import __version__
from .experiments.options import HelpFormatter, add_json_option
from .experiments.runner import run_command
from .kernels import restart_with_pinned_kernels

COMMAND_MODULES = ("learning_cli", "baseline_cli", "snr_cli", "link_cli", "tools_cli", "multitarget_cli",
                   "impairments_cli", "grc_cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="isac", description="isacblocks: GNU Radio-style ISAC blocks and studies")
    parser.add_argument("--version", action="version", version=f"isac (isacblocks) {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f".experiments.{name}", __package__).register(sub)
    register_bench(sub)
    register_keys(sub)
    for command in sub.choices.values():
        command.formatter_class = HelpFormatter
    return parser


def register_bench(sub) -> None:
    """Add ``isac bench`` from `isacblocks.bench.cli` (installed with the package)."""
    from .bench import cli as bench_cli

    bench_cli.register(sub)


def register_keys(sub) -> None:
    """Add ``isac keys DIR``: CURVE keys for ``isac tx --curve DIR`` / ``isac rx --curve DIR``."""
    parser = sub.add_parser("keys", help="make CURVE keys for an authenticated, encrypted isac tx / rx link")
    parser.description = ("Write a server and a client CURVE keypair into DIR (created owner-only, 0700; files "
                          "0600): server.key_secret and client.key for the binding side (isac tx), "
                          "client.key_secret and server.key for the connecting side (isac rx).  Then run "
                          "isac tx --curve DIR and isac rx --curve DIR.")
    parser.add_argument("dir", metavar="DIR", help="folder for the key files")
    parser.add_argument("--force", action="store_true", help="replace key files already in DIR")
    add_json_option(parser)
    parser.set_defaults(func=_keys)


def _keys(args) -> int:
    from .zmq.curve import create_keys

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        paths = create_keys(args.dir, force=args.force)
    for warning in caught:
        print(f"isac keys: warning: {warning.message}", file=sys.stderr)
    print(f"wrote {', '.join(p.name for p in paths)} in {args.dir} (owner-only); give --curve {args.dir} to both "
          "isac tx and isac rx (a machine that only runs isac rx needs client.key_secret and server.key)")
    if args.json:
        from .experiments.common import write_json

        write_json(args.json, {"command": "keys", "dir": str(args.dir), "files": [p.name for p in paths]})
    return 0


def main(argv=None) -> int:
    if argv is None:  # the command itself, not a call from Python: one kernel set on every CPU
        restart_with_pinned_kernels()
    return run_command(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
