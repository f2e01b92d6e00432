"""One block's work() calls, whatever the scheduler (GNU Radio's block_executor).

`BlockExecutor.visit(n_max)` offers a block what its inputs hold and what room its
outputs have, calls work() / general_work(), checks the return value, moves the tags
and the item counters, and updates the block's counters (`BlockDetail`).  Both
schedulers drive blocks only through it, so a block sees the same contract, the same
checks and the same errors under either.  A `RunBook` (`isacblocks.core.report`) keeps
what a run reports at its end (items left unconsumed, `Flowgraph.dropped`).

A *patient* executor (the threaded scheduler) waits for a full batch -- ``n_max`` items
on every input and as much room -- while the upstream block that would bring more is
still working; it takes less only from an upstream that has settled (ended, or waiting
for something itself).  A chain of sync blocks then sees the same batches as under the
single-thread scheduler, which visits the blocks in order and so always offers full
batches in such a chain.
"""

from __future__ import annotations

import time

import numpy as np

from ..errors import BlockError
from .block import (
    WORK_CALLED_PRODUCE,
    WORK_DONE,
    WORK_WAITING,
    Block,
    DecimBlock,
    GeneralBlock,
    InterpBlock,
)
from .report import RunBook
from .tags import Tag

#: What a visit returns besides a positive count of items produced.
NOTHING = 0

#: Statuses of a block that will bring or free nothing more by itself: it ended, found
#: nothing to do, or waits (for input, room or the world outside).  "busy" (inside a
#: visit) and "progress" (its last call moved items; it goes on) are the others.
SETTLED = frozenset(("idle", "zero", "waiting", "done"))


def general_outcome(block: Block, ret: int, consumed: list[int], given: list[int], room: int) -> list[int]:
    """The items a `general_work()` call produced on each output, from its return value `ret` (or
    the counts it gave `produce()`), after checking what it consumed against the items `given`
    on each input and what it produced against the output `room`: a `BlockError` naming the
    block otherwise.  One rule for every scheduler that calls general blocks."""
    for i, c in enumerate(consumed):
        if not 0 <= c <= given[i]:
            raise BlockError(f"block {block.name!r}: general_work() consumed {c} items of "
                             f"{block.in_sig[i].name}, expected 0..{given[i]} (the items it was given)")
    outputs = len(block.out_sig)
    if ret == WORK_CALLED_PRODUCE:
        produced = [p or 0 for p in block.detail.produced]
    elif ret in (WORK_DONE, WORK_WAITING):
        produced = [0] * outputs
    elif ret >= 0:
        produced = [ret] * outputs
    else:
        raise BlockError(f"block {block.name!r}: general_work() returned {ret}, expected 0..{room}, "
                         "WORK_CALLED_PRODUCE, WORK_WAITING or WORK_DONE")
    for j, p in enumerate(produced):
        if not 0 <= p <= room:
            raise BlockError(f"block {block.name!r}: general_work() produced {p} items on "
                             f"{block.out_sig[j].name}, expected 0..{room} (the output space it was given)")
    return produced


