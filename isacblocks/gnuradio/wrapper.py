"""`as_gr_block(block)`: any isacblocks block as the matching GNU Radio 3.10 Python block.

=======================================  ==========================================
isacblocks                               GNU Radio
=======================================  ==========================================
`SyncBlock`, `SourceBlock`, `SinkBlock`  ``gr.sync_block``
`DecimBlock` (decimation D)              ``gr.decim_block`` (decim D)
`InterpBlock` (interpolation I)          ``gr.interp_block`` (interp I)
`GeneralBlock`                           ``gr.basic_block`` (``general_work``,
                                         ``forecast``, ``consume``, ``produce``)
a block with message ports only          ``gr.basic_block`` without stream ports
=======================================  ==========================================

Ports: each stream port is its numpy dtype and GNU Radio's vector length, the item shape
flattened (a ``(K, S)`` complex64 frame is a complex64 port of vector length ``K*S``);
the block's work() sees ``(n, K, S)`` views of GNU Radio's buffers, inputs read-only.
Every fixed-size numpy dtype keeps its bytes: float64 and complex128 are GNU Radio
Companion's ``f64`` / ``fc64`` (8 / 16 bytes an item), never converted; a port of
objects or structured items is refused at construction naming the port.

Tags: GNU Radio's stream tags are the block's `Tag`s, offsets absolute, the values
converted by `to_pmt` / `from_pmt` (`isacblocks.zeromq.pmt`'s mapping, the same as on the
ZeroMQ wire).  ``tag_propagation`` maps to ``set_tag_propagation_policy`` (TPP_ALL_TO_ALL,
TPP_ONE_TO_ONE, TPP_DONT) and a general block's relative rate to ``set_relative_rate``,
so GNU Radio moves the tags as isacblocks' runtime does.

Messages: each input message port of the block is a GNU Radio input message port whose
PMTs reach the block's handler as Python values, in the block's thread between work()
calls; each output message port publishes what the block posts, as a PMT.

Scheduler conventions: start()/stop() call the block's; WORK_DONE (-1) ends the block;
a general block's consume()/consume_each()/produce() reach GNU Radio's; its forecast()
is GNU Radio's forecast.  GNU Radio 3.10 has no "waiting for the world outside" status:
a block that returns `WORK_WAITING` (or 0 without consuming) is called again after a
short back-off (10 us doubling to 1 ms), so it does not spin a core.

Errors: an exception in the block's start(), work(), general_work(), forecast(), message
handler or stop() becomes a `BlockError` naming the block (as in isacblocks' runtime),
logged through GNU Radio's logger and kept in ``wrapper.error``; the wrapped block then
ends its stream (WORK_DONE), so the flowgraph ends.  (An exception raised into GNU Radio
3.10 ends only that block's thread and leaves ``top_block.wait()`` hanging, or, from
stop(), aborts the process.)  ``wrapper.check()`` raises it; `raise_errors(...)` does so
for several wrappers after a run.

Value conversion is in :mod:`~isacblocks.gnuradio.pmt_values`, the port stand-ins in
:mod:`~isacblocks.gnuradio.gr_ports`.

Construction builds the wrapper only (GNU Radio Companion may instantiate a block while a
flowgraph is edited): the block's state is touched from start() on.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterable

import numpy as np

from ..core.block import (
    TAG_POLICIES,
    WORK_CALLED_PRODUCE,
    WORK_DONE,
    WORK_WAITING,
    Block,
    DecimBlock,
    GeneralBlock,
    InterpBlock,
)
from ..core.detail import BlockDetail
from ..core.executor import forecast as checked_forecast
from ..core.executor import general_outcome, wrap_error
from ..core.flowgraph import _CLAIM_LOCK
from ..errors import BlockError, ConfigError
from .requirement import require_gnuradio

try:
    import pmt  # GNU Radio's PMT module (not isacblocks.zeromq.pmt, imported as `codec`)
    from gnuradio import gr
except ImportError:
    require_gnuradio()  # raises the ImportError that names the way to GNU Radio
    raise
from .gr_ports import MessageOut, PortReader, PortWriter, gr_signature
from .pmt_values import from_pmt, to_pmt

__all__ = ["GR_POLICIES", "DecimWrapper", "GeneralWrapper", "InterpWrapper", "MessageWrapper", "SyncWrapper",
           "as_gr_block", "from_pmt", "gr_signature", "gr_top_block", "raise_errors", "to_pmt"]

#: isacblocks' tag propagation policies and GNU Radio's.
GR_POLICIES = {"all_to_all": gr.TPP_ALL_TO_ALL, "one_to_one": gr.TPP_ONE_TO_ONE, "none": gr.TPP_DONT}

#: Back-off of a block that waits (`WORK_WAITING`, or 0 with nothing consumed), as isacblocks' scheduler.
BACKOFF_MIN_S = 10e-6
BACKOFF_MAX_S = 1e-3

#: Default of ``min_output_items``: each output buffer holds at least this many items, as a
#: `Flowgraph(max_items=64)` buffer does (GNU Radio sizes buffers in bytes, ~64 KiB, so a
#: 128 KiB frame would otherwise travel one per call).
MIN_OUTPUT_ITEMS = 128

#: Output buffers are not enlarged past this many bytes by ``min_output_items``.
MIN_OUTPUT_BYTES_CAP = 64 << 20


class _Bridge:
    """What every wrapper shares; the GNU Radio base class comes second in the MRO."""

    def _bridge_init(self, block: Block, min_output_items: int | None) -> None:
        #: The wrapped isacblocks block.
        self.block = block
        #: The first error of the block in this wrapper's runs (a `BlockError` naming it), or None.
        self.error: BlockError | None = None
        self._shapes_in = [(*spec.shape,) for spec in block.in_sig]
        self._shapes_out = [(*spec.shape,) for spec in block.out_sig]
        self._backoff = 0.0
        self._msg_out_saved: dict | None = None
        self._claim: str | None = None  # `Block.running_in` while this wrapper runs the block
        self._lock = threading.Lock()
        policy = block.tag_propagation
        if policy not in TAG_POLICIES:
            raise ConfigError(f"block {block.name!r}: tag_propagation = {policy!r}: expected one of "
                              f"{list(TAG_POLICIES)}")
        if policy == "one_to_one" and block.in_sig and block.out_sig and len(block.in_sig) != len(block.out_sig):
            raise ConfigError(f"block {block.name!r}: tag_propagation 'one_to_one' needs as many inputs as "
                              f"outputs; it has {len(block.in_sig)} and {len(block.out_sig)}")
        gw = self.gateway
        gw.set_tag_propagation_policy(GR_POLICIES[policy])
        if min_output_items:
            for index, spec in enumerate(block.out_sig):
                items = max(1, min(int(min_output_items), MIN_OUTPUT_BYTES_CAP // max(1, spec.itemsize)))
                gw.set_min_output_buffer(index, items)
        for index, port in enumerate(block.message_ports_in):
            self._register_handler(index, port)
        for port in block.message_ports_out:
            gw.message_port_register_out(pmt.intern(port))

    # -------------------------------------------------------------- errors
    def _fail(self, error: BlockError) -> int:
        """Keep the block's first error, log it, and end the block's stream."""
        with self._lock:
            first = self.error is None
            if first:
                self.error = error
        if first:
            try:
                self.gateway.logger.error(str(error))
            except Exception:  # noqa: BLE001 - a logger that cannot log must not hide the error
                print(f"{self.block.name}: {error}", file=sys.stderr)
        return WORK_DONE

    def check(self) -> None:
        """Raise the block's error of this wrapper's runs, if it had one."""
        if self.error is not None:
            raise self.error

    # -------------------------------------------------------------- start / stop
    def start(self) -> bool:
        block = self.block
        self.error = None
        self._backoff = 0.0
        gw = self.gateway
        try:
            with _CLAIM_LOCK:
                if block.running_in is not None:
                    raise BlockError(f"block {block.name!r} is running in flowgraph {block.running_in!r}; a block "
                                     "runs in one flowgraph at a time (wrap another instance)")
                block.running_in = self._claim = f"GNU Radio {gw.identifier()}"
            block.detail = BlockDetail([PortReader(gw, i) for i in range(len(block.in_sig))],
                                       [PortWriter(gw, i, block.name) for i in range(len(block.out_sig))])
            out = MessageOut(gw, block.name)
            self._msg_out_saved = dict(block._msg_out)
            for port in block._msg_out:
                block._msg_out[port] = [(out, port)]
            block.start()
            if isinstance(block, GeneralBlock) and block.relative_rate != self._rate:
                self._rate = block.relative_rate  # set in start(): GNU Radio moves the tags by it
                gw.set_relative_rate(self._rate.numerator, self._rate.denominator)
        except Exception as exc:
            self._fail(wrap_error(block, "start()", exc))
        return True

    def stop(self) -> bool:
        block = self.block
        if self._claim is None:  # start() found the block running elsewhere: nothing of it is ours
            return True
        try:
            block.detail.stop_event.set()
            block.stop()
        except Exception as exc:
            self._fail(wrap_error(block, "stop()", exc))
        finally:
            if self._msg_out_saved is not None:
                block._msg_out.clear()
                block._msg_out.update(self._msg_out_saved)
                self._msg_out_saved = None
            with _CLAIM_LOCK:
                if block.running_in == self._claim:
                    block.running_in = None
                self._claim = None
        return True

    # -------------------------------------------------------------- messages
    def _register_handler(self, index: int, port: str) -> None:
        symbol = pmt.intern(port)

        def handler(msg):
            self._on_message(port, msg)

        # GNU Radio calls a Python handler by its name on this object.
        handler.__name__ = f"_isacblocks_msg_{index}"
        setattr(self, handler.__name__, handler)
        self.gateway.message_port_register_in(symbol)
        self.set_msg_handler(symbol, handler)

    def _on_message(self, port: str, msg) -> None:
        block = self.block
        if self.error is not None:
            return
        try:
            try:
                value = from_pmt(msg)
            except Exception as exc:
                raise BlockError(f"block {block.name!r}: message on input port {port!r}: cannot read the PMT "
                                 f"{msg}: {exc}") from exc
            block.post(port, value)
            block.handle_messages()
        except Exception as exc:
            self._fail(wrap_error(block, "a message handler", exc))

    # -------------------------------------------------------------- helpers
    def _views(self, inputs, outputs):
        """GNU Radio's arrays, ``(n,)`` or ``(n, vlen)``, as ``(n, *item_shape)`` views; inputs read-only."""
        ins = []
        for array, shape in zip(inputs, self._shapes_in):
            view = array.reshape((len(array), *shape))
            view.flags.writeable = False
            ins.append(view)
        return ins, [array.reshape((len(array), *shape)) for array, shape in zip(outputs, self._shapes_out)]

    def _wait(self) -> None:
        """Back off before the next call of a block that waits (GNU Radio would call it again at once)."""
        delay = self._backoff = min(BACKOFF_MAX_S, max(BACKOFF_MIN_S, 2 * self._backoff))
        time.sleep(delay)

    def _count(self, value, where: str) -> int:
        if type(value) is int:
            return value
        if isinstance(value, np.integer) and not isinstance(value, np.bool_):
            return int(value)
        raise BlockError(f"block {self.block.name!r}: {where} returned {value!r} ({type(value).__name__}); "
                         "expected an int count of items (or WORK_DONE)")

    def _call(self, inputs, outputs, where: str) -> int:
        block = self.block
        if block._inbox:  # posted by Python code outside GNU Radio: handled before the items
            block.handle_messages()
        ins, outs = self._views(inputs, outputs)
        if where == "work()":
            return self._count(block.work(ins, outs), where)
        return self._count(block.general_work(ins, outs), where)


