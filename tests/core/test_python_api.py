"""The Python API refuses what would corrupt a run: a block in two running flowgraphs, a tag
on an item already gone; `Flowgraph.wait(timeout)` says whether the graph finished."""

from __future__ import annotations

import numpy as np
import pytest

from isacblocks.core import Flowgraph, NullSink, SyncBlock, Throttle, VectorSource, port
from isacblocks.core.basic import VectorSink
from isacblocks.errors import BlockError


def _throttled(name: str, throttle: Throttle | None = None, items: int = 10_000) -> tuple[Flowgraph, Throttle]:
    fg = Flowgraph(name=name, max_items=1)
    src = VectorSource(np.zeros(items, np.float32), name=f"{name}_src")
    throttle = throttle or Throttle(np.float32, items_per_second=200.0, name="shared_throttle")
    fg.connect(src, throttle)
    fg.connect(throttle, NullSink(np.float32, name=f"{name}_sink"))
    return fg, throttle


def test_a_block_running_in_another_flowgraph_is_refused_naming_both():
    first, throttle = _throttled("first")
    second, _ = _throttled("second", throttle)
    first.start()
    try:
        with pytest.raises(BlockError, match=r"flowgraph 'second': block 'shared_throttle' is running in "
                                             r"flowgraph 'first'"):
            second.start()
        assert first.running and not second.running
        assert throttle.running_in == "first"  # the refused start left the running one alone
    finally:
        first.stop(timeout=10)
    assert throttle.running_in is None
    # once the first has stopped, the block may run in the second
    second.start()
    assert throttle.running_in == "second"
    second.stop(timeout=10)


def test_wait_with_a_timeout_says_whether_the_flowgraph_finished():
    fg, _ = _throttled("slow", items=100_000)
    fg.start()
    try:
        assert fg.wait(timeout=0.05) is False
        assert fg.running
    finally:
        fg.stop(timeout=10)
    quick = Flowgraph(name="quick")
    quick.connect(VectorSource(np.arange(5, dtype=np.float32)), NullSink(np.float32))
    quick.start()
    assert quick.wait(timeout=30) is True
    assert quick.wait() is True  # already finished


class _Tagger(SyncBlock):
    """Copies its input and tags the item `delta` before each call's first (delta 0: the first)."""

    def __init__(self, delta: int):
        super().__init__(in_sig=[port(np.float32)], out_sig=[port(np.float32)], name="tagger")
        self.delta = delta

    def work(self, inputs, outputs):
        n = len(inputs[0])
        outputs[0][:n] = inputs[0]
        self.add_tag(0, max(self.nitems_written(0) - self.delta, 0), "mark", n)
        return n


def _tag_run(delta: int) -> VectorSink:
    fg = Flowgraph(name="tags", max_items=4)
    sink = VectorSink(np.float32)
    fg.connect(VectorSource(np.arange(12, dtype=np.float32)), _Tagger(delta))
    fg.connect(fg.blocks[-1], sink)
    fg.run()
    return sink


def test_a_tag_on_an_item_of_this_call_is_kept():
    sink = _tag_run(0)
    assert [t.offset for t in sink.tags if t.key == "mark"] == [0, 4, 8]


def test_a_tag_added_at_a_past_offset_raises_naming_the_block():
    with pytest.raises(BlockError, match=r"block 'tagger': add_tag\(port=0, offset=3, key='mark'\): offset 3 "
                                         r"is in the past: items before 4 have already left output 0"):
        _tag_run(1)


@pytest.mark.parametrize("port_index, offset, rule", [(1, 0, "no output port 1"), (0, 2.5, "must be an integer"),
                                                      (0, -1, "an integer item index >= 0")])
def test_a_tag_on_a_missing_port_or_a_fractional_offset_is_named(port_index, offset, rule):
    class Bad(_Tagger):
        def work(self, inputs, outputs):
            outputs[0][:len(inputs[0])] = inputs[0]
            self.add_tag(port_index, offset, "mark", 1)
            return len(inputs[0])

    fg = Flowgraph(name="bad_tags")
    fg.connect(VectorSource(np.arange(3, dtype=np.float32)), Bad(0))
    fg.connect(fg.blocks[-1], NullSink(np.float32))
    with pytest.raises(BlockError, match=rule):
        fg.run()
