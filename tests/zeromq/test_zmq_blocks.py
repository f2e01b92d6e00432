"""ZeroMQ PUSH/PULL and PUB/SUB blocks: loopback, tags, restarts, drops, malformed input, shutdown.

Every socket uses 127.0.0.1 (free ports picked by the OS); every wait is bounded.
"""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import zmq

from isacblocks.core import (
    WORK_DONE,
    WORK_WAITING,
    Flowgraph,
    SinkBlock,
    SourceBlock,
    Tag,
    VectorSink,
    VectorSource,
    port,
)
from isacblocks.errors import ConfigError
from isacblocks.zeromq import (
    EOS_KEY,
    PubSink,
    PullSource,
    PushSink,
    SubSource,
    ZmqDropWarning,
    ZmqWarning,
    encode_header,
    encode_message,
    pub_frames,
)
from isacblocks.zeromq.pmt import serialize

LOOPBACK = "tcp://127.0.0.1:0"


def stream(n: int, width: int = 4):
    """n complex64 items of `width` with a ``seq`` tag on each and a tuple tag on every 7th."""
    data = (np.arange(n * width) + 1j).astype(np.complex64).reshape(n, width)
    tags = [Tag(i, "seq", i) for i in range(n)] + [Tag(i, "sector", (float(i), -1.5)) for i in range(0, n, 7)]
    return data, tags


def run_pair(tx: Flowgraph, rx: Flowgraph, timeout: float = 10.0) -> None:
    """Run both flowgraphs to completion, failing (after stopping them) instead of hanging."""
    rx.start()
    tx.start()
    deadline = time.monotonic() + timeout
    for fg in (tx, rx):
        fg.wait(timeout=max(0.0, deadline - time.monotonic()))
        if fg.running:
            tx.stop()
            rx.stop()
            pytest.fail(f"flowgraph {fg.name} did not finish within {timeout} s")


def raw_socket(ctx: zmq.Context, kind: int, endpoint: str) -> zmq.Socket:
    sock = ctx.socket(kind)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    return sock


@pytest.fixture
def ctx():
    context = zmq.Context()
    yield context
    context.destroy(linger=0)


# ------------------------------------------------------------------------------------------ loopback
@pytest.mark.parametrize("copy_mode", ["copy", "track"])
@pytest.mark.parametrize("pass_tags", [True, False])
def test_push_pull_loopback_batches_tags_and_end_of_stream(pass_tags, copy_mode):
    data, tags = stream(250)
    sink = PushSink(np.complex64, 4, LOOPBACK, pass_tags=pass_tags, max_items_per_message=10, copy_mode=copy_mode)
    assert sink.endpoint.startswith("tcp://127.0.0.1:") and not sink.endpoint.endswith(":0")
    src = PullSource(np.complex64, 4, sink.endpoint, pass_tags=pass_tags)
    out = VectorSink(np.complex64, 4)
    tx, rx = Flowgraph(max_items=32, name="tx"), Flowgraph(max_items=7, name="rx")  # messages split over calls
    tx.connect(VectorSource(data, tags, name="vsrc"), sink)
    rx.connect(src, out)
    run_pair(tx, rx)
    np.testing.assert_array_equal(out.data, data)
    assert sink.items_sent == 250 and sink.messages_sent >= 25  # at most 10 items per message
    assert src.messages_received == sink.messages_sent + 1  # and the end of stream
    assert sink.eos_sent and src.eos_received
    assert src.items_received == 250 and src.malformed == 0 and src.missed_items == 0
    if pass_tags:
        assert sorted((t.offset, t.key, t.value) for t in out.tags) == sorted((t.offset, t.key, t.value) for t in tags)
        assert all(t.srcid == "vsrc" for t in out.tags)  # the sender's srcid travels with the tag
    else:
        assert out.tags == []
    assert sink.closed and src.closed


