"""The block runtime (isacblocks.core): tags, batching, fan-out, connect checks, errors,
stop/wait, message ports, lifetime, harness.  Knows nothing about radio.

Every flowgraph run goes through `run_fg` (conftest), which fails instead of hanging.
"""

from __future__ import annotations

import gc
import threading
import time
import warnings
import weakref

import numpy as np
import pytest

from isacblocks.core import (
    WORK_DONE,
    Flowgraph,
    MessageCollector,
    NullSink,
    SinkBlock,
    SourceBlock,
    SyncBlock,
    Tag,
    VectorSink,
    VectorSource,
    run_block,
)
from isacblocks.errors import BlockError, ConfigError, ConnectError, ShapeError

pytestmark = pytest.mark.usefixtures("each_scheduler")


# --------------------------------------------------------------------------- test blocks
class RunningSum(SyncBlock):
    """Stateful: y[n] = x[0] + ... + x[n] (int64, exact).  Handles at most `limit` items per call,
    so a chain of these sees batch sizes that differ from the flowgraph's max_items."""

    def __init__(self, limit=None, name=None):
        super().__init__(in_sig=[np.int64], out_sig=[np.int64], name=name)
        self.limit = limit
        self.batches: list[int] = []
        self.acc = 0

    def start(self):
        self.acc = 0
        self.batches = []

    def work(self, inputs, outputs):
        x = inputs[0]
        n = len(x) if self.limit is None else min(len(x), self.limit)
        y = self.acc + np.cumsum(x[:n])
        outputs[0][:n] = y
        self.acc = int(y[-1])
        self.batches.append(n)
        return n


class MarkOdd(SyncBlock):
    """Passes items through and adds its own tag ``odd`` on every odd item (absolute offsets)."""

    def __init__(self, limit=None, name=None):
        super().__init__(in_sig=[np.int64], out_sig=[np.int64], name=name)
        self.limit = limit

    def work(self, inputs, outputs):
        x = inputs[0]
        n = len(x) if self.limit is None else min(len(x), self.limit)
        outputs[0][:n] = x[:n]
        base = self.nitems_written(0)
        for i in np.flatnonzero(x[:n] % 2):
            self.add_tag(0, base + int(i), "odd", int(x[i]))
        return n


class Add(SyncBlock):
    def __init__(self, name=None):
        super().__init__(in_sig=[np.int64, np.int64], out_sig=[np.int64], name=name)

    def work(self, inputs, outputs):
        outputs[0][:] = inputs[0] + inputs[1]
        return len(outputs[0])


class Counter(SourceBlock):
    """0, 1, 2, ...; endless when `total` is None, else WORK_DONE after `total` items."""

    def __init__(self, total=None, name=None):
        super().__init__(out_sig=[np.int64], name=name)
        self.total = total
        self.produced = 0

    def start(self):
        self.produced = 0

    def work(self, inputs, outputs):
        out = outputs[0]
        n = len(out) if self.total is None else min(len(out), self.total - self.produced)
        if n <= 0:
            return WORK_DONE
        out[:n] = np.arange(self.produced, self.produced + n)
        self.produced += n
        return n


class IdleSource(SourceBlock):
    """A source that never has data (like an idle network source): always returns 0."""

    def __init__(self, name=None):
        super().__init__(out_sig=[np.int64], name=name)

    def work(self, inputs, outputs):
        return 0


class Boom(SyncBlock):
    """Raises ValueError on its `at`-th work() call; records start/stop."""

    def __init__(self, at=3, name=None):
        super().__init__(in_sig=[np.int64], out_sig=[np.int64], name=name)
        self.at = at
        self.calls = 0
        self.stopped = False

    def start(self):
        self.calls = 0
        self.stopped = False

    def work(self, inputs, outputs):
        self.calls += 1
        if self.calls >= self.at:
            raise ValueError("kaboom in the middle of a batch")
        outputs[0][:] = inputs[0]
        return len(inputs[0])

    def stop(self):
        self.stopped = True


class StopRecorder(VectorSink):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.stopped = False

    def stop(self):
        self.stopped = True


