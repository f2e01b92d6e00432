"""ZeroMQ stream blocks, wire-compatible with GNU Radio 3.10's gr-zeromq.

=================  ============================  =================================
block              ZeroMQ socket                 gr-zeromq counterpart
=================  ============================  =================================
`PushSink`         PUSH (binds by default)       ``zeromq.push_sink``
`PullSource`       PULL (connects by default)    ``zeromq.pull_source``
`PubSink`          XPUB (binds by default)       ``zeromq.pub_sink``
`SubSource`        SUB (connects by default)     ``zeromq.sub_source``
=================  ============================  =================================

Parameters are the ones GNU Radio users know: ``address``, ``timeout`` (ms), ``hwm``
(high-water mark in messages, -1 = ZeroMQ's default of 1000), ``pass_tags``, ``key``
(PUB/SUB), ``drop_on_hwm`` (PUB), ``bind``.  GNU Radio's ``itemsize, vlen`` become the
port's numpy ``dtype`` and ``item_shape`` (a (64, 256) complex64 frame is one item).
Messages are byte-compatible with gr-zeromq (:mod:`isacblocks.zmq.wire`): with
``pass_tags`` every message is the tag header followed by the payload in one frame, and
a PUB ``key`` is sent as a frame of its own before it.

Behaviour, and where it differs from GNU Radio:

* **Binding.**  Sinks bind and sources connect by default, both configurable.  The
  socket is opened when the block is built, so ``tcp://127.0.0.1:0`` (or ``ipc://*``)
  binds a free port at once and `endpoint` names it; `stop()` closes it and a later
  `start()` binds the same endpoint again.
* **Batching.**  A sink sends all items of one work() call in one message, or at most
  ``max_items_per_message`` items per message.  ``start_tags`` (a dict, with
  ``pass_tags``) are sent as tags on the first item of a run: stream metadata such as
  the sender's configuration.
* **Sources never hold the scheduler long.**  The flowgraph runs every block in one
  thread, so a source waits at most ``timeout`` ms for a message (GNU Radio's default is
  100 ms) and returns 0 items when none came; the scheduler then backs off and stays
  responsive to `Flowgraph.stop()`.
* **End of stream.**  At `stop()` a sink sends an end-of-stream message (``eos=True``):
  with ``pass_tags``, a header with no items and one tag of key `EOS_KEY` (``"eos"``);
  without, an empty message.  A source receiving it ends its stream (WORK_DONE) after
  the items before it.  GNU Radio receivers accept both forms as zero items.  The end of
  stream queues behind every message sent before it: while a receiver is connected the
  sink waits for room, with none connected it gives up after ``timeout`` ms; then it
  waits until the end of stream has left the socket -- all within ``linger`` ms
  (default 500; -1: no limit, `abort()` gives up) -- and closes the socket with
  ZMQ_LINGER 0; its own context is terminated.  Give `Flowgraph.stop()` a timeout above
  ``linger``.  (With several PULL peers the end of stream reaches only one of them, as
  PUSH load-balances.)  `PushSink.peers` counts connected receivers.
* **PUSH never drops.**  Like gr-zeromq, work() waits up to ``timeout`` ms for the
  socket to accept a message (a peer connected and below its high-water mark) and
  otherwise returns 0: the items stay upstream.  While no receiver is connected, a bound
  PUSH sink holds everything; a restarted receiver continues the stream.  Messages
  already handed to a receiver that is then killed (its queue and the kernel's socket
  buffers) are lost -- ZeroMQ has no end-to-end acknowledgement; the ``seq`` tags and the
  header offsets make such a gap visible (`PullSource.missed_items`).
* **PUB drops are counted, never silent** (GNU Radio issue #6192).  The socket is an XPUB
  with ZMQ_XPUB_NODROP, so reaching the high-water mark is reported to the sender instead
  of silently discarding the message for the slow subscriber.  With ``drop_on_hwm=True``
  (default) the message is then dropped *for every subscriber* and counted in `dropped`
  / `dropped_items`, with a `ZmqDropWarning` at stop(); with ``drop_on_hwm=False`` the
  sink waits up to ``timeout`` ms and otherwise holds the items (back-pressure).  XPUB is
  wire-identical to PUB for subscribers; it also lets the sink count its `subscribers`
  and `wait_for_subscribers()` before sending (PUB/SUB's "slow joiner").  Messages
  published while nobody subscribes go nowhere, as with any PUB socket.
* **Receiving.**  A source receives with zero copy (the payload is viewed in place with
  `items_from_payload`) and copies items once, into the flowgraph's buffer.  Received
  tags are rebased onto the source's own item count, as gr-zeromq does.  With
  ``pass_tags`` the header's item offsets also reveal items the sender sent but this
  source never saw (PUB drops, a lost connection): they are counted in `missed_items`.
* **Malformed messages** (bad header, truncated tags or payload, a size that is not a
  whole number of items, an unknown PMT type, a wrong frame count) are counted in
  `malformed`, described in `last_error`, logged once, and skipped; the source keeps
  running.  A ``pass_tags`` mismatch between sender and receiver is recognised and named
  as such (`pass_tags_mismatch`) instead of GNU Radio's "Incompatible vector sizes".

Zero-copy sends: the flowgraph reuses its buffers as soon as work() returns, so a
zero-copy send (pyzmq ``copy=False``) of an input view must be tracked
(`zmq.MessageTracker`) and waited for before work() returns.  ``copy_mode="track"`` does
that; it cannot carry ``pass_tags`` (gr-zeromq wants header and payload in one frame, which
needs a copy) and falls back to copying then.  ``copy_mode="copy"`` (default) copies each
message once into a recycled send buffer that is handed to ZeroMQ without a second copy
(copying into fresh memory instead -- pyzmq's ``copy=True`` -- also pays the page faults
and was ~1.5x slower).  Measured on loopback (2 cores shared with other jobs, so
noisy), (64, 256) complex64 frames, 8 or 64 frames per message, PUSH/PULL and PUB/SUB, one
or two processes: "track" moves 1.3-2.4 GB/s, "copy" 0.7-1.7 GB/s (with or without
tags).  "copy"
stays the default because "track" holds work() until ZeroMQ has written each message to
the kernel: a receiver that stops reading then stalls the whole flowgraph (only `abort()`
frees it), while "copy" returns after `timeout` ms with the items kept upstream.

Use one block from one thread (the scheduler's); `wait_for_subscribers`, `close` and
the counters may be used from another thread.
"""

