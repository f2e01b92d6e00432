"""`Flowgraph`: connect blocks and run them (GNU Radio's top_block).

The flowgraph is the graph: blocks, stream and message connections, and their checks
(dtypes, item shapes, configurations, unconnected ports, cycles).  Running it is the
scheduler's job (`isacblocks.core.scheduler`): ``Flowgraph(scheduler="threaded")`` (the
default) runs a thread per block over ring buffers, so the blocks of a chain work at
once on different cores; ``scheduler="single"`` visits the blocks in topological order
in one thread.  Either hands a block up to ``max_items`` items per call, with the same
contract and the same errors.  A block ends when it returns `WORK_DONE` (a source at the end of its stream, a
sink that has seen enough) or when its inputs are exhausted; the flowgraph ends when
every sink has ended.  An exception inside ``work()`` stops the run and is re-raised
from `run()` / `wait()` as a `BlockError` naming the block.

Sync blocks get as many items on every port; `DecimBlock` / `InterpBlock` get ``n * D``
inputs for ``n`` outputs (``n`` inputs for ``n * I`` outputs); a `GeneralBlock` gets every
available input item once its `forecast` is met and says what it consumed.  Items that
reach a block but can never be consumed (a partial frame at the end of a stream, the
longer of two unequal streams into a sync block) are counted in `Flowgraph.dropped` and
reported with a `StreamWarning`.  A return value of work() that is not an int count
within the items offered raises `BlockError`.  A graph in which no block can progress,
with no live block waiting for the outside (a work() that returns `WORK_WAITING`, or
`Block.waits_for_external_input`), ends with a `BlockError` naming the stuck blocks.  Each
run starts from fresh state; `performance()` gives per-block counters of the last run.
"""

from __future__ import annotations

import threading
import time

from ..errors import BlockError, ConfigError, ConnectError
from ..validation import is_integer
from .block import Block, DecimBlock, GeneralBlock, InterpBlock
from .buffer import Buffer, Writer
from .detail import BlockDetail
from .executor import BlockExecutor, forecast, handle_messages, wrap_error
from .graph import Graph
from .report import RunBook, stuck_message
from .scheduler import SCHEDULERS, Run

#: The scheduler a `Flowgraph` uses unless told otherwise.  A thread per block: on the
#: machines this library targets (two or more cores) the blocks of a receiver chain --
#: whose kernels release the GIL -- overlap, and the results are those of "single".
DEFAULT_SCHEDULER = "threaded"


#: Guards `Block.running_in` across flowgraphs started from several threads.
_CLAIM_LOCK = threading.Lock()