def _tagged_source(n=50, name=None):
    data = (np.arange(n, dtype=np.int64) * 7 + 3) % 11
    offsets = [0, 1, 2, 7, 13, 31, n - 1]
    tags = [Tag(o, "mark", f"v{o}") for o in offsets] + [Tag(13, "second", 13.5)]
    return data, tags, VectorSource(data, tags, name=name)


def _tagset(tags):
    return sorted((t.offset, t.key, repr(t.value)) for t in tags)


# --------------------------------------------------------------------------- tags and batching
def _run_chain(run_fg, max_items, limits):
    data, tags, src = _tagged_source()
    s1, odd, s2 = RunningSum(limit=limits[0]), MarkOdd(limit=limits[1]), RunningSum(limit=limits[2])
    sink = VectorSink(np.int64)
    fg = Flowgraph(max_items=max_items)
    fg.connect(src, s1, odd, s2, sink)
    run_fg(fg)
    return data, tags, sink, (s1, odd, s2)


@pytest.mark.parametrize("max_items", [1, 3, 64])
@pytest.mark.parametrize("limits", [(None, None, None), (3, 1, None), (1, None, 3)])
def test_tags_land_on_right_offsets_through_sync_chain(run_fg, max_items, limits):
    data, tags, sink, (s1, _, s2) = _run_chain(run_fg, max_items, limits)
    first = np.cumsum(data)
    np.testing.assert_array_equal(sink.data, np.cumsum(first))
    expected = list(tags) + [Tag(int(i), "odd", int(first[i])) for i in np.flatnonzero(first % 2)]
    assert _tagset(sink.tags) == _tagset(expected)
    # the batch sizes really differed (otherwise the test would not test chunking)
    assert max(s1.batches) <= min(max_items, limits[0] or max_items)
    assert sum(s1.batches) == sum(s2.batches) == len(data)


def test_same_stream_any_batching_gives_identical_outputs_and_tags(run_fg):
    runs = [_run_chain(run_fg, m, lim) for m in (1, 3, 7, 64) for lim in ((None, None, None), (2, 5, 1))]
    ref_data, ref_tags = runs[0][2].data, _tagset(runs[0][2].tags)
    batch_patterns = set()
    for _, _, sink, (s1, _, _) in runs[1:]:
        np.testing.assert_array_equal(sink.data, ref_data)
        assert _tagset(sink.tags) == ref_tags
        batch_patterns.add(tuple(s1.batches))
    assert len(batch_patterns) >= 4


def test_multi_input_sync_block_merges_tags_at_aligned_offsets(run_fg):
    a = VectorSource(np.arange(10, dtype=np.int64), [Tag(3, "a", 1)])
    b = VectorSource(np.arange(10, dtype=np.int64) * 100, [Tag(3, "b", 2), Tag(9, "b", 3)])
    add, sink = Add(), VectorSink(np.int64)
    fg = Flowgraph(max_items=4)
    fg.connect((a, 0), (add, 0))
    fg.connect((b, 0), (add, 1))
    fg.connect(add, sink)
    run_fg(fg)
    np.testing.assert_array_equal(sink.data, np.arange(10) * 101)
    assert _tagset(sink.tags) == _tagset([Tag(3, "a", 1), Tag(3, "b", 2), Tag(9, "b", 3)])


def test_sync_block_with_unequal_finite_inputs_ends_with_the_shorter(run_fg):
    """A sync block cannot produce once any input is exhausted; the graph must end (not spin)."""
    a = VectorSource(np.arange(10, dtype=np.int64))
    b = VectorSource(np.arange(5, dtype=np.int64))
    add, sink = Add(), VectorSink(np.int64)
    fg = Flowgraph(max_items=4)
    fg.connect((a, 0), (add, 0))
    fg.connect((b, 0), (add, 1))
    fg.connect(add, sink)
    run_fg(fg, timeout=5)
    np.testing.assert_array_equal(sink.data, 2 * np.arange(5))


def test_tag_propagation_none_drops_input_tags(run_fg):
    class Dropper(RunningSum):
        tag_propagation = "none"

    data, tags, src = _tagged_source()
    sink = VectorSink(np.int64)
    fg = Flowgraph(max_items=8)
    fg.connect(src, Dropper(), sink)
    run_fg(fg)
    assert len(sink.data) == len(data) and sink.tags == []


