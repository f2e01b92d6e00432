"""`PairedPullSource`: several PULL streams of one sender, paired item by item.

Streams sent over separate sockets do not stay in step by themselves: a second
receiver on the same address takes every other message of each stream (PUSH
load-balances), a receiver restarted mid-stream starts each stream at another item, a
restarted sender starts again at item 0.  Pairing "item k of every stream" then scores
frames against the wrong symbols or ground truth.  This block pairs by identity
instead: every item carries the tag `SEQ_KEY` = ``(stream_id, index)`` that a sink
with ``stream_id`` adds (`PushSink`), and an output item is produced only when every
stream holds the item of the same ``(stream_id, index)``.

What cannot be paired is counted, never output (`stats()`):

* ``foreign`` -- items of another ``stream_id`` than the first one seen (another run);
* ``unpaired`` -- items whose index some other stream has passed (its copy went to
  another receiver or was lost);
* ``leftover`` -- items still waiting for their partners when another stream ended;
* ``untagged`` -- items without a sequence tag (a sender without ``stream_id``);
* ``gaps`` -- indices between the first and the last paired item that were not paired,
  and ``first_index``: how many items of the run came before the first one paired.

The block ends when one stream has ended (end of stream, or its `idle_timeout`) and
nothing of it is left to pair.  Tags other than the sequence tags are passed on, each
on the output item of its input item; the output ports are named after the streams.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import zmq

from ..core import WORK_DONE, SourceBlock
from ..core.buffer import Buffer, Writer
from ..core.detail import BlockDetail
from ..errors import ConfigError
from ..validation import check_int
from .endpoint import SEQ_KEY, check_seconds
from .sources import PullSource

__all__ = ["PairedPullSource"]

_log = logging.getLogger("isacblocks.zmq")


class _Stream:
    """One received stream: its PULL source, the staging buffer it fills, and counters."""

    def __init__(self, source: PullSource, capacity: int):
        self.source = source
        self.capacity = capacity
        self.reset()

    def reset(self) -> None:
        """An empty staging buffer, written by the source as a flowgraph would, and zero counters."""
        self.buffer = Buffer(self.source.out_sig[0], self.capacity)
        self.reader = self.buffer.add_reader()
        self.source.detail = BlockDetail(writers=[Writer(self.buffer)])
        self.foreign = self.unpaired = self.leftover = self.untagged = 0

    def receive(self) -> int:
        """Move what has arrived into the staging buffer (no waiting)."""
        space = self.buffer.space()
        if space == 0:
            return 0
        n = self.source.fill(self.buffer.write_view(space), wait=False)
        self.buffer.commit(n)
        return n

    @property
    def available(self) -> int:
        return self.reader.available()

    def keys(self) -> list:
        """The ``(stream_id, index)`` of each staged item (None where an item has no valid tag)."""
        start = self.reader.nread
        keys: list = [None] * self.available
        for tag in self.buffer.tags_in_range(start, start + len(keys), SEQ_KEY):
            value = tag.value
            if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], int):
                keys[tag.offset - start] = value
        return keys


class PairedPullSource(SourceBlock):
    """Receive several PULL streams (``pass_tags`` on) and output only the items that every
    stream holds with the same sequence tag ``(stream_id, index)``.

    Parameters
    ----------
    streams:
        ``{name: (dtype, item_shape, address)}``; one output port per stream, in this order.
    timeout:
        ms that one work() call waits for a message (GNU Radio's default: 100).
    idle_timeout:
        s without a message on a stream (once it has started) after which that stream,
        and so this block, ends; None or 0: wait forever.
    waiting_interval:
        s between "waiting for a sender" log lines before the first message (0: none).
    max_pending:
        items staged per stream while waiting for the other streams (memory bound; the
        sender is held back by ZeroMQ's high-water marks when it is reached).
    """

    waits_for_external_input = True

    def __init__(self, streams: dict, timeout: int = 100, hwm: int = -1, bind: bool = False,
                 idle_timeout: float | None = None, waiting_interval: float = 0.0, max_pending: int = 256,
                 context: zmq.Context | None = None, name: str | None = None):
        if not isinstance(streams, dict) or not streams:
            raise ConfigError(f"{name or 'PairedPullSource'}: streams = {streams!r}: expected a non-empty dict "
                              "{name: (dtype, item_shape, address)}")
        super().__init__(out_sig=[(key, dtype, shape) for key, (dtype, shape, _) in streams.items()], name=name)
        check_int(self.name, "max_pending", max_pending, 1)
        self.timeout = int(timeout)
        self.idle_timeout = check_seconds(self.name, "idle_timeout", idle_timeout)
        self.waiting_interval = check_seconds(self.name, "waiting_interval", waiting_interval) or 0.0
        self.streams = {
            key: _Stream(PullSource(dtype, shape, address, timeout=self.timeout, pass_tags=True, hwm=hwm, bind=bind,
                                    context=context, name=f"{self.name}.{key}", idle_timeout=self.idle_timeout),
                         int(max_pending))
            for key, (dtype, shape, address) in streams.items()}
        self._reset()

    # ------------------------------------------------------------------ state
    def _reset(self) -> None:
        self.stream_id = None  # the run being paired: the first stream_id seen
        self.paired = 0
        self.first_index: int | None = None
        self.last_index: int | None = None
        self._started_at = self._last_waiting_line = time.monotonic()

    @property
    def sources(self) -> dict[str, PullSource]:
        """The PULL source of each stream (endpoints and wire counters)."""
        return {key: stream.source for key, stream in self.streams.items()}

    @property
    def gaps(self) -> int:
        """Indices between the first and the last paired item that were not paired."""
        if self.first_index is None:
            return 0
        return self.last_index - self.first_index + 1 - self.paired

    def stats(self) -> dict:
        """Pairing counters, per stream and in all."""
        return {"stream_id": self.stream_id, "paired": self.paired, "first_index": self.first_index,
                "last_index": self.last_index, "gaps": self.gaps,
                "streams": {key: {"foreign": s.foreign, "unpaired": s.unpaired, "leftover": s.leftover,
                                  "untagged": s.untagged,
                                  **s.source.stats()} for key, s in self.streams.items()}}

    def start(self) -> None:
        self._reset()
        for stream in self.streams.values():
            stream.source.start()
            stream.reset()

    def stop(self) -> None:
        for stream in self.streams.values():
            stream.source.stop()

    def close(self) -> None:
        for stream in self.streams.values():
            stream.source.close()

    # ------------------------------------------------------------------ work
    def work(self, inputs, outputs):
        streams = list(self.streams.values())
        received = sum(s.receive() for s in streams)
        produced = self._pair(streams, outputs)
        if produced:
            return produced
        if self._finished(streams):
            return WORK_DONE
        if not received:
            self._wait(streams)
            for s in streams:
                s.receive()
            produced = self._pair(streams, outputs)
        return produced

    def _wait(self, streams: list[_Stream]) -> None:
        """Wait up to `timeout` ms for a message on a stream that has nothing staged."""
        poller = zmq.Poller()
        for s in streams:
            if not s.available and not s.source.ended and not s.source.closed:
                poller.register(s.source._socket, zmq.POLLIN)
        poller.poll(self.timeout)
        if self.waiting_interval and all(s.source._last_message is None for s in streams):
            now = time.monotonic()
            if now - self._last_waiting_line >= self.waiting_interval:
                self._last_waiting_line = now
                first = streams[0].source
                _log.info("%s: waiting for a sender on %s (%d streams, %.0f s so far)", self.name, first.endpoint,
                          len(streams), now - self._started_at)

    def _finished(self, streams: list[_Stream]) -> bool:
        """True when a stream has ended with nothing staged: count what the others still hold."""
        if not any(s.source.ended and not s.available for s in streams):
            return False
        for s in streams:
            while s.receive():
                pass
            s.leftover += s.available
            s.reader.nread += s.available
        return True

    def _pair(self, streams: list[_Stream], outputs) -> int:
        """Pair the staged items into `outputs`; returns how many pairs were written."""
        room = len(outputs[0])
        keys = [s.keys() for s in streams]
        heads = [0] * len(streams)
        picks: list[list[int]] = [[] for _ in streams]
        while len(picks[0]) < room:
            if any(h >= len(k) for h, k in zip(heads, keys)):
                break
            if not self._drop_unusable(streams, keys, heads):
                continue
            index = max(keys[i][heads[i]][1] for i in range(len(streams)))
            behind = [i for i in range(len(streams)) if keys[i][heads[i]][1] < index]
            for i in behind:
                streams[i].unpaired += 1
                heads[i] += 1
            if behind:
                continue
            for i in range(len(streams)):
                picks[i].append(heads[i])
                heads[i] += 1
            self._count_pair(index)
        produced = len(picks[0])
        for port, (s, pick, head) in enumerate(zip(streams, picks, heads)):
            if produced:
                self._emit(s, port, outputs[port], pick)
            s.reader.nread += head
        return produced

    def _drop_unusable(self, streams, keys, heads) -> bool:
        """Skip (and count) head items without a tag or of another run; True if every head is usable."""
        usable = True
        for i, s in enumerate(streams):
            key = keys[i][heads[i]]
            if key is None:
                s.untagged += 1
            elif self.stream_id is None or key[0] == self.stream_id:
                self.stream_id = key[0] if self.stream_id is None else self.stream_id
                continue
            else:
                s.foreign += 1
            heads[i] += 1
            usable = False
        return usable

    def _count_pair(self, index: int) -> None:
        if self.first_index is None:
            self.first_index = index
        self.last_index = index
        self.paired += 1

    def _emit(self, s: _Stream, port: int, out: np.ndarray, pick: list[int]) -> None:
        """Copy the picked staged items (positions after the reader) to `out`, with their tags."""
        n, start = len(pick), s.reader.nread
        staged = s.reader.read_view(pick[-1] + 1)
        if pick[-1] == n - 1:  # the usual case: the first n staged items, in order
            out[:n] = staged[:n]
        else:
            out[:n] = staged[np.asarray(pick)]
        position = {start + rel: k for k, rel in enumerate(pick)}
        writer = self.detail.writers[port]
        base = writer.nwritten
        for tag in s.buffer.tags_in_range(start, start + pick[-1] + 1, None):
            k = position.get(tag.offset)
            if k is not None and tag.key != SEQ_KEY:
                writer.add_tag(tag.moved(base + k))
