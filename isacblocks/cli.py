"""The ``isac`` command: one entry point for the studies, flowgraphs and tools.

Each command module under `isacblocks.experiments` has ``register(subparsers)``, which
adds its sub-commands and sets ``func`` on each (a callable taking the parsed args and
returning an exit code).
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading

from . import __version__
from .errors import IsacError
from .experiments.options import HelpFormatter

COMMAND_MODULES = ("learning_cli", "baseline_cli", "snr_cli", "link_cli", "bench_cli", "tools_cli",
                   "multitarget_cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="isac", description="isacblocks: GNU Radio-style ISAC blocks and studies")
    parser.add_argument("--version", action="version", version=f"isac (isacblocks) {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f".experiments.{name}", __package__).register(sub)
    for command in sub.choices.values():
        command.formatter_class = HelpFormatter
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program runs so that it unwinds as after Ctrl-C."""


def _terminate(signum, frame):
    raise Terminated()


def terminate_like_interrupt() -> None:
    """Make SIGTERM unwind the program as Ctrl-C does (workers ended, temporary files removed)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)


def prefer_passive_openmp() -> None:
    """Let idle OpenMP threads sleep (``OMP_WAIT_POLICY=PASSIVE``) unless the user chose a policy.

    Torch and Numba each keep an OpenMP pool on the same cores; by default their idle
    threads spin and take the cores from the other library's next call.  An OpenMP
    runtime reads the policy when it loads, so this runs before any command imports torch.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def main(argv=None) -> int:
    prefer_passive_openmp()
    args = build_parser().parse_args(argv)
    previous = signal.getsignal(signal.SIGTERM)
    restore = threading.current_thread() is threading.main_thread()
    try:
        terminate_like_interrupt()
        return int(args.func(args) or 0)
    except IsacError as exc:
        print(f"isac {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except Terminated:
        print(f"isac {args.command}: terminated", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print(f"isac {args.command}: interrupted", file=sys.stderr)
        return 130
    finally:
        if restore:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
