"""The schedulers: "threaded" gives the items, tags and messages of "single" (the radio chain,
fan-out and fan-in, rate changes), takes partial batches from a trickling source, never
deadlocks on message cycles, names the failing block, leaves no thread behind, and counts
every block's items (`Flowgraph.performance`).  The rest of the runtime contract runs
under both schedulers in test_core_runtime / test_runtime_contract / test_general_blocks."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from test_blocks_chain import build_chain

from isacblocks import SystemParams
from isacblocks.core import (
    WORK_DONE,
    WORK_WAITING,
    Block,
    DecimBlock,
    Flowgraph,
    InterpBlock,
    SourceBlock,
    SyncBlock,
    Tag,
    VectorSink,
    VectorSource,
)
from isacblocks.core.buffer import RingBuffer
from isacblocks.core.ports import port
from isacblocks.errors import BlockError, ConfigError

SCHEDULERS = ("single", "threaded")


def _tags(tags):
    return [(t.offset, t.key, repr(t.value), t.srcid) for t in tags]


def _scheduler_threads() -> list[str]:
    """The block threads of the threaded scheduler still alive (not the noise pool's, which persists)."""
    return [t.name for t in threading.enumerate() if t.name.startswith("isacblocks-block-") and t.is_alive()]


# --------------------------------------------------------------------------- same results
@pytest.fixture(scope="module")
def chain_params():
    return SystemParams(n_antennas=16, n_subcarriers=64, n_angle_grid=180, n_range_grid=50,
                        snr_radar_db=25.0, snr_comm_db=0.0)


@pytest.mark.parametrize("max_items", [64, 7])
def test_the_radio_chain_gives_the_same_items_and_tags_under_both_schedulers(chain_params, max_items):
    """Scenario, both beamformers, combiner, target and UE channels, reciprocal filter, MAPRT,
    metrics, demapper, SER: every tap equal to the last bit, tags in the same order."""
    runs = {}
    for name in SCHEDULERS:
        fg, blocks, _ = build_chain(chain_params, 150, max_items)
        fg._scheduler = type(Flowgraph(scheduler=name)._scheduler)()
        fg.run()
        assert fg.scheduler == name
        runs[name] = blocks
    a, b = runs["single"], runs["threaded"]
    for tap in ("est_tap", "csi_tap", "sent_tap"):
        np.testing.assert_array_equal(a[tap].data, b[tap].data)
        assert _tags(a[tap].tags) == _tags(b[tap].tags)
    np.testing.assert_array_equal(a["metrics"].records, b["metrics"].records)
    assert a["ser"].errors == b["ser"].errors and a["ser"].symbols == b["ser"].symbols


class Decimate(DecimBlock):
    """Sum of each group of `decimation` items."""

    def __init__(self, d, name=None):
        super().__init__(in_sig=[np.float64], out_sig=[np.float64], decimation=d, name=name)

    def work(self, inputs, outputs):
        n = len(outputs[0])
        outputs[0][:] = inputs[0][:n * self.decimation].reshape(n, self.decimation).sum(axis=1)
        return n


class Repeat(InterpBlock):
    def __init__(self, i, name=None):
        super().__init__(in_sig=[np.float64], out_sig=[np.float64], interpolation=i, name=name)

    def work(self, inputs, outputs):
        outputs[0][:] = np.repeat(inputs[0], self.interpolation)
        return len(outputs[0])


class AddTwo(SyncBlock):
    def __init__(self, name=None):
        super().__init__(in_sig=[np.float64, np.float64], out_sig=[np.float64], name=name)

    def work(self, inputs, outputs):
        np.add(inputs[0], inputs[1], out=outputs[0])
        return len(outputs[0])


@pytest.mark.parametrize("max_items", [1, 5, 64])
def test_fan_out_fan_in_and_rate_changes_give_the_same_stream_under_both_schedulers(max_items):
    rng = np.random.default_rng(3)
    data = rng.standard_normal(997)
    tags = [Tag(int(i), "mark", int(i)) for i in rng.choice(997, 60, replace=False)]
    out = {}
    for name in SCHEDULERS:
        src = VectorSource(data, tags, name="src")
        dec, rep, add, sink = Decimate(3, name="dec"), Repeat(3, name="rep"), AddTwo(name="add"), VectorSink(np.float64)
        fg = Flowgraph(max_items=max_items, scheduler=name)
        fg.connect(src, dec, rep, (add, 0))
        fg.connect(src, (add, 1))
        fg.connect(add, sink)
        with pytest.warns(Warning):  # 997 = 3 * 332 + 1: one item is a partial group, reported
            fg.run()
        out[name] = (sink.data, _tags(sink.tags), fg.dropped)
    np.testing.assert_array_equal(out["single"][0], out["threaded"][0])
    assert out["single"][1] == out["threaded"][1]
    assert out["single"][2] == out["threaded"][2]
    expected = np.repeat(data[:996].reshape(-1, 3).sum(axis=1), 3) + data[:996]
    np.testing.assert_allclose(out["threaded"][0], expected, rtol=1e-12)


# --------------------------------------------------------------------------- live streams
class Trickle(SourceBlock):
    """Gives one item now and then, and says it waits in between (a socket with little traffic)."""

    def __init__(self, every_s=0.01, total=5, name=None):
        super().__init__(out_sig=[np.int64], name=name)
        self.every_s, self.total = every_s, total

    def start(self):
        self.sent, self.next_at, self.sent_at = 0, time.monotonic(), []

    def work(self, inputs, outputs):
        if self.sent >= self.total:
            return WORK_DONE
        if time.monotonic() < self.next_at:
            time.sleep(0.002)  # polls a socket with a timeout: mostly inside work() while it waits
            return WORK_WAITING
        outputs[0][0] = self.sent
        self.sent += 1
        self.sent_at.append(time.monotonic())
        self.next_at = time.monotonic() + self.every_s
        return 1


class Stamp(SyncBlock):
    def __init__(self, name=None):
        super().__init__(in_sig=[np.int64], out_sig=[np.int64], name=name)
        self.seen_at: list[float] = []

    def work(self, inputs, outputs):
        self.seen_at.extend([time.monotonic()] * len(inputs[0]))
        outputs[0][:] = inputs[0]
        return len(inputs[0])


def test_a_trickling_source_is_not_held_back_for_a_full_batch():
    """The threaded executors wait for full batches only while the upstream block works: items
    from a source that waits for the outside go on at once, not when 64 have gathered."""
    src, stamp, sink = Trickle(every_s=0.1, total=15), Stamp(), VectorSink(np.int64)
    fg = Flowgraph(max_items=64, scheduler="threaded")
    fg.connect(src, stamp, sink)
    fg.run()
    np.testing.assert_array_equal(sink.data, np.arange(15))
    # between items the source polls (WORK_WAITING) many times; each item still reaches the next
    # block at once, not 100 ms later with the next item (a wake-up lost while the source was
    # inside work()); 50 ms leaves room for a loaded machine's thread scheduling
    lags = [seen - sent for seen, sent in zip(stamp.seen_at, src.sent_at)]
    assert max(lags) < 0.05, lags


class PingPong(Block):
    """A message-only block that answers every number with the next one, up to `last`."""

    def __init__(self, last, name=None):
        super().__init__(name=name)
        self.last, self.got = last, []
        self.message_port_register_out("out")
        self.message_port_register_in("in", self._on)

    def _on(self, msg):
        self.got.append(msg)
        if msg < self.last:
            self.message_port_pub("out", msg + 1)


class UntilDone(SourceBlock):
    """Waits (WORK_WAITING) until `done()` is true, then ends: keeps a run alive for its messages."""

    def __init__(self, done, name=None):
        super().__init__(out_sig=[np.int64], name=name)
        self.done = done

    def work(self, inputs, outputs):
        return WORK_DONE if self.done() else WORK_WAITING


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_a_cycle_of_message_ports_does_not_deadlock(scheduler):
    ping, pong = PingPong(400, name="ping"), PingPong(400, name="pong")
    fg = Flowgraph(max_items=4, scheduler=scheduler)
    fg.connect(UntilDone(lambda: len(ping.got) == 201), VectorSink(np.int64))
    fg.msg_connect(ping, "out", pong, "in")
    fg.msg_connect(pong, "out", ping, "in")
    ping.post("in", 0)
    box = {}
    runner = threading.Thread(target=lambda: box.setdefault("error", _run(fg)), daemon=True)
    runner.start()
    runner.join(20)
    assert not runner.is_alive(), "the message cycle deadlocked"
    assert box["error"] is None
    assert ping.got == list(range(0, 401, 2)) and pong.got == list(range(1, 400, 2))


def _run(fg):
    try:
        fg.run()
    except BaseException as exc:  # noqa: BLE001 - handed back to the test
        return exc
    return None


# --------------------------------------------------------------------------- errors, threads
class Fails(SyncBlock):
    def __init__(self, at, name=None):
        super().__init__(in_sig=[np.float64], out_sig=[np.float64], name=name)
        self.at = at

    def work(self, inputs, outputs):
        if self.nitems_read(0) + len(inputs[0]) > self.at:
            raise ValueError("sensor on fire")
        outputs[0][:] = inputs[0]
        return len(inputs[0])


def test_an_error_under_the_threaded_scheduler_names_the_block_and_ends_every_thread():
    fg = Flowgraph(max_items=8, scheduler="threaded", name="burning")
    fg.connect(VectorSource(np.zeros(10_000)), Fails(100, name="fails"), VectorSink(np.float64))
    with pytest.raises(BlockError, match=r"block 'fails' \(Fails\) raised in work\(\): ValueError: sensor on fire"):
        fg.run()
    assert _scheduler_threads() == []


def test_stop_ends_every_block_thread_of_an_endless_threaded_run():
    class Endless(SourceBlock):
        waits_for_external_input = False

        def __init__(self):
            super().__init__(out_sig=[np.float64], name="endless")

        def work(self, inputs, outputs):
            outputs[0][:] = 1.0
            return len(outputs[0])

    sink = VectorSink(np.float64)
    fg = Flowgraph(max_items=16, scheduler="threaded")
    fg.connect(Endless(), Fails(10**12, name="pass"), sink)
    fg.start()
    time.sleep(0.2)
    fg.stop(timeout=2.0)
    assert not fg.running and _scheduler_threads() == []
    assert len(sink.data) > 0


def test_an_unknown_scheduler_is_refused_with_the_choices():
    with pytest.raises(ConfigError, match=r"scheduler = 'fast'.*\['single', 'threaded'\]"):
        Flowgraph(scheduler="fast")


# --------------------------------------------------------------------------- counters
class Slow(SyncBlock):
    def __init__(self, seconds, name=None):
        super().__init__(in_sig=[np.float64], out_sig=[np.float64], name=name)
        self.seconds = seconds

    def work(self, inputs, outputs):
        time.sleep(self.seconds)
        outputs[0][:] = inputs[0]
        return len(inputs[0])


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_performance_counts_every_blocks_calls_items_and_time(scheduler):
    n, batch = 200, 10
    src, fast, slow, sink = (VectorSource(np.zeros(n), name="src"), Slow(0.0, name="fast"),
                             Slow(0.01, name="slow"), VectorSink(np.float64, name="sink"))
    fg = Flowgraph(max_items=batch, scheduler=scheduler)
    fg.connect(src, fast, slow, sink)
    fg.run()
    rows = {r["block"]: r for r in fg.performance()}
    assert list(rows) == ["src", "fast", "slow", "sink"]
    assert rows["src"]["items_in"] == 0 and rows["src"]["items_out"] == n
    for name in ("fast", "slow"):
        assert rows[name]["items_in"] == rows[name]["items_out"] == n
        assert rows[name]["calls"] == n // batch  # full batches under either scheduler
    assert rows["sink"]["items_in"] == n and rows["sink"]["items_out"] == 0 and rows["sink"]["buffer_fill"] is None
    # the slow block slept 20 x 10 ms inside work(): at least that, and the largest share
    assert rows["slow"]["work_s"] >= 0.2
    assert max(rows.values(), key=lambda r: r["work_share"])["block"] == "slow"
    assert all(0.0 <= r["buffer_fill"] <= 1.0 for r in rows.values() if r["buffer_fill"] is not None)
    assert fg.wall_s >= rows["slow"]["work_s"] and fg.work_calls["slow"] == n // batch
    assert set(rows["src"]) >= {"block", "type", "calls", "items_in", "items_out", "work_s", "buffer_fill"}


# --------------------------------------------------------------------------- ring buffer
def test_the_ring_buffer_never_moves_an_unread_item_and_copies_only_a_straddling_read():
    buf = RingBuffer(port(np.int64, ()), 8)
    reader = buf.add_reader()
    written = 0

    def write(n):
        nonlocal written
        assert buf.space() >= n
        view = buf.write_view(n)
        view[:] = np.arange(written, written + n)
        buf.commit(n)
        written += n

    write(6)
    reader.nread += 4  # items 0..3 consumed
    write(2)  # items 6, 7 fill the tail
    held = reader.read_view(4)  # a reader works on items 4..7 while the writer goes on
    assert buf.space() == 4  # the front, freed by the reader
    write(3)  # items 8..10 at the front: 4..7 stay where they are
    np.testing.assert_array_equal(held, [4, 5, 6, 7])
    reader.nread += 4
    np.testing.assert_array_equal(reader.read_view(3), [8, 9, 10])
    reader.nread += 2  # item 10 left, at the front
    assert buf.space() == 5  # 3..7 after it
    write(5)
    reader.nread += 1
    np.testing.assert_array_equal(reader.read_view(5), [11, 12, 13, 14, 15])
    # a write that does not fit after the data starts at the front; a read across the jump is a copy
    buf2 = RingBuffer(port(np.int64, ()), 8)
    r2 = buf2.add_reader()
    buf2.space()
    buf2.write_view(6)[:] = np.arange(6)
    buf2.commit(6)
    r2.nread += 5
    assert buf2.space() == 5
    buf2.write_view(3)[:] = [6, 7, 8]  # 2 free after the data: starts at the front
    buf2.commit(3)
    across = r2.read_view(4)
    np.testing.assert_array_equal(across, [5, 6, 7, 8])
    assert not across.flags.writeable


class LegacyPoller(SourceBlock):
    """Returns 0 while it waits (the older way of saying so: waits_for_external_input, a class flag)."""

    def __init__(self, name=None):
        super().__init__(out_sig=[np.int64], name=name)

    def start(self):
        self.calls = 0

    def work(self, inputs, outputs):
        self.calls += 1
        if self.calls < 30:
            return 0
        if self.calls > 30:
            return WORK_DONE
        outputs[0][:3] = [7, 8, 9]
        return 3


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_a_source_that_returns_zero_and_waits_for_the_outside_is_polled_again(scheduler, run_fg):
    sink = VectorSink(np.int64)
    fg = Flowgraph(max_items=8, scheduler=scheduler)
    fg.connect(LegacyPoller(), sink)
    run_fg(fg, timeout=10)
    np.testing.assert_array_equal(sink.data, [7, 8, 9])


def test_the_performance_table_lists_every_block_and_marks_the_limiting_one():
    from isacblocks.core import format_performance

    src, slow, sink = VectorSource(np.zeros(40), name="src"), Slow(0.005, name="slow"), VectorSink(np.float64)
    fg = Flowgraph(max_items=10)
    fg.connect(src, slow, sink)
    fg.run()
    lines = format_performance(fg.performance()).splitlines()
    assert lines[0].split()[:5] == ["block", "type", "calls", "items", "in"]
    marked = [line for line in lines[1:-1] if line.startswith("* ")]
    assert len(marked) == 1 and marked[0].split()[1] == "slow"
    assert len(lines) == 2 + 3
