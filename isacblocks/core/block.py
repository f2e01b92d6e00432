"""`Block`: GNU Radio's block contract in Python.

A block declares its stream ports as (dtype, item shape).  The scheduler calls

    work(inputs, outputs) -> int

with ``inputs[i]`` an array of shape ``(n_i, *item_shape_i)`` (read-only view of the
upstream buffer) and ``outputs[j]`` a preallocated buffer of shape
``(m, *item_shape_j)`` to fill.  The return value is the number of items produced.
Blocks with inputs are *sync* blocks (sinks included): they consume as many items
of every input as they produce (for a sink: as many as they return).  A source (no
inputs) returns `WORK_DONE` when its stream has ended.

Stream tags (`Tag`) carry per-item metadata with absolute item offsets; sync blocks
copy every input tag of the consumed range to every output (`tag_propagation =
"all_to_all"`), like GNU Radio's TPP_ALL_TO_ALL.  Message ports carry events that are
not streams (e.g. a newly learned spacing vector).
"""

from __future__ import annotations

import itertools
import re
from collections import deque
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import ConfigError
from .ports import PortSpec, as_port_specs
from .tags import Tag

#: Returned by a source's work() when its stream has ended (GNU Radio's WORK_DONE).
WORK_DONE = -1

_instance_counter: dict[str, itertools.count] = {}


def _default_name(cls: type) -> str:
    base = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", cls.__name__).lower()
    counter = _instance_counter.setdefault(base, itertools.count())
    return f"{base}{next(counter)}"


class Block:
    """Base class of every block.

    Subclasses call ``super().__init__(in_sig=[...], out_sig=[...])`` with `PortSpec`s,
    dtypes, or ``(dtype, shape)`` / ``(name, dtype, shape)`` tuples, and implement `work`.
    """

    #: "all_to_all" (default) copies input tags to every output; "none" drops them
    #: unless the block adds them itself.
    tag_propagation = "all_to_all"

    def __init__(self, in_sig: Sequence = (), out_sig: Sequence = (), name: str | None = None):
        self.name = name or _default_name(type(self))
        self.in_sig: tuple[PortSpec, ...] = as_port_specs(in_sig, "in", self.name)
        self.out_sig: tuple[PortSpec, ...] = as_port_specs(out_sig, "out", self.name)
        self._msg_out: dict[str, list[tuple[Block, str]]] = {}
        self._msg_handlers: dict[str, Callable[[Any], None] | None] = {}
        self._inbox: deque[tuple[str, Any]] = deque()
        # Set by the scheduler (or the harness) while the block runs.
        self._readers: list = []
        self._writers: list = []

    # ------------------------------------------------------------------ contract
    def work(self, inputs: list[np.ndarray], outputs: list[np.ndarray]) -> int:
        """Process ``inputs`` into ``outputs``; return the number of items produced."""
        raise TypeError(f"{type(self).__name__} does not define work()")

    def start(self) -> None:
        """Called once before the first work() of a run."""

    def stop(self) -> None:
        """Called once after the last work() of a run (also after an error)."""

    @property
    def is_source(self) -> bool:
        return not self.in_sig

    # ---------------------------------------------------------------------- tags
    def nitems_read(self, port: int) -> int:
        """Absolute number of items consumed so far on input `port`."""
        return self._readers[port].nread

    def nitems_written(self, port: int) -> int:
        """Absolute number of items produced so far on output `port`."""
        return self._writers[port].nwritten

    def add_tag(self, port: int, offset: int, key: str, value: Any, srcid: str | None = None) -> None:
        """Attach a tag to absolute item `offset` of output `port` (GNU Radio's add_item_tag)."""
        self._writers[port].add_tag(Tag(int(offset), key, value, srcid if srcid is not None else self.name))

    add_item_tag = add_tag

    def get_tags_in_range(self, port: int, start: int, end: int, key: str | None = None) -> list[Tag]:
        """Tags on input `port` with absolute offsets in ``[start, end)``, optionally of one key."""
        return self._readers[port].tags_in_range(start, end, key)

    def get_tags_in_window(self, port: int, rel_start: int, rel_end: int, key: str | None = None) -> list[Tag]:
        """Like `get_tags_in_range`, relative to the first item of the current work() call."""
        base = self.nitems_read(port)
        return self.get_tags_in_range(port, base + rel_start, base + rel_end, key)

    def frame_tags(self, port: int, n: int, key: str) -> list:
        """The value of tag `key` for each of the `n` items of input `port` in this call.

        Items without such a tag give None; when several tags of the key sit on one
        item, the last one added wins.
        """
        base = self.nitems_read(port)
        values: list = [None] * n
        for tag in self.get_tags_in_range(port, base, base + n, key):
            values[tag.offset - base] = tag.value
        return values

    # ------------------------------------------------------------------ messages
    def message_port_register_out(self, port: str) -> None:
        self._msg_out.setdefault(port, [])

    def message_port_register_in(self, port: str, handler: Callable[[Any], None] | None = None) -> None:
        self._msg_handlers[port] = handler

    def set_msg_handler(self, port: str, handler: Callable[[Any], None]) -> None:
        if port not in self._msg_handlers:
            raise ConfigError(f"block {self.name!r}: no input message port {port!r}; "
                              f"registered: {sorted(self._msg_handlers)}")
        self._msg_handlers[port] = handler

    @property
    def message_ports_in(self) -> tuple[str, ...]:
        return tuple(self._msg_handlers)

    @property
    def message_ports_out(self) -> tuple[str, ...]:
        return tuple(self._msg_out)

    def message_port_pub(self, port: str, msg: Any) -> None:
        """Publish `msg` to every subscriber of output message port `port`."""
        if port not in self._msg_out:
            raise ConfigError(f"block {self.name!r}: no output message port {port!r}; "
                              f"registered: {sorted(self._msg_out)}")
        for dst, dst_port in self._msg_out[port]:
            dst.post(dst_port, msg)

    def _subscribe(self, port: str, dst: "Block", dst_port: str) -> None:
        self._msg_out[port].append((dst, dst_port))

    def post(self, port: str, msg: Any) -> None:
        """Queue `msg` for input message port `port`; handled before the block's next work()."""
        if port not in self._msg_handlers:
            raise ConfigError(f"block {self.name!r}: no input message port {port!r}; "
                              f"registered: {sorted(self._msg_handlers)}")
        self._inbox.append((port, msg))

    def handle_messages(self) -> int:
        """Deliver the queued messages to their handlers; returns how many were handled."""
        handled = 0
        while self._inbox:
            port, msg = self._inbox.popleft()
            handler = self._msg_handlers.get(port)
            if handler is not None:
                handler(msg)
            handled += 1
        return handled

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


class SyncBlock(Block):
    """A block with inputs that produces one output item per input item."""


class SourceBlock(Block):
    """A block with no inputs; `work` returns `WORK_DONE` at the end of its stream."""

    def __init__(self, out_sig: Sequence, name: str | None = None):
        super().__init__(in_sig=(), out_sig=out_sig, name=name)


class SinkBlock(Block):
    """A block with no outputs; `work` returns how many items it consumed."""

    def __init__(self, in_sig: Sequence, name: str | None = None):
        super().__init__(in_sig=in_sig, out_sig=(), name=name)
