"""A one-line progress display for executor runs."""

from __future__ import annotations

import sys
import threading
import time


class ProgressLine:
    """``progress(done, total, key)`` callback: ``label: 12/50 tasks, 34 s, about 20 s left``,
    rewritten in place on a terminal, one line per 10 % otherwise.

    With `heartbeat_s`, used as a context manager, it also says every `heartbeat_s` seconds
    that the run is still going (``label: 0/2 tasks, 30 s``), for runs made of a few long tasks."""

    def __init__(self, label: str, stream=None, heartbeat_s: float | None = None):
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.start = time.perf_counter()
        self._last_tenth = -1
        self._done, self._total = 0, None
        self._heartbeat_s = heartbeat_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __call__(self, done: int, total: int, key: str) -> None:
        self._done, self._total = done, total
        elapsed = time.perf_counter() - self.start
        left = elapsed / done * (total - done) if done else float("nan")
        text = f"{self.label}: {done}/{total} tasks, {elapsed:.0f} s, about {left:.0f} s left (last: {key})"
        if self.stream.isatty():
            end = "\n" if done == total else ""
            print(f"\r\x1b[2K{text}", end=end, file=self.stream, flush=True)
        elif done * 10 // total > self._last_tenth or done == total:
            self._last_tenth = done * 10 // total
            print(text, file=self.stream, flush=True)

    def _beat(self) -> None:
        while not self._stop.wait(self._heartbeat_s):
            if self._total is not None and self._done >= self._total:
                return
            total = "?" if self._total is None else self._total
            elapsed = time.perf_counter() - self.start
            prefix = "\r\x1b[2K" if self.stream.isatty() else ""
            print(f"{prefix}{self.label}: {self._done}/{total} tasks finished, {elapsed:.0f} s, running",
                  end="" if prefix else "\n", file=self.stream, flush=True)

    def __enter__(self):
        if self._heartbeat_s:
            self._thread = threading.Thread(target=self._beat, name=f"progress {self.label}", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
