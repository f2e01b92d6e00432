"""A one-line progress display for executor runs."""

from __future__ import annotations

import contextlib
import sys
import threading
import time

#: Seconds without a line after which a running map says it is still going.
DEFAULT_HEARTBEAT_S = 30.0


class ProgressLine:
    """``progress(done, total, key)`` callback: ``label: 12/50 tasks, 34 s, about 20 s left``,
    rewritten in place on a terminal, one line per 10 % otherwise.  The time left is
    estimated from the tasks run in this map (not those reused from a journal).

    While it runs (``executor.map`` enters it; a command may enter it around more work with
    ``with``), a line comes whenever `heartbeat_s` seconds passed without one
    (``label: 0/2 tasks finished, 30 s, running``), for runs made of a few long tasks."""

    def __init__(self, label: str, stream=None, heartbeat_s: float | None = DEFAULT_HEARTBEAT_S):
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.start = time.perf_counter()
        self._last_tenth = -1
        self._done, self._total = 0, None
        self._first, self._since = 0, self.start  # the rate counts the tasks finished after `_first` since `_since`
        self._heartbeat_s = heartbeat_s
        self._last_line = self.start
        self._depth = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __call__(self, done: int, total: int, key: str) -> None:
        self._done, self._total = done, total
        now = time.perf_counter()
        elapsed, ran = now - self.start, done - self._first
        left = (now - self._since) / ran * (total - done) if ran > 0 else float("nan")
        text = f"{self.label}: {done}/{total} tasks, {elapsed:.0f} s, about {left:.0f} s left (last: {key})"
        if self.stream.isatty():
            end = "\n" if done == total else ""
            self._say(f"\r\x1b[2K{text}", end)
        elif done * 10 // total > self._last_tenth or done == total:
            self._last_tenth = done * 10 // total
            self._say(text, "\n")

    def _say(self, text: str, end: str) -> None:
        self._last_line = time.perf_counter()
        print(text, end=end, file=self.stream, flush=True)

    def _beat(self) -> None:
        while not self._stop.wait(self._heartbeat_s):
            if time.perf_counter() - self._last_line < self._heartbeat_s * 0.999:
                continue
            if self._total is not None and self._done >= self._total:
                continue
            total = "?" if self._total is None else self._total
            elapsed = time.perf_counter() - self.start
            prefix = "\r\x1b[2K" if self.stream.isatty() else ""
            self._say(f"{prefix}{self.label}: {self._done}/{total} tasks finished, {elapsed:.0f} s, running",
                      "" if prefix else "\n")

    @contextlib.contextmanager
    def running(self, done: int = 0, total: int | None = None):
        """While the block runs: `done` of `total` tasks are finished already (reused), and the
        heartbeat is on.  Blocks may nest (a map inside a command's ``with``)."""
        self._done, self._first = done, done
        if total is not None:
            self._total, self._since, self._last_tenth = total, time.perf_counter(), -1
        self._depth += 1
        if self._heartbeat_s and self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._beat, name=f"progress {self.label}", daemon=True)
            self._thread.start()
        try:
            yield self
        finally:
            self._depth -= 1
            if self._depth == 0 and self._thread is not None:
                self._stop.set()
                self._thread.join()
                self._thread = None

    def __enter__(self):
        self._context = self.running()
        return self._context.__enter__()

    def __exit__(self, *exc):
        return self._context.__exit__(*exc)
