"""Generic blocks that know nothing about radio: vector source / sink, null sink, tagger, head,
throttle, tag debug."""

from __future__ import annotations

import time
from collections.abc import Iterable

import numpy as np

from ..errors import ConfigError, ShapeError
from ..validation import check_int, is_real
from .block import WORK_DONE, WORK_WAITING, Block, GeneralBlock, SinkBlock, SourceBlock
from .ports import port
from .tags import Tag


class VectorSource(SourceBlock):
    """Emit the items of `data` (shape ``(n, *item_shape)``) with the given tags, then end.

    Output
    ------
    out0 : [n, *item_shape], dtype
        The items of `data`, with its tags.
    """

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

    Input
    -----
    in0 : [n, *item_shape], dtype
        Collected in `data`, tags in `tags`.
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
    """Consume and discard items (connect unused outputs here explicitly).

    Input
    -----
    in0 : [n, *item_shape], dtype
        Discarded.
    """

    def __init__(self, dtype, item_shape=(), name=None):
        super().__init__(in_sig=[port(dtype, item_shape)], name=name)

    def work(self, inputs, outputs):
        return len(inputs[0])


class MessageCollector(Block):
    """A message-only block that records every message posted to its ``in`` port.

    Messages
    --------
    in (in)
        Every message, appended to `messages`.
    """

    def __init__(self, name=None):
        super().__init__(name=name)
        self.messages: list = []
        self.message_port_register_in("in", self.messages.append)


class TagFilter(Block):
    """Pass items through unchanged, dropping tags whose key is in `drop_keys` on every item
    from absolute offset `from_item` on (e.g. labels after the first N frames).

    Input
    -----
    in0 : [n, *item_shape], dtype
        Any items.

    Output
    ------
    out0 : [n, *item_shape], dtype
        The same items, without the dropped tags.
    """

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


class Head(GeneralBlock):
    """Pass the first `n` items, then end (GNU Radio's ``blocks.head``).

    It ends as soon as the `n`-th item has passed, even if no more input ever comes
    (e.g. after an idle network source).

    Input
    -----
    in0 : [n, *item_shape], dtype
        Any items.

    Output
    ------
    out0 : [n, *item_shape], dtype
        The first `n` of them.
    """

    def __init__(self, dtype, item_shape=(), n: int = 0, name=None):
        super().__init__(in_sig=[port(dtype, item_shape)], out_sig=[port(dtype, item_shape)], name=name)
        self.n = check_int(self.name, "n", n, 0)
        self.count = 0

    def reset(self) -> None:
        self.count = 0

    def forecast(self, noutput_items, ninputs):
        return [0 if self.count >= self.n else 1]

    def general_work(self, inputs, outputs):
        m = min(len(inputs[0]), len(outputs[0]), self.n - self.count)
        if m <= 0:
            return WORK_DONE
        outputs[0][:m] = inputs[0][:m]
        self.count += m
        self.consume(0, m)
        return m


class Throttle(Block):
    """Pass items at `items_per_second` on average (GNU Radio's ``blocks.throttle``).

    Item k leaves at ``t0 + k / items_per_second`` (t0: the first work() call).  Between
    items it sleeps (no busy wait) at most `max_sleep` s at a time and wakes at once when
    the flowgraph is asked to stop.

    Input
    -----
    in0 : [n, *item_shape], dtype
        Any items.

    Output
    ------
    out0 : [n, *item_shape], dtype
        The same items, at most `items_per_second`.
    """

    waits_for_external_input = True  # it waits for the clock

    def __init__(self, dtype, item_shape=(), items_per_second: float = 1.0, max_sleep: float = 0.05, name=None):
        super().__init__(in_sig=[port(dtype, item_shape)], out_sig=[port(dtype, item_shape)], name=name)
        if not is_real(items_per_second) or not np.isfinite(items_per_second) or items_per_second <= 0:
            raise ConfigError(f"{self.name}: items_per_second = {items_per_second!r}: must be a finite number > 0")
        if not is_real(max_sleep) or not 0 < max_sleep <= 10:
            raise ConfigError(f"{self.name}: max_sleep = {max_sleep!r}: must lie in (0, 10] s")
        self.rate = float(items_per_second)
        self.max_sleep = float(max_sleep)
        self.reset()

    def reset(self) -> None:
        self._t0: float | None = None
        self.count = 0

    def work(self, inputs, outputs):
        now = time.monotonic()
        if self._t0 is None:
            self._t0 = now
        allowed = int((now - self._t0) * self.rate) + 1 - self.count
        if allowed <= 0:
            due = self._t0 + self.count / self.rate
            if self.sleep(min(self.max_sleep, due - now)):
                return WORK_WAITING
            allowed = int((time.monotonic() - self._t0) * self.rate) + 1 - self.count
            if allowed <= 0:
                return WORK_WAITING
        m = min(len(inputs[0]), allowed)
        outputs[0][:m] = inputs[0][:m]
        self.count += m
        return m


class TagDebug(SinkBlock):
    """Print and collect the tags it sees (GNU Radio's ``blocks.tag_debug``).

    `key_filter` keeps only tags of that key; ``display=False`` collects without printing.
    `tags` holds every tag seen in this run; `current_tags()` those of the last work() call.

    Input
    -----
    in0 : [n, *item_shape], dtype
        Any items; their tags are kept (and printed).
    """

    def __init__(self, dtype, item_shape=(), label: str = "", key_filter: str | None = None,
                 display: bool = True, name=None):
        super().__init__(in_sig=[port(dtype, item_shape)], name=name)
        self.label = label or self.name
        self.key_filter = key_filter or None
        self.display = bool(display)
        self.tags: list[Tag] = []
        self._current: list[Tag] = []

    def reset(self) -> None:
        self.tags = []
        self._current = []

    def set_key_filter(self, key: str | None) -> None:
        self.key_filter = key or None

    def set_display(self, display: bool) -> None:
        self.display = bool(display)

    def current_tags(self) -> list[Tag]:
        return list(self._current)

    def num_tags(self) -> int:
        return len(self.tags)

    def work(self, inputs, outputs):
        n = len(inputs[0])
        start = self.nitems_read(0)
        self._current = self.get_tags_in_range(0, start, start + n, self.key_filter)
        if self._current:
            self.tags.extend(self._current)
            if self.display:
                lines = ["-" * 70, f"Tag Debug: {self.label}", "Input Stream: 00"]
                lines += [f"  Offset: {t.offset}  Source: {t.srcid}  Key: {t.key}  Value: {t.value!r}"
                          for t in self._current]
                lines.append("-" * 70)
                print("\n".join(lines), flush=True)
        return n
