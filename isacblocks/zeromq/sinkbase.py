"""What `PushSink` and `PubSink` share (`ZmqSinkBase`): batching within the wire limits, the tag
header, the sequence and end-of-stream tags, the end of stream at stop(), linger, and the
recycled send buffers (`SendBufferPool`).

Each socket type defines how a message is queued (`ZmqSinkBase._send_chunk`: `QUEUED`, `HELD`
upstream or `DROPPED` and counted), when it can be (`_writable`), its control messages
(`_poll_control`) and its receivers (`_peer_count`).
"""

from __future__ import annotations

import logging
import threading
import time
import warnings
from typing import Any

import numpy as np
import zmq

from ..core import WORK_WAITING, SinkBlock, port
from ..core.tags import Tag
from ..errors import BlockError, ConfigError
from ..validation import is_integer
from . import wire
from .endpoint import (
    EOS_KEY,
    SEQ_KEY,
    LinkIdleError,
    _ZmqEndpoint,
    check_seconds,
)
from .seqtags import SeqLayout, SeqRecords
from .warning import ZmqDropWarning, ZmqWarning
from .wire import HEADER_SIZE, WireFormatError, WireLimitError, encode_header

__all__ = ["DROPPED", "HELD", "QUEUED", "SendBufferPool", "ZmqSinkBase"]

_log = logging.getLogger("isacblocks.zeromq")


class SendBufferPool:
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


#: Outcomes of one send: queued, held upstream (not queued, try again), dropped (counted).
QUEUED, HELD, DROPPED = "queued", "held", "dropped"


