"""Stream buffers between blocks: one writer, any number of readers (fan-out), tags.

Two layouts with one interface (`space`, `write_view`, `commit`, `view_at`, the tag
methods), both handing work() contiguous zero-copy views:

* `Buffer` (the single-thread scheduler): a linear array of ``capacity`` items.  The
  writer fills a contiguous window at its end; when the tail runs out of room, the
  unread items are moved to the front (compaction).  Compaction only happens in the
  writer's turn, after all readers of the previous items have run.
* `RingBuffer` (the threaded scheduler, where readers run while the writer writes): a
  ring that never moves an item, so a reader's view stays valid while the writer fills
  the free part.  A write that does not fit before the end of the array starts again
  at the front (a bip buffer); the skipped tail is left unused until the ring wraps.
  A read that would straddle such a jump (rare: batches are aligned) is copied.
"""

from __future__ import annotations

import bisect
import threading
from collections import deque
from operator import attrgetter

import numpy as np

from .ports import PortSpec
from .tags import Tag

_offset = attrgetter("offset")


class Buffer:
    """Items of one output port, with the tags attached to them."""

    def __init__(self, spec: PortSpec, capacity: int):
        self.spec = spec
        self.data = np.empty((capacity, *spec.shape), dtype=spec.dtype)
        # Readers slice this read-only view of `data`: their slices are read-only too.
        self.readonly = self.data.view()
        self.readonly.flags.writeable = False
        self.capacity = capacity
        self.base = 0  # absolute offset of data[0]
        self.nwritten = 0  # absolute offset one past the last item written
        self.readers: list[Reader] = []
        self._tag_offsets: list[int] = []
        self._tags: list[Tag] = []
        self._late: list[Tag] = []  # tags added out of offset order, merged in by `_settle`
        self.done = False  # the writer will write no more

    # ------------------------------------------------------------------ writer
    def space(self) -> int:
        """How many items can be written now (after compaction if needed)."""
        oldest = self.nwritten
        for reader in self.readers:
            if reader.nread < oldest:
                oldest = reader.nread
        free_tail = self.capacity - (self.nwritten - self.base)
        if free_tail < self.capacity // 2 and oldest > self.base:
            self._compact(oldest)
            free_tail = self.capacity - (self.nwritten - self.base)
        return free_tail

    def _compact(self, oldest: int) -> None:
        unread = self.nwritten - oldest
        if unread:
            start = oldest - self.base
            self.data[:unread] = self.data[start:start + unread]
        self.base = oldest
        self._prune_tags(oldest)

    def write_view(self, n: int) -> np.ndarray:
        start = self.nwritten - self.base
        return self.data[start:start + n]

    def view_at(self, offset: int, n: int) -> np.ndarray:
        """Read-only view of the `n` items from absolute `offset` on."""
        start = offset - self.base
        return self.readonly[start:start + n]

    def fill(self) -> int:
        """Items held that some reader has not consumed yet."""
        return self.nwritten - min((r.nread for r in self.readers), default=self.nwritten)

    def commit(self, n: int) -> None:
        self.nwritten += n
        if not self.readers:
            # Nothing reads this buffer (a harness with outputs collected elsewhere): recycle it.
            self.base = self.nwritten
            self._prune_tags(self.nwritten)

    #: A tag out of offset order is inserted at once when it lands among the last this many;
    #: further back it waits in `_late` and all such tags are merged in with one sort before the
    #: next read (n tags in decreasing order: O(n log n), not n list inserts of O(n) each).
    INSERT_WINDOW = 64

    def add_tag(self, tag: Tag) -> None:
        """Add one tag: after the tags already at an equal offset."""
        offsets = self._tag_offsets
        if not self._late:
            if not offsets or tag.offset >= offsets[-1]:
                offsets.append(tag.offset)
                self._tags.append(tag)
                return
            index = bisect.bisect_right(offsets, tag.offset)
            if len(offsets) - index <= self.INSERT_WINDOW:
                offsets.insert(index, tag.offset)
                self._tags.insert(index, tag)
                return
        self._late.append(tag)  # once one waits, every later tag waits too (the order on ties)

    def _settle(self) -> None:
        """Merge the tags waiting in `_late` (one stable sort of them and the tags they overtake)."""
        if self._late:
            late, self._late = self._late, []
            self._merge(late, min(tag.offset for tag in late))

    def add_sorted_tags(self, tags: list[Tag]) -> None:
        """Add tags whose offsets do not decrease (as `tags_in_range` returns them).

        The same order as `add_tag` one by one: after the tags already at an equal offset.
        """
        self._settle()
        self._merge(tags, tags[0].offset)

    def _merge(self, tags: list[Tag], lowest: int) -> None:
        offsets = self._tag_offsets
        cut = len(offsets)
        if offsets and lowest < offsets[-1]:
            cut = bisect.bisect_right(offsets, lowest)
        merged = sorted(self._tags[cut:] + tags, key=_offset)  # stable: old tags first on ties
        self._tags[cut:] = merged
        offsets[cut:] = [tag.offset for tag in merged]

    def _prune_tags(self, oldest: int) -> None:
        self._settle()
        cut = bisect.bisect_left(self._tag_offsets, oldest)
        if cut:
            del self._tag_offsets[:cut]
            del self._tags[:cut]

    def tags_in_range(self, start: int, end: int, key: str | None) -> list[Tag]:
        self._settle()
        offsets = self._tag_offsets
        if not offsets or offsets[-1] < start:
            return []
        lo = bisect.bisect_left(self._tag_offsets, start)
        hi = bisect.bisect_left(self._tag_offsets, end)
        tags = self._tags[lo:hi]
        if key is not None:
            tags = [t for t in tags if t.key == key]
        return tags

    def add_reader(self) -> Reader:
        reader = Reader(self)
        self.readers.append(reader)
        return reader


