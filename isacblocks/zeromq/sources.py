"""ZeroMQ source blocks: `PullSource` (gr-zeromq ``pull_source``) and `SubSource` (``sub_source``).

See the package documentation (:mod:`isacblocks.zeromq`) for receiving, tag rebasing, the
end of stream and idle timeouts.

Malformed messages are counted by kind (`MALFORMED_KINDS`), described in `last_error` and
skipped; the source keeps running.  An item-size mismatch is named (`ItemSizeMismatch`,
which ends the stream) only on consistent evidence: `SIZE_EVIDENCE` consecutive messages
whose tag headers each show the same other item size, with no well-formed message between
them, or a stream that ends (end of stream, idle timeout) without one well-formed message
after such evidence; one stray message showing it is skipped as ``wrong_size``.
"""

from __future__ import annotations

import logging
import time
import warnings
from typing import Any

import numpy as np
import zmq

from ..core import WORK_DONE, WORK_WAITING, SourceBlock, port
from ..core.tags import Tag
from ..errors import BlockError
from .endpoint import EOS_KEY, ItemSizeMismatch, _key_bytes, _ZmqEndpoint, check_seconds
from .seqdecoder import SeqDecoder
from .seqtags import SeqRun
from .warning import ZmqWarning
from .wire import (
    HEADER_MAGIC,
    HEADER_SIZE,
    HEADER_VERSION,
    WireFormatError,
    decode_header,
    decode_message,
    items_from_payload,
    rebase_tags,
    sort_tags,
    split_pub_frames,
)

__all__ = ["PullSource", "SubSource"]

_HEADER_PREFIX = HEADER_MAGIC.to_bytes(2, "little") + bytes([HEADER_VERSION])
_log = logging.getLogger("isacblocks.zeromq")

#: What can be wrong with a received message (each kind counted in ``malformed_kinds``):
#: no gr-zeromq header where one is expected (or a message of several frames where one is),
#: a header whose tags cannot be read, a payload that is not a whole number of items, a
#: header that shows items of another size (a tag past the payload, a message starting
#: inside the previous one), and the sender's ``pass_tags`` differing from the source's.
MALFORMED_KINDS = ("bad_header", "bad_tags", "truncated", "wrong_size", "pass_tags")

#: Consecutive messages, each showing the same other item size and no well-formed one between
#: them, after which a source names an item-size mismatch instead of skipping them.
SIZE_EVIDENCE = 3


class _Malformed(WireFormatError):
    """A message to skip, with its kind (one of `MALFORMED_KINDS`)."""

    def __init__(self, kind: str, reason: str):
        super().__init__(reason)
        self.kind = kind


class Pending:
    """The part of a received message not yet written to the output: its items, its tags at the
    sender's offsets (`first` is the sender's offset of ``items[0]``) and, when the source reads
    sequence records as arrays (`_ZmqSource.take`), those records as `SeqRun`s."""

    __slots__ = ("items", "tags", "first", "consumed", "runs")

    def __init__(self, items: np.ndarray, tags: list[Tag], first: int, runs: list[SeqRun] | tuple = ()):
        self.items, self.tags, self.first, self.consumed, self.runs = items, tags, first, 0, runs


