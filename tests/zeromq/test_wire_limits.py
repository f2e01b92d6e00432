"""Wire limits: message size, tags per message, PMT elements and nesting depth, the same for the
encoder and the decoder; counts on the wire checked before anything is allocated; tag insertion
in O(n log n); --max-items / --hwm refused up front with the memory they would need.

Timing checks compare sizes (3x the tags must cost well under 9x the time), never wall time
against a fixed bound.
"""

from __future__ import annotations

import re
import socket
import struct
import subprocess
import sys
import time
import tracemalloc

import numpy as np
import pytest
import zmq

from isacblocks import SystemParams
from isacblocks.commands import link as link_cli
from isacblocks.core import Flowgraph, Tag, VectorSink, VectorSource
from isacblocks.core.buffer import Buffer
from isacblocks.core.ports import PortSpec
from isacblocks.errors import BlockError, ConfigError
from isacblocks.zeromq import (
    EOS_KEY,
    Pair,
    PullSource,
    PushSink,
    decode_message,
    dumps,
    encode_message,
    loads,
    pmt,
    wire,
)
from isacblocks.zeromq.pmt import MAX_DEPTH, MAX_ELEMENTS, WireFormatError, WireLimitError
from isacblocks.zeromq.wire import MAX_MESSAGE_BYTES, MAX_TAGS, decode_header, encode_header

LOOPBACK = "tcp://127.0.0.1:0"


def _lifted(monkeypatch, **limits):
    """Encode beyond the limits (to make the bytes a foreign sender could send)."""
    for name, value in limits.items():
        monkeypatch.setattr(pmt if hasattr(pmt, name) else wire, name, value)