def test_sink_messages_are_gr_zeromq_frames(ctx):
    """A raw PULL / SUB socket (what GNU Radio's sources read) sees header + payload in one frame."""
    data, tags = stream(6)
    sink = PushSink(np.complex64, 4, LOOPBACK, pass_tags=True, context=ctx)
    pull = raw_socket(ctx, zmq.PULL, sink.endpoint)
    fg = Flowgraph(max_items=6)
    fg.connect(VectorSource(data, tags, name="vsrc"), sink)
    fg.run()
    sent_tags = sorted((t._replace(srcid="vsrc") for t in tags), key=lambda t: t.offset)
    assert pull.recv() == encode_message(data, 0, sent_tags)
    assert pull.recv() == encode_header(6, [Tag(6, EOS_KEY, True, sink.name)])

    pub = PubSink(np.float32, 3, LOOPBACK, key="Y_r", context=ctx)
    sub = raw_socket(ctx, zmq.SUB, pub.endpoint)
    sub.setsockopt(zmq.SUBSCRIBE, b"Y_r")
    assert pub.wait_for_subscribers(1, timeout=5)
    items = np.arange(12, dtype=np.float32).reshape(4, 3)
    fg = Flowgraph(max_items=8)
    fg.connect(VectorSource(items), pub)
    fg.run()
    assert sub.recv_multipart() == pub_frames(items.tobytes(), "Y_r")
    assert sub.recv_multipart() == [b"Y_r", b""]  # end of stream without pass_tags: an empty message


def test_pub_sub_loopback_with_key_and_tags():
    data, tags = stream(120, width=8)
    sink = PubSink(np.complex64, 8, LOOPBACK, pass_tags=True, key="Y_r", max_items_per_message=16)
    src = SubSource(np.complex64, 8, sink.endpoint, pass_tags=True, key="Y_r")
    out = VectorSink(np.complex64, 8)
    tx, rx = Flowgraph(max_items=64, name="tx"), Flowgraph(max_items=64, name="rx")
    tx.connect(VectorSource(data, tags), sink)
    rx.connect(src, out)
    rx.start()
    assert sink.wait_for_subscribers(1, timeout=5) and sink.subscribers == 1
    tx.start()
    tx.wait(timeout=10)
    rx.wait(timeout=10)
    assert not tx.running and not rx.running
    np.testing.assert_array_equal(out.data, data)
    assert len(out.tags) == len(tags) and sink.dropped == 0 and src.eos_received


def test_sub_source_filters_by_key_and_rebases_tags(ctx):
    """Tags land on the receiver's own item count; header offsets reveal missed items."""
    src = SubSource(np.complex64, 2, LOOPBACK, pass_tags=True, key="a", bind=True, context=ctx)
    pub = raw_socket(ctx, zmq.PUB, src.endpoint)
    out = VectorSink(np.complex64, 2)
    rx = Flowgraph(max_items=16)
    rx.connect(src, out)
    rx.start()
    first = np.arange(8, dtype=np.complex64).reshape(4, 2)
    second = -np.arange(6, dtype=np.complex64).reshape(3, 2)
    messages = [[b"b", encode_message(first, 0, [])],  # other key: filtered out by the subscription
                [b"a", encode_message(first, 1000, [Tag(1001, "seq", 1), Tag(1003, "seq", 3),
                                                    Tag(999, "old", 0)])],
                [b"a", encode_message(second, 1010, [Tag(1010, "seq", 10)])],  # items 1004..1009 missed
                [b"a", encode_header(1013, [Tag(1013, EOS_KEY, True)])]]
    deadline = time.monotonic() + 5
    while src.messages_received == 0 and time.monotonic() < deadline:  # the subscription takes a moment
        pub.send_multipart([b"a", encode_message(first[:0], 1000, [])])  # no items, same offsets
        time.sleep(0.02)
    for frames in messages:
        pub.send_multipart(frames)
    rx.wait(timeout=5)
    assert not rx.running
    np.testing.assert_array_equal(out.data, np.concatenate([first, second]))
    assert [(t.offset, t.key, t.value) for t in out.tags] == [(1, "seq", 1), (3, "seq", 3), (4, "seq", 10)]
    assert src.missed_items == 6 and src.first_remote_offset == 1000 and src.malformed == 0


# ------------------------------------------------------------------------------- restart, no loss
RECEIVER = r"""
import sys
import numpy as np
from isacblocks.core import Flowgraph, SinkBlock, port
from isacblocks.zeromq import PullSource

class Printer(SinkBlock):
    def __init__(self):
        super().__init__(in_sig=[port(np.int64)])

    def work(self, inputs, outputs):
        x = inputs[0]
        base = self.nitems_read(0)
        seq = self.frame_tags(0, len(x), "seq")
        print("\n".join(f"{base + i} {int(v)} {s}" for i, (v, s) in enumerate(zip(x, seq))), flush=True)
        return len(x)

# batches of 4: every count the sender stops at is a whole number of batches, so no partial batch
# waits on the threaded scheduler's decision to take one (this test is about the socket)
fg = Flowgraph(max_items=4)
fg.connect(PullSource(np.int64, (), sys.argv[1], pass_tags=True), Printer())
fg.run()
print("END", flush=True)
"""


