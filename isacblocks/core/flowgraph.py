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

import dataclasses
import threading
import time

import numpy as np

from ..errors import BlockError, ConfigError, ConnectError
from ..validation import is_integer
from .block import TAG_POLICIES, Block, DecimBlock, GeneralBlock, InterpBlock
from .buffer import Buffer, Writer
from .detail import BlockDetail
from .executor import BlockExecutor, RunBook, forecast, handle_messages, wrap_error
from .scheduler import SCHEDULERS, Run

#: The scheduler a `Flowgraph` uses unless told otherwise.  A thread per block: on the
#: machines this library targets (two or more cores) the blocks of a receiver chain --
#: whose kernels release the GIL -- overlap, and the results are those of "single".
DEFAULT_SCHEDULER = "threaded"


def _endpoint(item, direction: str) -> tuple[Block, int]:
    """``block`` or ``(block, port)`` with port an index or a port name."""
    block, port = (item if isinstance(item, tuple) else (item, 0))
    if not isinstance(block, Block):
        raise ConnectError(f"connect: expected a Block or (Block, port), got {item!r}")
    sig = block.in_sig if direction == "in" else block.out_sig
    if isinstance(port, str):
        names = [s.name for s in sig]
        if port not in names:
            raise ConnectError(f"block {block.name!r} has no {direction}put port {port!r}; it has {names}")
        port = names.index(port)
    if not 0 <= int(port) < len(sig):
        raise ConnectError(f"block {block.name!r} has no {direction}put port {port}: "
                           f"it has {len(sig)} {direction}put port(s)")
    return block, int(port)


#: Guards `Block.running_in` across flowgraphs started from several threads.
_CLAIM_LOCK = threading.Lock()


