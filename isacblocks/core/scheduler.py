"""Schedulers: who calls which block's work() when (the graph is `Flowgraph`'s).

A scheduler gets a prepared `Run` (blocks in topological order, their executors, the
stop and drain requests) and drives the blocks until the run ends: every sink has
ended, `stop()` was asked, or a block raised.  Both schedulers call blocks only through
`BlockExecutor`, so the block contract, the checks and the errors are the same.

* ``"single"`` (`SingleThreadScheduler`): one thread visits the blocks in topological
  order, round after round.  Cheapest per call; nothing overlaps.
* ``"threaded"`` (`ThreadedScheduler`): a thread per block, as GNU Radio's
  thread-per-block scheduler, over ring buffers with back-pressure (a writer waits for
  room, a reader for items), so the kernels that release the GIL (Numba ``nogil``,
  BLAS, numpy's bulk fills) of different blocks run at once on different cores.  Its
  executors wait for full batches (see `isacblocks.core.executor`), so a chain of
  blocks whose output does not depend on how their input is cut gives the same items
  and tags, bit for bit, as ``"single"``.  Messages are delivered in order per port on
  the destination block's own thread, before its next work() call; the item at which
  a message takes effect depends on timing, under either scheduler in a live stream.

A block that returns `WORK_WAITING` (or declares `waits_for_external_input`) waits for
the world outside: the scheduler calls it again after a short back-off (10 µs doubling
to 1 ms) and never reports the flowgraph as stuck while it waits.  A flowgraph in which
no block can move and none waits for the outside ends with a `BlockError` naming the
stuck blocks.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import BlockError
from .block import WORK_DONE, Block
from .buffer import Buffer, RingBuffer
from .executor import SETTLED, BlockExecutor, handle_messages, retire

#: Consecutive rounds without progress after which a flowgraph is reported stuck.
_STUCK_ROUNDS = 3
#: The longest back-off between calls of a block that waits for the outside world (s).
_MAX_BACKOFF_S = 1e-3


@dataclass
class Run:
    """One run of a flowgraph, as its scheduler sees it."""

    name: str
    order: list[Block]
    executors: list[BlockExecutor]
    max_items: int
    stop_event: threading.Event
    drain_event: threading.Event
    stuck_message: Callable[[dict], str]


def drain_counts(sources: list[Block]) -> dict:
    """The item count each live source ends at when the flowgraph drains: the largest any has
    written (see `Flowgraph.drain`)."""
    target = max((b.detail.writers[0].buffer.nwritten for b in sources), default=0)
    return {id(b): target for b in sources}


def _streaming(block: Block) -> bool:
    return bool(block.in_sig or block.out_sig)


def _sinks(order: list[Block]) -> list[Block]:
    """The blocks whose end ends the run: the stream sinks (every streaming block if none)."""
    streaming = [b for b in order if _streaming(b)]
    return [b for b in streaming if not b.out_sig] or streaming


class SingleThreadScheduler:
    """Visits the blocks in topological order in the calling thread, round after round."""

    name = "single"
    buffer_type = Buffer
    patient = False

    def run(self, run: Run) -> None:
        max_items = run.max_items
        order = run.order
        sinks = _sinks(order)
        done = {id(b): not _streaming(b) for b in order}
        idle_sleep = 0.0
        quiet_rounds = 0
        drain_at: dict | None = None  # source -> the item count it ends at, once drain() was called
        while not run.stop_event.is_set():
            progress = waiting = False
            if drain_at is None and run.drain_event.is_set():
                drain_at = drain_counts([b for b in order if _streaming(b) and not b.in_sig and not done[id(b)]])
            for executor in run.executors:
                block = executor.block
                if block._inbox:
                    handle_messages(block)
                    progress = True
                if done[id(block)]:
                    continue
                n_max = max_items
                if drain_at is not None and id(block) in drain_at:
                    n_max = min(max_items, drain_at[id(block)] - block.detail.writers[0].buffer.nwritten)
                    if n_max <= 0:
                        done[id(block)] = True
                        retire(block)
                        progress = True
                        continue
                produced = executor.visit(n_max)
                status = executor.detail.status
                if drain_at is not None and status in ("zero", "waiting") and id(block) in drain_at:
                    produced = WORK_DONE  # a draining source with nothing to give ends where it is
                if produced == WORK_DONE:
                    done[id(block)] = True
                    executor.detail.status = "done"
                    retire(block)
                    progress = True
                elif produced:
                    progress = True
                elif status == "waiting":
                    waiting = True
            if all(done[id(b)] for b in sinks):
                return
            if progress:
                idle_sleep = 0.0
                quiet_rounds = 0
                continue
            # Nothing moved.  Unless a live block waits for the outside, nothing ever will.
            if not waiting and not any(b.waits_for_external_input and not done[id(b)] for b in order):
                quiet_rounds += 1
                if quiet_rounds >= _STUCK_ROUNDS:
                    raise BlockError(run.stuck_message(done))
            else:
                quiet_rounds = 0
            # e.g. a network source waiting: back off briefly, stay responsive to stop().
            idle_sleep = min(_MAX_BACKOFF_S, idle_sleep * 2 or 1e-5)
            time.sleep(idle_sleep)


class _BlockThread:
    """One block's thread under `ThreadedScheduler`."""

    def __init__(self, scheduler: _ThreadedRun, executor: BlockExecutor):
        self.run = scheduler
        self.executor = executor
        self.block = executor.block
        self.wake = threading.Event()
        self.neighbours: list[_BlockThread] = []
        self.done = not _streaming(self.block)
        self.visits = 0
        self.thread = threading.Thread(target=self.main, name=f"isacblocks-block-{self.block.name}", daemon=True)

    def main(self) -> None:
        run, executor, block, detail = self.run, self.executor, self.block, self.executor.detail
        wake, halt = self.wake, run.halt
        backoff = 0.0
        settled = False
        try:
            while not halt.is_set():
                wake.clear()
                if block._inbox:
                    handle_messages(block)
                if self.done:
                    self.visits += 1
                    wake.wait()
                    continue
                n_max = run.max_items
                if self.run.draining.is_set() and not block.in_sig:
                    n_max = run.drain_limit(self)
                    if n_max is None:
                        continue  # the drain target was not set yet, or the run halts
                    if n_max <= 0:
                        self.end()
                        continue
                detail.status = "busy"
                produced = executor.visit(n_max)
                self.visits += 1
                status = detail.status
                if run.draining.is_set() and not block.in_sig and status in ("zero", "waiting"):
                    produced = WORK_DONE  # a draining source with nothing to give ends where it is
                if detail.wanted:  # a neighbour waits for the outcome of this visit
                    detail.wanted = False
                    self.notify()
                if produced == WORK_DONE:
                    self.end()
                elif produced > 0:
                    run.epoch += 1
                    backoff = 0.0
                    settled = False
                    self.notify()
                else:
                    if not settled:
                        settled = True
                        self.notify()  # a neighbour may take a partial batch now
                    if status == "waiting" or (status == "zero" and block.waits_for_external_input):
                        # the outside world (a socket, the clock) will not wake this thread: poll
                        backoff = min(_MAX_BACKOFF_S, backoff * 2 or 1e-5)
                        wake.wait(backoff)
                    else:
                        wake.wait()  # a neighbour's progress, a message or the end of the run wakes it
        except BaseException as exc:  # noqa: BLE001 - handed to the coordinator, re-raised from wait()
            run.fail(exc)

    def end(self) -> None:
        self.done = True
        self.executor.detail.status = "done"
        retire(self.block)
        self.run.epoch += 1
        self.notify()
        self.run.changed.set()

    def notify(self) -> None:
        for other in self.neighbours:
            other.wake.set()