# ------------------------------------------------------------------------------ nesting depth
NESTINGS = {  # (build n levels, the deepest n the documented counting allows)
    "tuple": (lambda n: _nest(n, lambda v: (v,)), MAX_DEPTH),
    "vector": (lambda n: _nest(n, lambda v: [v]), MAX_DEPTH),
    "pair car": (lambda n: _nest(n, lambda v: Pair(v, None)), MAX_DEPTH),
    "dict value": (lambda n: _nest(n, lambda v: {"k": v}), MAX_DEPTH // 2),  # entry pair + value: 2 levels
    "dict key": (lambda n: {_nest(n, lambda v: (v,)): 1}, MAX_DEPTH - 2),  # a tuple key, below its entry pair
    "list in dict": (lambda n: _nest(n, lambda v: {"k": Pair(v, Pair(2, None))}), MAX_DEPTH // 2),
}


def _nest(n, wrap, leaf=0):
    value = leaf
    for _ in range(n):
        value = wrap(value)
    return value


@pytest.mark.parametrize("kind", NESTINGS)
def test_encoder_and_decoder_agree_on_the_nesting_depth(kind, monkeypatch):
    build, deepest = NESTINGS[kind]
    assert pmt.equal(loads(dumps(build(deepest))), build(deepest))
    with pytest.raises(WireLimitError, match=f"nesting deeper than MAX_DEPTH = {MAX_DEPTH}"):
        dumps(build(deepest + 1))
    _lifted(monkeypatch, MAX_DEPTH=10 * MAX_DEPTH)
    too_deep = dumps(build(deepest + 1))
    monkeypatch.undo()
    with pytest.raises(WireLimitError, match=f"nested deeper than MAX_DEPTH = {MAX_DEPTH}"):
        loads(too_deep)


def test_dict_keys_that_would_arrive_unhashable_are_refused():
    with pytest.raises(WireFormatError, match=r"dict key \(1, b'ab'\) holds bytes"):
        dumps({(1, b"ab"): 2})


# ------------------------------------------------------------------------------ PMT elements
ELEMENTS = {  # (a value of exactly n elements)
    "tuple": lambda n: tuple(range(n)),
    "vector": lambda n: [1.5] * n,
    "PMT list": lambda n: Pair.from_list([True] * n),
    "dict": lambda n: {i: None for i in range(n // 2)},  # 2 per entry
    "nested": lambda n: [tuple(range(99))] * (n // 100),  # 1 + 99 per item
}


@pytest.mark.parametrize("kind", ELEMENTS)
def test_encoder_and_decoder_agree_on_the_element_limit(kind, monkeypatch):
    value = ELEMENTS[kind](MAX_ELEMENTS)
    assert pmt.equal(loads(dumps(value)), value)
    bigger = ELEMENTS[kind](MAX_ELEMENTS + 100)
    with pytest.raises(WireLimitError, match=f"more than MAX_ELEMENTS = {MAX_ELEMENTS} PMT elements"):
        dumps(bigger)
    _lifted(monkeypatch, MAX_ELEMENTS=4 * MAX_ELEMENTS)
    wire_bytes = dumps(bigger)
    monkeypatch.undo()
    with pytest.raises(WireLimitError, match=f"more than MAX_ELEMENTS = {MAX_ELEMENTS} PMT elements .* in one PMT"):
        loads(wire_bytes)


def test_an_8_mb_pmt_list_costs_no_more_than_a_few_mb():
    """4 million list pairs (8 MB): refused after MAX_ELEMENTS, with a few MB allocated (200 MB before)."""
    wire_bytes = b"\x07\x00" * 4_000_000 + b"\x06"
    tracemalloc.start()
    try:
        with pytest.raises(WireLimitError, match="a PMT list at offset 0"):
            loads(wire_bytes)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20, f"peak {peak / 2**20:.1f} MiB"


def test_the_element_limit_holds_for_all_tags_of_a_message_together(monkeypatch):
    tags = [Tag(i, "k", tuple(float(j) for j in range(8))) for i in range(MAX_ELEMENTS // 8)]
    assert len(decode_header(encode_header(0, tags))[1]) == len(tags)  # exactly at the limit
    more = [*tags, Tag(0, "x", (1.0,))]
    with pytest.raises(WireLimitError, match="in the tags of one message"):
        encode_header(0, more)
    _lifted(monkeypatch, MAX_ELEMENTS=2 * MAX_ELEMENTS)
    header = encode_header(0, more)
    monkeypatch.undo()
    with pytest.raises(WireLimitError, match=r"gr-zeromq header, tag 8192 of 8193: more than MAX_ELEMENTS"):
        decode_header(header)


# ------------------------------------------------------------------------------ tags and bytes per message
def test_tags_per_message_and_message_size_are_capped_both_ways(monkeypatch):
    tags = [Tag(0, "k", True)] * (MAX_TAGS + 1)
    with pytest.raises(WireLimitError, match=f"{MAX_TAGS + 1} tags in one message: more than MAX_TAGS = {MAX_TAGS}"):
        encode_header(0, tags)
    _lifted(monkeypatch, MAX_TAGS=2 * MAX_TAGS)
    header = encode_header(0, tags)
    monkeypatch.undo()
    with pytest.raises(WireLimitError, match=f"announces {MAX_TAGS + 1} tags: more than MAX_TAGS"):
        decode_header(header)
    big = bytearray(MAX_MESSAGE_BYTES + 1)
    big[:len(header)] = header
    with pytest.raises(WireLimitError, match=f"more than MAX_MESSAGE_BYTES = {MAX_MESSAGE_BYTES}"):
        decode_message(big)
    with pytest.raises(WireLimitError, match="MAX_MESSAGE_BYTES"):
        wire.items_from_payload(big, np.uint8)


@pytest.mark.parametrize(("what", "data"), [
    ("tag count", struct.pack("<HBQQ", 0x5FF0, 1, 0, 2**64 - 1) + bytes(64)),
    ("tuple count", b"\x0c\xff\xff\xff\xff" + bytes(16)),
    ("vector count", b"\x08\xff\xff\xff\xff" + bytes(16)),
    ("uniform vector count", b"\x0a\x0b\xff\xff\xff\xff\x01\x00" + bytes(16)),
    ("symbol length", b"\x02\xff\xff" + bytes(16)),
])
def test_counts_on_the_wire_are_checked_before_anything_is_allocated(what, data):
    tracemalloc.start()
    try:
        with pytest.raises(WireFormatError):
            (decode_header if what == "tag count" else loads)(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**20, f"{what}: {peak} bytes allocated"


def test_a_receiver_counts_a_message_beyond_a_limit_as_malformed_and_goes_on(monkeypatch):
    _lifted(monkeypatch, MAX_TAGS=2 * MAX_TAGS)
    too_many = encode_message(np.zeros(4, np.uint8), 0, [Tag(1, "k", True)] * (MAX_TAGS + 1))
    monkeypatch.undo()
    good = encode_message(np.arange(4, dtype=np.uint8), 4, [Tag(5, "ok", 1.0), Tag(7, EOS_KEY, True)])
    source, got, _ = _receive([too_many, good], max_items=8, timeout=20)
    assert got.data.tolist() == [0, 1, 2, 3] and [(t.offset, t.key) for t in got.tags] == [(1, "ok")]
    assert source.malformed == 1 and "more than MAX_TAGS" in source.last_error


def _receive(messages: list[bytes], max_items: int, timeout: float):
    """Send raw gr-zeromq `messages` from a bound PUSH socket into a PullSource of one-byte items and
    run it to the end of stream: ``(source, sink, seconds from the first send to the end)``."""
    context = zmq.Context()
    push = context.socket(zmq.PUSH)
    push.linger = 0
    port = push.bind_to_random_port("tcp://127.0.0.1")
    source = PullSource(np.uint8, (), f"tcp://127.0.0.1:{port}", pass_tags=True)
    got = VectorSink(np.uint8, ())
    rx = Flowgraph(max_items=max_items, name="rx")
    rx.connect(source, got)
    try:
        rx.start()
        start = time.perf_counter()
        for message in messages:
            push.send(message)
        rx.wait(timeout=timeout)
        seconds = time.perf_counter() - start
    finally:
        push.close()
        context.term()
    return source, got, seconds


def test_zeromq_drops_a_peer_that_declares_a_message_over_the_limit():
    """A raw ZMTP peer announcing MAX_MESSAGE_BYTES + 1 bytes is disconnected at the frame header
    (ZMQ_MAXMSGSIZE): the receiver buffers none of it and a later sender still gets through."""
    source = PullSource(np.uint8, (), LOOPBACK, bind=True)
    host, port = source.endpoint.rsplit("/", 1)[1].rsplit(":", 1)
    peer = socket.create_connection((host, int(port)), timeout=20)
    greeting = b"\xff" + bytes(8) + b"\x7f\x03\x00" + b"NULL".ljust(20, b"\x00") + b"\x00" + bytes(31)
    ready = b"\x05READY\x0bSocket-Type" + struct.pack(">I", 4) + b"PUSH"
    peer.sendall(greeting + b"\x04" + bytes([len(ready)]) + ready)
    peer.sendall(b"\x02" + struct.pack(">Q", MAX_MESSAGE_BYTES + 1))
    sent = 0
    try:
        while sent < MAX_MESSAGE_BYTES:
            peer.sendall(bytes(2**20))
            sent += 2**20
    except OSError:
        pass  # reset by the receiver
    finally:
        peer.close()
    assert sent < MAX_MESSAGE_BYTES // 2, f"the receiver read {sent} bytes of an oversized message"
    sink = PushSink(np.uint8, (), source.endpoint, bind=False)
    got = VectorSink(np.uint8, ())
    tx, rx = Flowgraph(max_items=8, name="tx"), Flowgraph(max_items=8, name="rx")
    tx.connect(VectorSource(np.arange(5, dtype=np.uint8)), sink)
    rx.connect(source, got)
    rx.start()
    tx.run()
    rx.wait(timeout=20)
    assert got.data.tolist() == [0, 1, 2, 3, 4] and source.stats()["messages_received"] == 2  # items, end of stream


# ------------------------------------------------------------------------------ the sink keeps to the limits
def test_a_sink_splits_a_batch_that_would_break_a_limit(monkeypatch):
    """Lowered limits: the batch leaves as several messages; items and tags arrive as sent."""
    _lifted(monkeypatch, MAX_TAGS=10, MAX_MESSAGE_BYTES=600, MAX_ELEMENTS=40)
    data = np.arange(64 * 4, dtype=np.float32).reshape(64, 4)
    tags = [Tag(i, "t", (float(i), 1.0), None) for i in range(0, 64, 2)] + [Tag(5, "u", True, None)] * 3
    sink = PushSink(np.float32, 4, LOOPBACK, pass_tags=True)
    source = PullSource(np.float32, 4, sink.endpoint, pass_tags=True)
    got = VectorSink(np.float32, 4)
    tx, rx = Flowgraph(max_items=64, name="tx"), Flowgraph(max_items=64, name="rx")
    tx.connect(VectorSource(data, tags), sink)
    rx.connect(source, got)
    rx.start()
    tx.run()
    rx.wait(timeout=20)
    assert got.data.tobytes() == data.tobytes()
    key = lambda t: (t.offset, t.key)  # noqa: E731
    assert sorted((t.offset, t.key, t.value) for t in got.tags) == sorted((t.offset, t.key, t.value) for t in tags)
    assert sorted(got.tags, key=key) == sorted(got.tags, key=key)
    assert sink.messages_sent >= 64 * 16 // 600 + 1 and source.malformed == 0


def test_a_sink_refuses_what_no_message_can_hold(monkeypatch):
    with pytest.raises(ConfigError, match=r"push_sink\w*: max_items_per_message = 5000000: messages of that many "
                                          r"16-byte items exceed MAX_MESSAGE_BYTES = 67108864; at most 4194302"):
        PushSink(np.float32, 4, LOOPBACK, max_items_per_message=5_000_000)
    with pytest.raises(ConfigError, match=r"one item of float32\[4096, 4097\] takes 67125248 bytes, more than"):
        PushSink(np.float32, (4096, 4097), LOOPBACK)
    with pytest.raises(ConfigError, match=r"start_tags\['x'\]: more than MAX_ELEMENTS"):
        PushSink(np.float32, 4, LOOPBACK, pass_tags=True, start_tags={"x": [0] * (MAX_ELEMENTS + 1)})
    sink = PushSink(np.float32, 4, LOOPBACK, pass_tags=True, name="tx_sink", timeout=5000)
    receiver = PullSource(np.float32, 4, sink.endpoint, pass_tags=True)  # connected: the sink sends
    fg = Flowgraph(max_items=8, name="tx")
    fg.connect(VectorSource(np.zeros((4, 4), np.float32), [Tag(2, "k", True)] * (MAX_TAGS + 1)), sink)
    try:
        with pytest.raises(BlockError) as info:
            fg.start()
            fg.wait(timeout=60)
    finally:
        if fg.running:
            fg.stop()
        receiver.close()
    cause = info.value.__cause__
    assert isinstance(cause, ConfigError)
    assert str(cause).startswith(f"tx_sink: item 2 cannot be sent: a message of it alone breaks a wire limit: "
                                 f"{MAX_TAGS + 1} tags in one message: more than MAX_TAGS = {MAX_TAGS}")


# ------------------------------------------------------------------------------ tag insertion
def _best(run, *args, repeat=3):
    return min(run(*args) for _ in range(repeat))


def _buffer_seconds(n: int) -> float:
    buf = Buffer(PortSpec(np.dtype(np.uint8)), 16)
    tags = [Tag(i, "k", i) for i in range(n - 1, -1, -1)]
    start = time.perf_counter()
    for tag in tags:
        buf.add_tag(tag)
    got = buf.tags_in_range(0, n, None)
    seconds = time.perf_counter() - start
    assert [t.offset for t in got] == list(range(n))
    return seconds


def test_tags_in_decreasing_order_enter_a_buffer_in_n_log_n():
    """3x the tags cost about 3x the time (the old list inserts: about 10x)."""
    small, large = _best(_buffer_seconds, 40_000), _best(_buffer_seconds, 120_000)
    assert large / small < 6, f"{small:.3f} s for 40 000 tags, {large:.3f} s for 120 000"


def test_the_buffer_keeps_the_order_of_add_tag_among_equal_offsets():
    rng = np.random.default_rng(5)
    offsets = rng.integers(0, 300, 2000)
    buf = Buffer(PortSpec(np.dtype(np.uint8)), 16)
    tags = [Tag(int(o), "k", i) for i, o in enumerate(offsets)]
    for i, tag in enumerate(tags):
        buf.add_tag(tag)
        if i % 97 == 0:  # reads in between merge what waits
            buf.tags_in_range(0, 10, None)
    assert buf.tags_in_range(0, 300, None) == sorted(tags, key=lambda t: t.offset)  # stable: insertion order


def _receive_seconds(n: int) -> float:
    """One message of n one-byte items, tagged in decreasing offset order, written out 64 items a call."""
    tags = [Tag(i, "k", True) for i in range(n - 1, -1, -1)]
    message = encode_message(np.zeros(n, np.uint8), 0, tags)
    _, got, seconds = _receive([message, encode_message(b"", n, [Tag(n, EOS_KEY, True)])], max_items=64,
                               timeout=120)
    assert [t.offset for t in got.tags] == list(range(n))
    return seconds


def test_a_message_of_many_tags_is_received_in_n_log_n():
    """4x the tags cost about 4x the time (before: over 10x, each part of the message rescanned them all)."""
    small, large = _best(_receive_seconds, 8_000), _best(_receive_seconds, 32_000)
    assert large / small < 8, f"{small:.3f} s for 8 000 tags, {large:.3f} s for 32 000"


class _Counted(np.ndarray):
    """A byte array that counts the bytes its slices hand out."""

    sliced = 0

    def __getitem__(self, key):
        out = super().__getitem__(key)
        if isinstance(key, slice):
            _Counted.sliced += out.size
        return out


def test_sequence_records_alternating_with_other_tags_are_matched_in_linear_time():
    """Behind a GNU Radio hop each sequence record is followed by another tag: every match looks at a
    window of at most 64 records, not at the rest of the header (n records: O(n), not O(n^2))."""
    from isacblocks.zeromq.seqtags import SeqLayout

    n = 2000
    layout = SeqLayout("run", "tx", "stream_seq")
    other = Tag(0, "x", 1.0, "tx")
    tags = [t for i in range(n) for t in (Tag(i, "stream_seq", ("run", i), "tx"), other._replace(offset=i))]
    data = np.frombuffer(encode_header(0, tags), np.uint8).view(_Counted)
    stride = layout.size + len(encode_header(0, [other])) - wire.HEADER_SIZE
    _Counted.sliced = 0
    counts = [layout.match(data, wire.HEADER_SIZE + i * stride, 2 * (n - i)) for i in range(n)]
    assert counts == [1] * n
    assert _Counted.sliced <= n * 64 * layout.size, f"{_Counted.sliced} bytes compared for {n} records"


# ------------------------------------------------------------------------------ --max-items, --hwm
def test_max_items_and_hwm_are_refused_with_the_memory_they_would_need(monkeypatch, tmp_path):
    (tmp_path / "small.toml").write_text("n_antennas = 16\nn_subcarriers = 64\n")
    params = SystemParams.from_toml(tmp_path / "small.toml")
    monkeypatch.setattr(link_cli, "available_memory_bytes", lambda: 2**30)
    args = link_cli.rx_parser().parse_args(["--max-items", "1e6", "--hwm", "2", "--no-comm"])
    # two streams: Y_r (16 x 64 complex64, 8 KiB) and symbols (64 complex64, 512 B); each message capped
    queues = 2 * (min(10**6 * 8192, MAX_MESSAGE_BYTES) + min(10**6 * 512, MAX_MESSAGE_BYTES))
    assert queues < 2**30
    link_cli._check_memory(args, params)  # the queues alone fit
    fg = Flowgraph(max_items=10**6)
    fg.connect(VectorSource(np.zeros((1, 16, 64), np.complex64)), VectorSink(np.complex64, (16, 64)))
    need = queues + 2 * 10**6 * 8192
    with pytest.raises(ConfigError, match=rf"^argument --max-items: --max-items 1000000 gives each of the flowgraph's "
                                          rf"block outputs a buffer of 2000000 items: that would need "
                                          rf"{re.escape(f'{need / 2**30:.3g}')} GiB, more than the 1 GiB available"):
        link_cli._check_memory(args, params, fg)
    args = link_cli.tx_parser().parse_args(["--hwm", "1e11", "--no-comm"])
    need = 10**11 * (64 * 8192 + 64 * 512)
    with pytest.raises(ConfigError, match=rf"^argument --hwm: --hwm 100000000000 queues up to 100000000000 messages "
                                          rf"of up to 0.5 MiB on each of 2 streams: that would need "
                                          rf"{re.escape(f'{need / 2**30:.3g}')} GiB"):
        link_cli._check_memory(args, params)
    for bad in ("1.5", "ten", "1e400"):
        with pytest.raises(SystemExit):
            link_cli.tx_parser().parse_args(["--hwm", bad])


def test_isac_rx_refuses_a_huge_max_items_in_one_line_at_once():
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "isacblocks.commands", "rx", "--max-items", "1000000"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("isac rx: error: argument --max-items: --max-items 1000000 gives each")
    assert "GiB, more than the" in proc.stderr and time.monotonic() - start < 60