class Flowgraph:
    """A graph of blocks; holds strong references to every block it contains.

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
        self._scheduler = SCHEDULERS[scheduler]()
        self.max_items = int(max_items)
        self.name = name
        self.blocks: list[Block] = []
        self._edges: list[tuple[Block, int, Block, int]] = []
        self._msg_edges: list[tuple[Block, str, Block, str]] = []
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

    # -------------------------------------------------------------- building
    def _add(self, block: Block) -> None:
        if not any(b is block for b in self.blocks):
            names = {b.name for b in self.blocks}
            if block.name in names:
                raise ConnectError(f"flowgraph {self.name!r}: two different blocks are named {block.name!r}")
            self.blocks.append(block)

    def add(self, *blocks: Block) -> None:
        """Add blocks that have no stream connections (message-only blocks)."""
        for block in blocks:
            self._add(block)

    def connect(self, *endpoints) -> None:
        """Connect blocks: ``connect(a, b, c)`` chains port 0 to port 0, ``connect((a, 1), (b, 0))``
        connects explicit ports (indices or names)."""
        if len(endpoints) < 2:
            raise ConnectError("connect needs at least two endpoints")
        if self._running:
            raise ConnectError(f"flowgraph {self.name!r} is running; stop it before connecting")
        for src_item, dst_item in zip(endpoints[:-1], endpoints[1:]):
            src, src_port = _endpoint(src_item, "out")
            dst, dst_port = _endpoint(dst_item, "in")
            out_spec, in_spec = src.out_sig[src_port], dst.in_sig[dst_port]
            problems = []
            if np.dtype(out_spec.dtype) != np.dtype(in_spec.dtype):
                problems.append(f"dtype {np.dtype(out_spec.dtype).name} != {np.dtype(in_spec.dtype).name}")
            if tuple(out_spec.shape) != tuple(in_spec.shape):
                problems.append(f"item shape {tuple(out_spec.shape)} != {tuple(in_spec.shape)}")
            mismatch = _params_mismatch(src, dst)
            if mismatch:
                raise ConnectError(f"cannot connect {src.name}:{out_spec.name} to {dst.name}:{in_spec.name}: "
                                   f"the blocks were built from different configurations: {mismatch}")
            if problems:
                raise ConnectError(
                    f"cannot connect {src.name}:{out_spec.name} ({out_spec.describe()}) to "
                    f"{dst.name}:{in_spec.name} ({in_spec.describe()}): {'; '.join(problems)}")
            for _, _, d, p in self._edges:
                if d is dst and p == dst_port:
                    raise ConnectError(f"{dst.name}:{in_spec.name} is already connected; an input port "
                                       "takes one upstream (use fan-out from the output instead)")
            self._add(src)
            self._add(dst)
            self._edges.append((src, src_port, dst, dst_port))

    def msg_connect(self, src: Block, src_port: str, dst: Block, dst_port: str) -> None:
        """Subscribe input message port ``dst_port`` of `dst` to output message port ``src_port`` of `src`."""
        if src_port not in src.message_ports_out:
            raise ConnectError(f"block {src.name!r} has no output message port {src_port!r}; "
                               f"it has {list(src.message_ports_out)}")
        if dst_port not in dst.message_ports_in:
            raise ConnectError(f"block {dst.name!r} has no input message port {dst_port!r}; "
                               f"it has {list(dst.message_ports_in)}")
        self._add(src)
        self._add(dst)
        src._subscribe(src_port, dst, dst_port)
        self._msg_edges.append((src, src_port, dst, dst_port))

    # -------------------------------------------------------------- running
    def _prepare(self) -> list[Block]:
        """Check the graph, then give every block a fresh `BlockDetail` with new buffers and
        build the executors the scheduler drives."""
        for block in self.blocks:
            for index, spec in enumerate(block.in_sig):
                if not any(d is block and p == index for _, _, d, p in self._edges):
                    raise ConnectError(f"{block.name}:{spec.name} ({spec.describe()}) is not connected")
            for index, spec in enumerate(block.out_sig):
                if not any(s is block and p == index for s, p, _, _ in self._edges):
                    raise ConnectError(f"{block.name}:{spec.name} ({spec.describe()}) is not connected; "
                                       "connect it to a sink (e.g. NullSink) to discard its items")
            policy = block.tag_propagation
            if policy not in TAG_POLICIES:
                raise ConfigError(f"block {block.name!r}: tag_propagation = {policy!r}: expected one of "
                                  f"{list(TAG_POLICIES)}")
            if policy == "one_to_one" and block.in_sig and block.out_sig and \
                    len(block.in_sig) != len(block.out_sig):
                raise ConfigError(f"block {block.name!r}: tag_propagation 'one_to_one' needs as many inputs as "
                                  f"outputs; it has {len(block.in_sig)} and {len(block.out_sig)}")
        order = self._topological_order()
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
    def _topological_order(self) -> list[Block]:
        indegree = {id(b): 0 for b in self.blocks}
        for _, _, dst, _ in self._edges:
            indegree[id(dst)] += 1
        ready = [b for b in self.blocks if indegree[id(b)] == 0]
        order: list[Block] = []
        while ready:
            block = ready.pop(0)
            order.append(block)
            for src, _, dst, _ in self._edges:
                if src is block:
                    indegree[id(dst)] -= 1
                    if indegree[id(dst)] == 0:
                        ready.append(dst)
        if len(order) != len(self.blocks):
            cyclic = [b.name for b in self.blocks if b not in order]
            raise ConnectError(f"flowgraph {self.name!r} has a cycle through {cyclic}; streams must form a DAG "
                               "(use message ports for feedback)")
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
                      lambda done: self._stuck_message(order, done))
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

    def _stuck_message(self, order: list[Block], done: dict) -> str:
        lines = []
        for block in order:
            if done[id(block)] or not (block.in_sig or block.out_sig):
                continue
            state = []
            for spec, r in zip(block.in_sig, block.detail.readers):
                upstream, _ = self._owners[id(r.buffer)]
                ended = "ended" if r.buffer.done else "running"
                state.append(f"{spec.name}: {r.available()} item(s) waiting (upstream {upstream.name!r} {ended})")
            what = "work() returned 0" if block.detail.status == "zero" else "not called (no input or no output space)"
            detail = f"; {', '.join(state)}" if state else ""
            lines.append(f"{block.name!r} ({type(block).__name__}): {what}{detail}")
        stuck = [b.name for b in order if b.detail.status == "zero" and not done[id(b)]] or \
            [b.name for b in order if not done[id(b)] and (b.in_sig or b.out_sig)]
        return (f"flowgraph {self.name!r} is stuck: no block can make progress; stuck blocks {stuck}: "
                + "; ".join(lines)
                + ". A block that waits for something outside the flowgraph sets "
                  "returns WORK_WAITING (or sets waits_for_external_input = True); a block that needs more input "
                  "says so in forecast()")


def _same(a, b) -> bool:
    if a is b:
        return True
    try:
        return bool(a == b)
    except (TypeError, ValueError):  # e.g. arrays: elementwise comparison
        try:
            return bool(np.array_equal(a, b))
        except Exception:  # noqa: BLE001 - incomparable values differ
            return False


def _params_mismatch(src: Block, dst: Block) -> str | None:
    """Both blocks carry a dataclass `params` (e.g. SystemParams) and they differ: say where.

    Radio-agnostic: any dataclass attribute named `params` is compared field by field.
    """
    a, b = getattr(src, "params", None), getattr(dst, "params", None)
    if a is None or b is None or a is b:
        return None
    if not (dataclasses.is_dataclass(a) and not isinstance(a, type)
            and dataclasses.is_dataclass(b) and not isinstance(b, type)):
        return None
    if type(a) is not type(b):
        return f"{src.name}.params is a {type(a).__name__}, {dst.name}.params a {type(b).__name__}"
    for field in dataclasses.fields(a):
        va, vb = getattr(a, field.name), getattr(b, field.name)
        if not _same(va, vb):
            return (f"{type(a).__name__}.{field.name} = {va!r} ({src.name}) != {vb!r} ({dst.name}); build both "
                    "blocks from the same params")
    return None


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
