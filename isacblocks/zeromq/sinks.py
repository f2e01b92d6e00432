"""ZeroMQ sink blocks: `PushSink` (gr-zeromq ``push_sink``) and `PubSink` (``pub_sink``).

See the package documentation (:mod:`isacblocks.zeromq`) for batching, the end of stream,
high-water marks, drops and copy modes.  A message stays within the wire limits
(`wire.MAX_MESSAGE_BYTES`, `wire.MAX_TAGS`, `pmt.MAX_ELEMENTS`): a batch that would exceed
one is sent as several messages (message boundaries carry no meaning); an item whose tags
alone exceed one raises `ConfigError` naming the block and the limit.
"""

from __future__ import annotations

import time
from typing import Any

import zmq
from zmq.utils.monitor import recv_monitor_message

from .endpoint import _key_bytes
from .sinkbase import DROPPED, HELD, QUEUED, ZmqSinkBase

__all__ = ["PubSink", "PushSink"]


class PushSink(ZmqSinkBase):
    """Send items on a PUSH socket (gr-zeromq ``push_sink``); binds `address` by default.

    work() waits up to `timeout` ms for a receiver that can take a message and otherwise
    returns 0, so nothing is ever dropped: items wait upstream while no PULL peer is
    connected or all peers are at their high-water mark.  With `idle_timeout` (s) it
    raises `LinkIdleError` once no message could be queued for that long after the first
    one (the receiver is gone or stalled); before the first message it waits without limit.

    `stream_id` (needs ``pass_tags``) adds the tag `SEQ_KEY` = ``(stream_id, index)`` to
    every item, so a receiver can pair several streams item by item and tell one run from
    another (`isacblocks.zeromq.PairedPullSource`); `stream_length` puts the end-of-stream tag
    `EOS_KEY` on the stream's last item, where it survives a GNU Radio hop (GNU Radio drops
    the zero-item end-of-stream message).  `curve` (a `CurveKeys` or a key directory)
    makes the link CURVE-authenticated and encrypted (`isacblocks.zeromq.curve`).

    Input
    -----
    in0 : [n, *item_shape], dtype
        The items to send (dtype and item_shape as given); their tags too with ``pass_tags``.
    """

    _socket_type = zmq.PUSH
    _PEER_EVENTS = zmq.EVENT_ACCEPTED | zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED

    def __init__(self, dtype, item_shape=(), address: str = "tcp://127.0.0.1:0", timeout: int = 100,
                 pass_tags: bool = False, hwm: int = -1, bind: bool = True,
                 max_items_per_message: int | None = None, eos: bool = True, linger: int = 500,
                 copy_mode: str = "copy", start_tags: dict | None = None, context: zmq.Context | None = None,
                 name: str | None = None, idle_timeout: float | None = None, stream_id: str | None = None,
                 stream_length: int | None = None, curve=None):
        super().__init__(dtype, item_shape, address, timeout, pass_tags, hwm, bind, max_items_per_message, eos,
                         linger, copy_mode, start_tags, context, name, idle_timeout, stream_id, stream_length, curve)

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
            return QUEUED, self._socket.send(body, zmq.NOBLOCK, copy=copy, track=track)
        except zmq.Again:
            return HELD, None


class PubSink(ZmqSinkBase):
    """Publish items on an XPUB socket, wire-compatible with gr-zeromq ``pub_sink``.

    `key` (optional) is sent as a first frame; subscribers filter on it.  At the
    high-water mark, ``drop_on_hwm=True`` drops the message for every subscriber and
    counts it (`dropped`, `dropped_items`, `ZmqDropWarning` at stop()), while
    ``drop_on_hwm=False`` waits up to `timeout` ms and otherwise holds the items
    upstream.  `subscribers` counts the subscriptions that match `key`.  `curve`: as for
    `PushSink`.

    Input
    -----
    in0 : [n, *item_shape], dtype
        The items to publish (dtype and item_shape as given); their tags too with ``pass_tags``.
    """

    _socket_type = zmq.XPUB

    def __init__(self, dtype, item_shape=(), address: str = "tcp://127.0.0.1:0", timeout: int = 100,
                 pass_tags: bool = False, hwm: int = -1, key: str | bytes = "", drop_on_hwm: bool = True,
                 bind: bool = True, max_items_per_message: int | None = None, eos: bool = True,
                 linger: int = 500, copy_mode: str = "copy", start_tags: dict | None = None,
                 context: zmq.Context | None = None, name: str | None = None, idle_timeout: float | None = None,
                 stream_id: str | None = None, stream_length: int | None = None, curve=None):
        self._key = _key_bytes(key, name or type(self).__name__)
        self.key = key
        self.drop_on_hwm = bool(drop_on_hwm)
        self.subscribers = 0
        super().__init__(dtype, item_shape, address, timeout, pass_tags, hwm, bind, max_items_per_message, eos,
                         linger, copy_mode, start_tags, context, name, idle_timeout, stream_id, stream_length, curve)

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
            return QUEUED, sock.send(body, flags, copy=copy, track=track)
        except zmq.Again:
            return (HELD if hold else DROPPED), None

    def stats(self) -> dict:
        return {**super().stats(), "subscribers": self.subscribers}