def test_vector_items_pass_with_their_shape(run_fg):
    data = np.arange(24, dtype=np.complex64).reshape(6, 2, 2)
    src, sink = VectorSource(data, [(4, "k", "v")]), VectorSink(np.complex64, (2, 2))
    fg = Flowgraph(max_items=4)
    fg.connect(src, sink)
    run_fg(fg)
    np.testing.assert_array_equal(sink.data, data)
    assert [(t.offset, t.key) for t in sink.tags] == [(4, "k")]


# --------------------------------------------------------------------------- fan-out
@pytest.mark.parametrize("max_items", [1, 5, 64])
def test_fan_out_feeds_every_consumer_all_items_and_tags(run_fg, max_items):
    data, tags, src = _tagged_source()
    direct = VectorSink(np.int64)
    slow, after_slow = RunningSum(limit=1), VectorSink(np.int64)
    fg = Flowgraph(max_items=max_items)
    fg.connect(src, direct)
    fg.connect(src, slow, after_slow)
    run_fg(fg)
    np.testing.assert_array_equal(direct.data, data)
    np.testing.assert_array_equal(after_slow.data, np.cumsum(data))
    assert _tagset(direct.tags) == _tagset(tags) == _tagset(after_slow.tags)


def test_fan_out_with_one_consumer_finishing_early_does_not_stall_the_other(run_fg):
    """A finished consumer (VectorSink limit) must not hold the shared buffer: the other
    consumer still gets the whole stream and the graph ends."""
    src = VectorSource(np.arange(100, dtype=np.int64))
    early, full = VectorSink(np.int64, limit=5), VectorSink(np.int64)
    fg = Flowgraph(max_items=4)
    fg.connect(src, early)
    fg.connect(src, full)
    run_fg(fg, timeout=3)
    np.testing.assert_array_equal(early.data, np.arange(5))
    np.testing.assert_array_equal(full.data, np.arange(100))


# --------------------------------------------------------------------------- connect checks
def test_connect_dtype_mismatch_names_both_blocks_and_ports():
    src = VectorSource(np.zeros(4, np.float32), name="srcA")
    sink = VectorSink(np.complex64, name="sinkB")
    fg = Flowgraph()
    with pytest.raises(ConnectError) as info:
        fg.connect(src, sink)
    msg = str(info.value)
    for word in ("srcA", "out0", "sinkB", "in0", "float32", "complex64"):
        assert word in msg, (word, msg)


def test_connect_item_shape_mismatch_names_both_blocks_ports_and_shapes():
    src = VectorSource(np.zeros((3, 4), np.float64), name="frames")
    sink = VectorSink(np.float64, (5,), name="wants5")
    fg = Flowgraph()
    with pytest.raises(ConnectError) as info:
        fg.connect(src, sink)
    msg = str(info.value)
    for word in ("frames", "out0", "wants5", "in0", "(4,)", "(5,)"):
        assert word in msg, (word, msg)
    assert isinstance(info.value, TypeError)


def test_connect_unknown_port_names_the_port():
    src, sink = VectorSource(np.zeros(3)), VectorSink(np.float64, name="snk")
    fg = Flowgraph()
    with pytest.raises(ConnectError, match="nope"):
        fg.connect((src, "nope"), sink)
    with pytest.raises(ConnectError, match="snk"):
        fg.connect(src, (sink, 3))


def test_connecting_an_already_connected_input_raises():
    a, b = VectorSource(np.zeros(3), name="a"), VectorSource(np.zeros(3), name="b")
    sink = VectorSink(np.float64, name="the_sink")
    fg = Flowgraph()
    fg.connect(a, sink)
    with pytest.raises(ConnectError, match="already connected") as info:
        fg.connect(b, sink)
    assert "the_sink" in str(info.value)


def test_unconnected_input_port_is_reported_at_run():
    a = VectorSource(np.zeros(3, np.int64))
    add = Add(name="half_fed")
    fg = Flowgraph()
    fg.connect((a, 0), (add, 0))
    fg.connect(add, NullSink(np.int64))
    with pytest.raises(ConnectError) as info:
        fg.run()
    assert "half_fed" in str(info.value) and "in1" in str(info.value)