class _FixedRate(_Bridge):
    """work() of a sync, decimating or interpolating block."""

    _interp = 1
    _decim = 1

    def work(self, input_items, output_items):
        if self.error is not None:
            return WORK_DONE
        block = self.block
        try:
            produced = self._call(input_items, output_items, "work()")
            if output_items:
                n = len(output_items[0])
            else:
                n = len(input_items[0]) // self._decim if input_items else 0
            interp = self._interp
            if 0 < produced <= n and not produced % interp:
                self._backoff = 0.0
                return produced
            if produced == 0 or produced == WORK_WAITING:
                self._wait()
                return 0
            if produced == WORK_DONE:
                return WORK_DONE
            rule = f"0..{n}" + (f", a multiple of interpolation = {interp}" if interp > 1 else "")
            raise BlockError(f"block {block.name!r}: work() returned {produced}, expected {rule} "
                             "(or WORK_DONE, WORK_WAITING)")
        except Exception as exc:
            return self._fail(wrap_error(block, "work()", exc))


class SyncWrapper(_FixedRate, gr.sync_block):
    """An isacblocks sync block, source or sink as a ``gr.sync_block``."""

    def __init__(self, block: Block, name: str | None = None, min_output_items: int | None = MIN_OUTPUT_ITEMS):
        gr.sync_block.__init__(self, name or block.name, gr_signature(block, "in"), gr_signature(block, "out"))
        self._bridge_init(block, min_output_items)