class GatedCounter(SourceBlock):
    """int64 items 0, 1, ... with a ``seq`` tag each, emitted only up to `gate`; ends at `total`."""

    def __init__(self, total: int, gate: int):
        super().__init__(out_sig=[port(np.int64)])
        self.total, self.gate, self.count = total, gate, 0

    def work(self, inputs, outputs):
        if self.count >= self.total:
            return WORK_DONE
        n = min(len(outputs[0]), self.gate - self.count)
        if n <= 0:
            return WORK_WAITING  # for the test to open the gate
        outputs[0][:n] = np.arange(self.count, self.count + n)
        for i in range(n):
            self.add_tag(0, self.nitems_written(0) + i, "seq", self.count + i)
        self.count += n
        return n


class Receiver:
    """The receiver script in a child process; its output lines are collected by a thread."""

    def __init__(self, endpoint: str):
        self.proc = subprocess.Popen([sys.executable, "-c", RECEIVER, endpoint], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.split())

    def take(self, count: int | None, timeout: float = 20.0) -> list[tuple[int, int, int]]:
        """`count` items (or all until END), as (local offset, value, seq tag)."""
        rows, deadline = [], time.monotonic() + timeout
        while count is None or len(rows) < count:
            fields = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            if fields == ["END"]:
                break
            rows.append(tuple(int(f) for f in fields))
        return rows


def test_push_pull_receiver_killed_and_restarted_loses_nothing():
    sink = PushSink(np.int64, (), LOOPBACK, pass_tags=True, hwm=4, max_items_per_message=8, timeout=50)
    gate = GatedCounter(total=300, gate=100)
    tx = Flowgraph(max_items=32, name="tx")
    tx.connect(gate, sink)
    tx.start()
    first = Receiver(sink.endpoint)
    try:
        rows1 = first.take(100)
        deadline = time.monotonic() + 5
        while sink.items_sent < 100 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sink.peers == 1
        first.proc.kill()  # mid-stream: the sender has not ended
        first.proc.wait(timeout=5)
        time.sleep(0.3)  # the sender's I/O thread sees the connection close
        assert sink.peers == 0
        gate.gate = 300
        time.sleep(0.5)
        assert sink.items_sent == 100  # no receiver: PUSH holds everything, the items wait upstream
        assert tx.running
        second = Receiver(sink.endpoint)
        rows2 = second.take(None)
        assert second.proc.wait(timeout=10) == 0, second.proc.stderr.read()
        tx.wait(timeout=10)
    finally:
        tx.stop()
        first.proc.kill()
    assert not tx.running and sink.eos_sent
    values = [r[1] for r in rows1 + rows2]
    assert values == list(range(300))  # every item once, in order
    assert [r[0] for r in rows2] == list(range(200))  # the new receiver counts from 0 ...
    assert all(r[1] == r[2] for r in rows1 + rows2)  # ... and each seq tag still sits on its own item


# ------------------------------------------------------------------------------- high-water mark
class SlowSink(SinkBlock):
    """Takes at most 2 items per call and sleeps: a slow subscriber."""

    def __init__(self, width: int):
        super().__init__(in_sig=[port(np.float64, width)])
        self.chunks: list[np.ndarray] = []

    def work(self, inputs, outputs):
        time.sleep(0.002)
        x = inputs[0][:2]
        self.chunks.append(np.array(x[:, 0]))
        return len(x)


@pytest.mark.parametrize("drop_on_hwm", [True, False])
def test_pub_sub_slow_subscriber_drops_are_counted(drop_on_hwm):
    width, total = 4096, 400  # 32 KiB items, one per message: far beyond both high-water marks
    data = np.repeat(np.arange(total, dtype=np.float64)[:, None], width, axis=1)
    sink = PubSink(np.float64, width, LOOPBACK, pass_tags=True, hwm=2, drop_on_hwm=drop_on_hwm, timeout=5000,
                   max_items_per_message=1)
    src = SubSource(np.float64, width, sink.endpoint, pass_tags=True, hwm=2)
    slow = SlowSink(width)
    tx, rx = Flowgraph(max_items=16, name="tx"), Flowgraph(max_items=4, name="rx")
    tx.connect(VectorSource(data), sink)
    rx.connect(src, slow)
    rx.start()
    assert sink.wait_for_subscribers(1, timeout=5)
    if drop_on_hwm:
        with pytest.warns(ZmqDropWarning, match=r"dropped \d+ message"):
            tx.run()
    else:
        tx.run()
    rx.wait(timeout=30)
    assert not rx.running and src.eos_received
    received = np.concatenate(slow.chunks)
    assert np.all(np.diff(received) > 0)  # in order, no duplicates
    assert sink.items_sent == len(received) == src.items_received
    assert sink.items_sent + sink.dropped_items == total
    assert src.missed_items == sink.dropped_items  # the receiver sees the same gaps in the header offsets
    if drop_on_hwm:
        assert sink.dropped > 0 and sink.dropped == sink.dropped_items
    else:
        assert sink.dropped == 0 and len(received) == total