def test_unconnected_output_port_is_reported_at_run():
    class TwoOut(SyncBlock):
        def __init__(self):
            super().__init__(in_sig=[np.int64], out_sig=[np.int64, np.int64], name="two_out")

        def work(self, inputs, outputs):
            outputs[0][:] = inputs[0]
            outputs[1][:] = inputs[0]
            return len(inputs[0])

    fg = Flowgraph()
    blk = TwoOut()
    fg.connect(VectorSource(np.zeros(3, np.int64)), blk, NullSink(np.int64))
    with pytest.raises(ConnectError) as info:
        fg.run()
    assert "two_out" in str(info.value) and "out1" in str(info.value) and "not connected" in str(info.value)


def test_two_blocks_with_the_same_name_and_cycles_are_rejected():
    fg = Flowgraph()
    with pytest.raises(ConnectError, match="dup"):
        fg.connect(VectorSource(np.zeros(3), name="dup"), VectorSink(np.float64, name="dup"))
    a, b = RunningSum(name="cyc_a"), RunningSum(name="cyc_b")
    fg2 = Flowgraph()
    fg2.connect(a, b)
    fg2.connect(b, a)
    with pytest.raises(ConnectError, match="cycle"):
        fg2.run()


# --------------------------------------------------------------------------- errors in work()
@pytest.mark.parametrize("where", ["middle", "source", "sink"])
def test_exception_in_work_stops_run_with_block_error_naming_block(run_fg, where):
    class BadSource(Counter):
        def work(self, inputs, outputs):
            if self.produced >= 8:
                raise ValueError("kaboom in the source")
            return super().work(inputs, outputs)

    class BadSink(StopRecorder):
        def work(self, inputs, outputs):
            if self.nitems_read(0) >= 8:
                raise ValueError("kaboom in the sink")
            return super().work(inputs, outputs)

    src = BadSource(name="bad_source") if where == "source" else Counter(name="counter")
    mid = Boom(at=3, name="bad_middle") if where == "middle" else Boom(at=10 ** 9, name="fine_middle")
    sink = BadSink(np.int64, name="bad_sink") if where == "sink" else StopRecorder(np.int64, name="sink")
    fg = Flowgraph(max_items=4)
    fg.connect(src, mid, sink)
    with pytest.raises(BlockError) as info:
        run_fg(fg, timeout=5)
    name = {"middle": "bad_middle", "source": "bad_source", "sink": "bad_sink"}[where]
    assert f"'{name}'" in str(info.value) and "kaboom" in str(info.value) and "ValueError" in str(info.value)
    assert isinstance(info.value.__cause__, ValueError)
    assert mid.stopped and sink.stopped  # every started block was stopped
    assert not fg.running


def test_exception_in_work_is_reraised_from_wait_after_start():
    src, boom, sink = Counter(), Boom(at=2, name="boom_bg"), NullSink(np.int64)
    fg = Flowgraph(max_items=4)
    fg.connect(src, boom, sink)
    fg.start()
    with pytest.raises(BlockError, match="boom_bg"):
        fg.wait(timeout=5)
    assert not fg.running
    assert not any(t.name == f"isacblocks-{fg.name}" and t.is_alive() for t in threading.enumerate())
    fg.wait(timeout=1)  # the error is reported once; a second wait returns quietly


def test_work_returning_more_items_than_offered_raises_block_error(run_fg):
    class Greedy(SyncBlock):
        def __init__(self):
            super().__init__(in_sig=[np.int64], out_sig=[np.int64], name="greedy")

        def work(self, inputs, outputs):
            return len(inputs[0]) + 1

    fg = Flowgraph(max_items=4)
    fg.connect(VectorSource(np.zeros(10, np.int64)), Greedy(), NullSink(np.int64))
    with pytest.raises(BlockError) as info:
        run_fg(fg, timeout=5)
    assert "'greedy'" in str(info.value) and "returned" in str(info.value)


def test_work_returning_a_negative_count_raises_block_error(run_fg):
    class Negative(SyncBlock):
        def __init__(self):
            super().__init__(in_sig=[np.int64], out_sig=[np.int64], name="negative")

        def work(self, inputs, outputs):
            return -2

    fg = Flowgraph(max_items=4)
    fg.connect(VectorSource(np.zeros(10, np.int64)), Negative(), NullSink(np.int64))
    with pytest.raises(BlockError, match="negative"):
        run_fg(fg, timeout=5)


