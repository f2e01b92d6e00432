"""A one-line progress display for executor runs."""

from __future__ import annotations

import sys
import time


class ProgressLine:
    """``progress(done, total, key)`` callback: ``label: 12/50 tasks, 34 s, about 20 s left``,
    rewritten in place on a terminal, one line per 10 % otherwise."""

    def __init__(self, label: str, stream=None):
        self.label = label
        self.stream = stream or sys.stderr
        self.start = time.perf_counter()
        self._last_tenth = -1

    def __call__(self, done: int, total: int, key: str) -> None:
        elapsed = time.perf_counter() - self.start
        left = elapsed / done * (total - done) if done else float("nan")
        text = f"{self.label}: {done}/{total} tasks, {elapsed:.0f} s, about {left:.0f} s left (last: {key})"
        if self.stream.isatty():
            end = "\n" if done == total else ""
            print(f"\r\x1b[2K{text}", end=end, file=self.stream, flush=True)
        elif done * 10 // total > self._last_tenth or done == total:
            self._last_tenth = done * 10 // total
            print(text, file=self.stream, flush=True)
