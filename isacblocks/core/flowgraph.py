"""`Flowgraph`: connect blocks and run them (GNU Radio's top_block).

The scheduler is a single thread that visits the blocks in topological order.  Each
visit hands a block everything its inputs hold (up to ``max_items`` per call) and
as much output space as its buffers have, so batches flow through the graph in one
pass.  A block ends when it returns `WORK_DONE` (a source at the end of its stream, a
sink that has seen enough) or when its inputs are exhausted; the flowgraph ends when
every sink has ended.  An exception inside ``work()`` stops the run and is re-raised
from `run()` / `wait()` as a `BlockError` naming the block.
"""

from __future__ import annotations

import threading
import time

import numpy as np

from ..errors import BlockError, ConfigError, ConnectError
from ..validation import is_integer
from .block import WORK_DONE, Block
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
        self._error: BaseException | None = None
        self._running = False
        self.work_calls: dict[str, int] = {}

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
        order = self._topological_order()
        capacity = 2 * self.max_items
        buffers: dict[tuple[int, int], Buffer] = {}
        for block in order:
            block._writers = []
            for index, spec in enumerate(block.out_sig):
                buf = Buffer(spec, capacity)
                buffers[(id(block), index)] = buf
                block._writers.append(Writer(buf))
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
        """Start the scheduler in a background thread."""
        if self._running:
            raise BlockError(f"flowgraph {self.name!r} is already running")
        order = self._prepare()
        self._error = None
        self._stop_event.clear()
        self._running = True
        self.work_calls = {b.name: 0 for b in order}
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
            self._running = False

    def _loop(self, order: list[Block]) -> None:
        max_items = self.max_items
        streaming = [b for b in order if b.in_sig or b.out_sig]
        sinks = [b for b in streaming if not b.out_sig] or streaming
        done = {id(b): not (b.in_sig or b.out_sig) for b in order}
        plans = [_plan(block) for block in order]
        idle_sleep = 0.0
        while not self._stop_event.is_set():
            progress = False
            for plan in plans:
                block = plan[0]
                if block._inbox:
                    _handle_messages(block)
                    progress = True
                if done[id(block)]:
                    continue
                produced = self._visit(plan, max_items)
                if produced == WORK_DONE or (not produced and block._readers
                                             and any(r.exhausted for r in block._readers)):
                    done[id(block)] = True
                    _retire(block)
                    progress = True
                elif produced:
                    progress = True
            if all(done[id(b)] for b in sinks):
                return
            if progress:
                idle_sleep = 0.0
            else:
                # Nothing moved (e.g. a network source waiting): back off briefly, stay responsive to stop().
                idle_sleep = min(1e-3, idle_sleep * 2 or 1e-5)
                time.sleep(idle_sleep)

    def _visit(self, plan: tuple, max_items: int) -> int:
        block, readers, buffers, propagate = plan
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
            return 0
        inputs = [r.read_view(n) for r in readers]
        outputs = [buf.write_view(n) for buf in buffers]
        try:
            produced = block.work(inputs, outputs)
        except Exception as exc:
            raise _wrap(block, "work()", exc) from exc
        self.work_calls[block.name] += 1
        if produced == WORK_DONE:
            return WORK_DONE
        produced = int(produced)
        if not 0 <= produced <= n:
            raise BlockError(f"block {block.name!r}: work() returned {produced}, expected 0..{n} "
                             "(or WORK_DONE from a source)")
        if produced:
            if propagate:
                _propagate_tags(readers, buffers, produced)
            for r in readers:
                r.nread += produced
            for buf in buffers:
                buf.commit(produced)
        return produced


def _plan(block: Block) -> tuple:
    """What `Flowgraph._visit` needs of a block, looked up once per run."""
    buffers = [w.buffer for w in block._writers]
    propagate = bool(block._readers and buffers and block.tag_propagation == "all_to_all")
    return block, block._readers, buffers, propagate


def _handle_messages(block: Block) -> None:
    try:
        block.handle_messages()
    except Exception as exc:
        raise _wrap(block, "a message handler", exc) from exc


def _retire(block: Block) -> None:
    """A block that has ended: its outputs end, and it stops holding back its upstream buffers."""
    for w in block._writers:
        w.buffer.done = True
    for r in block._readers:
        r.buffer.readers = [x for x in r.buffer.readers if x is not r]


def _propagate_tags(readers, buffers, n: int) -> None:
    for r in readers:
        tags = r.buffer.tags_in_range(r.nread, r.nread + n, None)
        if not tags:
            continue
        for buf in buffers:
            shift = buf.nwritten - r.nread
            if shift:
                buf.add_sorted_tags([Tag(offset + shift, key, value, srcid) for offset, key, value, srcid in tags])
            else:
                buf.add_sorted_tags(tags)


def _wrap(block: Block, where: str, exc: BaseException) -> BlockError:
    if isinstance(exc, BlockError) and str(exc).startswith(f"block {block.name!r}"):
        return exc
    error = BlockError(f"block {block.name!r} ({type(block).__name__}) raised in {where}: "
                       f"{type(exc).__name__}: {exc}")
    error.block = block
    error.__cause__ = exc
    return error

