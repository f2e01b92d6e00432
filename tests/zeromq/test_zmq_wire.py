"""Tests of isacblocks.zeromq.wire against gr-zeromq's tag header (GNU Radio 3.10).

Expected header bytes are written by hand from gr-zeromq/lib/tag_headers.cc
(``gen_tag_header``: host-order -- little-endian -- u16 magic 0x5FF0, u8 version 1, u64
first offset, u64 tag count, then per tag a u64 offset and the PMT-serialised key, value and
srcid) and gr-zeromq/lib/base_impl.cc (header and payload in one frame; tag rebasing).
"""

from __future__ import annotations

import numpy as np
import pytest
import zmq
from hypothesis import given, settings
from hypothesis import strategies as st

from isacblocks.core.tags import Tag
from isacblocks.zeromq import (
    Pair,
    UInt64,
    WireFormatError,
    decode_header,
    decode_message,
    encode_header,
    encode_message,
    items_from_payload,
    pub_frames,
    rebase_tags,
    split_pub_frames,
)
from isacblocks.zeromq.pmt import equal
from isacblocks.zeromq.wire import HEADER_SIZE

# gen_tag_header(offset=1000, tags=[tag_t{offset=1003, key="foo", value=from_long(1),
# srcid=PMT_F}]) followed by two complex64 items
ONE_TAG_HEADER = (
    b"\xf0\x5f"  # u16 0x5FF0, little-endian
    b"\x01"  # u8 version
    b"\xe8\x03\x00\x00\x00\x00\x00\x00"  # u64 1000
    b"\x01\x00\x00\x00\x00\x00\x00\x00"  # u64 ntags = 1
    b"\xeb\x03\x00\x00\x00\x00\x00\x00"  # u64 tag offset 1003
    b"\x02\x00\x03foo"  # key: symbol "foo"
    b"\x03\x00\x00\x00\x01"  # value: int32 1
    b"\x01"  # srcid: PMT_F (tag_t's default)
)
EMPTY_HEADER = b"\xf0\x5f\x01" + b"\x07" + bytes(7) + bytes(8)  # offset 7, no tags


def test_header_matches_hand_written_bytes():
    assert encode_header(1000, [Tag(1003, "foo", 1)]) == ONE_TAG_HEADER
    assert encode_header(7, []) == EMPTY_HEADER
    assert HEADER_SIZE == 19


def test_message_is_header_then_payload_in_one_frame():
    payload = np.array([1 + 2j, -3j], dtype=np.complex64)
    frame = encode_message(payload, 1000, [Tag(1003, "foo", 1)])
    assert isinstance(frame, bytes)
    assert frame == ONE_TAG_HEADER + payload.tobytes()


def test_decode_hand_written_message_zero_copy():
    payload = np.array([1 + 2j, -3j], dtype=np.complex64)
    frame = ONE_TAG_HEADER + payload.tobytes()
    first, tags, body = decode_message(frame)
    assert first == 1000
    assert tags == [Tag(1003, "foo", 1, None)]
    assert isinstance(body, memoryview) and body.obj is frame  # a view, not a copy
    items = items_from_payload(body, np.complex64)
    assert items.tolist() == payload.tolist()
    assert np.shares_memory(items, np.frombuffer(frame, np.uint8))


def test_decode_header_reports_header_size():
    first, tags, size = decode_header(ONE_TAG_HEADER + b"payload")
    assert (first, size) == (1000, len(ONE_TAG_HEADER))


def test_round_trip_varied_tags_and_payloads():
    tags = [
        Tag(5, "rx_time", (UInt64(1700000000), 0.25), "usrp_source1"),
        Tag(6, "packet_len", 42),
        Tag(9, "meta", {"freq": 2.4e9, "gain": Pair(1, None)}, "src"),
        Tag(2**64 - 1, "vec", np.arange(3, dtype=np.float32)),
    ]
    for payload in (b"", b"\x01\x02\x03\x04", bytearray(8), memoryview(b"abcd"),
                    np.arange(6, dtype=np.int16).reshape(2, 3),
                    np.arange(10, dtype=np.float64)[::2]):
        frame = encode_message(payload, 5, tags)
        first, back, body = decode_message(frame)
        assert first == 5
        assert len(back) == len(tags)
        for got, want in zip(back, tags):
            assert (got.offset, got.key, got.srcid) == (want.offset, want.key, want.srcid)
            assert equal(got.value, want.value)
        expected = (np.ascontiguousarray(payload).tobytes()
                    if isinstance(payload, np.ndarray) else bytes(payload))
        assert bytes(body) == expected


def test_srcid_mapping():
    # PMT_F and PMT_NIL srcids decode to None; symbols to str
    header = bytearray(encode_header(0, [Tag(0, "k", None, "blk")]))
    assert decode_header(header)[1][0].srcid == "blk"
    nil_srcid = encode_header(0, [Tag(0, "k", None)])[:-1] + b"\x06"
    assert decode_header(nil_srcid)[1][0].srcid is None