from __future__ import annotations

import logging
import threading
import time
import warnings
import weakref
from typing import Any

import numpy as np
import zmq
from zmq.utils.monitor import recv_monitor_message

from ..core import WORK_DONE, SinkBlock, SourceBlock, port
from ..core.tags import Tag
from ..errors import BlockError, ConfigError
from ..validation import is_integer
from .wire import (HEADER_MAGIC, HEADER_VERSION, WireFormatError, decode_header, decode_message, encode_header,
                   items_from_payload, rebase_tags, split_pub_frames)

__all__ = ["EOS_KEY", "PubSink", "PullSource", "PushSink", "SubSource", "ZmqDropWarning", "ZmqWarning"]

#: Key of the end-of-stream tag a sink sends at stop() (with ``pass_tags``).
EOS_KEY = "eos"

_HEADER_PREFIX = HEADER_MAGIC.to_bytes(2, "little") + bytes([HEADER_VERSION])
_log = logging.getLogger(__name__)


class _BufferPool:
    """Send buffers reused once ZeroMQ has released them (tracked zero-copy frames).

    Copying a message into a recycled buffer costs a memcpy; copying it into freshly
    allocated memory (what ``copy=True`` does) also pays a page fault per 4 KiB, which
    on loopback halves the throughput of large messages.
    """

    def __init__(self, keep: int = 8):
        self._keep = keep
        self._free: list[np.ndarray] = []
        self._busy: list[tuple[np.ndarray, Any]] = []

    def get(self, nbytes: int) -> np.ndarray:
        """A writable buffer of at least `nbytes` (sliced to `nbytes`)."""
        if self._busy:
            self._free.extend(buf for buf, tracker in self._busy if tracker.done)
            self._busy = [entry for entry in self._busy if not entry[1].done]
            del self._free[:-self._keep]
        for index, buf in enumerate(self._free):
            if buf.nbytes >= nbytes:
                return self._free.pop(index)[:nbytes]
        return np.empty(-(-nbytes // 65536) * 65536, dtype=np.uint8)[:nbytes]

    def frame(self, view: np.ndarray) -> zmq.Frame:
        """A zero-copy frame of `view` (from `get`); the buffer returns to the pool once released."""
        frame = zmq.Frame(view, track=True, copy=False)
        self._busy.append((view.base if view.base is not None else view, frame.tracker))
        return frame

    def clear(self) -> None:
        self._free.clear()
        self._busy.clear()


class ZmqWarning(RuntimeWarning):
    """Something a ZeroMQ block could not do as asked (e.g. end of stream not delivered)."""


class ZmqDropWarning(ZmqWarning):
    """A PUB sink dropped messages at its high-water mark."""


#: Outcomes of one send: queued, held upstream (not queued, try again), dropped (counted).
_QUEUED, _HELD, _DROPPED = "queued", "held", "dropped"


def _release(state: dict, linger: int = 0) -> None:
    """Close the socket and terminate an owned context (also the finaliser of a block)."""
    sock, ctx, monitor = state.pop("socket", None), state.pop("context", None), state.pop("monitor", None)
    if monitor is not None:
        if sock is not None and not sock.closed:
            sock.disable_monitor()
        monitor.close(linger=0)
    if sock is not None and not sock.closed:
        sock.close(linger=linger)
    if ctx is not None and state.get("own_context") and not ctx.closed:
        ctx.term()


def _key_bytes(key, owner: str) -> bytes:
    """A PUB/SUB key as bytes; only str (UTF-8) or bytes are keys (``bytes(5)`` would be five zero bytes)."""
    if isinstance(key, str):
        return key.encode()
    if isinstance(key, (bytes, bytearray, memoryview)):
        return bytes(key)
    raise ConfigError(f"{owner}: key = {key!r}: must be a str or bytes")


class _ZmqEndpoint:
    """Socket ownership shared by the four blocks: open, bind/connect, close."""

    _socket_type: int
    _direction: str  # "send" or "recv": which high-water mark `hwm` sets

    def _init_endpoint(self, address: str, timeout: int, hwm: int, bind: bool, context: zmq.Context | None) -> None:
        if not isinstance(address, str) or "://" not in address:
            raise ConfigError(f"{self.name}: address = {address!r}: expected 'tcp://host:port', 'ipc://path' "
                              "or 'inproc://name'")
        for label, value, low in (("timeout", timeout, 0), ("hwm", hwm, -1)):
            if not is_integer(value) or value < low:
                raise ConfigError(f"{self.name}: {label} = {value!r}: must be an integer >= {low}")
        self.address = address
        self.timeout = int(timeout)
        self.hwm = int(hwm)
        self.bind = bool(bind)
        self._context = context
        self._lock = threading.RLock()
        self._state: dict[str, Any] = {}
        self._endpoint: str | None = None
        self._finalizer = weakref.finalize(self, _release, self._state)
        self._open()

    @property
    def endpoint(self) -> str:
        """The bound endpoint (the real port of ``tcp://host:0``) or the connected address."""
        return self._endpoint or self.address

    @property
    def closed(self) -> bool:
        """True when the block holds no open socket (after stop() or close())."""
        sock = self._state.get("socket")
        return sock is None or sock.closed

    @property
    def _socket(self) -> zmq.Socket:
        return self._state["socket"]

    def _configure(self, sock: zmq.Socket) -> None:
        """Socket options of the block type (subclasses)."""

    def _open(self) -> None:
        with self._lock:
            if not self.closed:
                return
            own = self._context is None
            ctx = zmq.Context() if own else self._context
            sock = ctx.socket(self._socket_type)
            self._state.update(socket=sock, context=ctx, own_context=own)
            address = self._endpoint or self.address
            try:
                sock.setsockopt(zmq.LINGER, 0)
                if self.hwm >= 0:
                    sock.setsockopt(zmq.SNDHWM if self._direction == "send" else zmq.RCVHWM, self.hwm)
                self._configure(sock)
                if self.bind:
                    sock.bind(address)
                    self._endpoint = sock.getsockopt(zmq.LAST_ENDPOINT).decode()
                else:
                    sock.connect(address)
                    self._endpoint = address
            except zmq.ZMQError as exc:
                _release(self._state)
                raise ConfigError(f"{self.name}: cannot {'bind' if self.bind else 'connect'} "
                                  f"{address!r}: {exc}") from None

    def close(self, linger: int = 0) -> None:
        """Close the socket (ZMQ_LINGER `linger` ms, default 0) and terminate the block's own
        context; idempotent."""
        with self._lock:
            _release(self._state, linger)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --------------------------------------------------------------------------- sinks
class _ZmqSink(_ZmqEndpoint, SinkBlock):
    """Common part of `PushSink` and `PubSink`: batching, tag header, end of stream, linger."""

    _direction = "send"
    _key = b""

    def __init__(self, dtype, item_shape, address: str, timeout: int, pass_tags: bool, hwm: int, bind: bool,
                 max_items_per_message: int | None, eos: bool, linger: int, copy_mode: str,
                 start_tags: dict | None, context: zmq.Context | None, name: str | None):
        SinkBlock.__init__(self, in_sig=[port(dtype, item_shape)], name=name)
        if start_tags and not pass_tags:
            raise ConfigError(f"{self.name}: start_tags = {start_tags!r}: need pass_tags=True (tags travel in the "
                              "tag header)")
        self.start_tags = dict(start_tags or {})
        if max_items_per_message is not None and (not is_integer(max_items_per_message) or max_items_per_message < 1):
            raise ConfigError(f"{self.name}: max_items_per_message = {max_items_per_message!r}: must be an integer "
                              ">= 1 or None")
        if copy_mode not in ("copy", "track"):
            raise ConfigError(f"{self.name}: copy_mode = {copy_mode!r}: expected 'copy' or 'track'")
        if not is_integer(linger) or linger < -1:
            raise ConfigError(f"{self.name}: linger = {linger!r}: must be an integer >= -1 (ms; -1 waits forever)")
        self.pass_tags = bool(pass_tags)
        self.max_items_per_message = None if max_items_per_message is None else int(max_items_per_message)
        self.eos = bool(eos)
        self.linger = int(linger)
        self.copy_mode = copy_mode
        self._abort = threading.Event()
        self._pool = _BufferPool()
        self._reset_counters()
        self._init_endpoint(address, timeout, hwm, bind, context)

    def _reset_counters(self) -> None:
        self.items_sent = 0
        self.messages_sent = 0
        self.bytes_sent = 0
        self.dropped = 0
        self.dropped_items = 0
        self.eos_sent = False
        self._consumed = 0

    def stats(self) -> dict:
        """The counters, for reports."""
        return {"endpoint": self.endpoint, "items_sent": self.items_sent, "messages_sent": self.messages_sent,
                "bytes_sent": self.bytes_sent, "dropped": self.dropped, "dropped_items": self.dropped_items,
                "eos_sent": self.eos_sent}

    def abort(self) -> None:
        """Stop waiting for queued messages: a stop() in progress (or to come) closes at once."""
        self._abort.set()

    # -------------------------------------------------------------- per type
    def _writable(self, timeout_ms: int) -> bool:
        """Whether a message can be queued now (waiting up to `timeout_ms`)."""
        return True

    def _send_chunk(self, body, copy: bool, track: bool, eos: bool = False) -> tuple[str, Any]:
        """Queue one message: ``(outcome, tracker)`` with outcome `_QUEUED`, `_HELD` or `_DROPPED`."""
        raise TypeError(f"{type(self).__name__} does not define _send_chunk() (each socket type does)")

    def _poll_control(self) -> None:
        """Read control messages (XPUB subscriptions, PUSH connection events)."""

    def _wait_room(self) -> None:
        """Pause briefly before trying to queue the end of stream again."""
        self._abort.wait(0.02)

    # -------------------------------------------------------------- contract
    def start(self) -> None:
        self._abort.clear()
        self._reset_counters()
        self._open()

    def work(self, inputs, outputs):
        x = inputs[0]
        n = len(x)
        with self._lock:
            if self.closed:
                raise BlockError(f"block {self.name!r}: socket is closed (close() was called while running)")
            self._poll_control()
            if not self._writable(self.timeout):
                return 0
            base = self.nitems_read(0)
            step = self.max_items_per_message or n
            sent = 0
            trackers = []
            while sent < n:
                m = min(step, n - sent)
                chunk = x[sent:sent + m]
                body, copy, track = self._message(chunk, base + sent)
                outcome, tracker = self._send_chunk(body, copy, track)
                nbytes = len(body) if isinstance(body, zmq.Frame) else body.nbytes
                del body  # a pooled frame's tracker completes once only ZeroMQ held it
                if outcome == _HELD:  # not queued: the items stay upstream
                    break
                if outcome == _DROPPED:  # at the high-water mark (PUB)
                    self.dropped += 1
                    self.dropped_items += m
                    if self.dropped == 1:
                        _log.warning("%s: high-water mark (hwm=%d) reached, dropping messages", self.name, self.hwm)
                else:
                    if track:
                        trackers.append(tracker)
                    self.items_sent += m
                    self.messages_sent += 1
                    self.bytes_sent += nbytes
                sent += m
            for tracker in trackers:  # zero-copy views of our input: wait until ZeroMQ let go of them
                self._wait_tracker(tracker)
            self._consumed += sent
            return sent

    def _message(self, chunk: np.ndarray, offset: int):
        """The message body for `chunk` (items at absolute `offset`), and how to hand it to pyzmq:
        ``(body, copy, track)``."""
        if self.copy_mode == "track" and not self.pass_tags:
            return chunk, False, True  # zero-copy of the flowgraph's buffer, waited for in work()
        header = b""
        if self.pass_tags:
            tags = self.get_tags_in_range(0, offset, offset + len(chunk))
            if offset == 0 and self.start_tags:
                tags = [Tag(0, key, value, self.name) for key, value in self.start_tags.items()] + tags
            header = encode_header(offset, tags)
        body = self._pool.get(len(header) + chunk.nbytes)
        body[:len(header)] = np.frombuffer(header, dtype=np.uint8)
        body[len(header):] = np.frombuffer(chunk, dtype=np.uint8)
        return self._pool.frame(body), False, False  # one copy, into a recycled buffer

    def stop(self) -> None:
        try:
            with self._lock:
                if self.closed:
                    return
                deadline = None if self.linger < 0 else time.monotonic() + self.linger / 1000
                tracker = self._send_eos(deadline) if self.eos else None
                if self.eos and tracker is None:
                    why = "no receiver connected" if self._peer_count() == 0 else \
                        f"the receiver did not take it within linger = {self.linger} ms"
                    warnings.warn(f"{self.name}: end of stream not sent to {self.endpoint} ({why})", ZmqWarning,
                                  stacklevel=2)
                if tracker is not None:
                    self._wait_flushed(tracker, deadline)
                elif not self.eos:
                    # nothing to track: let ZeroMQ deliver what is queued for up to `linger` ms
                    self.close(linger=self.linger)
        finally:
            self.close()
            self._pool.clear()
            if self.dropped:
                warnings.warn(f"{self.name}: dropped {self.dropped} message(s), {self.dropped_items} item(s), at the "
                              f"high-water mark (hwm={self.hwm}) of {self.endpoint}", ZmqDropWarning, stacklevel=2)

    def _peer_count(self) -> int:
        """Connected receivers (PUSH peers, PUB subscriptions)."""
        raise TypeError(f"{type(self).__name__} does not define _peer_count() (each socket type does)")

    def _send_eos(self, deadline: float | None):
        """Queue the end of stream behind everything queued; return its tracker, or None.

        While a receiver is connected it waits for room until `deadline` (None: until
        abort()); with none connected it gives up after `timeout` ms."""
        offset = self._consumed
        body = encode_header(offset, [Tag(offset, EOS_KEY, True, self.name)]) if self.pass_tags else b""
        alone_since = None
        while True:
            self._poll_control()
            if self._writable(0):
                frame = zmq.Frame(body, track=True, copy=False)
                outcome, tracker = self._send_chunk(frame, False, True, eos=True)
                del frame  # the tracker completes once ZeroMQ, not this reference, holds the message
                if outcome == _QUEUED:
                    self.eos_sent = True
                    return tracker
            now = time.monotonic()
            if self._abort.is_set() or (deadline is not None and now > deadline):
                return None
            if self._peer_count() == 0:
                alone_since = alone_since or now
                if now - alone_since >= self.timeout / 1000:
                    return None
            else:
                alone_since = None
            self._wait_room()

    def _wait_tracker(self, tracker) -> None:
        """Wait until ZeroMQ released a zero-copy message (abort() gives up: the flowgraph is stopping)."""
        while not tracker.done and not self._abort.is_set():
            try:
                tracker.wait(0.05)
            except zmq.NotDone:
                pass

    def _wait_flushed(self, tracker, deadline: float | None) -> None:
        """Wait until the end of stream (hence every message before it) has left the socket."""
        while not tracker.done:
            if self._abort.is_set() or (deadline is not None and time.monotonic() > deadline):
                warnings.warn(f"{self.name}: closing {self.endpoint} with messages still queued (linger "
                              f"{self.linger} ms elapsed or abort())", ZmqWarning, stacklevel=3)
                return
            try:
                tracker.wait(0.02)
            except zmq.NotDone:
                pass


class PushSink(_ZmqSink):
    """Send items on a PUSH socket (gr-zeromq ``push_sink``); binds `address` by default.

    work() waits up to `timeout` ms for a receiver that can take a message and otherwise
    returns 0, so nothing is ever dropped: items wait upstream while no PULL peer is
    connected or all peers are at their high-water mark.
    """

    _socket_type = zmq.PUSH
    _PEER_EVENTS = zmq.EVENT_ACCEPTED | zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED

    def __init__(self, dtype, item_shape=(), address: str = "tcp://127.0.0.1:0", timeout: int = 100,
                 pass_tags: bool = False, hwm: int = -1, bind: bool = True,
                 max_items_per_message: int | None = None, eos: bool = True, linger: int = 500,
                 copy_mode: str = "copy", start_tags: dict | None = None, context: zmq.Context | None = None,
                 name: str | None = None):
        super().__init__(dtype, item_shape, address, timeout, pass_tags, hwm, bind, max_items_per_message, eos,
                         linger, copy_mode, start_tags, context, name)

    def _configure(self, sock: zmq.Socket) -> None:
        self._peer_fds: set[int] = set()
        self._state["monitor"] = sock.get_monitor_socket(self._PEER_EVENTS)

    def _poll_control(self) -> None:
        monitor = self._state.get("monitor")
        while monitor is not None and monitor.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            event = recv_monitor_message(monitor, zmq.NOBLOCK)
            if event["event"] == zmq.EVENT_DISCONNECTED:
                self._peer_fds.discard(event["value"])
            else:
                self._peer_fds.add(event["value"])

    @property
    def peers(self) -> int:
        """Connected receivers (tcp and ipc connections; inproc peers are not seen)."""
        with self._lock:
            if not self.closed:
                self._poll_control()
            return len(self._peer_fds)

    def _peer_count(self) -> int:
        return self.peers

    def _wait_room(self) -> None:
        self._writable(20)

    def _writable(self, timeout_ms: int) -> bool:
        sock = self._socket
        if sock.getsockopt(zmq.EVENTS) & zmq.POLLOUT:
            return True
        return bool(timeout_ms and sock.poll(timeout_ms, zmq.POLLOUT))

    def _send_chunk(self, body, copy: bool, track: bool, eos: bool = False) -> tuple[str, Any]:
        try:
            return _QUEUED, self._socket.send(body, zmq.NOBLOCK, copy=copy, track=track)
        except zmq.Again:
            return _HELD, None


class PubSink(_ZmqSink):
    """Publish items on an XPUB socket, wire-compatible with gr-zeromq ``pub_sink``.

    `key` (optional) is sent as a first frame; subscribers filter on it.  At the
    high-water mark, ``drop_on_hwm=True`` drops the message for every subscriber and
    counts it (`dropped`, `dropped_items`, `ZmqDropWarning` at stop()), while
    ``drop_on_hwm=False`` waits up to `timeout` ms and otherwise holds the items
    upstream.  `subscribers` counts the subscriptions that match `key`.
    """

    _socket_type = zmq.XPUB

    def __init__(self, dtype, item_shape=(), address: str = "tcp://127.0.0.1:0", timeout: int = 100,
                 pass_tags: bool = False, hwm: int = -1, key: str | bytes = "", drop_on_hwm: bool = True,
                 bind: bool = True, max_items_per_message: int | None = None, eos: bool = True,
                 linger: int = 500, copy_mode: str = "copy", start_tags: dict | None = None,
                 context: zmq.Context | None = None, name: str | None = None):
        self._key = _key_bytes(key, name or type(self).__name__)
        self.key = key
        self.drop_on_hwm = bool(drop_on_hwm)
        self.subscribers = 0
        super().__init__(dtype, item_shape, address, timeout, pass_tags, hwm, bind, max_items_per_message, eos,
                         linger, copy_mode, start_tags, context, name)

    def _configure(self, sock: zmq.Socket) -> None:
        sock.setsockopt(zmq.XPUB_NODROP, 1)  # report the high-water mark instead of dropping silently
        sock.setsockopt(zmq.XPUB_VERBOSER, 1)  # every (un)subscription, to count subscribers
        sock.setsockopt(zmq.SNDTIMEO, self.timeout)
        self.subscribers = 0

    def _poll_control(self) -> None:
        sock = self._socket
        while sock.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            msg = sock.recv(zmq.NOBLOCK)
            if msg and self._key.startswith(msg[1:]):
                self.subscribers += 1 if msg[0] == 1 else -1 if msg[0] == 0 else 0

    def wait_for_subscribers(self, count: int = 1, timeout: float = 5.0) -> bool:
        """Wait until at least `count` subscriptions matching `key` arrived (at most `timeout` s)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if self.closed:
                    return False
                self._poll_control()
                if self.subscribers >= count:
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._socket.poll(min(remaining, 0.05) * 1000, zmq.POLLIN)

    def _peer_count(self) -> int:
        return self.subscribers

    def _send_chunk(self, body, copy: bool, track: bool, eos: bool = False) -> tuple[str, Any]:
        sock = self._socket
        hold = eos or not self.drop_on_hwm
        flags = 0 if hold and not eos else zmq.NOBLOCK  # blocking sends give up after SNDTIMEO = timeout
        try:
            if self._key:  # XPUB_NODROP checks the high-water mark on the first frame only
                sock.send(self._key, flags | zmq.SNDMORE)
            return _QUEUED, sock.send(body, flags, copy=copy, track=track)
        except zmq.Again:
            return (_HELD if hold else _DROPPED), None

    def stats(self) -> dict:
        return {**super().stats(), "subscribers": self.subscribers}


# ------------------------------------------------------------------------- sources
class _Pending:
    """The part of a received message not yet written to the output."""

    __slots__ = ("items", "tags", "first", "consumed")

    def __init__(self, items: np.ndarray, tags: list[Tag], first: int):
        self.items, self.tags, self.first, self.consumed = items, tags, first, 0


class _ZmqSource(_ZmqEndpoint, SourceBlock):
    """Common part of `PullSource` and `SubSource`: parsing, rebasing, end of stream, counters."""

    _direction = "recv"
    _key = b""

    def __init__(self, dtype, item_shape, address: str, timeout: int, pass_tags: bool, hwm: int, bind: bool,
                 eos: bool, context: zmq.Context | None, name: str | None):
        SourceBlock.__init__(self, out_sig=[port(dtype, item_shape)], name=name)
        spec = self.out_sig[0]
        self.pass_tags = bool(pass_tags)
        self.eos = bool(eos)
        self._item_bytes = spec.itemsize
        self._reset()
        self._init_endpoint(address, timeout, hwm, bind, context)

    def _configure(self, sock: zmq.Socket) -> None:
        sock.setsockopt(zmq.RCVTIMEO, self.timeout)

    def _reset(self) -> None:
        self._pending: _Pending | None = None
        self._eos_seen = False
        self._next_remote: int | None = None
        self.items_received = 0
        self.messages_received = 0
        self.malformed = 0
        self.pass_tags_mismatch = 0
        self.missed_items = 0
        self.first_remote_offset: int | None = None
        self.last_error: str | None = None

    @property
    def eos_received(self) -> bool:
        """Whether the end of stream arrived."""
        return self._eos_seen

    def stats(self) -> dict:
        """The counters, for reports."""
        return {"endpoint": self.endpoint, "items_received": self.items_received,
                "messages_received": self.messages_received, "malformed": self.malformed,
                "pass_tags_mismatch": self.pass_tags_mismatch, "missed_items": self.missed_items,
                "eos_received": self._eos_seen, "last_error": self.last_error}

    def start(self) -> None:
        self._reset()
        self._open()

    def stop(self) -> None:
        self.close()
        if self.malformed:
            warnings.warn(f"{self.name}: skipped {self.malformed} malformed message(s) from {self.endpoint}; "
                          f"last: {self.last_error}", ZmqWarning, stacklevel=2)

    def work(self, inputs, outputs):
        out = outputs[0]
        produced = 0
        wait = True
        with self._lock:
            if self.closed:
                raise BlockError(f"block {self.name!r}: socket is closed (close() was called while running)")
            while produced < len(out):
                if self._pending is not None:
                    produced += self._flush(out, produced)
                    continue
                if self._eos_seen or not self._receive(wait):
                    break
                wait = False
        if produced == 0 and self._eos_seen and self._pending is None:
            return WORK_DONE
        return produced

    # ------------------------------------------------------------ receiving
    def _receive(self, wait: bool) -> bool:
        """Take one message off the socket (waiting up to `timeout` ms if `wait`); False if none came."""
        try:
            frames = self._socket.recv_multipart(0 if wait else zmq.NOBLOCK, copy=False)
        except zmq.Again:
            return False
        try:
            self._accept(frames)
        except WireFormatError as exc:
            self._reject(str(exc))
        return True

    def _body(self, frames: list) -> Any:
        if len(frames) != 1:
            raise WireFormatError(f"expected a single-frame message, got {len(frames)} frames")
        return frames[0]

    def _reject(self, reason: str, mismatch: bool = False) -> None:
        self.malformed += 1
        self.pass_tags_mismatch += int(mismatch)
        self.last_error = reason
        if self.malformed == 1:
            _log.warning("%s: skipping malformed message from %s: %s", self.name, self.endpoint, reason)

    def _accept(self, frames: list) -> None:
        buf = memoryview(self._body(frames))
        if buf.nbytes == 0:  # the end of stream of a sink without pass_tags (GNU Radio: zero items)
            self.messages_received += 1
            self._eos_seen = self.eos
            return
        if self.pass_tags:
            if bytes(buf[:3]) != _HEADER_PREFIX and buf.nbytes % self._item_bytes == 0:
                self._reject(f"message of {buf.nbytes} bytes has no gr-zeromq tag header (first bytes "
                             f"{bytes(buf[:3]).hex()}, expected {_HEADER_PREFIX.hex()}) but is a whole number of "
                             f"{self._item_bytes}-byte items: the sender runs with pass_tags=False while this "
                             "source has pass_tags=True", mismatch=True)
                return
            first, tags, payload = decode_message(buf)
        else:
            header_tags = self._header_tags(buf) if bytes(buf[:3]) == _HEADER_PREFIX else None
            if header_tags is not None:
                self._reject(f"message of {buf.nbytes} bytes starts with a gr-zeromq tag header: the sender runs "
                             "with pass_tags=True while this source has pass_tags=False", mismatch=True)
                if self.eos and any(t.key == EOS_KEY for t in header_tags):
                    self._eos_seen = True  # end the stream rather than wait for data that cannot be read
                return
            first, tags, payload = None, [], buf
        items = items_from_payload(payload, self.out_sig[0].dtype, self.out_sig[0].shape)
        self.messages_received += 1
        if first is not None:
            if self._next_remote is not None and first > self._next_remote:
                self.missed_items += first - self._next_remote
            if self.first_remote_offset is None:
                self.first_remote_offset = first
            self._next_remote = first + len(items)
            if self.eos and any(t.key == EOS_KEY for t in tags):
                self._eos_seen = True
                tags = [t for t in tags if t.key != EOS_KEY]
        if len(items):
            self._pending = _Pending(items, tags, first if first is not None else 0)

    def _header_tags(self, buf: memoryview) -> list[Tag] | None:
        """The tags of a message that parses as a tag header followed by whole items (the
        sender has pass_tags), or None."""
        try:
            _, tags, size = decode_header(buf)
        except WireFormatError:
            return None
        return tags if (buf.nbytes - size) % self._item_bytes == 0 else None

    def _flush(self, out: np.ndarray, produced: int) -> int:
        p = self._pending
        n = min(len(out) - produced, len(p.items) - p.consumed)
        out[produced:produced + n] = p.items[p.consumed:p.consumed + n]
        if p.tags:
            local = self.nitems_written(0) + produced
            for tag in rebase_tags(p.tags, p.first + p.consumed, local, n):
                self.add_tag(0, tag.offset, tag.key, tag.value, tag.srcid)
        p.consumed += n
        self.items_received += n
        if p.consumed == len(p.items):
            self._pending = None
        return n


class PullSource(_ZmqSource):
    """Receive items from a PULL socket (gr-zeromq ``pull_source``); connects to `address` by default."""

    _socket_type = zmq.PULL

    def __init__(self, dtype, item_shape=(), address: str = "tcp://127.0.0.1:5555", timeout: int = 100,
                 pass_tags: bool = False, hwm: int = -1, bind: bool = False, eos: bool = True,
                 context: zmq.Context | None = None, name: str | None = None):
        super().__init__(dtype, item_shape, address, timeout, pass_tags, hwm, bind, eos, context, name)


class SubSource(_ZmqSource):
    """Receive items from a SUB socket (gr-zeromq ``sub_source``) subscribed to `key`;
    connects to `address` by default.  With a key, messages are ``[key, message]``."""

    _socket_type = zmq.SUB

    def __init__(self, dtype, item_shape=(), address: str = "tcp://127.0.0.1:5555", timeout: int = 100,
                 pass_tags: bool = False, hwm: int = -1, key: str | bytes = "", bind: bool = False,
                 eos: bool = True, context: zmq.Context | None = None, name: str | None = None):
        self._key = _key_bytes(key, name or type(self).__name__)
        self.key = key
        super().__init__(dtype, item_shape, address, timeout, pass_tags, hwm, bind, eos, context, name)

    def _configure(self, sock: zmq.Socket) -> None:
        super()._configure(sock)
        sock.setsockopt(zmq.SUBSCRIBE, self._key)

    def _body(self, frames: list) -> Any:
        return split_pub_frames(frames, self._key)