class DecimWrapper(_FixedRate, gr.decim_block):
    """An isacblocks `DecimBlock` as a ``gr.decim_block``."""

    def __init__(self, block: DecimBlock, name: str | None = None, min_output_items: int | None = MIN_OUTPUT_ITEMS):
        gr.decim_block.__init__(self, name or block.name, gr_signature(block, "in"), gr_signature(block, "out"),
                                block.decimation)
        self._bridge_init(block, min_output_items)
        self._decim = block.decimation


class InterpWrapper(_FixedRate, gr.interp_block):
    """An isacblocks `InterpBlock` as a ``gr.interp_block``."""

    def __init__(self, block: InterpBlock, name: str | None = None,
                 min_output_items: int | None = MIN_OUTPUT_ITEMS):
        gr.interp_block.__init__(self, name or block.name, gr_signature(block, "in"), gr_signature(block, "out"),
                                 block.interpolation)
        self._bridge_init(block, min_output_items)
        self._interp = block.interpolation


class GeneralWrapper(_Bridge, gr.basic_block):
    """An isacblocks `GeneralBlock` as a ``gr.basic_block`` with general_work() and forecast()."""

    def __init__(self, block: GeneralBlock, name: str | None = None,
                 min_output_items: int | None = MIN_OUTPUT_ITEMS):
        gr.basic_block.__init__(self, name or block.name, gr_signature(block, "in"), gr_signature(block, "out"))
        self._bridge_init(block, min_output_items)
        self._rate = block.relative_rate
        self.gateway.set_relative_rate(self._rate.numerator, self._rate.denominator)
        self.gateway.set_output_multiple(block.output_multiple)

    def forecast(self, noutput_items, ninputs):
        if self.error is not None:
            return [0] * ninputs
        try:
            return checked_forecast(self.block, noutput_items, ninputs)
        except Exception as exc:
            self._fail(wrap_error(self.block, "forecast()", exc))
            return [0] * ninputs  # general_work() is called next, and ends the block

    def general_work(self, input_items, output_items):
        if self.error is not None:
            return WORK_DONE
        block = self.block
        detail = block.detail
        try:
            detail.consumed = consumed = [0] * len(input_items)
            detail.produced = [None] * len(output_items)
            ret = self._call(input_items, output_items, "general_work()")
            room = len(output_items[0]) if output_items else 0
            produced = general_outcome(block, ret, consumed, [len(x) for x in input_items], room)
            gw = self.gateway
            for i, c in enumerate(consumed):
                if c:
                    gw.consume(i, c)
            if ret == WORK_DONE:
                return WORK_DONE
            if any(consumed) or any(produced):
                self._backoff = 0.0
            else:
                self._wait()
            if ret == WORK_CALLED_PRODUCE:
                for j, p in enumerate(produced):
                    if p:
                        gw.produce(j, p)
                return gr.WORK_CALLED_PRODUCE
            return produced[0] if produced else 0
        except Exception as exc:
            return self._fail(wrap_error(block, "general_work()", exc))