# ------------------------------------------------------------------------------- malformed input
def test_malformed_messages_are_counted_and_skipped(ctx):
    src = PullSource(np.complex64, 4, LOOPBACK, pass_tags=True, bind=True, context=ctx)
    push = raw_socket(ctx, zmq.PUSH, src.endpoint)
    out = VectorSink(np.complex64, 4)
    rx = Flowgraph(max_items=8)
    rx.connect(src, out)
    rx.start()
    good = np.arange(8, dtype=np.complex64).reshape(2, 4)
    header = encode_header(0, [Tag(0, "seq", 0)])
    bad = [
        b"\x00\x01\x02" + bytes(28),  # bad magic (and not a whole number of 32-byte items)
        encode_header(0, [])[:2] + b"\x07" + encode_header(0, [])[3:] + good.tobytes(),  # unknown header version
        header[:-4],  # truncated header: the tag's value is cut
        encode_message(good, 0, [])[:-5],  # truncated payload
        encode_message(good[:, :3].copy(), 0, []),  # 24-byte items sent to a 32-byte item port
        encode_header(0, [])[:11] + (1).to_bytes(8, "little") + (0).to_bytes(8, "little")
        + serialize("k") + b"\xee" + serialize(False) + good.tobytes(),  # unknown PMT type 0xee
        encode_header(0, [])[:11] + (1).to_bytes(8, "little"),  # announces a tag that is not there
    ]
    with pytest.warns(ZmqWarning, match=f"skipped {len(bad)} malformed"):  # summed up at stop()
        for message in bad:
            push.send(message)
        push.send(encode_message(good, 0, [Tag(1, "seq", 1)]))
        push.send(encode_header(2, [Tag(2, EOS_KEY, True)]))
        rx.wait(timeout=5)
    assert not rx.running, "the source stopped delivering after malformed messages"
    np.testing.assert_array_equal(out.data, good)
    assert [(t.offset, t.key, t.value) for t in out.tags] == [(1, "seq", 1)]
    assert src.malformed == len(bad) and src.pass_tags_mismatch == 0
    assert src.eos_received and src.last_error


def test_sub_source_with_key_rejects_single_frame_messages(ctx):
    src = SubSource(np.int32, (), LOOPBACK, key="k", bind=True, context=ctx)
    pub = raw_socket(ctx, zmq.PUB, src.endpoint)
    out = VectorSink(np.int32)
    rx = Flowgraph(max_items=8)
    rx.connect(src, out)
    rx.start()
    deadline = time.monotonic() + 5
    while src.malformed == 0 and time.monotonic() < deadline:  # until the subscription is in place
        pub.send(b"k-without-a-message-frame")
        time.sleep(0.02)
    with pytest.warns(ZmqWarning, match="malformed"):
        pub.send_multipart([b"k", np.arange(3, dtype=np.int32).tobytes()])
        pub.send_multipart([b"k", b""])
        rx.wait(timeout=5)
    assert not rx.running and src.malformed >= 1 and "2 frames" in src.last_error
    np.testing.assert_array_equal(out.data, np.arange(3))