# --------------------------------------------------------------------------- start / stop / wait
def _thread_alive(fg) -> bool:
    return any(t.name == f"isacblocks-{fg.name}" and t.is_alive() for t in threading.enumerate())


@pytest.mark.parametrize("source_cls", [Counter, IdleSource], ids=["endless", "idle"])
def test_stop_on_running_flowgraph_returns_within_one_second(source_cls):
    src, sink = source_cls(name="src"), VectorSink(np.int64, name="sink")
    fg = Flowgraph(max_items=16, name=f"stoppable_{source_cls.__name__}")
    fg.connect(src, sink)
    fg.start()
    deadline = time.monotonic() + 2
    while source_cls is Counter and len(sink._chunks) < 3 and time.monotonic() < deadline:
        time.sleep(0.005)
    if source_cls is Counter:
        assert sink._chunks, "the endless source never produced"
    fg.wait(timeout=0.05)  # a bounded wait on a live graph returns without error
    assert fg.running and _thread_alive(fg)
    t0 = time.monotonic()
    fg.stop()
    assert time.monotonic() - t0 < 1.0
    assert not fg.running and not _thread_alive(fg)
    if source_cls is Counter:  # the items that did arrive are the stream's first ones, in order
        np.testing.assert_array_equal(sink.data, np.arange(len(sink.data)))


class SlowSink(VectorSink):
    """A VectorSink that takes at most 3 items per call, 1 ms each call: items pile up upstream."""

    def work(self, inputs, outputs):
        time.sleep(1e-3)
        return super().work([x[:3] for x in inputs], outputs)


class Chunked(Counter):
    """A Counter that writes at most `chunk` items per call (sources out of step by a few items)."""

    def __init__(self, chunk, name=None):
        super().__init__(name=name)
        self.chunk = chunk

    def work(self, inputs, outputs):
        return super().work(inputs, [outputs[0][:self.chunk]])


def test_drain_ends_every_stream_at_one_count_with_nothing_left_in_flight():
    """drain(): the sources end at the largest count either wrote; every item already written
    reaches every sink (no StreamWarning, no item dropped), then the run ends by itself."""
    a, b = Chunked(5, name="a"), Chunked(3, name="b")
    sums, only_a, only_b = SlowSink(np.int64, name="sums"), SlowSink(np.int64, name="only_a"), \
        VectorSink(np.int64, name="only_b")
    add = Add(name="add")
    fg = Flowgraph(max_items=8, name="drained")
    fg.connect(a, (add, 0))
    fg.connect(b, (add, 1))
    fg.connect(add, sums)
    fg.connect(a, only_a)
    fg.connect(b, only_b)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fg.start()
        deadline = time.monotonic() + 5
        while len(sums._chunks) < 5 and time.monotonic() < deadline:
            time.sleep(0.002)
        fg.drain(timeout=10)
    assert not fg.running and not _thread_alive(fg)
    n = max(a.produced, b.produced)
    assert a.produced == b.produced == n > 0 and fg.dropped == {}
    for sink in (only_a, only_b):
        np.testing.assert_array_equal(sink.data, np.arange(n))
    np.testing.assert_array_equal(sums.data, 2 * np.arange(n))


def test_drain_ends_a_source_waiting_for_outside_input_at_once():
    src, idle = Counter(name="src"), IdleSource(name="idle")
    from_src, from_idle = VectorSink(np.int64, name="from_src"), VectorSink(np.int64, name="from_idle")
    fg = Flowgraph(max_items=16, name="drained_idle")
    fg.connect(src, from_src)
    fg.connect(idle, from_idle)
    fg.start()
    time.sleep(0.02)
    t0 = time.monotonic()
    fg.drain(timeout=5)
    assert time.monotonic() - t0 < 1.0 and not fg.running
    np.testing.assert_array_equal(from_src.data, np.arange(src.produced))
    assert src.produced > 0 and from_idle.data.size == 0


def test_start_twice_raises_and_connect_while_running_raises():
    fg = Flowgraph(name="double_start")
    fg.connect(Counter(), NullSink(np.int64))
    fg.start()
    try:
        with pytest.raises(BlockError, match="already running"):
            fg.start()
        with pytest.raises(ConnectError, match="running"):
            fg.connect(Counter(name="late"), NullSink(np.int64, name="late_sink"))
    finally:
        fg.stop()
    assert not fg.running


