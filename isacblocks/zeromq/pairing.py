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
* ``duplicates`` -- copies of an index already accounted for (paired or rejected): every
  index is output at most once;
* ``rejected`` -- indices whose item a stream's `check` refused (e.g. bad ground truth):
  dropped from every stream, the last reason in ``last_rejected``;
* ``gaps`` -- indices between the smallest and the largest accounted for that never came,
  and ``first_index``: how many items of the run came before the first one paired;
  ``largest_index`` is the largest index of the run seen on any stream (paired or not).

The indices accounted for (paired or rejected) are kept as a set of runs (`IndexSet`,
`accounted`), so a duplicate and a missing item never cancel out in the counts.

The block ends when one stream has ended (end of stream, or its `idle_timeout`) and
nothing of it is left to pair.  Tags other than the sequence tags are passed on, each
on the output item of its input item; the output ports are named after the streams.

How it runs: each stream's source hands over whole messages (`PullSource.take`), whose
items stay where ZeroMQ received them until they are copied once, into the output.  The
sequence records are decoded as arrays (`SeqDecoder`, the fixed-layout fast path of
`isacblocks.zeromq.seqtags`, with the general decoder for anything else), so pairing compares
arrays: a stretch in which every stream holds the run's items with the same indices is
paired in one step when its indices continue the largest index so far, and only where
something differs (a gap, a repeat, a foreign, untagged or rejected item) does the block go
item by item, with the counts above.
"""

from __future__ import annotations

import bisect
import logging
import time

import numpy as np
import zmq

from ..core import WORK_DONE, WORK_WAITING, SourceBlock
from ..core.tags import Tag
from ..errors import ConfigError
from ..validation import check_int
from .endpoint import check_seconds
from .indexset import IndexSet
from .sources import PullSource
from .staging import StagedStream

__all__ = ["PairedPullSource"]

_log = logging.getLogger("isacblocks.zeromq")
_INT64_MAX = 2**63 - 1
_new_tag = tuple.__new__  # Tag(...) without NamedTuple's Python-level __new__


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
        sender is held back by ZeroMQ's high-water marks when it is reached).  A stream
        stages whole messages, so it may hold up to one message more.
    check:
        ``{name: function}``: for the items of that stream, a function of the item's tags
        (``{key: value}``, the sequence tag left out) that returns None for an item that may
        be output, or why not (a str); such an index is dropped from every stream and
        counted in ``rejected``.  It must not raise.

    A stream id is a PMT value that can be a dict key (the sinks send a str); a sequence
    tag whose stream id is not (a list, a dict, an array) counts as no sequence tag.

    Output
    ------
    <name> : [n, *item_shape], dtype
        One port per stream, named by its key in `streams`, with that stream's dtype and
        item_shape: the paired items, with their tags.
    """

    waits_for_external_input = True

    def __init__(self, streams: dict, timeout: int = 100, hwm: int = -1, bind: bool = False,
                 idle_timeout: float | None = None, waiting_interval: float = 0.0, max_pending: int = 256,
                 context: zmq.Context | None = None, name: str | None = None, check: dict | None = None,
                 curve=None):
        if not isinstance(streams, dict) or not streams:
            raise ConfigError(f"{name or 'PairedPullSource'}: streams = {streams!r}: expected a non-empty dict "
                              "{name: (dtype, item_shape, address)}")
        super().__init__(out_sig=[(key, dtype, shape) for key, (dtype, shape, _) in streams.items()], name=name)
        check_int(self.name, "max_pending", max_pending, 1)
        self.timeout = int(timeout)
        self.idle_timeout = check_seconds(self.name, "idle_timeout", idle_timeout)
        self.waiting_interval = check_seconds(self.name, "waiting_interval", waiting_interval) or 0.0
        self._ids: dict = {}
        check = dict(check or {})
        unknown = set(check) - set(streams)
        if unknown or not all(callable(f) for f in check.values()):
            raise ConfigError(f"{self.name}: check = {check!r}: expected {{stream name: function}} for streams of "
                              f"{list(streams)}")
        self.streams = {
            key: StagedStream(PullSource(dtype, shape, address, timeout=self.timeout, pass_tags=True, hwm=hwm,
                                         bind=bind, context=context, name=f"{self.name}.{key}",
                                         idle_timeout=self.idle_timeout, curve=curve),
                              int(max_pending), self._code, check.get(key))
            for key, (dtype, shape, address) in streams.items()}
        self._reset()

    # ------------------------------------------------------------------ state
    def _reset(self) -> None:
        self.stream_id = None  # the run being paired: the first stream_id seen
        self._run = 0  # its code
        self._ids.clear()
        self._values: list = [None]  # code -> stream id
        self.paired = self.rejected = self.duplicates = 0
        self.last_rejected: str | None = None
        self.accounted = IndexSet()  # indices paired or rejected
        self._dropped_top: int | None = None  # the largest index of the run dropped unpaired or left over
        self._started_at = self._last_waiting_line = time.monotonic()

    def _code(self, stream_id) -> int:
        """A small integer per stream id seen in this run (0: a stream id that cannot be a dict key)."""
        try:
            code = self._ids.get(stream_id)
            if code is None:
                code = self._ids[stream_id] = len(self._values)
                self._values.append(stream_id)
        except TypeError:
            return 0
        return code

    @property
    def sources(self) -> dict[str, PullSource]:
        """The PULL source of each stream (endpoints and wire counters)."""
        return {key: stream.source for key, stream in self.streams.items()}

    @property
    def first_index(self) -> int | None:
        """The smallest index accounted for (None before the first)."""
        return self.accounted.first

    @property
    def last_index(self) -> int | None:
        """The largest index accounted for."""
        return self.accounted.last

    @property
    def largest_index(self) -> int | None:
        """The largest index of the run seen on any stream, paired or not (None before one)."""
        tops = [i for i in (self.accounted.last, self._dropped_top) if i is not None]
        return max(tops) if tops else None

    def _dropped(self, index: int) -> None:
        if self._dropped_top is None or index > self._dropped_top:
            self._dropped_top = index

    @property
    def gaps(self) -> int:
        """Indices between the smallest and the largest accounted for that were not."""
        if self.first_index is None:
            return 0
        return self.last_index - self.first_index + 1 - len(self.accounted)

    def stats(self) -> dict:
        """Pairing counters, per stream and in all."""
        return {"stream_id": self.stream_id, "paired": self.paired, "rejected": self.rejected,
                "last_rejected": self.last_rejected, "duplicates": self.duplicates,
                "first_index": self.first_index, "last_index": self.last_index, "gaps": self.gaps,
                "largest_index": self.largest_index,
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
        return produced or WORK_WAITING  # a stream's next items are still on their way

    def _wait(self, streams: list[StagedStream]) -> None:
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

    def _finished(self, streams: list[StagedStream]) -> bool:
        """True when a stream has ended with nothing staged: count what the others still hold."""
        if not any(s.source.ended and not s.available for s in streams):
            return False
        for s in streams:
            if self._run and s.available:
                ours = s.indices[np.abs(s.codes) == self._run]
                if len(ours):
                    self._dropped(int(ours.max()))
            s.leftover += s.discard()
        return True

    def _pair(self, streams: list[StagedStream], outputs) -> int:
        """Pair the staged items into `outputs`; returns how many pairs were written.

        Item by item: skip (and count) a head item without a sequence tag or of another run;
        if the heads' indices differ, drop those behind the largest (counted as duplicates if
        that index was accounted for, else as unpaired); otherwise the heads hold one index:
        dropped as a duplicate if it was accounted for, as rejected if a stream's check
        refused its item, else a pair.  Where every head holds the run's items with equal
        indices that continue the largest index so far, that stretch is paired at once (the
        same outcome)."""
        room = len(outputs[0])
        avail = [s.available for s in streams]
        codes = [s.codes for s in streams]
        indices = [s.indices for s in streams]
        heads = [0] * len(streams)
        picks: list[list[list[int]]] = [[] for _ in streams]  # [start, stop) runs of paired positions
        produced = 0
        while produced < room:
            span = min(room - produced, *(a - h for a, h in zip(avail, heads)))
            if span <= 0:
                break
            if self._run:
                count = self._stretch(codes, indices, heads, span)
                if count:
                    for i, h in enumerate(heads):
                        _extend(picks[i], h, h + count)
                        heads[i] = h + count
                    self.accounted.add(int(indices[0][heads[0] - count]), count)
                    self.paired += count
                    produced += count
                    continue
            if not self._drop_unusable(streams, codes, heads):
                continue
            index = int(max(indices[i][heads[i]] for i in range(len(streams))))
            behind = [i for i in range(len(streams)) if indices[i][heads[i]] < index]
            for i in behind:
                if int(indices[i][heads[i]]) in self.accounted:
                    self.duplicates += 1
                else:
                    streams[i].unpaired += 1
                    self._dropped(int(indices[i][heads[i]]))
                heads[i] += 1
            if behind:
                continue
            refused = [s.reasons.get(s.head + h) for s, h, c in zip(streams, heads, codes) if c[h] < 0]
            if index in self.accounted:
                self.duplicates += 1
            elif refused:
                self.accounted.add(index)
                self.rejected += 1
                self.last_rejected = f"item {index}: {refused[0]}"
            else:
                self.accounted.add(index)
                self.paired += 1
                for i, h in enumerate(heads):
                    _extend(picks[i], h, h + 1)
                produced += 1
            for i in range(len(heads)):
                heads[i] += 1
        for port, (s, ranges, head) in enumerate(zip(streams, picks, heads)):
            if produced:
                self._emit(s, port, outputs[port], ranges, produced)
            s.consume(head)
        return produced

    def _stretch(self, codes, indices, heads, span: int) -> int:
        """How many items from the heads on every stream holds of the run, with equal indices
        that continue the largest index accounted for (so none of them is a duplicate)."""
        h0 = heads[0]
        first = indices[0][h0:h0 + span]
        start = self.accounted.last
        if start is None or first.dtype == object or start >= _INT64_MAX - span:
            return 0
        same = (codes[0][h0:h0 + span] == self._run) & (first == np.arange(start + 1, start + 1 + span))
        for c, x, h in zip(codes[1:], indices[1:], heads[1:]):
            same &= (c[h:h + span] == self._run) & (x[h:h + span] == first)
        return span if same.all() else int(np.argmin(same))

    def _drop_unusable(self, streams, codes, heads) -> bool:
        """Skip (and count) head items without a tag or of another run; True if every head is usable."""
        usable = True
        for i, s in enumerate(streams):
            code = abs(int(codes[i][heads[i]]))  # (negative: an item its stream's check refused)
            if not code:
                s.untagged += 1
            elif not self._run or code == self._run:
                if not self._run:
                    self._run, self.stream_id = code, self._values[code]
                continue
            else:
                s.foreign += 1
            heads[i] += 1
            usable = False
        return usable

    def _emit(self, s: StagedStream, port: int, out: np.ndarray, ranges: list[list[int]], n: int) -> None:
        """Copy the picked staged items to `out`, with their tags (other than the sequence tags)."""
        s.copy(ranges, out)
        head, first = s.head, s.tag_head
        last = bisect.bisect_left(s.tag_pos, head + ranges[-1][1], first)
        if last == first:
            return
        base = self.detail.writers[port].nwritten
        positions, tags = s.tag_pos[first:last], s.tag_list[first:last]
        if len(ranges) == 1 and ranges[0][0] == 0:  # the usual case: the first n staged items
            shift = base - head
            moved = [_new_tag(Tag, (shift + p, t.key, t.value, t.srcid)) for p, t in zip(positions, tags)]
        else:
            output, k = {}, 0
            for start, stop in ranges:
                for rel in range(start, stop):
                    output[head + rel] = k
                    k += 1
            moved = [_new_tag(Tag, (base + output[p], t.key, t.value, t.srcid)) for p, t in zip(positions, tags)
                     if p in output]
        if moved:
            _add_tags(self.detail.writers[port], moved)


def _extend(ranges: list[list[int]], start: int, stop: int) -> None:
    """Append ``[start, stop)`` to `ranges`, merged with the last run when they touch."""
    if ranges and ranges[-1][1] == start:
        ranges[-1][1] = stop
    else:
        ranges.append([start, stop])


def _add_tags(writer, tags: list[Tag]) -> None:
    """Add tags of non-decreasing offsets, after the writer's tags at equal offsets."""
    buffer = getattr(writer, "buffer", None)
    if buffer is not None and hasattr(buffer, "add_sorted_tags"):
        buffer.add_sorted_tags(tags)
    else:
        for tag in tags:
            writer.add_tag(tag)
