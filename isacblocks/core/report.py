"""What a run reports besides its items: input items never consumed (`RunBook`,
`Flowgraph.dropped`, `StreamWarning`) and why a graph got stuck (`stuck_message`)."""

from __future__ import annotations

import threading
import warnings

from .block import Block, StreamWarning


class RunBook:
    """What a run reports at its end: items that reached a block and were never consumed."""

    def __init__(self, owners: dict):
        self.owners = owners  # id(buffer) -> (writing block, port)
        self.dropped: dict[str, dict[str, int]] = {}
        self._notes: list = []
        self._unequal: list = []
        self._lock = threading.Lock()

    def record_drop(self, block: Block, port: int, n: int, why: str) -> None:
        if n <= 0:
            return
        with self._lock:
            ports = self.dropped.setdefault(block.name, {})
            name = block.in_sig[port].name
            ports[name] = ports.get(name, 0) + n
            self._notes.append((block, why))

    def ended_unequal(self, block: Block, readers) -> None:
        """A sync block ended with its shortest input; the others' extra items are counted at the end."""
        if len(readers) > 1:
            with self._lock:
                self._unequal.append((block, list(readers)))

    def report(self, flowgraph_name: str) -> None:
        """Count the items left on the inputs of blocks that ended with their input streams
        (partial frames, unequal stream lengths) and warn about every drop."""
        for block, readers in self._unequal:
            ended = next(i for i, r in enumerate(readers) if r.buffer.done and r.buffer.nwritten == r.nread)
            src = self.owners[id(readers[ended].buffer)][0].name
            for i, r in enumerate(readers):
                left = r.buffer.nwritten - r.nread
                if i == ended or left <= 0:
                    continue
                other = self.owners[id(r.buffer)][0].name
                self.record_drop(block, i, left, (
                    f"the streams into it have unequal lengths: {block.in_sig[ended].name} (from {src!r}) ended "
                    f"after {readers[ended].nread} item(s); {block.in_sig[i].name} (from {other!r}) brought "
                    f"{r.buffer.nwritten}"
                    f"{'' if r.buffer.done else ' by the end of the run (its stream had not ended)'}"))
        self._unequal = []
        notes, self._notes = self._notes, []
        for block, why in notes:
            counts = ", ".join(f"{port}: {n}" for port, n in self.dropped[block.name].items())
            warnings.warn(f"flowgraph {flowgraph_name!r}: block {block.name!r} ({type(block).__name__}) dropped "
                          f"input item(s) ({counts}): {why}", StreamWarning, stacklevel=4)


def stuck_message(name: str, order: list[Block], owners: dict, done: dict) -> str:
    """Why a flowgraph in which no block can progress is stuck: per live block, what its last
    visit did and what waits on each of its inputs.  `owners`: id(buffer) -> (writer, port)."""
    lines = []
    for block in order:
        if done[id(block)] or not (block.in_sig or block.out_sig):
            continue
        state = []
        for spec, r in zip(block.in_sig, block.detail.readers):
            upstream, _ = owners[id(r.buffer)]
            ended = "ended" if r.buffer.done else "running"
            state.append(f"{spec.name}: {r.available()} item(s) waiting (upstream {upstream.name!r} {ended})")
        what = "work() returned 0" if block.detail.status == "zero" else "not called (no input or no output space)"
        detail = f"; {', '.join(state)}" if state else ""
        lines.append(f"{block.name!r} ({type(block).__name__}): {what}{detail}")
    stuck = [b.name for b in order if b.detail.status == "zero" and not done[id(b)]] or \
        [b.name for b in order if not done[id(b)] and (b.in_sig or b.out_sig)]
    return (f"flowgraph {name!r} is stuck: no block can make progress; stuck blocks {stuck}: "
            + "; ".join(lines)
            + ". A block that waits for something outside the flowgraph "
              "returns WORK_WAITING (or sets waits_for_external_input = True); a block that needs more input "
              "says so in forecast()")