class _ThreadedRun:
    """The coordinator of one threaded run (in the flowgraph's run thread)."""

    def __init__(self, run: Run):
        self.spec = run
        self.max_items = run.max_items
        self.halt = threading.Event()
        self.changed = threading.Event()
        self.draining = threading.Event()
        self.epoch = 0
        self.error: BaseException | None = None
        self._error_lock = threading.Lock()
        self.threads = [_BlockThread(self, ex) for ex in run.executors]
        by_block = {id(t.block): t for t in self.threads}
        for t in self.threads:
            near = [r.buffer for r in t.executor.readers] + t.executor.buffers
            for other in self.threads:
                if other is not t and any(
                        b in near for b in [r.buffer for r in other.executor.readers] + other.executor.buffers):
                    t.neighbours.append(other)
            t.executor.detail.wake = t.wake.set
        self.by_block = by_block
        self._drain_lock = threading.Condition()
        self._drain_at: dict | None = None
        self._arrived: set[int] = set()

    def fail(self, exc: BaseException) -> None:
        with self._error_lock:
            if self.error is None:
                self.error = exc
        self.halt.set()
        self.changed.set()

    # ------------------------------------------------------------------ drain
    def drain_limit(self, thread: _BlockThread) -> int | None:
        """How many items a live source may still write: it waits until every live source has
        paused here, so that the common end count is read while none is inside work()."""
        with self._drain_lock:
            self._arrived.add(id(thread.block))
            self._drain_lock.notify_all()
            while self._drain_at is None and not self.halt.is_set():
                self._drain_lock.wait(0.05)
            if self._drain_at is None:
                return None
            target = self._drain_at.get(id(thread.block), 0)
        return min(self.max_items, target - thread.block.detail.writers[0].buffer.nwritten)

    def _settle_drain(self) -> None:
        sources = [t for t in self.threads if not t.done and not t.block.in_sig and _streaming(t.block)]
        with self._drain_lock:
            if self._drain_at is not None:
                return
            if all(id(t.block) in self._arrived or t.done for t in sources):
                self._drain_at = drain_counts([t.block for t in sources if not t.done])
                self._drain_lock.notify_all()

    # ------------------------------------------------------------------ the run
    def main(self) -> None:
        spec = self.spec
        sinks = [self.by_block[id(b)] for b in _sinks(spec.order)]
        for t in self.threads:
            t.thread.start()
        quiet = 0
        try:
            while self.error is None and not spec.stop_event.is_set():
                if all(t.done for t in sinks):
                    break
                if spec.drain_event.is_set() and not self.draining.is_set():
                    self.draining.set()
                    for t in self.threads:
                        t.wake.set()
                if self.draining.is_set():
                    self._settle_drain()
                self.changed.wait(0.005 if self.draining.is_set() else 0.05)
                self.changed.clear()
                quiet = quiet + 1 if self._quiet() else 0
                if quiet >= _STUCK_ROUNDS and self.error is None:
                    done = {id(t.block): t.done for t in self.threads}
                    self.fail(BlockError(spec.stuck_message(done)))
        finally:
            self.halt.set()
            for t in self.threads:
                t.wake.set()
            for t in self.threads:
                t.thread.join()
        if self.error is not None:
            raise self.error

    def _live(self) -> list[_BlockThread]:
        return [t for t in self.threads if not t.done]

    def _quiet(self) -> bool:
        """Whether no block can move and none waits for the outside: every live block found
        nothing to do, and after waking all of them once more nothing moved."""
        def settled() -> bool:
            return all(t.executor.detail.status in SETTLED and t.executor.detail.status != "waiting"
                       and not t.block.waits_for_external_input and not t.wake.is_set() for t in self._live())

        if self.draining.is_set() or not settled():
            return False
        epoch = self.epoch
        visits = {id(t): t.visits for t in self._live()}
        for t in self._live():
            t.wake.set()
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline and self.error is None:
            if all(t.visits > visits.get(id(t), -1) or t.done for t in self.threads if id(t) in visits):
                break
            time.sleep(1e-4)
        else:
            return False
        return self.epoch == epoch and settled()


class ThreadedScheduler:
    """A thread per block over ring buffers; see the module docstring."""

    name = "threaded"
    buffer_type = RingBuffer
    patient = True

    def run(self, run: Run) -> None:
        _ThreadedRun(run).main()


#: The schedulers a `Flowgraph` can use, by name.
SCHEDULERS: dict[str, type] = {"single": SingleThreadScheduler, "threaded": ThreadedScheduler}
