"""`Flowgraph`: connect blocks and run them (GNU Radio's top_block).

The scheduler is a single thread that visits the blocks in topological order.  Each
visit hands a block everything its inputs hold (up to ``max_items`` per call) and
as much output space as its buffers have, so batches flow through the graph in one
pass.  A block ends when it returns `WORK_DONE` (a source at the end of its stream, a
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
with no live block waiting for the outside (`Block.waits_for_external_input`), ends with
a `BlockError` naming the stuck blocks.  Each run starts from fresh state.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import warnings

import numpy as np

from ..errors import BlockError, ConfigError, ConnectError
from ..validation import is_integer
from .block import (
    TAG_POLICIES,
    WORK_CALLED_PRODUCE,
    WORK_DONE,
    Block,
    DecimBlock,
    GeneralBlock,
    InterpBlock,
    StreamWarning,
)
from .buffer import Buffer, Writer
from .tags import Tag


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


class Flowgraph:
    """A graph of blocks; holds strong references to every block it contains.

    Parameters
    ----------
    max_items:
        Most items handed to one work() call (the batch size).  Buffers hold
        ``2 * max_items`` items.
    """

    def __init__(self, max_items: int = 64, name: str = "flowgraph"):
        if not is_integer(max_items) or max_items < 1:
            raise ConfigError(f"Flowgraph.max_items = {max_items!r}: must be an integer >= 1")
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
        self.work_calls: dict[str, int] = {}
        #: Items never consumed in the last run, per block and input port name (see `StreamWarning`).
        self.dropped: dict[str, dict[str, int]] = {}
        self._drop_notes: list = []
        self._owners: dict = {}
        self._zero: list = []
        self._ended: list = []
        self._unequal: list = []

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
        buffers: dict[tuple[int, int], Buffer] = {}
        self._owners = {}
        for block in order:
            block._writers = []
            block._stop_event = self._stop_event
            for index, spec in enumerate(block.out_sig):
                buf = Buffer(spec, 2 * max(self.max_items, need.get((id(block), index), 1)))
                buffers[(id(block), index)] = buf
                block._writers.append(Writer(buf))
                self._owners[id(buf)] = (block, index)
        for block in order:
            block._readers = [None] * len(block.in_sig)
        for src, src_port, dst, dst_port in self._edges:
            dst._readers[dst_port] = buffers[(id(src), src_port)].add_reader()
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
        order = self._prepare()
        self._error = None
        self._stop_event.clear()
        self._drain_event.clear()
        self._running = True
        self.work_calls = {b.name: 0 for b in order}
        self.dropped = {}
        self._drop_notes = []
        self._unequal = []
        self._ended = []
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

    def wait(self, timeout: float | None = None, _reraise: bool = True) -> None:
        """Block until the flowgraph has finished; re-raise a block's error."""
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                if timeout is not None and not _reraise:
                    raise BlockError(f"flowgraph {self.name!r} did not stop within {timeout} s "
                                     "(a block is stuck inside work())")
                return
            self._thread = None
        if self._error is not None and _reraise:
            error, self._error = self._error, None
            raise error

    @property
    def running(self) -> bool:
        return self._running

    def _run_guarded(self, order: list[Block]) -> None:
        started: list[Block] = []
        try:
            for block in order:
                block.start()
                started.append(block)
            self._loop(order)
        except BaseException as exc:  # noqa: BLE001 - stored and re-raised from wait()
            self._error = exc
        finally:
            for block in started:
                try:
                    _handle_messages(block)
                    block.stop()
                except BaseException as exc:  # noqa: BLE001
                    if self._error is None:
                        self._error = _wrap(block, "stop()", exc)
            if self._error is None:
                try:
                    self._report_unconsumed()
                except BaseException as exc:  # noqa: BLE001 - e.g. warnings turned into errors
                    self._error = exc
            self._running = False

    def _loop(self, order: list[Block]) -> None:
        max_items = self.max_items
        streaming = [b for b in order if b.in_sig or b.out_sig]
        sinks = [b for b in streaming if not b.out_sig] or streaming
        done = {id(b): not (b.in_sig or b.out_sig) for b in order}
        plans = [_plan(block) for block in order]
        idle_sleep = 0.0
        quiet_rounds = 0
        self._zero = zero = []
        drain_at: dict | None = None  # source -> the item count it ends at, once drain() was called
        while not self._stop_event.is_set():
            progress = False
            zero.clear()
            t0 = time.perf_counter()
            if drain_at is None and self._drain_event.is_set():
                drain_at = _drain_counts([b for b in streaming if not b.in_sig and not done[id(b)]])
            for plan in plans:
                block = plan[1]
                if block._inbox:
                    _handle_messages(block)
                    progress = True
                if done[id(block)]:
                    continue
                n_max = max_items
                if drain_at is not None and id(block) in drain_at:
                    n_max = min(max_items, drain_at[id(block)] - block._writers[0].buffer.nwritten)
                    if n_max <= 0:
                        done[id(block)] = True
                        _retire(block)
                        progress = True
                        continue
                produced = plan[0](self, plan, n_max)
                if drain_at is not None and produced == 0 and zero and zero[-1] is block and id(block) in drain_at:
                    produced = WORK_DONE  # a draining source with nothing to give ends where it is
                if produced == WORK_DONE:
                    done[id(block)] = True
                    self._ended.append(block)
                    _retire(block)
                    progress = True
                elif produced:
                    progress = True
            if all(done[id(b)] for b in sinks):
                return
            if progress:
                idle_sleep = 0.0
                quiet_rounds = 0
                continue
            # Nothing moved.  If no live block waits for the outside and no work() call
            # blocked (a socket poll with a timeout does), nothing ever will: report it.
            if time.perf_counter() - t0 < _BLOCKING_CALL_S and not any(
                    b.waits_for_external_input and not done[id(b)] for b in order):
                quiet_rounds += 1
                if quiet_rounds >= _STUCK_ROUNDS:
                    raise BlockError(self._stuck_message(order, done))
            else:
                quiet_rounds = 0
            # e.g. a network source waiting: back off briefly, stay responsive to stop().
            idle_sleep = min(1e-3, idle_sleep * 2 or 1e-5)
            time.sleep(idle_sleep)

    def _stuck_message(self, order: list[Block], done: dict) -> str:
        called = {id(b) for b in self._zero}
        lines = []
        for block in order:
            if done[id(block)] or not (block.in_sig or block.out_sig):
                continue
            state = []
            for spec, r in zip(block.in_sig, block._readers):
                upstream, _ = self._owners[id(r.buffer)]
                ended = "ended" if r.buffer.done else "running"
                state.append(f"{spec.name}: {r.available()} item(s) waiting (upstream {upstream.name!r} {ended})")
            what = "work() returned 0" if id(block) in called else "not called (no input or no output space)"
            detail = f"; {', '.join(state)}" if state else ""
            lines.append(f"{block.name!r} ({type(block).__name__}): {what}{detail}")
        stuck = [b.name for b in order if id(b) in called] or \
            [b.name for b in order if not done[id(b)] and (b.in_sig or b.out_sig)]
        return (f"flowgraph {self.name!r} is stuck: no block can make progress; stuck blocks {stuck}: "
                + "; ".join(lines)
                + ". A block that waits for something outside the flowgraph sets "
                  "waits_for_external_input = True; a block that needs more input says so in forecast()")

    def _record_drop(self, block: Block, port: int, n: int, why: str) -> None:
        if n <= 0:
            return
        ports = self.dropped.setdefault(block.name, {})
        name = block.in_sig[port].name
        ports[name] = ports.get(name, 0) + n
        self._drop_notes.append((block, why))

    def _report_unconsumed(self) -> None:
        """At the end of a run: items left on the inputs of blocks that ended with their
        input streams (partial frames, unequal stream lengths), counted and warned about."""
        for block, readers in self._unequal:
            ended = next(i for i, r in enumerate(readers) if r.buffer.done and r.buffer.nwritten == r.nread)
            src = self._owners[id(readers[ended].buffer)][0].name
            for i, r in enumerate(readers):
                left = r.buffer.nwritten - r.nread
                if i == ended or left <= 0:
                    continue
                other = self._owners[id(r.buffer)][0].name
                self._record_drop(block, i, left, (
                    f"the streams into it have unequal lengths: {block.in_sig[ended].name} (from {src!r}) ended "
                    f"after {readers[ended].nread} item(s); {block.in_sig[i].name} (from {other!r}) brought "
                    f"{r.buffer.nwritten}"
                    f"{'' if r.buffer.done else ' by the end of the run (its stream had not ended)'}"))
        self._unequal = []
        notes = self._drop_notes
        for block, why in notes:
            counts = ", ".join(f"{port}: {n}" for port, n in self.dropped[block.name].items())
            warnings.warn(f"flowgraph {self.name!r}: block {block.name!r} ({type(block).__name__}) dropped "
                          f"input item(s) ({counts}): {why}", StreamWarning, stacklevel=3)
        self._drop_notes = []

    def _call_work(self, block: Block, inputs: list, outputs: list) -> int:
        """``block.work(inputs, outputs)``, counted, with a raise named after the block and the
        return value checked to be an integer (the range is the caller's rule)."""
        try:
            produced = block.work(inputs, outputs)
        except Exception as exc:
            raise _wrap(block, "work()", exc) from exc
        self.work_calls[block.name] += 1
        return produced if type(produced) is int else _as_count(block, produced)

    def _visit(self, plan: tuple, max_items: int) -> int:
        """One work() call of a sync block (consumed == produced on every port)."""
        _, block, readers, buffers, propagate = plan
        n = max_items
        for r in readers:
            available = r.buffer.nwritten - r.nread
            if available < n:
                n = available
        for buf in buffers:
            space = buf.space()
            if space < n:
                n = space
        if n <= 0:
            if readers and n == 0 and any(r.buffer.done and r.buffer.nwritten == r.nread for r in readers):
                self._end_sync(block, readers)
                return WORK_DONE
            return 0
        inputs = [r.read_view(n) for r in readers]
        outputs = [buf.write_view(n) for buf in buffers]
        produced = self._call_work(block, inputs, outputs)
        if not 0 < produced <= n:
            if produced == 0:
                self._zero.append(block)
                return 0
            if produced == WORK_DONE:
                return WORK_DONE
            raise BlockError(f"block {block.name!r}: work() returned {produced}, expected 0..{n} "
                             "(or WORK_DONE)")
        if propagate:
            _propagate_tags(readers, buffers, produced, propagate)
        for r in readers:
            r.nread += produced
        for buf in buffers:
            buf.commit(produced)
        return produced

    def _end_sync(self, block: Block, readers) -> None:
        """A sync block ends with its shortest input; the others' extra items are counted at the end."""
        if len(readers) > 1:
            self._unequal.append((block, list(readers)))

    def _end_short(self, block: Block, readers, needs: list[int]) -> int:
        """A rate-changing block whose input ended with fewer items than its next output needs."""
        for i, r in enumerate(readers):
            left = r.buffer.nwritten - r.nread
            self._record_drop(block, i, left, (
                f"its input ended with {left} item(s) on {block.in_sig[i].name}, fewer than the {needs[i]} "
                "it needs for its next output (a partial frame at the end of the stream)"))
        return WORK_DONE

    def _visit_fixed(self, plan: tuple, max_items: int) -> int:
        """One work() call of a `DecimBlock` / `InterpBlock`."""
        _, block, readers, buffers, policy = plan
        interp = getattr(block, "interpolation", 1)
        decim = getattr(block, "decimation", 1)
        cap = max(interp, max_items // interp * interp)
        avail = min(r.buffer.nwritten - r.nread for r in readers)
        groups = min(cap // interp, avail // decim)
        for buf in buffers:
            space = buf.space() // interp
            if space < groups:
                groups = space
        if groups <= 0:
            if avail < decim:
                short = [r for r in readers if r.buffer.nwritten - r.nread < decim]
                if any(r.buffer.done for r in short):
                    return self._end_short(block, readers, [decim] * len(readers))
            return 0
        n_in, n_out = groups * decim, groups * interp
        inputs = [r.read_view(n_in) for r in readers]
        outputs = [buf.write_view(n_out) for buf in buffers]
        produced = self._call_work(block, inputs, outputs)
        if produced == WORK_DONE:
            return WORK_DONE
        if not 0 <= produced <= n_out or produced % interp:
            rule = f"0..{n_out}" + (f", a multiple of interpolation = {interp}" if interp > 1 else "")
            raise BlockError(f"block {block.name!r}: work() returned {produced}, expected {rule} (or WORK_DONE)")
        if produced == 0:
            self._zero.append(block)
            return 0
        consumed = produced // interp * decim
        if policy:
            starts = [r.nread for r in readers]
            _propagate_rate(policy, readers, buffers, starts, [consumed] * len(readers),
                            interp, decim)
        for r in readers:
            r.nread += consumed
        for buf in buffers:
            buf.commit(produced)
        return produced

    def _visit_general(self, plan: tuple, max_items: int) -> int:
        """One general_work() call of a `GeneralBlock`."""
        _, block, readers, buffers, policy = plan
        om = block.output_multiple
        n = max(om, max_items // om * om)
        for buf in buffers:
            space = buf.space() // om * om
            if space < n:
                n = space
        if n <= 0:
            return 0
        avail = [r.buffer.nwritten - r.nread for r in readers]
        while True:
            needs = _forecast(block, n, len(readers))
            short = next((i for i, need in enumerate(needs) if need > avail[i]), None)
            if short is None:
                break
            if n > om:
                n = max(om, -(-(n // 2) // om) * om)
                continue
            r = readers[short]
            if r.buffer.done:
                return self._end_short(block, readers, needs)
            if needs[short] > r.buffer.capacity:
                raise BlockError(f"block {block.name!r}: forecast() asks for {needs[short]} items on "
                                 f"{block.in_sig[short].name} for {n} output item(s), more than its buffer holds "
                                 f"({r.buffer.capacity}); raise Flowgraph(max_items=...)")
            return 0
        if readers and all(r.buffer.done and not a for r, a in zip(readers, avail)):
            return WORK_DONE
        block._consumed = [0] * len(readers)
        block._produced = [None] * len(buffers)
        inputs = [r.read_view(a) for r, a in zip(readers, avail)]
        outputs = [buf.write_view(n) for buf in buffers]
        try:
            ret = block.general_work(inputs, outputs)
        except Exception as exc:
            raise _wrap(block, "general_work()", exc) from exc
        self.work_calls[block.name] += 1
        if type(ret) is not int:
            ret = _as_count(block, ret, "general_work()")
        consumed = block._consumed
        for i, c in enumerate(consumed):
            if not 0 <= c <= avail[i]:
                raise BlockError(f"block {block.name!r}: general_work() consumed {c} items of "
                                 f"{block.in_sig[i].name}, expected 0..{avail[i]} (the items it was given)")
        if ret == WORK_CALLED_PRODUCE:
            produced = [p or 0 for p in block._produced]
        elif ret == WORK_DONE:
            produced = [0] * len(buffers)
        elif ret >= 0:
            produced = [ret] * len(buffers)
        else:
            raise BlockError(f"block {block.name!r}: general_work() returned {ret}, expected 0..{n}, "
                             "WORK_CALLED_PRODUCE or WORK_DONE")
        for j, p in enumerate(produced):
            if not 0 <= p <= n:
                raise BlockError(f"block {block.name!r}: general_work() produced {p} items on "
                                 f"{block.out_sig[j].name}, expected 0..{n} (the output space it was given)")
        if policy and any(consumed):
            starts = [r.nread for r in readers]
            rate = block.relative_rate
            _propagate_rate(policy, readers, buffers, starts, consumed, rate.numerator, rate.denominator)
        for r, c in zip(readers, consumed):
            r.nread += c
        for buf, p in zip(buffers, produced):
            if p:
                buf.commit(p)
        if ret == WORK_DONE:
            return WORK_DONE
        if any(consumed) or any(produced):
            return 1
        self._zero.append(block)
        return 0


#: A round of the scheduler in which nothing moved and that took at least this long had a
#: work() call that blocked (waiting on a socket, a device): not a stuck graph.
_BLOCKING_CALL_S = 1e-3
#: Consecutive quick rounds without progress after which a flowgraph is reported stuck.
_STUCK_ROUNDS = 3


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


def _as_count(block: Block, value, where: str = "work()") -> int:
    """The slow path of the return-value check: numpy integers pass, anything else raises."""
    if isinstance(value, np.integer) and not isinstance(value, np.bool_):
        return int(value)
    raise BlockError(f"block {block.name!r}: {where} returned {value!r} ({type(value).__name__}); expected an int "
                     "count of items (or WORK_DONE)")


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
            return max(1, _forecast(block, block.output_multiple, len(block.in_sig))[port])
        except BlockError:
            raise
        except Exception as exc:
            raise _wrap(block, "forecast()", exc) from exc
    return 1


def _forecast(block: Block, n: int, ninputs: int) -> list[int]:
    needs = block.forecast(n, ninputs)
    try:
        needs = [int(x) for x in needs]
        ok = len(needs) == ninputs and all(x >= 0 for x in needs)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise BlockError(f"block {block.name!r}: forecast({n}, {ninputs}) returned {needs!r}; expected "
                         f"{ninputs} non-negative item count(s)")
    return needs


def _plan(block: Block) -> tuple:
    """What the scheduler's visit needs of a block, looked up once per run."""
    buffers = [w.buffer for w in block._writers]
    policy = block.tag_propagation if block._readers and buffers and block.tag_propagation != "none" else None
    if isinstance(block, GeneralBlock):
        return Flowgraph._visit_general, block, block._readers, buffers, policy
    if isinstance(block, (DecimBlock, InterpBlock)):
        return Flowgraph._visit_fixed, block, block._readers, buffers, policy
    return Flowgraph._visit, block, block._readers, buffers, policy


def _handle_messages(block: Block) -> None:
    try:
        block.handle_messages()
    except Exception as exc:
        raise _wrap(block, "a message handler", exc) from exc


def _drain_counts(sources: list[Block]) -> dict:
    """The item count each live source ends at when the flowgraph drains: the largest any has
    written (see `Flowgraph.drain`)."""
    target = max((b._writers[0].buffer.nwritten for b in sources), default=0)
    return {id(b): target for b in sources}


def _retire(block: Block) -> None:
    """A block that has ended: its outputs end, and it stops holding back its upstream buffers."""
    for w in block._writers:
        w.buffer.done = True
    for r in block._readers:
        r.buffer.readers = [x for x in r.buffer.readers if x is not r]


def _propagate_tags(readers, buffers, n: int, policy: str) -> None:
    for index, r in enumerate(readers):
        tags = r.buffer.tags_in_range(r.nread, r.nread + n, None)
        if not tags:
            continue
        targets = buffers if policy == "all_to_all" else buffers[index:index + 1]
        for buf in targets:
            shift = buf.nwritten - r.nread
            if shift:
                buf.add_sorted_tags([Tag(offset + shift, key, value, srcid) for offset, key, value, srcid in tags])
            else:
                buf.add_sorted_tags(tags)


def _propagate_rate(policy: str, readers, buffers, starts, counts, interp: int, decim: int) -> None:
    """Tags of the consumed items across a rate change, as GNU Radio's block_executor:
    offset ``o`` goes to ``floor(o * interp / decim + 1/2)`` (exact rational arithmetic)."""
    for index, r in enumerate(readers):
        if not counts[index]:
            continue
        tags = r.buffer.tags_in_range(starts[index], starts[index] + counts[index], None)
        if not tags:
            continue
        if interp != decim:
            two_d = 2 * decim
            tags = [Tag((2 * offset * interp + decim) // two_d, key, value, srcid)
                    for offset, key, value, srcid in tags]
        targets = buffers if policy == "all_to_all" else buffers[index:index + 1]
        for buf in targets:
            buf.add_sorted_tags(tags)


def _wrap(block: Block, where: str, exc: BaseException) -> BlockError:
    if isinstance(exc, BlockError) and str(exc).startswith(f"block {block.name!r}"):
        return exc
    error = BlockError(f"block {block.name!r} ({type(block).__name__}) raised in {where}: "
                       f"{type(exc).__name__}: {exc}")
    error.block = block
    error.__cause__ = exc
    return error

