"""Stream buffers between blocks: one writer, any number of readers (fan-out), tags.

A buffer is a linear array of ``capacity`` items.  The writer fills a contiguous
window at its end; readers see contiguous views of what they have not consumed.
When the tail runs out of room, the unread items are moved to the front (compaction),
so every view handed to work() is contiguous and zero-copy.  Compaction only happens
in the writer's turn, after all readers of the previous items have run.
"""

from __future__ import annotations

import bisect
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

    def commit(self, n: int) -> None:
        self.nwritten += n
        if not self.readers:
            # Nothing reads this buffer (a harness with outputs collected elsewhere): recycle it.
            self.base = self.nwritten
            self._prune_tags(self.nwritten)

    def add_tag(self, tag: Tag) -> None:
        offsets = self._tag_offsets
        if not offsets or tag.offset >= offsets[-1]:
            offsets.append(tag.offset)
            self._tags.append(tag)
            return
        index = bisect.bisect_right(offsets, tag.offset)
        offsets.insert(index, tag.offset)
        self._tags.insert(index, tag)

    def add_sorted_tags(self, tags: list[Tag]) -> None:
        """Add tags whose offsets do not decrease (as `tags_in_range` returns them).

        The same order as `add_tag` one by one: after the tags already at an equal offset.
        """
        offsets = self._tag_offsets
        cut = len(offsets)
        if offsets and tags[0].offset < offsets[-1]:
            cut = bisect.bisect_right(offsets, tags[0].offset)
        merged = sorted(self._tags[cut:] + tags, key=_offset)  # stable: old tags first on ties
        self._tags[cut:] = merged
        offsets[cut:] = [tag.offset for tag in merged]

    def _prune_tags(self, oldest: int) -> None:
        cut = bisect.bisect_left(self._tag_offsets, oldest)
        if cut:
            del self._tag_offsets[:cut]
            del self._tags[:cut]

    def tags_in_range(self, start: int, end: int, key: str | None) -> list[Tag]:
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


class Reader:
    """One consumer's position in a `Buffer`."""

    __slots__ = ("buffer", "nread")

    def __init__(self, buffer: Buffer):
        self.buffer = buffer
        self.nread = buffer.base

    def available(self) -> int:
        return self.buffer.nwritten - self.nread

    def read_view(self, n: int) -> np.ndarray:
        buf = self.buffer
        start = self.nread - buf.base
        return buf.readonly[start:start + n]

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