@pytest.mark.parametrize("sender_tags", [True, False])
def test_pass_tags_mismatch_is_named(sender_tags):
    """Not GNU Radio's "Incompatible vector sizes": the count and the message say pass_tags."""
    data = np.arange(40, dtype=np.float32).reshape(10, 4)
    sink = PushSink(np.float32, 4, LOOPBACK, pass_tags=sender_tags)
    src = PullSource(np.float32, 4, sink.endpoint, pass_tags=not sender_tags)
    out = VectorSink(np.float32, 4)
    tx, rx = Flowgraph(max_items=16, name="tx"), Flowgraph(max_items=16, name="rx")
    tx.connect(VectorSource(data, [Tag(0, "seq", 0)]), sink)
    rx.connect(src, out)
    with pytest.warns(RuntimeWarning, match="pass_tags"):
        run_pair(tx, rx)
    assert src.pass_tags_mismatch >= 1 and src.malformed >= 1
    assert "pass_tags=True" in src.last_error and "pass_tags=False" in src.last_error
    assert "Incompatible vector sizes" not in src.last_error
    assert len(out.data) == 0 and src.eos_received  # the end of stream still ends the receiver


# ------------------------------------------------------------------------------------- shutdown
def test_idle_sub_source_does_not_hold_stop_or_wait():
    src = SubSource(np.complex64, (4, 4), "tcp://127.0.0.1:9", timeout=100)  # nobody publishes there
    fg = Flowgraph(max_items=8)
    fg.connect(src, VectorSink(np.complex64, (4, 4)))
    fg.start()
    time.sleep(0.3)
    start = time.monotonic()
    fg.stop()
    fg.wait()
    assert time.monotonic() - start < 1.0
    assert not fg.running and src.closed


def test_push_sink_without_receiver_holds_items_and_stops_promptly():
    sink = PushSink(np.float32, 2, LOOPBACK, timeout=50)
    fg = Flowgraph(max_items=8)
    fg.connect(VectorSource(np.ones((100, 2), dtype=np.float32)), sink)
    fg.start()
    time.sleep(0.3)
    assert sink.items_sent == 0 and sink.peers == 0 and fg.running
    start = time.monotonic()
    with pytest.warns(ZmqWarning, match="end of stream not sent .*no receiver connected"):
        fg.stop()
    assert time.monotonic() - start < 1.0 and not fg.running and sink.closed


def _terminates(context: zmq.Context, seconds: float = 2.0) -> bool:
    """Whether context.term() returns (it blocks while any socket of the context is open)."""
    thread = threading.Thread(target=context.term, daemon=True)
    thread.start()
    thread.join(seconds)
    return not thread.is_alive()


@pytest.mark.parametrize("pattern", ["push", "pub"])
def test_stop_leaves_no_socket_open(pattern):
    context = zmq.Context()
    sink_cls, src_cls = (PushSink, PullSource) if pattern == "push" else (PubSink, SubSource)
    sink = sink_cls(np.float32, (), LOOPBACK, context=context)
    src = src_cls(np.float32, (), sink.endpoint, context=context)
    tx, rx = Flowgraph(max_items=8, name="tx"), Flowgraph(max_items=8, name="rx")
    tx.connect(VectorSource(np.arange(5, dtype=np.float32)), sink)
    rx.connect(src, VectorSink(np.float32))
    rx.start()
    if pattern == "pub":
        sink.wait_for_subscribers(1, timeout=5)
    tx.run()
    rx.wait(timeout=5)
    assert sink.closed and src.closed
    assert _terminates(context), "a socket was left open"


def test_own_context_is_terminated_and_endpoint_rebound_on_restart():
    sink = PushSink(np.int16, (), LOOPBACK)
    endpoint = sink.endpoint
    src = PullSource(np.int16, (), endpoint)
    for run in range(2):  # stop() closes both sockets; start() binds the same port again
        tx, rx = Flowgraph(max_items=8, name="tx"), Flowgraph(max_items=8, name="rx")
        out = VectorSink(np.int16)
        tx.connect(VectorSource(np.arange(10, dtype=np.int16) + run), sink)
        rx.connect(src, out)
        run_pair(tx, rx)
        np.testing.assert_array_equal(out.data, np.arange(10) + run)
        assert sink.closed and src.closed and sink.endpoint == endpoint


def test_bad_configuration_is_reported():
    with pytest.raises(ConfigError, match="cannot bind 'tcp://127.0.0.1:notaport'"):
        PushSink(np.float32, (), "tcp://127.0.0.1:notaport", name="tx_sink")
    with pytest.raises(ConfigError, match="address"):
        PullSource(np.float32, (), "127.0.0.1:5555")
    with pytest.raises(ConfigError, match="hwm"):
        PubSink(np.float32, (), LOOPBACK, hwm=-2)
    sink = PushSink(np.float32, (), LOOPBACK)
    with pytest.raises(ConfigError, match="Address already in use|cannot bind"):
        PushSink(np.float32, (), sink.endpoint)
    sink.close()