class ZmqSinkBase(_ZmqEndpoint, SinkBlock):
    """Common part of `PushSink` and `PubSink`: batching, tag header, end of stream, linger."""

    _direction = "send"
    _key = b""
    #: work() returns 0 while it waits for a receiver in another process (not a stall).
    waits_for_external_input = True

    def __init__(self, dtype, item_shape, address: str, timeout: int, pass_tags: bool, hwm: int, bind: bool,
                 max_items_per_message: int | None, eos: bool, linger: int, copy_mode: str,
                 start_tags: dict | None, context: zmq.Context | None, name: str | None,
                 idle_timeout: float | None = None, stream_id: str | None = None,
                 stream_length: int | None = None, curve=None):
        SinkBlock.__init__(self, in_sig=[port(dtype, item_shape)], name=name)
        item_bytes = self.in_sig[0].itemsize
        #: Most items of one message (`wire.MAX_MESSAGE_BYTES`, less the fixed header).
        self._items_cap = (wire.MAX_MESSAGE_BYTES - HEADER_SIZE) // item_bytes
        if self._items_cap < 1:
            raise ConfigError(f"{self.name}: item_shape = {self.in_sig[0].shape!r}: one item of "
                              f"{self.in_sig[0].describe()} takes {item_bytes} bytes, more than a message may hold "
                              f"(MAX_MESSAGE_BYTES = {wire.MAX_MESSAGE_BYTES})")
        for label, value in (("start_tags", start_tags), ("stream_id", stream_id), ("stream_length", stream_length)):
            if value is not None and value != {} and not pass_tags:
                raise ConfigError(f"{self.name}: {label} = {value!r}: need pass_tags=True (tags travel in the "
                                  "tag header)")
        if stream_id is not None and (not isinstance(stream_id, str) or not stream_id):
            raise ConfigError(f"{self.name}: stream_id = {stream_id!r}: must be a non-empty str")
        if stream_length is not None and (not is_integer(stream_length) or stream_length < 1):
            raise ConfigError(f"{self.name}: stream_length = {stream_length!r}: must be an integer >= 1 or None")
        self.start_tags = dict(start_tags or {})
        for key, value in self.start_tags.items():  # found now, not at the first message
            try:
                encode_header(0, [Tag(0, key, value, self.name)])
            except WireFormatError as exc:
                raise ConfigError(f"{self.name}: start_tags[{key!r}]: {exc}") from None
        try:
            size = len(encode_header(0, [Tag(0, key, value, self.name) for key, value in self.start_tags.items()]))
            if size + item_bytes > wire.MAX_MESSAGE_BYTES:
                raise WireLimitError(f"with the first item the message takes {size + item_bytes} bytes, more than "
                                     f"MAX_MESSAGE_BYTES = {wire.MAX_MESSAGE_BYTES}")
        except WireFormatError as exc:
            raise ConfigError(f"{self.name}: start_tags (all {len(self.start_tags)} together): {exc}") from None
        self.idle_timeout = check_seconds(self.name, "idle_timeout", idle_timeout)
        self.stream_id = stream_id
        if stream_id is not None:
            try:
                self._seq_layout = SeqLayout(stream_id, self.name, SEQ_KEY)
            except WireFormatError as exc:
                raise ConfigError(f"{self.name}: stream_id = {stream_id!r}: {exc}") from None
        self.stream_length = None if stream_length is None else int(stream_length)
        if max_items_per_message is not None and (not is_integer(max_items_per_message) or max_items_per_message < 1):
            raise ConfigError(f"{self.name}: max_items_per_message = {max_items_per_message!r}: must be an integer "
                              ">= 1 or None")
        if max_items_per_message is not None and max_items_per_message > self._items_cap:
            raise ConfigError(f"{self.name}: max_items_per_message = {max_items_per_message!r}: messages of that many "
                              f"{item_bytes}-byte items exceed MAX_MESSAGE_BYTES = {wire.MAX_MESSAGE_BYTES}; at most "
                              f"{self._items_cap} (or None: batches are split to fit)")
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
        self._pool = SendBufferPool()
        self._reset_counters()
        self._init_endpoint(address, timeout, hwm, bind, context, curve)

    def _reset_counters(self) -> None:
        self._last_progress: float | None = None  # when a message was last queued
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
        """Queue one message: ``(outcome, tracker)`` with outcome `QUEUED`, `HELD` or `DROPPED`."""
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
                self._check_idle()
                return WORK_WAITING  # for a receiver, outside the flowgraph
            base = self.nitems_read(0)
            step = self.max_items_per_message or self._items_cap
            sent = 0
            trackers = []
            while sent < n:
                m, body, copy, track = self._fitted(x, sent, min(step, n - sent), base)
                outcome, tracker = self._send_chunk(body, copy, track)
                nbytes = len(body) if isinstance(body, zmq.Frame) else body.nbytes
                del body  # a pooled frame's tracker completes once only ZeroMQ held it
                if outcome == HELD:  # not queued: the items stay upstream
                    break
                if outcome == DROPPED:  # at the high-water mark (PUB)
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
            if sent:
                self._last_progress = time.monotonic()
            else:
                self._check_idle()
            return sent if sent or not n else WORK_WAITING

    def _check_idle(self) -> None:
        """Raise `LinkIdleError` when nothing could be queued for `idle_timeout` s since the last
        message (before the first message the sink waits for a receiver without limit)."""
        if self.idle_timeout is None or self._last_progress is None:
            return
        idle = time.monotonic() - self._last_progress
        if idle >= self.idle_timeout:
            self._abort.set()  # stop() then closes at once instead of waiting for the same receiver
            raise LinkIdleError(f"block {self.name!r}: no receiver took data for {idle:.1f} s (idle_timeout = "
                                f"{self.idle_timeout:g} s) after {self.items_sent} items sent to {self.endpoint}: "
                                "the receiver is gone, stalled, or refused the stream (see its output)")

    def _fitted(self, x: np.ndarray, sent: int, m: int, base: int):
        """``(m, body, copy, track)``: the message of the next `m` items of `x` (from `sent`), or of
        fewer (halved until the message keeps within the wire limits)."""
        while True:
            try:
                return (m, *self._message(x[sent:sent + m], base + sent))
            except WireLimitError as exc:
                if m == 1:
                    raise ConfigError(f"{self.name}: item {base + sent} cannot be sent: a message of it alone "
                                      f"breaks a wire limit: {exc}") from None
                m //= 2

    def _message(self, chunk: np.ndarray, offset: int):
        """The message body for `chunk` (items at absolute `offset`), and how to hand it to pyzmq:
        ``(body, copy, track)``.  Raises `WireLimitError` for a message beyond the wire limits."""
        if self.copy_mode == "track" and not self.pass_tags:
            return chunk, False, True  # zero-copy of the flowgraph's buffer, waited for in work()
        header = b""
        if self.pass_tags:
            tags = self.get_tags_in_range(0, offset, offset + len(chunk))
            if offset == 0 and self.start_tags:
                tags = [Tag(0, key, value, self.name) for key, value in self.start_tags.items()] + tags
            seq, after = self._link_tags(offset, len(chunk))
            header = encode_header(offset, tags, seq, after)
            if len(header) + chunk.nbytes > wire.MAX_MESSAGE_BYTES:
                raise WireLimitError(f"a message of {len(header) + chunk.nbytes} bytes is more than MAX_MESSAGE_BYTES "
                                     f"= {wire.MAX_MESSAGE_BYTES}")
        body = self._pool.get(len(header) + chunk.nbytes)
        body[:len(header)] = np.frombuffer(header, dtype=np.uint8)
        body[len(header):] = np.frombuffer(chunk, dtype=np.uint8)
        return self._pool.frame(body), False, False  # one copy, into a recycled buffer

    def _link_tags(self, offset: int, n: int) -> tuple[SeqRecords | None, list[Tag]]:
        """The sequence tags (``stream_id``) of items ``offset .. offset + n - 1``, as records for
        the fast encoder (`isacblocks.zeromq.seqtags`), and the end-of-stream tag on item
        ``stream_length - 1`` when it is among them (the tags after them)."""
        seq = None
        if self.stream_id is not None:
            index = np.arange(offset, offset + n, dtype=np.int64)
            seq = SeqRecords(self._seq_layout, index, index)
            if not self._seq_layout.fits(index):  # beyond int32 the general encoder writes PST_INT64
                return None, seq.tags() + self._eos_tags(offset, n)
        return seq, self._eos_tags(offset, n)

    def _eos_tags(self, offset: int, n: int) -> list[Tag]:
        last = self.stream_length
        if last is not None and offset < last <= offset + n:
            return [Tag(last - 1, EOS_KEY, True, self.name)]
        return []

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
                if outcome == QUEUED:
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
