"""Running a parsed command: exit codes, one line for a user's mistake, and SIGTERM / Ctrl-C
unwinding the program (workers ended, temporary files removed).  Shared by ``isac``,
``python -m isacblocks.commands`` and ``python -m isacblocks.bench``."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from ..errors import IsacError

#: Seconds between "still running" lines while a long run goes on (`executor.ProgressLine`'s heartbeat).
HEARTBEAT_S = 10.0


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


def run_command(parser: argparse.ArgumentParser, argv=None) -> int:
    """Parse `argv` with `parser` and run the chosen command's ``run`` (set by its module's
    ``register``: ``run(args) -> int``); returns the exit code."""
    prefer_passive_openmp()
    args = parser.parse_args(argv)
    previous = signal.getsignal(signal.SIGTERM)
    restore = threading.current_thread() is threading.main_thread()
    try:
        terminate_like_interrupt()
        return int(args.run(args) or 0)
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
