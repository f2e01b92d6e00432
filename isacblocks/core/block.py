"""`Block`: GNU Radio's block contract in Python.

A block declares its stream ports as (dtype, item shape).  The scheduler calls

    work(inputs, outputs) -> int

with ``inputs[i]`` an array of shape ``(n_i, *item_shape_i)`` (read-only view of the
upstream buffer) and ``outputs[j]`` a preallocated buffer of shape
``(m, *item_shape_j)`` to fill.  The return value is the number of items produced.
Plain blocks with inputs are *sync* blocks (sinks included): they consume as many items
of every input as they produce (for a sink: as many as they return).  `DecimBlock` and
`InterpBlock` change the rate by a fixed factor; a `GeneralBlock` implements
``general_work()`` and says what it consumed (GNU Radio's general block).  A source (no
inputs) returns `WORK_DONE` when its stream has ended.

Stream tags (`Tag`) carry per-item metadata with absolute item offsets; sync blocks
copy every input tag of the consumed range to every output (`tag_propagation =
"all_to_all"`), like GNU Radio's TPP_ALL_TO_ALL.  Message ports carry events that are
not streams (e.g. a newly learned spacing vector).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import numpy as np

from ..errors import BlockError, ConfigError
from ..validation import check_int, is_integer
from .detail import BlockDetail
from .messages import MessagePorts
from .ports import PortSpec, as_port_specs
from .tags import Tag

#: Returned by a source's work() when its stream has ended (GNU Radio's WORK_DONE).
WORK_DONE = -1

#: Returned by a general block's general_work() that called `produce()` per output port
#: (GNU Radio's WORK_CALLED_PRODUCE).
WORK_CALLED_PRODUCE = -2

#: Returned by work() that produced nothing because it waits for the world outside the
#: flowgraph (a socket, a device, the clock): the scheduler calls it again soon, and a
#: flowgraph in which nothing moves is not reported as stuck while a block says so
#: (FutureSDR's ``WorkIo::block_on``, GNU Radio 4's work status).  A work() that returns
#: 0 instead says that it waits for more input or output room inside the flowgraph.
WORK_WAITING = -3

#: The tag propagation policies (GNU Radio's TPP_ALL_TO_ALL, TPP_ONE_TO_ONE, TPP_DONT).
TAG_POLICIES = ("all_to_all", "one_to_one", "none")


class StreamWarning(RuntimeWarning):
    """Items that reached a block but were never consumed: a partial frame left at the end of
    a stream (fewer items than a decimating or general block needs), or streams of unequal
    length feeding one block.  The counts are also in `Flowgraph.dropped`."""

_instance_counter: dict[str, itertools.count] = {}


def _default_name(cls: type) -> str:
    base = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", cls.__name__).lower()
    counter = _instance_counter.setdefault(base, itertools.count())
    return f"{base}{next(counter)}"


class Block(MessagePorts):
    """Base class of every block.

    Subclasses call ``super().__init__(in_sig=[...], out_sig=[...])`` with `PortSpec`s,
    dtypes, or ``(dtype, shape)`` / ``(name, dtype, shape)`` tuples, and implement `work`.
    Message ports and run-time `settings` come from `MessagePorts` (`isacblocks.core.messages`).
    """

    #: "all_to_all" (default) copies input tags to every output; "one_to_one" copies the
    #: tags of input i to output i (as many inputs as outputs); "none" drops them unless
    #: the block adds them itself.  Across a rate change the offsets follow GNU Radio
    #: (see `DecimBlock`).
    tag_propagation = "all_to_all"

    #: Whether the block may wait for something outside the flowgraph (a socket, a device,
    #: the clock) at any time.  The scheduler reports a flowgraph in which no block can
    #: make progress as stuck (`BlockError` naming the blocks), unless a live block says it
    #: waits for the outside: per call, by returning `WORK_WAITING` (preferred), or for the
    #: whole run with this flag.  Sources (`SourceBlock`) set it by default.
    waits_for_external_input = False

    def __init__(self, in_sig: Sequence = (), out_sig: Sequence = (), name: str | None = None):
        self.name = name or _default_name(type(self))
        self.in_sig: tuple[PortSpec, ...] = as_port_specs(in_sig, "in", self.name)
        self.out_sig: tuple[PortSpec, ...] = as_port_specs(out_sig, "out", self.name)
        self._init_message_ports()
        #: The scheduler state of the current run (buffers, stop request, counters):
        #: installed fresh by the flowgraph at the start of every run.
        self.detail = BlockDetail()
        #: The name of the flowgraph running this block now (None between runs): a block runs
        #: in one flowgraph at a time (`Flowgraph.start`).
        self.running_in: str | None = None

    # ------------------------------------------------------------------ contract
    def work(self, inputs: list[np.ndarray], outputs: list[np.ndarray]) -> int:
        """Process ``inputs`` into ``outputs``; return the number of items produced."""
        raise TypeError(f"{type(self).__name__} does not define work()")

    def start(self) -> None:
        """Called once before the first work() of a run.

        Every run starts from fresh state: a block that keeps state (counters, collected
        items, a position in its data) resets it here.  The default calls `reset()`.
        """
        self.reset()

    def reset(self) -> None:
        """Forget the state of a previous run (called by the default `start()`)."""

    def stop(self) -> None:
        """Called once after the last work() of a run (also after an error)."""

    @property
    def is_source(self) -> bool:
        return not self.in_sig

    def sleep(self, seconds: float) -> bool:
        """Sleep up to `seconds` inside work(); wake at once when the flowgraph is asked to
        stop.  Returns True when a stop was requested."""
        return self.detail.stop_event.wait(max(0.0, float(seconds)))

    @property
    def stop_requested(self) -> bool:
        """Whether `Flowgraph.stop()` was called during this run."""
        return self.detail.stop_event.is_set()

    # ---------------------------------------------------------------------- tags
    def nitems_read(self, port: int) -> int:
        """Absolute number of items consumed so far on input `port`."""
        return self.detail.readers[port].nread

    def nitems_written(self, port: int) -> int:
        """Absolute number of items produced so far on output `port`."""
        return self.detail.writers[port].nwritten

    def add_tag(self, port: int, offset: int, key: str, value: Any, srcid: str | None = None) -> None:
        """Attach a tag to absolute item `offset` of output `port` (GNU Radio's add_item_tag).

        The item must not have left the block yet: ``offset >= nitems_written(port)`` (an item
        of this work() call, or a later one).  A tag in the past would be silently lost by
        readers that have passed it, so it raises `BlockError` naming the block.
        """
        writers = self.detail.writers
        call = f"block {self.name!r}: add_tag(port={port!r}, offset={offset!r}, key={key!r})"
        if not is_integer(port) or not 0 <= port < len(writers):
            raise BlockError(f"{call}: no output port {port!r}; this block has outputs 0..{len(writers) - 1}"
                             if writers else f"{call}: this block has no output port")
        if not is_integer(offset) or offset < 0:
            raise BlockError(f"{call}: offset must be an integer item index >= 0")
        written = writers[port].nwritten
        if offset < written:
            raise BlockError(f"{call}: offset {offset} is in the past: items before {written} have already "
                             f"left output {port}; tag an item of this call (offset >= nitems_written({port}) "
                             f"= {written})")
        writers[port].add_tag(Tag(int(offset), key, value, srcid if srcid is not None else self.name))

    add_item_tag = add_tag

    def get_tags_in_range(self, port: int, start: int, end: int, key: str | None = None) -> list[Tag]:
        """Tags on input `port` with absolute offsets in ``[start, end)``, optionally of one key."""
        return self.detail.readers[port].tags_in_range(start, end, key)

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

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


class SyncBlock(Block):
    """A block with inputs that produces one output item per input item."""


class SourceBlock(Block):
    """A block with no inputs; `work` returns `WORK_DONE` at the end of its stream.

    A source that returns 0 is taken to wait for something outside the flowgraph
    (`waits_for_external_input` is True); a source that only reads memory or files sets
    it False, so that one that returns 0 forever is reported as stuck.
    """

    waits_for_external_input = True

    def __init__(self, out_sig: Sequence, name: str | None = None):
        super().__init__(in_sig=(), out_sig=out_sig, name=name)


class SinkBlock(Block):
    """A block with no outputs; `work` returns how many items it consumed."""

    def __init__(self, in_sig: Sequence, name: str | None = None):
        super().__init__(in_sig=in_sig, out_sig=(), name=name)


class DecimBlock(Block):
    """A fixed-rate block that produces one output item per `decimation` input items
    (GNU Radio's ``decim_block`` / ``sync_decimator``).

    ``work(inputs, outputs)`` gets ``n * decimation`` items on every input and room for
    ``n`` items on every output; it returns the number of output items produced ``r``
    (``0 <= r <= n``) and the scheduler consumes ``r * decimation`` items of every input.
    At the end of a stream, fewer than `decimation` items left on an input cannot make an
    output item: they are dropped, counted in `Flowgraph.dropped` and reported with a
    `StreamWarning`.

    Tags (``tag_propagation`` "all_to_all" or "one_to_one") follow GNU Radio's
    ``block_executor`` with relative rate ``1/decimation``: a tag at absolute input offset
    ``o`` goes to output offset ``floor(o / decimation + 1/2)`` (rounded half up), so a tag
    on the second half of a group of `decimation` items lands on the *next* output item.
    """

    def __init__(self, in_sig: Sequence = (), out_sig: Sequence = (), decimation: int = 1,
                 name: str | None = None):
        super().__init__(in_sig=in_sig, out_sig=out_sig, name=name)
        self.decimation = check_int(self.name, "decimation", decimation, 1)
        if not self.in_sig:
            raise ConfigError(f"block {self.name!r}: a DecimBlock needs at least one input port")

    @property
    def relative_rate(self) -> Fraction:
        return Fraction(1, self.decimation)


class InterpBlock(Block):
    """A fixed-rate block that produces `interpolation` output items per input item
    (GNU Radio's ``interp_block`` / ``sync_interpolator``).

    ``work(inputs, outputs)`` gets ``n`` items on every input and room for
    ``n * interpolation`` items on every output; it returns the number of output items
    produced ``r``, a multiple of `interpolation`, and the scheduler consumes
    ``r / interpolation`` items of every input.  A tag at input offset ``o`` goes to output
    offset ``o * interpolation`` (the first item of its group), as in GNU Radio.
    """

    def __init__(self, in_sig: Sequence = (), out_sig: Sequence = (), interpolation: int = 1,
                 name: str | None = None):
        super().__init__(in_sig=in_sig, out_sig=out_sig, name=name)
        self.interpolation = check_int(self.name, "interpolation", interpolation, 1)
        if not self.in_sig or not self.out_sig:
            raise ConfigError(f"block {self.name!r}: an InterpBlock needs input and output ports")

    @property
    def relative_rate(self) -> Fraction:
        return Fraction(self.interpolation)


class GeneralBlock(Block):
    """A block whose inputs and outputs move at rates it chooses (GNU Radio's ``basic_block``
    with ``general_work``).

    The scheduler asks `forecast` how many items each input needs for ``noutput`` output
    items, halving ``noutput`` (down to `output_multiple`) until the available input is
    enough, then calls ``general_work(inputs, outputs)`` with *every* available item on
    each input and room for ``noutput`` items on each output.  general_work() calls
    `consume` / `consume_each` for what it used and returns the number of items produced
    on every output, or calls `produce` per output port and returns `WORK_CALLED_PRODUCE`.
    A block whose forecast cannot be met waits for more input; once the stream upstream
    has ended the items left are dropped with a count (`Flowgraph.dropped`) and a
    `StreamWarning`.

    Tags: "all_to_all" / "one_to_one" move each tag of the consumed items to offset
    ``floor(o * relative_rate + 1/2)`` as GNU Radio does (``relative_rate`` defaults to 1,
    so offsets are kept); a block whose rate varies (e.g. one that drops items) sets
    ``tag_propagation = "none"`` and adds its tags itself at the right output offsets.
    """

    #: Output items come in multiples of this (GNU Radio's set_output_multiple).
    output_multiple = 1

    def __init__(self, in_sig: Sequence = (), out_sig: Sequence = (), name: str | None = None):
        super().__init__(in_sig=in_sig, out_sig=out_sig, name=name)
        self.relative_rate = Fraction(1)

    def set_relative_rate(self, interpolation, decimation=1) -> None:
        """Output items per input item, for tag offsets: a ratio of integers (exact, as GNU
        Radio's ``set_relative_rate(interp, decim)``) or a positive float."""
        try:
            rate = Fraction(interpolation) / Fraction(decimation)
        except (TypeError, ValueError, ZeroDivisionError):
            rate = None
        if rate is None or rate <= 0 or isinstance(interpolation, bool) or isinstance(decimation, bool):
            raise ConfigError(f"block {self.name!r}: relative rate {interpolation!r}/{decimation!r}: "
                              "must be a positive number")
        self.relative_rate = rate

    def set_output_multiple(self, multiple: int) -> None:
        self.output_multiple = check_int(self.name, "output_multiple", multiple, 1)

    def forecast(self, noutput_items: int, ninputs: int) -> list[int]:
        """Input items needed on each input to produce `noutput_items` (default: as many)."""
        return [noutput_items] * ninputs

    def general_work(self, inputs: list[np.ndarray], outputs: list[np.ndarray]) -> int:
        raise TypeError(f"{type(self).__name__} does not define general_work()")

    def consume(self, port: int, n: int) -> None:
        """Mark `n` more items of input `port` as used in this general_work() call."""
        self.detail.consumed[port] += int(n)

    def consume_each(self, n: int) -> None:
        """Mark `n` more items of every input as used in this general_work() call."""
        consumed = self.detail.consumed
        for port in range(len(consumed)):
            consumed[port] += int(n)

    def produce(self, port: int, n: int) -> None:
        """Say that `n` items were written to output `port` (then return `WORK_CALLED_PRODUCE`)."""
        produced = self.detail.produced
        produced[port] = (produced[port] or 0) + int(n)