class BlockExecutor:
    """Calls one block's work() for a scheduler; see the module docstring."""

    __slots__ = ("block", "detail", "readers", "buffers", "policy", "book", "patient", "upstream", "downstream",
                 "_visit")

    def __init__(self, block: Block, book: RunBook, patient: bool = False, upstream: list | None = None,
                 downstream: list | None = None):
        self.block = block
        self.detail = block.detail
        self.readers = self.detail.readers
        self.buffers = [w.buffer for w in self.detail.writers]
        self.book = book
        self.patient = patient
        #: Per input port, the upstream block's detail; the details of the blocks that read the
        #: outputs (a patient executor asks whether they settled).
        self.upstream = upstream or []
        self.downstream = downstream or []
        has_tags = self.readers and self.buffers and block.tag_propagation != "none"
        self.policy = block.tag_propagation if has_tags else None
        if isinstance(block, GeneralBlock):
            self._visit = self._visit_general
        elif isinstance(block, (DecimBlock, InterpBlock)):
            self._visit = self._visit_fixed
        else:
            self._visit = self._visit_sync

    def visit(self, n_max: int) -> int:
        """One call: a positive count of items produced, `NOTHING`, `WORK_WAITING` or `WORK_DONE`."""
        return self._visit(n_max)

    # ------------------------------------------------------------------ helpers
    def _take_partial(self, full: int, short_out: bool) -> bool:
        """Whether a patient executor takes less than a full batch now: an input short of `full`
        items whose upstream has settled (ended, or waiting itself), or output room short of it
        while a reader downstream has settled (it will free no room by itself).

        A neighbour still at work is asked to wake this block after its current visit
        (`BlockDetail.wanted`), and its status is read again after asking: whichever of the
        two threads acts second sees the other's write, so no wake-up is lost."""
        waiting_on = []
        for port, r in enumerate(self.readers):
            if r.buffer.nwritten - r.nread < full:
                if r.buffer.done or self.upstream[port].status in SETTLED:
                    return True
                waiting_on.append(self.upstream[port])
        if short_out:
            for d in self.downstream:
                if d.status in SETTLED:
                    return True
                waiting_on.append(d)
        for d in waiting_on:
            d.wanted = True
        return any(d.status in SETTLED for d in waiting_on) or any(r.buffer.done for r in self.readers)

    def _call_work(self, inputs: list, outputs: list, general: bool = False) -> int:
        """``block.work(inputs, outputs)`` (``general_work`` for a general block), timed and counted,
        with the output buffers' fill sampled, a raise named after the block and the return value
        checked to be an integer (the range is the caller's rule)."""
        block, detail = self.block, self.detail
        if block._inbox:  # posted before the items now offered were written: handled first
            handle_messages(block)
        if self.buffers:
            fill = 0.0
            for buf in self.buffers:
                fill += buf.fill() / buf.capacity
            detail.fill_sum += fill / len(self.buffers)
        where = "general_work()" if general else "work()"
        start = time.perf_counter()
        try:
            produced = block.general_work(inputs, outputs) if general else block.work(inputs, outputs)
        except Exception as exc:
            raise wrap_error(block, where, exc) from exc
        finally:
            detail.work_s += time.perf_counter() - start
            detail.calls += 1
        return produced if type(produced) is int else _as_count(block, produced, where)

    def _end_short(self, needs: list[int]) -> int:
        """A rate-changing block whose input ended with fewer items than its next output needs."""
        block = self.block
        for i, r in enumerate(self.readers):
            left = r.buffer.nwritten - r.nread
            self.book.record_drop(block, i, left, (
                f"its input ended with {left} item(s) on {block.in_sig[i].name}, fewer than the {needs[i]} "
                "it needs for its next output (a partial frame at the end of the stream)"))
        return WORK_DONE

    def _advance(self, consumed: int, produced: int) -> int:
        """After a call that moved items: `consumed` on every input, `produced` on every output."""
        for r in self.readers:
            r.nread += consumed
        for buf in self.buffers:
            buf.commit(produced)
        detail = self.detail
        detail.items_in += consumed * len(self.readers)
        detail.items_out += produced * len(self.buffers)
        detail.status = "progress"
        return produced

    def _nothing(self, status: str) -> int:
        self.detail.status = status
        return NOTHING

    # ------------------------------------------------------------------ visits
    def _visit_sync(self, max_items: int) -> int:
        """One work() call of a sync block (consumed == produced on every port)."""
        readers, buffers, detail = self.readers, self.buffers, self.detail
        n = max_items
        for r in readers:
            available = r.buffer.nwritten - r.nread
            if available < n:
                n = available
        short_out = False
        for buf in buffers:
            space = buf.space()
            if space < n:
                n, short_out = space, True
        if n <= 0:
            if readers and n == 0 and any(r.buffer.done and r.buffer.nwritten == r.nread for r in readers):
                self.book.ended_unequal(self.block, readers)
                detail.status = "done"
                return WORK_DONE
            return self._nothing("idle")
        if self.patient and n < max_items and not self._take_partial(max_items, short_out):
            return self._nothing("idle")
        inputs = [r.read_view(n) for r in readers]
        outputs = [buf.write_view(n) for buf in buffers]
        produced = self._call_work(inputs, outputs)
        if not 0 < produced <= n:
            if produced == 0:
                return self._nothing("zero")
            if produced == WORK_WAITING:
                return self._nothing("waiting")
            if produced == WORK_DONE:
                detail.status = "done"
                return WORK_DONE
            raise BlockError(f"block {self.block.name!r}: work() returned {produced}, expected 0..{n} "
                             "(or WORK_DONE, WORK_WAITING)")
        if self.policy:
            _propagate_tags(readers, buffers, produced, self.policy)
        return self._advance(produced, produced)

    def _visit_fixed(self, max_items: int) -> int:
        """One work() call of a `DecimBlock` / `InterpBlock`."""
        block, readers, buffers, detail = self.block, self.readers, self.buffers, self.detail
        interp = getattr(block, "interpolation", 1)
        decim = getattr(block, "decimation", 1)
        cap = max(interp, max_items // interp * interp)
        avail = min(r.buffer.nwritten - r.nread for r in readers)
        full = min(cap // interp, max(1, max_items // decim))
        groups = min(cap // interp, avail // decim)
        short_out = False
        for buf in buffers:
            space = buf.space() // interp
            if space < groups:
                groups, short_out = space, True
        if groups <= 0:
            if avail < decim:
                short = [r for r in readers if r.buffer.nwritten - r.nread < decim]
                if any(r.buffer.done for r in short):
                    detail.status = "done"
                    return self._end_short([decim] * len(readers))
            return self._nothing("idle")
        if self.patient and groups < full and not self._take_partial(full * decim, short_out):
            return self._nothing("idle")
        n_in, n_out = groups * decim, groups * interp
        inputs = [r.read_view(n_in) for r in readers]
        outputs = [buf.write_view(n_out) for buf in buffers]
        produced = self._call_work(inputs, outputs)
        if produced == WORK_DONE:
            detail.status = "done"
            return WORK_DONE
        if produced == WORK_WAITING:
            return self._nothing("waiting")
        if not 0 <= produced <= n_out or produced % interp:
            rule = f"0..{n_out}" + (f", a multiple of interpolation = {interp}" if interp > 1 else "")
            raise BlockError(f"block {block.name!r}: work() returned {produced}, expected {rule} "
                             "(or WORK_DONE, WORK_WAITING)")
        if produced == 0:
            return self._nothing("zero")
        consumed = produced // interp * decim
        if self.policy:
            starts = [r.nread for r in readers]
            _propagate_rate(self.policy, readers, buffers, starts, [consumed] * len(readers), interp, decim)
        return self._advance(consumed, produced)

    def _visit_general(self, max_items: int) -> int:
        """One general_work() call of a `GeneralBlock`."""
        block, readers, buffers, detail = self.block, self.readers, self.buffers, self.detail
        om = block.output_multiple
        n = max(om, max_items // om * om)
        for buf in buffers:
            space = buf.space() // om * om
            if space < n:
                n = space
        if n <= 0:
            return self._nothing("idle")
        avail = [r.buffer.nwritten - r.nread for r in readers]
        while True:
            needs = forecast(block, n, len(readers))
            short = next((i for i, need in enumerate(needs) if need > avail[i]), None)
            if short is None:
                break
            if n > om:
                n = max(om, -(-(n // 2) // om) * om)
                continue
            r = readers[short]
            if r.buffer.done:
                detail.status = "done"
                return self._end_short(needs)
            if needs[short] > r.buffer.capacity:
                raise BlockError(f"block {block.name!r}: forecast() asks for {needs[short]} items on "
                                 f"{block.in_sig[short].name} for {n} output item(s), more than its buffer holds "
                                 f"({r.buffer.capacity}); raise Flowgraph(max_items=...)")
            return self._nothing("idle")
        if readers and all(r.buffer.done and not a for r, a in zip(readers, avail)):
            detail.status = "done"
            return WORK_DONE
        detail.consumed = consumed = [0] * len(readers)
        detail.produced = [None] * len(buffers)
        inputs = [r.read_view(a) for r, a in zip(readers, avail)]
        outputs = [buf.write_view(n) for buf in buffers]
        ret = self._call_work(inputs, outputs, general=True)
        produced = general_outcome(block, ret, consumed, avail, n)
        if self.policy and any(consumed):
            starts = [r.nread for r in readers]
            rate = block.relative_rate
            _propagate_rate(self.policy, readers, buffers, starts, consumed, rate.numerator, rate.denominator)
        for r, c in zip(readers, consumed):
            r.nread += c
        for buf, p in zip(buffers, produced):
            if p:
                buf.commit(p)
        detail.items_in += sum(consumed)
        detail.items_out += sum(produced)
        if ret == WORK_DONE:
            detail.status = "done"
            return WORK_DONE
        if any(consumed) or any(produced):
            detail.status = "progress"
            return 1
        if ret == WORK_WAITING:
            return self._nothing("waiting")
        return self._nothing("zero")


# ---------------------------------------------------------------------- shared rules
def forecast(block: Block, n: int, ninputs: int) -> list[int]:
    """``block.forecast(n, ninputs)``, checked: one non-negative item count per input."""
    needs = block.forecast(n, ninputs)
    try:
        needs = [int(x) for x in needs]
        ok = len(needs) == ninputs and all(x >= 0 for x in needs)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise BlockError(f"block {block.name!r}: forecast({n}, {ninputs}) returned {needs!r}; expected "
                         f"{ninputs} non-negative item count(s)")
    return needs


def handle_messages(block: Block) -> None:
    """Deliver a block's queued messages; a handler's error is named after the block."""
    try:
        block.handle_messages()
    except Exception as exc:
        raise wrap_error(block, "a message handler", exc) from exc


def retire(block: Block) -> None:
    """A block that has ended: its outputs end, and it stops holding back its upstream buffers."""
    for w in block.detail.writers:
        w.buffer.done = True
    for r in block.detail.readers:
        r.buffer.readers = [x for x in r.buffer.readers if x is not r]


def wrap_error(block: Block, where: str, exc: BaseException) -> BlockError:
    """`exc` raised by `block` in `where`, as a `BlockError` that names the block."""
    if isinstance(exc, BlockError) and str(exc).startswith(f"block {block.name!r}"):
        return exc
    error = BlockError(f"block {block.name!r} ({type(block).__name__}) raised in {where}: "
                       f"{type(exc).__name__}: {exc}")
    error.block = block
    error.__cause__ = exc
    return error


def _as_count(block: Block, value, where: str = "work()") -> int:
    """The slow path of the return-value check: numpy integers pass, anything else raises."""
    if isinstance(value, np.integer) and not isinstance(value, np.bool_):
        return int(value)
    raise BlockError(f"block {block.name!r}: {where} returned {value!r} ({type(value).__name__}); expected an int "
                     "count of items (or WORK_DONE)")


def _propagate_tags(readers, buffers, n: int, policy: str) -> None:
    for index, r in enumerate(readers):
        tags = r.buffer.tags_in_range(r.nread, r.nread + n, None)
        if not tags:
            continue
        targets = buffers if policy == "all_to_all" else buffers[index:index + 1]
        for buf in targets:
            shift = buf.nwritten - r.nread
            if shift:
                buf.add_sorted_tags([Tag(offset + shift, key, value, srcid) for offset, key, value, srcid in tags])
            else:
                buf.add_sorted_tags(tags)


def _propagate_rate(policy: str, readers, buffers, starts, counts, interp: int, decim: int) -> None:
    """Tags of the consumed items across a rate change, as GNU Radio's block_executor:
    offset ``o`` goes to ``floor(o * interp / decim + 1/2)`` (exact rational arithmetic)."""
    for index, r in enumerate(readers):
        if not counts[index]:
            continue
        tags = r.buffer.tags_in_range(starts[index], starts[index] + counts[index], None)
        if not tags:
            continue
        if interp != decim:
            two_d = 2 * decim
            tags = [Tag((2 * offset * interp + decim) // two_d, key, value, srcid)
                    for offset, key, value, srcid in tags]
        targets = buffers if policy == "all_to_all" else buffers[index:index + 1]
        for buf in targets:
            buf.add_sorted_tags(tags)