def test_srcid_that_is_not_a_symbol_is_kept():
    """GNU Radio allows any PMT as srcid: a double, an int or a tuple arrive as that value."""
    double_srcid = encode_header(0, [Tag(0, "k", None)])[:-1] + b"\x04" + bytes(8)
    assert decode_header(double_srcid)[1][0].srcid == 0.0
    for srcid in (7, (1, "a"), 2.5):
        tag = decode_header(encode_header(0, [Tag(0, "k", 1, srcid)]))[1][0]
        assert tag.srcid == srcid and type(tag.srcid) is type(srcid)


def test_header_accepts_any_buffer():
    frame = encode_message(b"\x00" * 4, 3, [Tag(3, "k", True)])
    for buf in (bytearray(frame), memoryview(frame), np.frombuffer(frame, np.uint8)):
        assert decode_message(buf)[:2] == (3, [Tag(3, "k", True)])


# ---------------------------------------------------------------------------------------
# malformed headers
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (b"", "too small to hold the 19-byte"),
        (ONE_TAG_HEADER[:18], "too small"),
        (b"\xf1\x5f" + ONE_TAG_HEADER[2:], "magic is 0x5ff1, expected 0x5ff0"),
        (b"\x5f\xf0" + ONE_TAG_HEADER[2:], "magic is 0xf05f"),  # big-endian magic
        (ONE_TAG_HEADER[:2] + b"\x02" + ONE_TAG_HEADER[3:], "version is 2"),
        (ONE_TAG_HEADER[:2] + b"\x00" + ONE_TAG_HEADER[3:], "version is 0"),
        (ONE_TAG_HEADER[:-1], "tag 0 of 1"),  # srcid cut off
        (ONE_TAG_HEADER[:25], "announces 1 tags but only 6 bytes follow"),
        (ONE_TAG_HEADER[:30], "tag 0 of 1"),  # key cut off
        # tag count 2 but only one tag present
        (ONE_TAG_HEADER[:11] + b"\x02" + ONE_TAG_HEADER[12:], "announces 2 tags"),
        (ONE_TAG_HEADER[:11] + b"\x02" + ONE_TAG_HEADER[12:] + bytes(12), "tag 1 of 2"),
        (ONE_TAG_HEADER[:11] + b"\xff" * 8 + ONE_TAG_HEADER[19:], "announces 18446744073709551615"),
        # key is an int, not a symbol
        (ONE_TAG_HEADER[:27] + b"\x03\x00\x00\x00\x07" + ONE_TAG_HEADER[33:], "key is a int"),
        # unknown PMT tag inside the value
        (ONE_TAG_HEADER[:33] + b"\x0e" + ONE_TAG_HEADER[38:], "unknown PMT type tag 0x0e"),
    ],
)
def test_malformed_header_raises(frame, message):
    with pytest.raises(WireFormatError, match=message):
        decode_message(frame)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((-1, []), "first offset -1 does not fit in a u64"),
        ((2**64, []), "does not fit in a u64"),
        ((0, [Tag(-5, "k", 1)]), "tag offset -5"),
        ((0, [Tag(0, 7, 1)]), "tag key must be a str"),  # type: ignore[arg-type]
        ((0, [Tag(0, "k", ())]), r"tag 'k' at offset 0: its value \(\) holds an empty tuple"),
        ((0, [Tag(0, "k", [1, {"a": (2, ())}])]), "holds an empty tuple"),
        ((0, [Tag(0, "k", Pair(1, Pair((), None)))]), "holds an empty tuple"),
        ((0, [Tag(0, "k", 1, ())]), "its srcid"),
        ((0, [Tag(0, "k", object())]), "cannot serialize a object"),
    ],
)
def test_unencodable_headers_raise(args, message):
    with pytest.raises(WireFormatError, match=message):
        encode_header(*args)


def test_bad_payload_types_raise():
    with pytest.raises(WireFormatError, match="bytes-like or a numpy array"):
        encode_message("text", 0, [])
    with pytest.raises(WireFormatError, match="bytes-like message"):
        decode_message(12)


# ---------------------------------------------------------------------------------------
# payload items
# ---------------------------------------------------------------------------------------


def test_items_from_payload_shapes():
    data = np.arange(12, dtype=np.float32)
    items = items_from_payload(data.tobytes(), np.float32, (3,))
    assert items.shape == (4, 3) and items.dtype == np.float32
    assert items[1].tolist() == [3, 4, 5]
    assert items_from_payload(b"", np.complex64).shape == (0,)
    assert items_from_payload(data.tobytes(), "<f4", (2, 2)).shape == (3, 2, 2)
    assert not items_from_payload(data.tobytes(), np.float32).flags.writeable