def test_source_returning_work_done_ends_the_graph(run_fg):
    src, mid, sink = Counter(total=23), RunningSum(), VectorSink(np.int64)
    fg = Flowgraph(max_items=5)
    fg.connect(src, mid, sink)
    run_fg(fg, timeout=5)
    np.testing.assert_array_equal(sink.data, np.cumsum(np.arange(23)))


def test_empty_source_ends_the_graph_at_once(run_fg):
    sink = VectorSink(np.int64)
    fg = Flowgraph()
    fg.connect(VectorSource(np.zeros(0, np.int64)), RunningSum(), sink)
    run_fg(fg, timeout=5)
    assert len(sink.data) == 0


@pytest.mark.parametrize("max_items", [1, 4, 64])
def test_vector_sink_limit_ends_graph_fed_by_endless_source(run_fg, max_items):
    sink = VectorSink(np.int64, limit=10)
    fg = Flowgraph(max_items=max_items)
    fg.connect(Counter(), MarkOdd(), sink)
    run_fg(fg, timeout=5)
    np.testing.assert_array_equal(sink.data, np.arange(10))
    assert sorted(t.offset for t in sink.tags) == [1, 3, 5, 7, 9]


def test_rerunning_a_flowgraph_restarts_its_sources(run_fg):
    sink = VectorSink(np.int64)
    fg = Flowgraph(max_items=3)
    fg.connect(Counter(total=7), sink)
    run_fg(fg)
    first = sink.data.copy()
    sink.reset()
    run_fg(fg)
    np.testing.assert_array_equal(first, np.arange(7))
    np.testing.assert_array_equal(sink.data, first)


# --------------------------------------------------------------------------- message ports
class Announcer(Counter):
    """Endless counter that publishes, in each work(), how many items exist after this call."""

    def __init__(self, total, name=None):
        super().__init__(total=total, name=name)
        self.message_port_register_out("count")

    def work(self, inputs, outputs):
        n = super().work(inputs, outputs)
        if n != WORK_DONE:
            self.message_port_pub("count", self.produced)
        return n


class Listener(SyncBlock):
    """Checks in every work() that the message announcing its items was handled before."""

    def __init__(self, name=None):
        super().__init__(in_sig=[np.int64], out_sig=[np.int64], name=name)
        self.latest = 0
        self.late = []
        self.message_port_register_in("count", self._on_count)

    def _on_count(self, msg):
        self.latest = msg

    def work(self, inputs, outputs):
        end = self.nitems_read(0) + len(inputs[0])
        if self.latest < end:
            self.late.append((end, self.latest))
        outputs[0][:] = inputs[0]
        return len(inputs[0])


@pytest.mark.parametrize("max_items", [1, 3, 64])
def test_messages_published_in_work_reach_subscribers_before_their_next_work(run_fg, max_items):
    src, listener, sink = Announcer(total=40, name="announcer"), Listener(), VectorSink(np.int64)
    collector = MessageCollector()
    fg = Flowgraph(max_items=max_items)
    fg.connect(src, listener, sink)
    fg.msg_connect(src, "count", listener, "count")
    fg.msg_connect(src, "count", collector, "in")
    run_fg(fg)
    assert listener.late == []
    assert listener.latest == 40
    assert collector.messages[-1] == 40
    assert collector.messages == sorted(collector.messages) and len(collector.messages) >= 40 // max_items


def test_message_port_errors_name_the_port():
    src, listener = Announcer(total=1, name="ann"), Listener(name="lis")
    fg = Flowgraph()
    with pytest.raises(ConnectError, match="nope"):
        fg.msg_connect(src, "nope", listener, "count")
    with pytest.raises(ConnectError, match="lis"):
        fg.msg_connect(src, "count", listener, "missing")
    with pytest.raises(ConfigError, match="missing"):
        listener.post("missing", 1)
    with pytest.raises(ConfigError, match="missing"):
        listener.set_msg_handler("missing", print)
    with pytest.raises(ConfigError, match="unregistered"):
        src.message_port_pub("unregistered", 1)