class _ZmqSource(_ZmqEndpoint, SourceBlock):
    """Common part of `PullSource` and `SubSource`: parsing, rebasing, end of stream, counters."""

    _direction = "recv"
    _key = b""
    #: work() returns 0 while it waits for messages from another process (not a stall).
    waits_for_external_input = True

    def __init__(self, dtype, item_shape, address: str, timeout: int, pass_tags: bool, hwm: int, bind: bool,
                 eos: bool, context: zmq.Context | None, name: str | None, idle_timeout: float | None = None,
                 waiting_interval: float = 0.0, curve=None):
        SourceBlock.__init__(self, out_sig=[port(dtype, item_shape)], name=name)
        spec = self.out_sig[0]
        self.pass_tags = bool(pass_tags)
        self.eos = bool(eos)
        self.idle_timeout = check_seconds(self.name, "idle_timeout", idle_timeout)
        self.waiting_interval = check_seconds(self.name, "waiting_interval", waiting_interval) or 0.0
        self._item_bytes = spec.itemsize
        #: Set by `PairedPullSource`: sequence records decoded as arrays (`SeqDecoder`), for `take`.
        self._seq_decoder: SeqDecoder | None = None
        self._reset()
        self._init_endpoint(address, timeout, hwm, bind, context, curve)

    def _configure(self, sock: zmq.Socket) -> None:
        sock.setsockopt(zmq.RCVTIMEO, self.timeout)

    def _reset(self) -> None:
        self._pending: Pending | None = None
        self._eos_seen = False
        self._next_remote: int | None = None
        #: (first offset, payload bytes, skipped) of the last message with a header
        self._previous: tuple[int, int, bool] | None = None
        self._evidence: list[tuple[int, str, str]] = []  # consecutive messages showing another item size
        self._well_formed = 0  # messages with items accepted without such evidence
        self._started_at = time.monotonic()
        self._last_message: float | None = None
        self._last_waiting_line = self._started_at
        self.timed_out = False
        self.items_received = 0
        self.messages_received = 0
        self.malformed = 0
        self.malformed_kinds = dict.fromkeys(MALFORMED_KINDS, 0)
        self.missed_items = 0
        self.first_remote_offset: int | None = None
        self.last_error: str | None = None

    @property
    def pass_tags_mismatch(self) -> int:
        """Messages skipped because the sender's ``pass_tags`` differs from this source's."""
        return self.malformed_kinds["pass_tags"]

    @property
    def eos_received(self) -> bool:
        """Whether the end of stream arrived."""
        return self._eos_seen

    @property
    def ended(self) -> bool:
        """Whether the stream has ended (end of stream received or idle timeout) and all of it
        has been written out."""
        return (self._eos_seen or self.timed_out) and self._pending is None

    def stats(self) -> dict:
        """The counters, for reports."""
        return {"endpoint": self.endpoint, "items_received": self.items_received,
                "messages_received": self.messages_received, "malformed": self.malformed,
                "malformed_kinds": dict(self.malformed_kinds), "pass_tags_mismatch": self.pass_tags_mismatch,
                "missed_items": self.missed_items,
                "eos_received": self._eos_seen, "timed_out": self.timed_out, "last_error": self.last_error}

    def start(self) -> None:
        self._reset()
        self._open()

    def stop(self) -> None:
        self.close()
        if self.timed_out:
            warnings.warn(f"{self.name}: no message from {self.endpoint} for {self.idle_timeout:g} s (idle_timeout) "
                          f"after {self.items_received} items: the stream ended without its end of stream",
                          ZmqWarning, stacklevel=2)
        if self.malformed:
            kinds = ", ".join(f"{kind} {n}" for kind, n in self.malformed_kinds.items() if n)
            warnings.warn(f"{self.name}: skipped {self.malformed} malformed message(s) ({kinds}) from "
                          f"{self.endpoint}; last: {self.last_error}", ZmqWarning, stacklevel=2)

    def work(self, inputs, outputs):
        produced = self.fill(outputs[0], wait=True)
        if produced == 0:
            return WORK_DONE if self.ended else WORK_WAITING  # waiting for a sender, outside the flowgraph
        return produced

    def fill(self, out: np.ndarray, wait: bool) -> int:
        """Write received items (and their tags) into `out`; wait up to `timeout` ms for the
        first message if `wait`.  Returns the count; checks the idle timeout when none came."""
        produced = 0
        with self._lock:
            if self.closed:
                raise BlockError(f"block {self.name!r}: socket is closed (close() was called while running)")
            while produced < len(out):
                if self._pending is not None:
                    produced += self._flush(out, produced)
                    continue
                if self._eos_seen or self.timed_out or not self._receive(wait):
                    break
                wait = False
        if produced == 0 and not self.ended:
            self._check_idle()
        return produced

    def take(self, wait: bool) -> Pending | None:
        """The next received message with items, as it came (items viewed in the message, tags
        at the sender's offsets), instead of writing it to an output: for a block that
        reads several sources itself (`PairedPullSource`).  Waits up to `timeout` ms for a
        message if `wait`; None when none came (then checks the idle timeout)."""
        with self._lock:
            if self.closed:
                raise BlockError(f"block {self.name!r}: socket is closed (close() was called while running)")
            while self._pending is None and not (self._eos_seen or self.timed_out):
                if not self._receive(wait):
                    break
                wait = False
            pending, self._pending = self._pending, None
        if pending is None:
            if not self.ended:
                self._check_idle()
            return None
        self.items_received += len(pending.items)
        return pending

    def _check_idle(self) -> None:
        """End the stream after `idle_timeout` s without a message (once one has come); before
        the first message, log a "waiting for a sender" line every `waiting_interval` s."""
        now = time.monotonic()
        if self._last_message is None:
            if self.waiting_interval and now - self._last_waiting_line >= self.waiting_interval:
                self._last_waiting_line = now
                _log.info("%s: waiting for a sender on %s (%.0f s so far)", self.name, self.endpoint,
                          now - self._started_at)
        elif self.idle_timeout is not None and now - self._last_message >= self.idle_timeout:
            self.timed_out = True
            _log.warning("%s: no message from %s for %.1f s (idle_timeout): ending the stream after %d items",
                         self.name, self.endpoint, now - self._last_message, self.items_received)
            self._name_mismatch(ending=True)

    # ------------------------------------------------------------ receiving
    def _receive(self, wait: bool) -> bool:
        """Take one message off the socket (waiting up to `timeout` ms if `wait`); False if none came."""
        try:
            frames = self._socket.recv_multipart(0 if wait else zmq.NOBLOCK, copy=False)
        except zmq.Again:
            return False
        self._last_message = time.monotonic()
        try:
            self._accept(frames)
        except _Malformed as exc:
            self._reject(exc.kind, str(exc))
        except WireFormatError as exc:  # from _body: not the frames of one message
            self._reject("bad_header", str(exc))
        return True

    def _body(self, frames: list) -> Any:
        if len(frames) != 1:
            raise WireFormatError(f"expected a single-frame message, got {len(frames)} frames")
        return frames[0]

    def _reject(self, kind: str, reason: str) -> None:
        self.malformed += 1
        self.malformed_kinds[kind] += 1
        self.last_error = reason
        if self.malformed == 1:
            _log.warning("%s: skipping malformed message from %s: %s", self.name, self.endpoint, reason)

    def _accept(self, frames: list) -> None:
        buf = memoryview(self._body(frames))
        if buf.nbytes == 0:  # the end of stream of a sink without pass_tags (GNU Radio: zero items)
            self.messages_received += 1
            self._eos_seen = self.eos
            return
        runs: list[SeqRun] | tuple = ()
        if self.pass_tags:
            if bytes(buf[:3]) != _HEADER_PREFIX and buf.nbytes % self._item_bytes == 0:
                raise _Malformed("pass_tags", f"message of {buf.nbytes} bytes has no gr-zeromq tag header (first "
                                 f"bytes {bytes(buf[:3]).hex()}, expected {_HEADER_PREFIX.hex()}) but is a whole "
                                 f"number of {self._item_bytes}-byte items: the sender runs with pass_tags=False "
                                 "while this source has pass_tags=True")
            try:
                if self._seq_decoder is not None:
                    first, tags, runs, payload = self._seq_decoder.decode_message(buf)
                else:
                    first, tags, payload = decode_message(buf)
            except WireFormatError as exc:
                header = buf.nbytes >= HEADER_SIZE and bytes(buf[:3]) == _HEADER_PREFIX
                raise _Malformed("bad_tags" if header else "bad_header", str(exc)) from None
        else:
            header_tags = self._header_tags(buf) if bytes(buf[:3]) == _HEADER_PREFIX else None
            if header_tags is not None:
                if self.eos and any(t.key == EOS_KEY for t in header_tags):
                    self._eos_seen = True  # end the stream rather than wait for data that cannot be read
                raise _Malformed("pass_tags", f"message of {buf.nbytes} bytes starts with a gr-zeromq tag header: "
                                 "the sender runs with pass_tags=True while this source has pass_tags=False")
            first, tags, payload = None, [], buf
        sign = first is not None and self._check_item_size(first, tags, runs, payload.nbytes)
        try:
            items = items_from_payload(payload, self.out_sig[0].dtype, self.out_sig[0].shape)
        except WireFormatError as exc:
            raise _Malformed("truncated", str(exc)) from None
        if first is not None:
            self._previous = (first, payload.nbytes, False)  # not skipped
        if not sign and len(items):
            self._evidence.clear()  # a well-formed message: the evidence must start again
            self._well_formed += 1
        self.messages_received += 1
        if first is not None:
            if self._next_remote is not None and first > self._next_remote:
                self.missed_items += first - self._next_remote
            if self.first_remote_offset is None:
                self.first_remote_offset = first
            self._next_remote = first + len(items)
            if self.eos and any(t.key == EOS_KEY for t in tags):
                # on a header of no items (a sink's stop()) or on the stream's last item
                last = min(t.offset for t in tags if t.key == EOS_KEY) - first
                items = items[:max(0, last + 1)]
                self._eos_seen = True
                self._name_mismatch(ending=True)
                tags = [t for t in tags if t.key != EOS_KEY]
        if len(items):
            self._pending = Pending(items, tags, first if first is not None else 0, runs)

    def _check_item_size(self, first: int, tags: list[Tag], runs, nbytes: int) -> bool:
        """Skip a message whose tag header shows that the sender's items have another size than
        this source's (``wrong_size``); raise `ItemSizeMismatch` once `SIZE_EVIDENCE`
        consecutive messages show the same other size.

        Two signs, neither of which loss, PUB drops or a second receiver on a PUSH socket
        can produce: a tag beyond the message's last item (gr-zeromq only sends the tags of
        the items it sends: the sender's items are smaller, at most ``bytes // tagged items``;
        exact when the last item is tagged, as every item of a link is), and a message that
        starts inside the previous one as this source counted it (the sender's items are
        larger: ``previous bytes / offset step``).  The second sign condemns this message only
        when the previous one was not skipped itself (else either may be the stray one: it is
        kept, and counts as evidence).  A sender with smaller items whose messages carry no
        tag near their end is not seen.
        """
        mine = self._item_bytes
        top = max((t.offset for t in tags), default=first - 1)  # (no tag: no sign)
        for run in runs:
            top = max(top, int(run.offsets.max()))
        beyond = top - first + 1
        previous = self._previous
        sign = None
        if nbytes and beyond * mine > nbytes:
            sign = (nbytes // beyond, f"at most {nbytes // beyond}", True,
                    f"a tag sits on item {beyond - 1} of a message of {nbytes} bytes")
        elif previous is not None and previous[0] < first < previous[0] + previous[1] // mine:
            theirs = previous[1] / (first - previous[0])
            sign = (round(theirs), f"{theirs:.0f}" if theirs.is_integer() else f"about {theirs:.0f}", not previous[2],
                    f"a message starts at item {first}, inside the previous one (items {previous[0]} to "
                    f"{previous[0] + previous[1] // mine - 1} at this source's size)")
        self._previous = (first, nbytes, True)  # until the message is accepted
        if sign is None:
            return False
        size, theirs, condemned, evidence = sign
        if self._evidence and self._evidence[-1][0] != size:
            self._evidence.clear()
        self._evidence.append((size, theirs, evidence))
        if len(self._evidence) >= SIZE_EVIDENCE:
            self._name_mismatch()
        if condemned:
            raise _Malformed("wrong_size", f"the tag header shows items of {theirs} bytes, not this source's {mine} "
                                           f"({evidence}): skipped")
        return True

    def _name_mismatch(self, ending: bool = False) -> None:
        """Raise `ItemSizeMismatch` from the evidence gathered (at the end of the stream: if no
        well-formed message came after it)."""
        if not self._evidence or (ending and self._well_formed):
            return
        _, theirs, evidence = self._evidence[-1]
        spec = self.out_sig[0]
        shown = (f"{len(self._evidence)} consecutive messages show it" if not ending else
                 f"{len(self._evidence)} message(s) showed it and none was well-formed before the stream ended")
        raise ItemSizeMismatch(f"block {self.name!r}: item size mismatch: the sender's items are {theirs} bytes "
                               f"({shown}; the last: {evidence}), this source's are {self._item_bytes} bytes "
                               f"({spec.describe()}); give both ends the same item type and vector length")

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
        if p.consumed == 0 and (p.tags or p.runs):  # sorted once per message; each part then bisects
            p.tags, p.runs = sort_tags(SeqDecoder.merged(p.tags, p.runs)), ()
        if p.tags:
            local = self.nitems_written(0) + produced
            writer = self.detail.writers[0]
            for tag in rebase_tags(p.tags, p.first + p.consumed, local, n, presorted=True):
                writer.add_tag(tag)  # srcid as sent: None stays None (GNU Radio's #f)
        p.consumed += n
        self.items_received += n
        if p.consumed == len(p.items):
            self._pending = None
        return n