class RingBuffer(Buffer):
    """`Buffer`'s interface on a ring that never moves an item (see the module docstring).

    Thread safety: one writer thread and one thread per reader.  The item counters are
    plain ints written by one thread each; the layout (the segments) and the tags are
    changed under a lock.  A reader's unread items are never overwritten: the writer only
    writes where every reader has passed.
    """

    def __init__(self, spec: PortSpec, capacity: int):
        super().__init__(spec, capacity)
        self._lock = threading.Lock()
        # Runs of items stored contiguously: [absolute start, absolute end, physical start].
        self._segments: deque[list[int]] = deque()
        self._end = self._tail = 0  # where the data ends and the room after it, as `space()` found
        self._head = 0  # physical position of the current write

    def _layout(self) -> tuple[int, int, int]:
        """Release what every reader has consumed; return (physical end of the data, the free
        room after it, the free room at the front of the array)."""
        oldest = min((r.nread for r in self.readers), default=self.nwritten)
        segments = self._segments
        while segments and segments[0][1] <= oldest:
            segments.popleft()
        if oldest > self.base:
            self.base = oldest
            self._prune_tags(oldest)
        if not segments:
            return 0, self.capacity, 0
        first, last = segments[0], segments[-1]
        start = first[2] + (oldest - first[0])
        end = last[2] + (last[1] - last[0])
        if len(segments) > 1:  # wrapped (a later run starts at the front): the free room lies between
            return end, start - end, 0
        return end, self.capacity - end, start

    def space(self) -> int:
        """The most items one write can take now: after the data, or at the front when more
        room is free there (the write then starts at the front: see `write_view`)."""
        with self._lock:
            self._end, self._tail, front = self._layout()
        return max(self._tail, front)

    def write_view(self, n: int) -> np.ndarray:
        """Room for `n` items (at most what `space()` said): after the data when they fit there."""
        self._head = self._end if n <= self._tail else 0
        return self.data[self._head:self._head + n]

    def commit(self, n: int) -> None:
        with self._lock:
            segments = self._segments
            last = segments[-1] if segments else None
            if last is not None and last[2] + (last[1] - last[0]) == self._head:
                last[1] += n
            else:
                segments.append([self.nwritten, self.nwritten + n, self._head])
            self.nwritten += n
            if not self.readers:
                self._layout()

    def view_at(self, offset: int, n: int) -> np.ndarray:
        with self._lock:
            for start, end, phys in self._segments:
                if start <= offset < end:
                    if offset + n <= end:
                        first = phys + offset - start
                        return self.readonly[first:first + n]
                    break
            else:
                if n == 0:
                    return self.readonly[:0]
                raise IndexError(f"items {offset}..{offset + n} are not held by this buffer")
            pieces, left = [], n
            for start, end, phys in self._segments:  # straddles a jump: copy the pieces
                if end <= offset or left == 0:
                    continue
                lo = max(start, offset)
                take = min(end - lo, left)
                pieces.append(self.data[phys + lo - start:phys + lo - start + take])
                left -= take
        joined = np.concatenate(pieces)
        joined.flags.writeable = False
        return joined

    def add_tag(self, tag: Tag) -> None:
        with self._lock:
            super().add_tag(tag)

    def add_sorted_tags(self, tags: list[Tag]) -> None:
        with self._lock:
            super().add_sorted_tags(tags)

    def tags_in_range(self, start: int, end: int, key: str | None) -> list[Tag]:
        with self._lock:
            return super().tags_in_range(start, end, key)


class Reader:
    """One consumer's position in a `Buffer`."""

    __slots__ = ("buffer", "nread")

    def __init__(self, buffer: Buffer):
        self.buffer = buffer
        self.nread = buffer.base

    def available(self) -> int:
        return self.buffer.nwritten - self.nread

    def read_view(self, n: int) -> np.ndarray:
        return self.buffer.view_at(self.nread, n)

    def tags_in_range(self, start: int, end: int, key: str | None = None) -> list[Tag]:
        return self.buffer.tags_in_range(start, end, key)

    @property
    def exhausted(self) -> bool:
        """The writer is done and everything it wrote has been read."""
        return self.buffer.done and self.available() == 0


class Writer:
    """A block's handle on one of its output buffers."""

    __slots__ = ("buffer",)

    def __init__(self, buffer: Buffer):
        self.buffer = buffer

    @property
    def nwritten(self) -> int:
        return self.buffer.nwritten

    def add_tag(self, tag: Tag) -> None:
        self.buffer.add_tag(tag)
