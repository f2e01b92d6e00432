"""`BlockDetail`: what a running block holds of the scheduler (GNU Radio's block_detail).

A block reaches its stream buffers, the run's stop request and its performance counters
through one object, installed fresh by the flowgraph at the start of every run; the
block's own fields stay the block's.  The scheduler reads and writes the counters and
the status; a block reads its readers and writers (`Block.nitems_read`, `add_tag`, ...).
"""

from __future__ import annotations

import threading
from collections.abc import Callable


def _no_wake() -> None:
    """A scheduler that visits every block in turn needs no wake-up call."""


class BlockDetail:
    """The scheduler state of one block for one run.

    `readers` / `writers`: one per input / output port.  `consumed` / `produced`: what a
    general block's general_work() says it used and wrote in the current call.  `wake`:
    tells the scheduler that the block has something new to do (a message arrived).
    Counters (`performance()` reads them): `calls`, `items_in`, `items_out`, `work_s`,
    and the sum of the output buffers' fill at each call (`fill_sum`, over `calls`).
    `status`: the outcome of the last visit: "progress", "zero" (work() returned 0),
    "waiting" (work() returned WORK_WAITING), "idle" (not called: no input or no room),
    "done".  `wanted`: a neighbour waits for this block's next outcome (see
    `BlockExecutor`); the scheduler wakes the neighbours after the block's next visit.
    """

    __slots__ = ("readers", "writers", "stop_event", "consumed", "produced", "wake", "calls", "items_in",
                 "items_out", "work_s", "fill_sum", "status", "wanted")

    def __init__(self, readers: list | None = None, writers: list | None = None,
                 stop_event: threading.Event | None = None, wake: Callable[[], None] = _no_wake):
        self.readers: list = readers if readers is not None else []
        self.writers: list = writers if writers is not None else []
        self.stop_event = stop_event if stop_event is not None else threading.Event()
        self.consumed: list[int] = [0] * len(self.readers)
        self.produced: list[int | None] = [None] * len(self.writers)
        self.wake = wake
        self.calls = 0
        self.items_in = 0
        self.items_out = 0
        self.work_s = 0.0
        self.fill_sum = 0.0
        self.status = "idle"
        self.wanted = False

    def buffer_fill(self) -> float | None:
        """Mean fill of the output buffers (0..1) when work() was called; None without outputs or calls."""
        if not self.writers or not self.calls:
            return None
        return self.fill_sum / self.calls
