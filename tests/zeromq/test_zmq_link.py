"""ZeroMQ link features: srcids as sent, empty tuples refused, end of stream on the last item,
item-size mismatch, idle timeouts, and pairing several streams by (stream_id, index).

Every socket is on 127.0.0.1 (free ports from the OS); every wait is bounded.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import zmq

from isacblocks.core import Flowgraph, Tag, VectorSink, VectorSource
from isacblocks.errors import BlockError, ConfigError
from isacblocks.zeromq import (
    EOS_KEY,
    SEQ_KEY,
    LinkIdleError,
    PairedPullSource,
    PullSource,
    PushSink,
    ZmqWarning,
    encode_message,
)

LOOPBACK = "tcp://127.0.0.1:0"


def run_until_done(*fgs, timeout: float = 10.0) -> None:
    for fg in fgs:
        fg.start()
    deadline = time.monotonic() + timeout
    for fg in fgs:
        fg.wait(timeout=max(0.0, deadline - time.monotonic()))
    if any(fg.running for fg in fgs):
        for fg in fgs:
            fg.stop()
        pytest.fail(f"flowgraphs did not finish within {timeout} s")


def link(data, tags=(), width=4, sink_kw=None, source_kw=None, max_items=8):
    """VectorSource -> PushSink ~ PullSource -> VectorSink; returns (sink, source, collected)."""
    sink = PushSink(np.complex64, width, LOOPBACK, pass_tags=True, **(sink_kw or {}))
    source = PullSource(np.complex64, width, sink.endpoint, pass_tags=True, **(source_kw or {}))
    got = VectorSink(np.complex64, width)
    tx, rx = Flowgraph(max_items=max_items, name="tx"), Flowgraph(max_items=max_items, name="rx")
    tx.connect(VectorSource(data, list(tags)), sink)
    rx.connect(source, got)
    return tx, rx, sink, source, got


def items(n, width=4):
    return (np.arange(n * width) * (1 + 1j)).astype(np.complex64).reshape(n, width)


def test_srcid_is_kept_as_sent():
    """GNU Radio's default srcid #f arrives as None (not as the receiving block's name); others as sent."""
    context = zmq.Context()
    push = context.socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 0)
    port = push.bind_to_random_port("tcp://127.0.0.1")
    source = PullSource(np.complex64, 4, f"tcp://127.0.0.1:{port}", pass_tags=True)
    got = VectorSink(np.complex64, 4)
    rx = Flowgraph(max_items=8, name="rx")
    rx.connect(source, got)
    tags = [Tag(0, "a", 1, None), Tag(1, "b", 2, "upstream"), Tag(2, "c", 3, 7), Tag(3, EOS_KEY, True)]
    try:
        rx.start()
        push.send(encode_message(items(4), 0, tags))
        rx.wait(timeout=10)
    finally:
        push.close(linger=0)
        context.term()
    assert [(t.offset, t.key, t.value, t.srcid) for t in got.tags] == [
        (0, "a", 1, None), (1, "b", 2, "upstream"), (2, "c", 3, 7)]


def test_empty_tuple_tag_is_refused_with_the_tag_named():
    with pytest.raises(ConfigError, match=r"start_tags\['bad'\]: .* holds an empty tuple"):
        PushSink(np.complex64, 4, LOOPBACK, pass_tags=True, start_tags={"bad": ()})
    tx, rx, _, _, _ = link(items(4), [Tag(2, "meta", (1, ()))])
    rx.start()
    tx.start()
    with pytest.raises(BlockError, match=r"tag 'meta' at offset 2: its value \(1, \(\)\) holds an empty tuple"):
        tx.wait(timeout=10)
    rx.stop()


def test_end_of_stream_tag_on_the_last_item_ends_the_source_without_the_empty_message():
    """GNU Radio drops zero-item messages: with eos=False only the tag on item n-1 can end the stream."""
    tx, rx, _, source, got = link(items(20), sink_kw={"eos": False, "stream_length": 20, "linger": 2000})
    run_until_done(rx, tx)
    assert source.eos_received and np.array_equal(got.data, items(20))
    assert not any(t.key == EOS_KEY for t in got.tags)


def test_sequence_tags_number_every_item():
    tx, rx, _, _, got = link(items(10), sink_kw={"stream_id": "run1", "stream_length": 10})
    run_until_done(rx, tx)
    seq = [(t.offset, t.value) for t in got.tags if t.key == SEQ_KEY]
    assert seq == [(i, ("run1", i)) for i in range(10)]


@pytest.mark.parametrize("sender, receiver", [(2, 4), (8, 4)])
def test_item_size_mismatch_names_both_sizes(sender, receiver):
    """Sender items of 16 or 64 bytes read as 32-byte items: raised, not read as garbage."""
    sink = PushSink(np.complex64, sender, LOOPBACK, pass_tags=True, stream_id="r", max_items_per_message=4)
    source = PullSource(np.complex64, receiver, sink.endpoint, pass_tags=True)
    tx, rx = Flowgraph(max_items=4, name="tx"), Flowgraph(max_items=4, name="rx")
    tx.connect(VectorSource(items(64, sender)), sink)
    rx.connect(source, VectorSink(np.complex64, receiver))
    rx.start()
    tx.start()
    with pytest.raises(BlockError, match=rf"item size mismatch: the sender's items are .*{8 * sender}.* bytes .*"
                                         rf"this source's are {8 * receiver} bytes"):
        rx.wait(timeout=10)
    tx.stop(timeout=5)


def test_idle_source_ends_its_stream_after_the_timeout():
    context = zmq.Context()
    push = context.socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 0)
    port = push.bind_to_random_port("tcp://127.0.0.1")
    source = PullSource(np.complex64, 4, f"tcp://127.0.0.1:{port}", pass_tags=True, idle_timeout=0.5)
    got = VectorSink(np.complex64, 4)
    rx = Flowgraph(max_items=8, name="rx")
    rx.connect(source, got)
    try:
        rx.start()
        push.send(encode_message(items(3), 0, []))
        start = time.monotonic()
        with pytest.warns(ZmqWarning, match=r"no message .* for 0.5 s \(idle_timeout\) after 3 items"):
            rx.wait(timeout=10)
        assert 0.4 < time.monotonic() - start < 5 and source.timed_out and len(got.data) == 3
    finally:
        push.close(linger=0)
        context.term()


def test_push_sink_gives_up_when_no_receiver_takes_data():
    sink = PushSink(np.complex64, 4, LOOPBACK, pass_tags=True, idle_timeout=0.5, hwm=1, linger=0)
    receiver = PullSource(np.complex64, 4, sink.endpoint, pass_tags=True, hwm=1)
    tx = Flowgraph(max_items=1, name="tx")
    tx.connect(VectorSource(items(5000)), sink)
    rx = Flowgraph(max_items=1, name="rx")
    rx.connect(receiver, VectorSink(np.complex64, 4, limit=5))  # takes 5 items, then stops reading
    rx.start()
    tx.start()
    rx.wait(timeout=10)
    start = time.monotonic()
    with pytest.raises(LinkIdleError, match=r"no receiver took data for .* \(idle_timeout = 0.5 s\)"):
        tx.wait(timeout=20)
    assert time.monotonic() - start < 10


@pytest.mark.parametrize("bad", [-1, "x", float("nan")])
def test_idle_timeout_is_validated(bad):
    with pytest.raises(ConfigError, match="idle_timeout"):
        PullSource(np.complex64, 4, LOOPBACK, idle_timeout=bad)


# ----------------------------------------------------------------------------------- pairing
def seq_message(run, first, n, width, extra_tags=(), eos=False):
    """A gr-zeromq message of items first..first+n-1 with stream_seq tags (value = index * 10 + stream)."""
    data = np.repeat(np.arange(first, first + n, dtype=np.complex64)[:, None], width, axis=1)
    tags = [Tag(i, SEQ_KEY, (run, i)) for i in range(first, first + n)] + list(extra_tags)
    if eos:
        tags.append(Tag(first + n - 1, EOS_KEY, True))
    return encode_message(data, first, tags)


def test_paired_source_outputs_only_items_every_stream_holds():
    context = zmq.Context()
    socks = []
    try:
        ports = []
        for _ in range(2):
            s = context.socket(zmq.PUSH)
            s.setsockopt(zmq.LINGER, 0)
            ports.append(s.bind_to_random_port("tcp://127.0.0.1"))
            socks.append(s)
        paired = PairedPullSource({"a": (np.complex64, (3,), f"tcp://127.0.0.1:{ports[0]}"),
                                   "b": (np.complex64, (2,), f"tcp://127.0.0.1:{ports[1]}")}, idle_timeout=5)
        out_a, out_b = VectorSink(np.complex64, 3), VectorSink(np.complex64, 2)
        fg = Flowgraph(max_items=4, name="rx")
        fg.connect((paired, "a"), out_a)
        fg.connect((paired, "b"), out_b)
        fg.start()
        # stream a: items 0..9 of run R (a truth tag on item 4), then 2 items of another run, then 10..11 with eos
        socks[0].send(seq_message("R", 0, 10, 3, [Tag(4, "truth", "x")]))
        socks[0].send(seq_message("Q", 0, 2, 3))
        socks[0].send(seq_message("R", 10, 2, 3, eos=True))
        # stream b: items 0..2, 5..11 (3 and 4 went elsewhere), one untagged item in between
        socks[1].send(seq_message("R", 0, 3, 2))
        socks[1].send(encode_message(np.zeros((1, 2), np.complex64), 3, []))
        socks[1].send(seq_message("R", 5, 7, 2, eos=True))
        fg.wait(timeout=15)
        assert not fg.running
    finally:
        for s in socks:
            s.close(linger=0)
        context.term()
    expected = [0, 1, 2, 5, 6, 7, 8, 9, 10, 11]
    assert out_a.data[:, 0].real.tolist() == expected and out_b.data[:, 0].real.tolist() == expected
    assert [(t.offset, t.key, t.value) for t in out_a.tags] == []  # item 4 (the truth tag) was not paired
    st = paired.stats()
    assert (st["paired"], st["first_index"], st["last_index"], st["gaps"]) == (10, 0, 11, 2)
    assert st["streams"]["a"]["unpaired"] == 2 and st["streams"]["a"]["foreign"] == 2
    assert st["streams"]["b"]["untagged"] == 1 and st["stream_id"] == "R"


def test_paired_source_moves_tags_onto_the_paired_items():
    sinks = [PushSink(np.complex64, w, LOOPBACK, pass_tags=True, stream_id="run", stream_length=30)
             for w in (3, 2)]
    paired = PairedPullSource({"a": (np.complex64, (3,), sinks[0].endpoint),
                               "b": (np.complex64, (2,), sinks[1].endpoint)}, idle_timeout=5)
    tx, rx = Flowgraph(max_items=7, name="tx"), Flowgraph(max_items=5, name="rx")
    tx.connect(VectorSource(items(30, 3), [Tag(i, "truth", i) for i in range(0, 30, 4)]), sinks[0])
    tx.connect(VectorSource(items(30, 2)), sinks[1])
    out = [VectorSink(np.complex64, 3), VectorSink(np.complex64, 2)]
    rx.connect((paired, "a"), out[0])
    rx.connect((paired, "b"), out[1])
    run_until_done(rx, tx)
    assert np.array_equal(out[0].data, items(30, 3)) and np.array_equal(out[1].data, items(30, 2))
    assert [(t.offset, t.value) for t in out[0].tags] == [(i, i) for i in range(0, 30, 4)]
    assert paired.stats()["gaps"] == 0 and paired.paired == 30