class MessageWrapper(_Bridge, gr.basic_block):
    """An isacblocks block with message ports only, as a ``gr.basic_block`` without stream ports."""

    def __init__(self, block: Block, name: str | None = None, min_output_items: int | None = None):
        gr.basic_block.__init__(self, name or block.name, None, None)
        self._bridge_init(block, None)


def as_gr_block(block: Block, name: str | None = None, min_output_items: int | None = MIN_OUTPUT_ITEMS):
    """`block` as a native GNU Radio block (see the module docstring for the mapping).

    `name`: GNU Radio's block name (default: the block's).  `min_output_items`: each output
    buffer holds at least this many items (GNU Radio's ``set_min_output_buffer``, capped at
    64 MiB a buffer; None: GNU Radio's own size).  The wrapper keeps `block` as ``.block``,
    the first error of its runs as ``.error`` (``.check()`` raises it).  One isacblocks block
    runs in one flowgraph at a time: wrap another instance for a second flowgraph."""
    if not isinstance(block, Block):
        raise TypeError(f"as_gr_block: expected an isacblocks Block, got {type(block).__name__}")
    if isinstance(block, GeneralBlock):
        return GeneralWrapper(block, name, min_output_items)
    if isinstance(block, DecimBlock):
        return DecimWrapper(block, name, min_output_items)
    if isinstance(block, InterpBlock):
        return InterpWrapper(block, name, min_output_items)
    if not block.in_sig and not block.out_sig:
        return MessageWrapper(block, name)
    return SyncWrapper(block, name, min_output_items)


