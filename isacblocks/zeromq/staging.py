"""`StagedStream`: one stream of a `PairedPullSource`, its received messages staged for pairing.

The items of each message stay where ZeroMQ received them (`PullSource.take`) until they are
copied once, into the output; per staged item the code of its stream id and its index are kept
as arrays (decoded by `SeqDecoder`, the fixed-layout fast path of `isacblocks.zeromq.seqtags`, with
the general decoder for anything else), so pairing compares arrays.
"""

from __future__ import annotations

import bisect
from collections import deque

import numpy as np

from ..core.tags import Tag
from .endpoint import SEQ_KEY
from .seqdecoder import SeqDecoder
from .sources import Pending, PullSource

__all__ = ["StagedStream"]

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_UINT64_MAX = 2**64 - 1
_NO_TAGS: dict = {}


class StagedStream:
    """One received stream: its PULL source, the messages staged from it, and counters.

    Staged items have positions counted from the start of the run (`head` is the first
    not yet paired or dropped).  Per staged item, `codes` holds the code of its stream id
    (`PairedPullSource._code`; 0: no valid sequence tag) and `indices` its index; the other
    tags are `tag_list`, with their items' positions in `tag_pos` (sorted), from `tag_head` on
    (tags keep the sender's offset until output).  An item that `check` refuses keeps its
    code negated, and the reason in `reasons` (by position).
    """

    def __init__(self, source: PullSource, capacity: int, code, check=None):
        self.source = source
        self.capacity = capacity
        self._code = code
        self.check = check
        source._seq_decoder = SeqDecoder(SEQ_KEY)
        self.reset()

    def reset(self) -> None:
        """Nothing staged, zero counters."""
        self.chunks: deque[np.ndarray] = deque()  # staged messages' items, in order
        self.chunk_start = 0  # position of chunks[0][0]
        self.head = 0
        self.staged = 0  # position of the next item to stage
        self.codes = np.zeros(0, np.int64)  # from position `head` on
        self.indices = np.zeros(0, np.int64)
        self.tag_pos: list[int] = []
        self.tag_list: list[Tag] = []
        self.tag_head = 0
        self.reasons: dict[int, str] = {}
        self.foreign = self.unpaired = self.leftover = self.untagged = 0

    @property
    def available(self) -> int:
        return self.staged - self.head

    def receive(self) -> int:
        """Stage the messages that have arrived, up to `capacity` items (no waiting)."""
        n = 0
        while self.available < self.capacity:
            pending = self.source.take(wait=False)
            if pending is None:
                break
            self._stage(pending)
            n += len(pending.items)
        return n

    def discard(self) -> int:
        """Drop what is staged and what has arrived (no waiting, at most `capacity` more items);
        returns how many items."""
        n = staged = self.available
        self.consume(n)
        while n - staged < self.capacity and (pending := self.source.take(wait=False)) is not None:
            n += len(pending.items)
        return n

    def _stage(self, p: Pending) -> None:
        m = len(p.items)
        codes = np.zeros(m, np.int64)
        indices = np.zeros(m, self.indices.dtype)
        base, first, other = self.staged, p.first, []
        done = 0
        for run in p.runs:  # the header's order: general tags before each run, then the run
            indices = self._general(p.tags[done:run.at], first, m, base, codes, indices, other)
            done = run.at
            inside = run.offsets >= np.uint64(first)
            if first + m <= _UINT64_MAX:  # (a header may claim a first offset near 2**64)
                inside &= run.offsets < np.uint64(first + m)
            rel = (run.offsets[inside] - np.uint64(first)).astype(np.int64)
            if rel.size > 1 and not (np.diff(rel) > 0).all():  # one item tagged twice: the last one counts
                for r, index in zip(rel.tolist(), run.indices[inside].tolist()):
                    codes[r], indices[r] = self._code(run.layout.stream_id), index
            else:
                codes[rel] = self._code(run.layout.stream_id)
                indices[rel] = run.indices[inside]
        indices = self._general(p.tags[done:], first, m, base, codes, indices, other)
        if other:
            other.sort(key=_tag_position)  # stable: the header's order among the tags of one item
        if self.check is not None:
            self._check(other, base, codes)
        if other:
            self.tag_pos += [position for position, _ in other]
            self.tag_list += [tag for _, tag in other]
        if self.indices.dtype != indices.dtype:
            self.indices = self.indices.astype(object)
        self.chunks.append(p.items)
        self.codes = np.concatenate((self.codes, codes))
        self.indices = np.concatenate((self.indices, indices))
        self.staged += m

    def _check(self, other: list, base: int, codes: np.ndarray) -> None:
        """Run `check` on the tags of each staged item (the last value of a key counts, as in
        `Block.frame_tags`); negate the code of an item it refuses and keep the reason."""
        tags: dict[int, dict] = {}
        for position, tag in other:
            tags.setdefault(position, {})[tag.key] = tag.value
        for rel in range(len(codes)):
            reason = self.check(tags.get(base + rel, _NO_TAGS))
            if reason is not None and codes[rel] > 0:
                codes[rel] = -codes[rel]
                self.reasons[base + rel] = reason

    def _general(self, tags, first, m, base, codes, indices, other) -> np.ndarray:
        """Sort generally decoded tags into the sequence arrays and the `other` tags; returns
        `indices` (as an object array if an index does not fit in int64)."""
        for tag in tags:
            rel = tag.offset - first
            if not 0 <= rel < m:  # not on an item of this message (gr-zeromq drops such tags)
                continue
            if tag.key != SEQ_KEY:
                other.append((base + rel, tag))
                continue
            value = tag.value
            if not (isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], int)):
                continue  # not a valid sequence tag: the item counts as untagged unless another is
            code = self._code(value[0])
            if not code:
                continue
            if not _INT64_MIN <= value[1] <= _INT64_MAX and indices.dtype != object:
                indices = indices.astype(object)
            codes[rel], indices[rel] = code, int(value[1])
        return indices

    def consume(self, n: int) -> None:
        """Forget the first `n` staged items (paired, or dropped and counted)."""
        if n <= 0:
            return
        self.head += n
        self.codes, self.indices = self.codes[n:], self.indices[n:]
        chunks = self.chunks
        while chunks and self.chunk_start + len(chunks[0]) <= self.head:
            self.chunk_start += len(chunks.popleft())
        if self.reasons:
            for position in [p for p in self.reasons if p < self.head]:
                del self.reasons[position]
        if self.tag_pos:
            self.tag_head = bisect.bisect_left(self.tag_pos, self.head, self.tag_head)
            if self.tag_head > 4096 or self.tag_head == len(self.tag_pos):
                del self.tag_pos[:self.tag_head], self.tag_list[:self.tag_head]
                self.tag_head = 0

    def copy(self, ranges: list[list[int]], out: np.ndarray) -> None:
        """Copy the staged items of `ranges` (``[start, stop)`` relative to `head`) into `out`, in order."""
        k = 0
        for start, stop in ranges:
            position, pos = self.chunk_start, self.head + start
            for chunk in self.chunks:
                end = position + len(chunk)
                if pos < end and pos < self.head + stop:
                    take = min(end, self.head + stop) - pos
                    out[k:k + take] = chunk[pos - position:pos - position + take]
                    k += take
                    pos += take
                position = end
                if pos >= self.head + stop:
                    break


def _tag_position(entry: tuple[int, Tag]) -> int:
    return entry[0]