def test_exception_in_message_handler_stops_run_with_block_error_naming_block(run_fg):
    """Like an error in work(): a handler that raises ends the run with a BlockError naming the block."""
    listener = Listener(name="touchy")

    def handler(msg):
        raise KeyError("no such setting")

    listener.set_msg_handler("count", handler)
    listener.post("count", 1)
    fg = Flowgraph()
    fg.connect(Counter(), listener, NullSink(np.int64))
    with pytest.raises(BlockError) as info:
        run_fg(fg, timeout=5)
    assert "'touchy'" in str(info.value) and "no such setting" in str(info.value)
    assert not fg.running


def test_handler_replaced_with_set_msg_handler_and_post_before_run(run_fg):
    listener = Listener(name="lis2")
    got = []
    listener.set_msg_handler("count", got.append)
    listener.post("count", "hello")
    fg = Flowgraph()
    fg.connect(VectorSource(np.zeros(3, np.int64)), listener, NullSink(np.int64))
    run_fg(fg)
    assert got == ["hello"]


# --------------------------------------------------------------------------- lifetime (#8137)
def test_flowgraph_keeps_blocks_alive_when_user_drops_references(run_fg):
    def build():
        fg = Flowgraph(max_items=4)
        src = VectorSource(np.arange(20, dtype=np.int64), [(5, "k", "v")])
        fg.connect(src, RunningSum(limit=3), MarkOdd(), VectorSink(np.int64, name="kept_sink"))
        listener = MessageCollector(name="kept_collector")
        announcer = Announcer(total=6, name="kept_announcer")
        fg.connect(announcer, NullSink(np.int64, name="kept_null"))
        fg.msg_connect(announcer, "count", listener, "in")
        return fg

    fg = build()
    gc.collect()
    refs = [weakref.ref(b) for b in fg.blocks]
    gc.collect()
    assert all(r() is not None for r in refs)
    run_fg(fg)
    sink = next(b for b in fg.blocks if b.name == "kept_sink")
    np.testing.assert_array_equal(sink.data, np.cumsum(np.arange(20)))
    assert [t.offset for t in sink.tags if t.key == "k"] == [5]
    assert next(b for b in fg.blocks if b.name == "kept_collector").messages[-1] == 6


# --------------------------------------------------------------------------- harness
class Gain(SyncBlock):
    def __init__(self):
        super().__init__(in_sig=[np.float64], out_sig=[np.float64], name="gain_blk")
        self.gain = 1.0
        self.message_port_register_in("gain", self._set)
        self.message_port_register_out("seen")

    def _set(self, msg):
        self.gain = float(msg)

    def work(self, inputs, outputs):
        outputs[0][:] = self.gain * inputs[0]
        self.message_port_pub("seen", len(inputs[0]))
        return len(inputs[0])


def test_run_block_harness_with_tags_and_messages():
    data = np.arange(11, dtype=np.float64)
    result = run_block(Gain(), [data], tags=[[(2, "k", "v"), Tag(9, "k2", 1)]], messages=[("gain", 3.0)],
                       max_items=4)
    np.testing.assert_array_equal(result.outputs[0], 3.0 * data)
    assert [(t.offset, t.key, t.value) for t in result.tags[0]] == [(2, "k", "v"), (9, "k2", 1)]
    assert sum(result.messages["seen"]) == 11 and max(result.messages["seen"]) <= 4


def test_run_block_on_a_source_with_n_items_and_on_a_sink():
    result = run_block(Counter(), n_items=7, max_items=3)
    np.testing.assert_array_equal(result.outputs[0], np.arange(7))
    sink = VectorSink(np.int64)
    assert run_block(sink, [np.arange(5, dtype=np.int64)], tags=[[(1, "x", 1)]]).outputs == []
    np.testing.assert_array_equal(sink.data, np.arange(5))
    assert [t.offset for t in sink.tags] == [1]


def test_run_block_rejects_wrong_input_arrays():
    with pytest.raises(ShapeError, match="float64"):
        run_block(Gain(), [np.arange(3, dtype=np.int64)])
    with pytest.raises(ShapeError):
        run_block(Gain(), [])


def test_block_subclass_without_work_is_reported():
    class Lazy(SinkBlock):
        def __init__(self):
            super().__init__(in_sig=[np.int64], name="lazy")

    with pytest.raises(BlockError, match="lazy"):
        run_block(Lazy(), [np.zeros(2, np.int64)])