def gr_top_block(flowgraph, name: str | None = None, min_output_items: int | None = MIN_OUTPUT_ITEMS):
    """An isacblocks `Flowgraph` as a GNU Radio ``top_block``: every block wrapped (`as_gr_block`),
    every stream and message connection made in GNU Radio.  Returns ``(top_block, wrappers)``,
    the wrappers by block name; after ``top_block.run()``, ``raise_errors(wrappers.values())``
    raises a block's error.  The flowgraph's ``max_items`` does not carry over: GNU Radio picks
    each call's item count from its buffers (`min_output_items`)."""
    tb = gr.top_block(name or flowgraph.name)
    wrappers = {block.name: as_gr_block(block, min_output_items=min_output_items) for block in flowgraph.blocks}
    tb.isacblocks_wrappers = wrappers  # GNU Radio holds no reference to a Python block: the top block does
    for src, src_port, dst, dst_port in flowgraph._edges:
        tb.connect((wrappers[src.name], src_port), (wrappers[dst.name], dst_port))
    for src, src_port, dst, dst_port in flowgraph._msg_edges:
        tb.msg_connect(wrappers[src.name], src_port, wrappers[dst.name], dst_port)
    return tb, wrappers


def raise_errors(wrappers: Iterable) -> None:
    """Raise the first error any of `wrappers` kept (call after ``top_block.run()`` / ``wait()``)."""
    for wrapper in wrappers:
        error = getattr(wrapper, "error", None)
        if error is not None:
            raise error