def test_items_from_payload_rejects_partial_items():
    # base_source_impl::load_message: "Incompatible vector sizes"
    with pytest.raises(WireFormatError, match="10 bytes is not a whole number of 8-byte"):
        items_from_payload(bytes(10), np.complex64)
    with pytest.raises(WireFormatError, match="not a whole number of 12-byte items"):
        items_from_payload(bytes(16), np.float32, (3,))
    with pytest.raises(WireFormatError, match="has no bytes"):
        items_from_payload(bytes(16), np.float32, (0,))


# ---------------------------------------------------------------------------------------
# rebasing and PUB keys
# ---------------------------------------------------------------------------------------


def test_rebase_tags_like_flush_pending():
    # sender's message starts at its item 1000; the receiver has written 20 items so far.
    tags = [Tag(999, "before", 0), Tag(1000, "first", 1, "s"), Tag(1003, "mid", 2),
            Tag(1004, "after", 3)]
    moved = rebase_tags(tags, 1000, 20, nitems=4)
    assert moved == [Tag(20, "first", 1, "s"), Tag(23, "mid", 2)]
    # without a message length only tags before the message are dropped
    assert [t.offset for t in rebase_tags(tags, 1000, 20)] == [20, 23, 24]
    assert rebase_tags([], 0, 0) == []


def test_pub_frames_and_split():
    message = encode_message(b"\x01\x02", 0, [])
    assert pub_frames(message) == [message]
    assert pub_frames(message, "radar") == [b"radar", message]
    assert split_pub_frames([b"radar", message], b"radar") is message
    assert split_pub_frames([message]) is message
    with pytest.raises(WireFormatError, match="expected \\[key, message\\]"):
        split_pub_frames([message], "radar")
    with pytest.raises(WireFormatError, match="does not match subscription key"):
        split_pub_frames([b"other", message], "radar")
    with pytest.raises(WireFormatError, match="got 2 frames"):
        split_pub_frames([b"radar", message])


def test_over_a_real_zmq_socket():
    # what a gr-zeromq sink puts on the wire: [key, header+payload], two frames
    ctx = zmq.Context.instance()
    push = ctx.socket(zmq.PUSH)
    pull = ctx.socket(zmq.PULL)
    try:
        push.bind("inproc://isacblocks-wire-test")
        pull.connect("inproc://isacblocks-wire-test")
        payload = np.arange(8, dtype=np.complex64)
        push.send_multipart(pub_frames(encode_message(payload, 64, [Tag(66, "k", 1.5)]), "key"))
        assert pull.poll(2000)
        frames = pull.recv_multipart(copy=False)
        first, tags, body = decode_message(split_pub_frames(frames, "key"))
        assert first == 64 and tags == [Tag(66, "k", 1.5)]
        assert np.array_equal(items_from_payload(body, np.complex64), payload)
    finally:
        push.close(linger=0)
        pull.close(linger=0)


# ---------------------------------------------------------------------------------------
# property tests
# ---------------------------------------------------------------------------------------

tag_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.floats(),
              st.text(max_size=8)),
    lambda c: st.one_of(st.lists(c, min_size=1, max_size=3).map(tuple),  # never (), see encode_header
                        st.dictionaries(st.text(max_size=4), c, min_size=1, max_size=3)),
    max_leaves=6,
)
tags_strategy = st.lists(
    st.builds(Tag, st.integers(0, 2**64 - 1), st.text(max_size=10), tag_values,
              st.one_of(st.none(), st.text(max_size=6))),
    max_size=5,
)


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 2**64 - 1), tags_strategy, st.binary(max_size=32))
def test_round_trip_random_headers(first, tags, payload):
    got_first, got_tags, body = decode_message(encode_message(payload, first, tags))
    assert got_first == first and bytes(body) == payload
    assert len(got_tags) == len(tags)
    for got, want in zip(got_tags, tags):
        assert (got.offset, got.key, got.srcid) == (want.offset, want.key, want.srcid)
        assert equal(got.value, want.value)


@settings(max_examples=1000, deadline=None)
@given(st.one_of(
    st.binary(max_size=80),
    # random data behind a valid magic and version, to get past the first checks
    st.binary(max_size=80).map(lambda b: b"\xf0\x5f\x01" + b),
    st.tuples(st.integers(0, 2**64 - 1), st.integers(0, 4), st.binary(max_size=60)).map(
        lambda t: b"\xf0\x5f\x01" + t[0].to_bytes(8, "little") + t[1].to_bytes(8, "little")
        + t[2]
    ),
))
def test_decoder_on_random_bytes_only_raises_wire_format_error(frame):
    try:
        first, tags, body = decode_message(frame)
    except WireFormatError:
        return
    assert 0 <= first < 2**64 and all(isinstance(t.key, str) for t in tags)
    assert len(body) <= len(frame) - HEADER_SIZE
