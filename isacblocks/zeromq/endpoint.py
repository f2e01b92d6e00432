"""Socket ownership shared by the ZeroMQ blocks: open, bind or connect (with CURVE keys,
`isacblocks.zeromq.curve`), close; the warnings and errors they raise; the keys of the tags the
link protocol uses.  Every socket refuses inbound messages over `wire.MAX_MESSAGE_BYTES`
(``ZMQ_MAXMSGSIZE``: ZeroMQ drops such a peer's connection instead of buffering the message)."""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any

import zmq

from ..errors import BlockError, ConfigError
from ..validation import check_int, is_real
from . import wire

#: Key of the end-of-stream tag: on a header with no items (sent at a sink's stop()), or
#: on the last item of a stream whose length the sink knows (survives a GNU Radio hop,
#: which drops messages of zero items).
EOS_KEY = "eos"

#: Key of the per-item sequence tag a sink with ``stream_id`` adds: value
#: ``(stream_id, item index)``, so a receiver can pair the items of several streams.
SEQ_KEY = "stream_seq"

#: Largest ``timeout`` (ms) and ``hwm`` (messages): ZeroMQ keeps them in a C int.
_INT_MAX = 2**31 - 1


class LinkIdleError(BlockError):
    """A ZeroMQ sink that could not hand data to any receiver for ``idle_timeout`` seconds."""


class ItemSizeMismatch(BlockError):
    """A source received items whose size (seen in the tag header) differs from its own."""


def check_seconds(owner: str, label: str, value) -> float | None:
    """A duration parameter such as ``idle_timeout``, in seconds: None or 0 mean none (wait forever)."""
    if value is None:
        return None
    if not is_real(value) or not value >= 0:
        raise ConfigError(f"{owner}: {label} = {value!r}: must be a number of seconds >= 0 "
                          "(0 or None: wait forever)")
    return float(value) or None


def _release(state: dict, linger: int = 0) -> None:
    """Close the socket and terminate an owned context (also the finaliser of a block)."""
    sock, ctx, monitor = state.pop("socket", None), state.pop("context", None), state.pop("monitor", None)
    if monitor is not None:
        if sock is not None and not sock.closed:
            sock.disable_monitor()
        monitor.close(linger=0)
    if sock is not None and not sock.closed:
        sock.close(linger=linger)
    zap = state.pop("zap_domain", None)
    if zap is not None and ctx is not None:  # the CURVE authenticator, before its context goes
        from .curve import release

        release(ctx, zap)
    if ctx is not None and state.get("own_context") and not ctx.closed:
        # destroy, not term: term() waits forever for a socket another thread still holds (a
        # flowgraph left running when the interpreter exits and runs this finaliser)
        ctx.destroy(linger=0)


def _key_bytes(key, owner: str) -> bytes:
    """A PUB/SUB key as bytes; only str (UTF-8) or bytes are keys (``bytes(5)`` would be five zero bytes)."""
    if isinstance(key, str):
        return key.encode()
    if isinstance(key, (bytes, bytearray, memoryview)):
        return bytes(key)
    raise ConfigError(f"{owner}: key = {key!r}: must be a str or bytes")


def _check_c_int(owner: str, label: str, value, low: int) -> int:
    value = check_int(owner, label, value, low)
    if value > _INT_MAX:
        raise ConfigError(f"{owner}: {label} = {value!r}: must be an integer in [{low}, {_INT_MAX}] (ZeroMQ "
                          "keeps it in a C int)")
    return value


def _curve_keys(curve, owner: str, server: bool):
    """The ``curve`` parameter: None, a `CurveKeys` or a key directory; the keys of the block's
    role (the binding side is the server) are loaded now, so bad ones raise `ConfigError` here."""
    if curve is None:
        return None
    from .curve import CurveKeys

    if not isinstance(curve, (CurveKeys, str, os.PathLike)):
        raise ConfigError(f"{owner}: curve = {curve!r}: expected CurveKeys(DIR), a key directory or None")
    keys = curve if isinstance(curve, CurveKeys) else CurveKeys(curve)
    keys.load(server, f"{owner}: curve = {keys!r}")
    return keys


class _ZmqEndpoint:
    """Socket ownership shared by the four blocks: open, bind/connect, close."""

    _socket_type: int
    _direction: str  # "send" or "recv": which high-water mark `hwm` sets

    def _init_endpoint(self, address: str, timeout: int, hwm: int, bind: bool, context: zmq.Context | None,
                       curve=None) -> None:
        if not isinstance(address, str) or "://" not in address:
            raise ConfigError(f"{self.name}: address = {address!r}: expected 'tcp://host:port', 'ipc://path' "
                              "or 'inproc://name'")
        self.address = address
        self.timeout = _check_c_int(self.name, "timeout", timeout, 0)
        self.hwm = _check_c_int(self.name, "hwm", hwm, -1)
        self.bind = bool(bind)
        self.curve = _curve_keys(curve, self.name, self.bind)
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
                sock.setsockopt(zmq.MAXMSGSIZE, wire.MAX_MESSAGE_BYTES)
                if self.curve is not None:
                    from .curve import configure

                    self._state["zap_domain"] = configure(sock, ctx, self.curve, self.bind, self.name)
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
            except ConfigError:
                _release(self._state)
                raise

    def close(self, linger: int = 0) -> None:
        """Close the socket (ZMQ_LINGER `linger` ms, default 0) and terminate the block's own
        context; idempotent."""
        with self._lock:
            _release(self._state, linger)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