class Flowgraph(Graph):
    """A graph of blocks (`Graph`) that runs; holds strong references to every block it contains.

    Parameters
    ----------
    max_items:
        Most items handed to one work() call (the batch size).  Buffers hold
        ``2 * max_items`` items.
    scheduler:
        ``"threaded"`` (default: a thread per block, see `isacblocks.core.scheduler`) or
        ``"single"`` (one thread visits the blocks in turn).
    """

    def __init__(self, max_items: int = 64, name: str = "flowgraph", scheduler: str | None = None):
        if not is_integer(max_items) or max_items < 1:
            raise ConfigError(f"Flowgraph.max_items = {max_items!r}: must be an integer >= 1")
        scheduler = DEFAULT_SCHEDULER if scheduler is None else scheduler
        if scheduler not in SCHEDULERS:
            raise ConfigError(f"Flowgraph.scheduler = {scheduler!r}: expected one of {sorted(SCHEDULERS)}")
        super().__init__(name)
        self._scheduler = SCHEDULERS[scheduler]()
        self.max_items = int(max_items)
        self._thread: threading.Thread | None = None
        self._stop_event = threading.Event()
        self._drain_event = threading.Event()
        self._error: BaseException | None = None
        self._running = False
        #: Items never consumed in the last run, per block and input port name (see `StreamWarning`).
        self.dropped: dict[str, dict[str, int]] = {}
        self._owners: dict = {}
        self._order: list[Block] = []
        self._executors: list[BlockExecutor] = []
        self._book = RunBook({})
        self._t_start: float | None = None
        self._wall_s = 0.0

    def _check_open(self) -> None:
        if self._running:
            raise ConnectError(f"flowgraph {self.name!r} is running; stop it before connecting")

    # -------------------------------------------------------------- running
    def _prepare(self) -> list[Block]:
        """Check the graph, then give every block a fresh `BlockDetail` with new buffers and
        build the executors the scheduler drives."""
        self.check_complete()
        order = self.topological_order()
        # Each buffer holds twice what one call may need: the batch, the writer's output
        # multiple (interpolation) and each reader's smallest input (decimation, forecast).
        need: dict[tuple[int, int], int] = {}
        for src, src_port, dst, dst_port in self._edges:
            key = (id(src), src_port)
            need[key] = max(need.get(key, 1), _output_multiple(src), _min_input(dst, dst_port))
        buffer_type = self._scheduler.buffer_type
        buffers: dict[tuple[int, int], Buffer] = {}
        self._owners = {}
        for block in order:
            writers = []
            for index, spec in enumerate(block.out_sig):
                buf = buffer_type(spec, 2 * max(self.max_items, need.get((id(block), index), 1)))
                buffers[(id(block), index)] = buf
                writers.append(Writer(buf))
                self._owners[id(buf)] = (block, index)
            block.detail = BlockDetail([None] * len(block.in_sig), writers, self._stop_event)
        upstream: dict[int, list] = {id(b): [None] * len(b.in_sig) for b in order}
        downstream: dict[int, list] = {id(b): [] for b in order}
        for src, src_port, dst, dst_port in self._edges:
            dst.detail.readers[dst_port] = buffers[(id(src), src_port)].add_reader()
            upstream[id(dst)][dst_port] = src.detail
            downstream[id(src)].append(dst.detail)
        self._book = RunBook(self._owners)
        patient = self._scheduler.patient
        self._executors = [BlockExecutor(b, self._book, patient, upstream[id(b)], downstream[id(b)]) for b in order]
        return order

    def run(self) -> None:
        """Run to completion in the calling thread; re-raise a block's error."""
        self.start(_threaded=False)
        self.wait()

    def start(self, _threaded: bool = True) -> None:
        """Start the scheduler in a background thread.

        Every run starts from fresh state: new buffers, item counters at 0, and each
        block's `start()` (which resets the block's own state).
        """
        if self._running:
            raise BlockError(f"flowgraph {self.name!r} is already running")
        self._claim_blocks()
        try:
            order = self._prepare()
        except BaseException:
            self._release_blocks()
            raise
        self._error = None
        self._stop_event.clear()
        self._drain_event.clear()
        self._running = True
        self._order = order
        self.dropped = {}
        if _threaded:
            self._thread = threading.Thread(target=self._run_guarded, args=(order,),
                                            name=f"isacblocks-{self.name}", daemon=True)
            self._thread.start()
        else:
            self._thread = None
            self._run_guarded(order)

    def stop(self, timeout: float = 1.0) -> None:
        """Ask the scheduler to stop after the current work() call and wait for it (at most `timeout` s)."""
        self._stop_event.set()
        self.wait(timeout=timeout, _reraise=False)

    def drain(self, timeout: float | None = None) -> None:
        """End the stream at its sources and let the rest of the flowgraph finish what is in
        flight, then wait for it (at most `timeout` s; None: until it has finished).

        Unlike `stop()`, nothing already produced is left in a buffer: every block downstream
        runs to the end of its input, and sinks end as at a natural end of stream (a
        network sink sends its end-of-stream marker after the last item).  The sources end
        at one common item count, the largest any of them has already written, so that the
        streams of a flowgraph whose sources run in step stay equally long; a source with
        nothing to give (its work() returns 0, e.g. a network source waiting) ends where it is.
        """
        self._drain_event.set()
        self.wait(timeout=timeout, _reraise=False)

    def wait(self, timeout: float | None = None, _reraise: bool = True) -> bool:
        """Block until the flowgraph has finished (at most `timeout` s; None: no limit); re-raise a
        block's error.  Returns True when the flowgraph has finished, False when it is still
        running after `timeout` (as `threading.Event.wait`)."""
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                if timeout is not None and not _reraise:
                    raise BlockError(f"flowgraph {self.name!r} did not stop within {timeout} s "
                                     "(a block is stuck inside work())")
                return False
            self._thread = None
        if self._error is not None and _reraise:
            error, self._error = self._error, None
            raise error
        return True

    @property
    def running(self) -> bool:
        return self._running

    def _run_guarded(self, order: list[Block]) -> None:
        started: list[Block] = []
        self._t_start = time.perf_counter()
        try:
            for block in order:
                block.start()
                started.append(block)
            run = Run(self.name, order, self._executors, self.max_items, self._stop_event, self._drain_event,
                      lambda done: stuck_message(self.name, order, self._owners, done))
            self._scheduler.run(run)
        except BaseException as exc:  # noqa: BLE001 - stored and re-raised from wait()
            self._error = exc
        finally:
            for block in started:
                try:
                    handle_messages(block)
                    block.stop()
                except BaseException as exc:  # noqa: BLE001
                    if self._error is None:
                        self._error = wrap_error(block, "stop()", exc)
            self._wall_s = time.perf_counter() - self._t_start
            self.dropped = self._book.dropped
            if self._error is None:
                try:
                    self._book.report(self.name)
                except BaseException as exc:  # noqa: BLE001 - e.g. warnings turned into errors
                    self._error = exc
            self._release_blocks()
            self._running = False

    def _claim_blocks(self) -> None:
        """Mark every block as running here; refuse one that runs in another flowgraph now (its
        buffers and counters belong to that run)."""
        with _CLAIM_LOCK:
            for block in self.blocks:
                if block.running_in is not None:
                    raise BlockError(f"flowgraph {self.name!r}: block {block.name!r} is running in flowgraph "
                                     f"{block.running_in!r}; a block runs in one flowgraph at a time (stop or "
                                     f"wait for {block.running_in!r} first, or make another block)")
            for block in self.blocks:
                block.running_in = self.name

    def _release_blocks(self) -> None:
        with _CLAIM_LOCK:
            for block in self.blocks:
                if block.running_in == self.name:
                    block.running_in = None

    # -------------------------------------------------------------- counters
    @property
    def work_calls(self) -> dict[str, int]:
        """work() calls per block name in the current (or last) run."""
        return {b.name: b.detail.calls for b in self.blocks}

    def performance(self) -> list[dict]:
        """Per-block performance counters of the current (or last) run, one row per block
        (GNU Radio's perf counters): ``block`` (name), ``type``, ``calls`` (work() calls),
        ``items_in`` / ``items_out`` (items consumed / produced, summed over ports), ``work_s``
        (seconds inside work()), ``work_share`` (of the run's wall time so far),
        ``items_per_s`` (items produced -- consumed, for a sink -- per second inside work()),
        and ``buffer_fill`` (mean fill of its output buffers when work() was called, 0..1; None
        for a sink).  The block whose ``work_share`` is largest limits the flowgraph; a full
        output buffer upstream of it says the same from the other side."""
        wall = self.wall_s
        rows = []
        for block in self._order or self.blocks:
            d = block.detail
            items = d.items_out if block.out_sig else d.items_in
            rows.append({"block": block.name, "type": type(block).__name__, "calls": d.calls,
                         "items_in": d.items_in, "items_out": d.items_out, "work_s": d.work_s,
                         "work_share": d.work_s / wall if wall > 0 else 0.0,
                         "items_per_s": items / d.work_s if d.work_s > 0 else None,
                         "buffer_fill": d.buffer_fill()})
        return rows

    @property
    def wall_s(self) -> float:
        """Wall time of the current run so far, or of the last run (0 before any)."""
        if self._running and self._t_start is not None:
            return time.perf_counter() - self._t_start
        return self._wall_s

    @property
    def scheduler(self) -> str:
        """The scheduler's name ("single" or "threaded")."""
        return self._scheduler.name


def _output_multiple(block: Block) -> int:
    if isinstance(block, InterpBlock):
        return block.interpolation
    if isinstance(block, GeneralBlock):
        return block.output_multiple
    return 1


def _min_input(block: Block, port: int) -> int:
    if isinstance(block, DecimBlock):
        return block.decimation
    if isinstance(block, GeneralBlock):
        try:
            return max(1, forecast(block, block.output_multiple, len(block.in_sig))[port])
        except BlockError:
            raise
        except Exception as exc:
            raise wrap_error(block, "forecast()", exc) from exc
    return 1
