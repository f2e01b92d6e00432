"""Generic blocks that know nothing about radio: vector source / sink, null sink, tagger."""

from __future__ import annotations

from typing import Iterable

import numpy as np

from ..errors import ShapeError
from .block import WORK_DONE, Block, SinkBlock, SourceBlock
from .ports import port
from .tags import Tag


class VectorSource(SourceBlock):
    """Emit the items of `data` (shape ``(n, *item_shape)``) with the given tags, then end."""

    waits_for_external_input = False

    def __init__(self, data, tags: Iterable = (), item_shape=None, dtype=None, name=None):
        data = np.asarray(data, dtype=dtype)
        if item_shape is not None and tuple(data.shape[1:]) != tuple(item_shape):
            raise ShapeError(f"VectorSource: data has item shape {tuple(data.shape[1:])}, "
                             f"expected {tuple(item_shape)}")
        if data.ndim == 0:
            raise ShapeError("VectorSource: data must have at least one dimension (the item axis)")
        super().__init__(out_sig=[port(data.dtype, data.shape[1:])], name=name)
        self.data = data
        self.tags = [t if isinstance(t, Tag) else Tag(*t) for t in tags]
        for tag in self.tags:
            if not 0 <= tag.offset < len(data):
                raise ShapeError(f"VectorSource: tag {tag.key!r} at offset {tag.offset} is outside "
                                 f"the {len(data)} items")
        self._pos = 0

    def start(self) -> None:
        self._pos = 0

    def work(self, inputs, outputs):
        out = outputs[0]
        n = min(len(out), len(self.data) - self._pos)
        if n <= 0:
            return WORK_DONE
        out[:n] = self.data[self._pos:self._pos + n]
        for tag in self.tags:
            if self._pos <= tag.offset < self._pos + n:
                self.add_tag(0, tag.offset, tag.key, tag.value, tag.srcid)
        self._pos += n
        return n


class VectorSink(SinkBlock):
    """Collect every item and tag it receives (`data`, `tags`).

    With `limit`, it keeps the first `limit` items and then ends (returns `WORK_DONE`),
    which ends a flowgraph fed by endless sources.
    """

    def __init__(self, dtype, item_shape=(), limit: int | None = None, name=None):
        super().__init__(in_sig=[port(dtype, item_shape)], name=name)
        self.limit = limit
        self._chunks: list[np.ndarray] = []
        self._count = 0
        self.tags: list[Tag] = []

    def work(self, inputs, outputs):
        x = inputs[0]
        if self.limit is not None:
            if self._count >= self.limit:
                return WORK_DONE
            x = x[:self.limit - self._count]
        self._count += len(x)
        start = self.nitems_read(0)
        self.tags.extend(self.get_tags_in_range(0, start, start + len(x)))
        self._chunks.append(np.array(x))
        return len(x)

    @property
    def data(self) -> np.ndarray:
        spec = self.in_sig[0]
        if not self._chunks:
            return np.empty((0, *spec.shape), dtype=spec.dtype)
        return np.concatenate(self._chunks)

    def reset(self) -> None:
        self._count = 0
        self._chunks.clear()
        self.tags.clear()


class NullSink(SinkBlock):
    """Consume and discard items (connect unused outputs here explicitly)."""

    def __init__(self, dtype, item_shape=(), name=None):
        super().__init__(in_sig=[port(dtype, item_shape)], name=name)

    def work(self, inputs, outputs):
        return len(inputs[0])


class MessageCollector(Block):
    """A message-only block that records every message posted to its ``in`` port."""

    def __init__(self, name=None):
        super().__init__(name=name)
        self.messages: list = []
        self.message_port_register_in("in", self.messages.append)


class TagFilter(Block):
    """Pass items through unchanged, dropping tags whose key is in `drop_keys` on every item
    from absolute offset `from_item` on (e.g. labels after the first N frames)."""

    tag_propagation = "none"

    def __init__(self, dtype, item_shape=(), drop_keys: Iterable[str] = (), from_item: int = 0, name=None):
        super().__init__(in_sig=[port(dtype, item_shape)], out_sig=[port(dtype, item_shape)], name=name)
        self.drop_keys = frozenset(drop_keys)
        self.from_item = int(from_item)

    def work(self, inputs, outputs):
        n = len(inputs[0])
        outputs[0][:n] = inputs[0]
        start = self.nitems_read(0)
        shift = self.nitems_written(0) - start
        for tag in self.get_tags_in_range(0, start, start + n):
            if tag.key in self.drop_keys and tag.offset >= self.from_item:
                continue
            self.add_tag(0, tag.offset + shift, tag.key, tag.value, tag.srcid)
        return n
