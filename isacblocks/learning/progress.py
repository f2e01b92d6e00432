"""A training run's progress on stderr: a bar rewritten in place on a terminal, a plain line
per 10 % of the run otherwise (a log file)."""

from __future__ import annotations

import sys
import time


def show_progress(done: int, total: int, record: dict, start: float) -> None:
    """Progress after `done` of `total` iterations; `record` the last step's (kind, loss), `start`
    the run's `time.perf_counter()` at its start."""
    width = 30
    filled = int(width * done / max(total, 1))
    elapsed = time.perf_counter() - start
    eta = elapsed / max(done, 1) * (total - done)
    text = (f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {record['kind']} loss {record['loss']:.4g} "
            f"{elapsed:.0f}s (eta {eta:.0f}s)")
    if sys.stderr.isatty():
        print(f"\r{text}", end="", file=sys.stderr, flush=True)
    elif done == total or done * 10 // max(total, 1) > (done - 1) * 10 // max(total, 1):
        print(text, file=sys.stderr, flush=True)


def end_progress() -> None:
    """End the bar's line on a terminal (a log file's lines are ended already)."""
    if sys.stderr.isatty():
        print(file=sys.stderr)