class PullSource(_ZmqSource):
    """Receive items from a PULL socket (gr-zeromq ``pull_source``); connects to `address` by default.

    Output
    ------
    out0 : [n, *item_shape], dtype
        The received items (dtype and item_shape as given), with their tags if ``pass_tags``.
    """

    _socket_type = zmq.PULL

    def __init__(self, dtype, item_shape=(), address: str = "tcp://127.0.0.1:5555", timeout: int = 100,
                 pass_tags: bool = False, hwm: int = -1, bind: bool = False, eos: bool = True,
                 context: zmq.Context | None = None, name: str | None = None, idle_timeout: float | None = None,
                 waiting_interval: float = 0.0, curve=None):
        super().__init__(dtype, item_shape, address, timeout, pass_tags, hwm, bind, eos, context, name,
                         idle_timeout, waiting_interval, curve)


class SubSource(_ZmqSource):
    """Receive items from a SUB socket (gr-zeromq ``sub_source``) subscribed to `key`;
    connects to `address` by default.  With a key, messages are ``[key, message]``.

    Output
    ------
    out0 : [n, *item_shape], dtype
        As `PullSource`'s.
    """

    _socket_type = zmq.SUB

    def __init__(self, dtype, item_shape=(), address: str = "tcp://127.0.0.1:5555", timeout: int = 100,
                 pass_tags: bool = False, hwm: int = -1, key: str | bytes = "", bind: bool = False,
                 eos: bool = True, context: zmq.Context | None = None, name: str | None = None,
                 idle_timeout: float | None = None, waiting_interval: float = 0.0, curve=None):
        self._key = _key_bytes(key, name or type(self).__name__)
        self.key = key
        super().__init__(dtype, item_shape, address, timeout, pass_tags, hwm, bind, eos, context, name,
                         idle_timeout, waiting_interval, curve)

    def _configure(self, sock: zmq.Socket) -> None:
        super()._configure(sock)
        sock.setsockopt(zmq.SUBSCRIBE, self._key)

    def _body(self, frames: list) -> Any:
        return split_pub_frames(frames, self._key)

