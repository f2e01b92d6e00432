"""The fixed-layout fast path of the link's sequence tags (`isacblocks.zeromq.seqtags`).

The fast encoder must write exactly the general encoder's bytes; the fast decoder must give
exactly the general decoder's tags, and must leave to the general decoder every record that
is not exactly the layout (one byte off is enough); the pairing source must pair the same
way whichever decoder read a message.  Fixed seeds, no timing.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import zmq
from hypothesis import given, settings
from hypothesis import strategies as st

from isacblocks.core import Flowgraph, Tag, VectorSink
from isacblocks.errors import ConfigError
from isacblocks.zeromq import EOS_KEY, SEQ_KEY, PairedPullSource, PushSink, WireFormatError, encode_message, pmt
from isacblocks.zeromq.seqdecoder import SeqDecoder
from isacblocks.zeromq.seqtags import SeqLayout, SeqRecords
from isacblocks.zeromq.wire import HEADER_SIZE, decode_header, encode_header

RUN = "8b0866a2a8e54e94"


def seq_tags(first, n, run=RUN, srcid="tx_Y_r", index0=None):
    index0 = first if index0 is None else index0
    return [Tag(first + k, SEQ_KEY, (run, index0 + k), srcid) for k in range(n)]


def same_tags(a, b):
    return len(a) == len(b) and all(
        (x.offset, x.key, x.srcid) == (y.offset, y.key, y.srcid) and pmt.equal(x.value, y.value) for x, y in zip(a, b))


def fast_decode(buf, decoder=None):
    """(first, tags in header order, runs) from a SeqDecoder that already knows the layout of `RUN`."""
    decoder = decoder or SeqDecoder(SEQ_KEY)
    decoder.decode_header(encode_header(0, seq_tags(0, 1)))  # learn the usual layout
    first, tags, runs, size = decoder.decode_header(buf)
    return first, SeqDecoder.merged(tags, runs), runs, size


# ------------------------------------------------------------------------------------ encoding
@pytest.mark.parametrize("srcid", ["tx_Y_r", None, "é-ü"])
@pytest.mark.parametrize("first, indices", [(0, range(64)), (2**40, range(5, 69)),
                                            (7, [-(2**31), -1, 0, 2**31 - 1]), (2**64 - 3, [3, 1, 2])])
def test_fast_records_are_the_general_encoders_bytes(srcid, first, indices):
    layout = SeqLayout(RUN, srcid, SEQ_KEY)
    index = np.array(list(indices), dtype=np.int64)
    offsets = np.arange(first, first + len(index), dtype=np.uint64)
    tags = [Tag(int(o), SEQ_KEY, (RUN, int(i)), srcid) for o, i in zip(offsets, index)]
    other = [Tag(first, "sector", (-0.7, -0.35, 0.0, 200.0), "src"), Tag(first, "target_present", True, "src")]
    eos = [Tag(first, EOS_KEY, True, srcid)]
    fast = encode_header(first, other, SeqRecords(layout, offsets, index), eos)
    assert fast == encode_header(first, other + tags + eos)
    assert layout.encode(offsets, index) == encode_header(first, tags)[HEADER_SIZE:]


def test_sink_writes_int64_indices_the_general_way():
    """Beyond int32 the general encoder writes PST_INT64: the sink's records then go that way too."""
    sink = PushSink(np.complex64, 2, "tcp://127.0.0.1:0", pass_tags=True, stream_id=RUN, name="s")
    try:
        for offset in (0, 2**31 - 2, 2**40):
            seq, after = sink._link_tags(offset, 4)
            header = encode_header(offset, [], seq, after)
            want = [Tag(i, SEQ_KEY, (RUN, i), "s") for i in range(offset, offset + 4)]
            assert header == encode_header(offset, want)
            assert (seq is None) == (offset + 3 > 2**31 - 1)
    finally:
        sink.close()


def test_a_stream_id_the_general_encoder_refuses_is_refused_at_construction():
    with pytest.raises(ConfigError, match="stream_id .* longer than the 1024 bytes"):
        PushSink(np.complex64, 2, "tcp://127.0.0.1:0", pass_tags=True, stream_id="x" * 1100)


# ------------------------------------------------------------------------------------ decoding
@pytest.mark.parametrize("layout_of", ["ours", "interleaved", "other_run", "other_srcid", "int64"])
def test_fast_decoder_gives_the_general_decoders_tags(layout_of):
    """Our sink's order (other tags, the records, eos), GNU Radio's (sorted by item), other runs
    and srcids, and indices written as PST_INT64 by another encoder: the same tags either way."""
    other = [Tag(10 + k, key, value, "scenario_source0") for k in range(4)
             for key, value in (("seq", 10 + k), ("sector", (-0.7, -0.35, 0.0, 200.0)), ("target_present", k % 2 == 0))]
    if layout_of == "ours":
        tags = other + seq_tags(10, 4) + [Tag(13, EOS_KEY, True, "tx_Y_r")]
    elif layout_of == "interleaved":
        tags = sorted(other + seq_tags(10, 4), key=lambda t: t.offset)
    elif layout_of == "other_run":
        tags = seq_tags(10, 2) + seq_tags(12, 2, run="another") + seq_tags(10, 2, srcid=None)
    elif layout_of == "other_srcid":
        tags = seq_tags(10, 4, srcid="relay")
    else:
        tags = seq_tags(10, 4)
    message = encode_message(np.zeros((4, 2), np.complex64), 10, tags)
    if layout_of == "int64":  # the same tags with the index as PST_INT64, as another encoder may write it
        records = b"".join(t.offset.to_bytes(8, "little") + pmt.serialize(SEQ_KEY) + b"\x0c\x00\x00\x00\x02"
                           + pmt.serialize(RUN) + b"\x0d" + t.value[1].to_bytes(8, "big") + pmt.serialize(t.srcid)
                           for t in tags)
        message = encode_header(10, [])[:11] + len(tags).to_bytes(8, "little") + records + bytes(32)
    general = decode_header(message)
    first, merged, runs, size = fast_decode(message)
    assert (first, size) == (general[0], general[2]) and same_tags(merged, general[1])
    fast_count = sum(len(r.offsets) for r in runs)
    # a record of a new layout is read the general way and teaches the layout for the records after it
    assert fast_count == {"ours": 4, "interleaved": 4, "other_run": 4, "other_srcid": 3, "int64": 0}[layout_of]


def test_a_layout_is_learnt_from_the_first_record_then_used():
    decoder = SeqDecoder(SEQ_KEY)
    first = encode_message(np.zeros((3, 2), np.complex64), 0, seq_tags(0, 3, srcid="relay"))
    _, tags, runs, _ = decoder.decode_header(first)
    assert len(tags) == 1 and sum(len(r.offsets) for r in runs) == 2  # one general record taught the rest
    _, tags, runs, _ = decoder.decode_header(encode_message(np.zeros((3, 2), np.complex64), 3,
                                                            seq_tags(3, 3, srcid="relay")))
    assert not tags and runs[0].indices.tolist() == [3, 4, 5] and runs[0].offsets.tolist() == [3, 4, 5]


def test_every_one_byte_change_goes_the_general_way_with_the_same_result():
    """Each byte of a header of 6 records (and a tag around them) changed to 3 other values: the
    fast decoder gives the general decoder's tags or the same error; where a fixed byte of a
    record changed, that record is not read by the fast path."""
    tags = [Tag(5, "theta", 0.25, "src")] + seq_tags(5, 6) + [Tag(10, EOS_KEY, True, "tx_Y_r")]
    message = bytearray(encode_message(np.zeros((6, 2), np.complex64), 5, tags))
    layout = SeqLayout(RUN, "tx_Y_r", SEQ_KEY)
    records_at = message.index(layout.key_bytes) - 8  # the first record
    fixed = set(range(layout.size)) - set(range(8)) - set(range(layout.index_at, layout.index_at + 4))
    decoder = SeqDecoder(SEQ_KEY)
    fast_decode(bytes(message), decoder)
    rng = np.random.default_rng(0)
    size = decode_header(bytes(message))[2]
    for position in range(size):
        for delta in rng.choice(np.arange(1, 256), 3, replace=False):
            changed = bytearray(message)
            changed[position] = (changed[position] + int(delta)) % 256
            try:
                general = decode_header(bytes(changed))
            except WireFormatError as exc:
                with pytest.raises(WireFormatError) as caught:
                    decoder.decode_header(bytes(changed))
                assert str(caught.value) == str(exc)
                continue
            first, got, runs, got_size = decoder.decode_header(bytes(changed))
            assert (first, got_size) == (general[0], general[2])
            assert same_tags(SeqDecoder.merged(got, runs), general[1]), (position, delta)
            rel = position - records_at
            if 0 <= rel < 6 * layout.size and rel % layout.size in fixed:  # a fixed byte of record k
                k = rel // layout.size
                assert all(5 + k not in run.offsets.tolist() for run in runs), (position, delta)


tag_values = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.floats(), st.text(max_size=5),
                       st.tuples(st.floats(), st.floats()))
mixed_tags = st.lists(st.one_of(
    st.builds(lambda o, v: Tag(o, "theta", v, "src"), st.integers(0, 40), tag_values),
    st.builds(lambda o, i, r, s: Tag(o, SEQ_KEY, (r, i), s), st.integers(0, 40),
              st.one_of(st.integers(-(2**31), 2**31 - 1), st.integers(-(2**63), 2**64 - 1)),
              st.sampled_from([RUN, "other"]), st.sampled_from(["tx_Y_r", None, "relay"])),
    st.builds(lambda o, v: Tag(o, SEQ_KEY, v, "tx_Y_r"), st.integers(0, 40), tag_values)), max_size=24)


@settings(max_examples=300, deadline=None)
@given(mixed_tags)
def test_random_mixes_decode_the_same_both_ways(tags):
    message = encode_message(np.zeros((2, 2), np.complex64), 0, tags)
    general = decode_header(message)
    first, merged, _, size = fast_decode(message)
    assert (first, size) == (general[0], general[2]) and same_tags(merged, general[1])


# ------------------------------------------------------------------------------------- pairing
def _pair_messages(messages_a, messages_b, fast: bool, max_items=5):
    """Run PairedPullSource on two streams fed these messages; returns outputs, tags and stats."""
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
                                   "b": (np.complex64, (2,), f"tcp://127.0.0.1:{ports[1]}")}, idle_timeout=5,
                                  max_pending=8)
        if not fast:
            for stream in paired.streams.values():
                stream.source._seq_decoder = None
        out_a, out_b = VectorSink(np.complex64, 3), VectorSink(np.complex64, 2)
        fg = Flowgraph(max_items=max_items, name="rx")
        fg.connect((paired, "a"), out_a)
        fg.connect((paired, "b"), out_b)
        fg.start()
        for sock, messages in zip(socks, (messages_a, messages_b)):
            for m in messages:
                sock.send(m)
        deadline = time.monotonic() + 20
        fg.wait(timeout=20)
        assert not fg.running and time.monotonic() < deadline
    finally:
        for s in socks:
            s.close(linger=0)
        context.term()
    tags = [(t.offset, t.key, t.value) for t in out_a.tags]
    return out_a.data, out_b.data, tags, paired.stats()


def message(first, n, width, run=RUN, extra=(), eos=False, index0=None, interleave=False):
    index0 = first if index0 is None else index0
    data = np.repeat(np.arange(index0, index0 + n, dtype=np.complex64)[:, None], width, axis=1)
    tags = list(extra) + seq_tags(first, n, run=run, index0=index0)
    if interleave:
        tags.sort(key=lambda t: t.offset)
    if eos:
        tags.append(Tag(first + n - 1, EOS_KEY, True))
    return encode_message(data, first, tags)


def test_pairing_is_the_same_with_the_fast_and_the_general_decoder():
    """Gaps, a foreign run, an untagged item, a restarted index range and tags on the items: the
    outputs, tags and counters are the same whichever decoder read the messages."""
    truth = [Tag(i, "truth", i * 10, "src") for i in range(0, 40, 3)]
    a = [message(0, 12, 3, extra=truth[:4]), message(12, 2, 3, run="Q"), message(14, 10, 3, extra=truth[5:8],
                                                                                     interleave=True),
         message(24, 16, 3, extra=truth[8:], eos=True)]
    b = [message(0, 5, 2), encode_message(np.zeros((1, 2), np.complex64), 5, []), message(6, 3, 2, index0=7),
         message(9, 31, 2, index0=10, eos=True)]
    fast = _pair_messages(a, b, fast=True)
    general = _pair_messages(a, b, fast=False)
    assert np.array_equal(fast[0], general[0]) and np.array_equal(fast[1], general[1])
    assert fast[2] == general[2] and fast[3]["paired"] == general[3]["paired"]
    strip = [{k: v for k, v in s.items() if k in ("foreign", "unpaired", "leftover", "untagged")}
             for s in (fast[3]["streams"]["a"], fast[3]["streams"]["b"], general[3]["streams"]["a"],
                       general[3]["streams"]["b"])]
    assert strip[:2] == strip[2:]
    assert (fast[3]["gaps"], fast[3]["first_index"], fast[3]["last_index"]) == \
        (general[3]["gaps"], general[3]["first_index"], general[3]["last_index"])
    assert fast[3]["streams"]["a"]["foreign"] == 2 and fast[3]["streams"]["b"]["untagged"] == 1
    assert fast[0][:, 0].real.tolist() == fast[1][:, 0].real.tolist()  # only pairs: the same index on both


@pytest.mark.parametrize("max_items", [1, 5, 64])
def test_pairing_output_does_not_depend_on_the_batch_size(max_items):
    truth = [Tag(i, "truth", i, "src") for i in range(0, 30, 2)]
    a = [message(0, 30, 3, extra=truth, eos=True)]
    b = [message(0, 7, 2), message(7, 23, 2, eos=True)]
    got = _pair_messages(a, b, fast=True, max_items=max_items)
    assert got[0][:, 0].real.tolist() == list(range(30))
    assert got[2] == [(i, "truth", i) for i in range(0, 30, 2)]
    assert got[3]["gaps"] == 0 and got[3]["paired"] == 30


# ------------------------------------------------------------- the general path's own shortcuts
def reference_header(first, tags):
    """The tag header as gen_tag_header writes it, one pmt.serialize per key, value and srcid."""
    out = b"\xf0\x5f\x01" + first.to_bytes(8, "little") + len(tags).to_bytes(8, "little")
    for t in tags:
        out += t.offset.to_bytes(8, "little") + pmt.serialize(t.key) + pmt.serialize(t.value) \
            + pmt.serialize(False if t.srcid is None else t.srcid)
    return out


def reference_tags(header):
    """The tags of `header` read with one pmt.deserialize per key, value and srcid."""
    count, at, tags = int.from_bytes(header[11:19], "little"), HEADER_SIZE, []
    for _ in range(count):
        offset = int.from_bytes(header[at:at + 8], "little")
        key, at = pmt.deserialize(header, at + 8)
        value, at = pmt.deserialize(header, at)
        srcid, at = pmt.deserialize(header, at)
        tags.append(Tag(offset, key, value, None if srcid is False else srcid))
    return tags


truth_values = st.one_of(st.floats(), st.booleans(), st.integers(-(2**40), 2**40), st.none(),
                         st.lists(st.floats(), min_size=1, max_size=10).map(tuple),
                         st.tuples(st.floats(), st.integers(0, 5)), st.text(max_size=4))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.builds(Tag, st.integers(0, 2**64 - 1), st.sampled_from(["theta", "sector", "é"]), truth_values,
                          st.one_of(st.none(), st.sampled_from(["src", "ü"]), st.integers(-3, 3))), max_size=12))
def test_scalar_and_tuple_shortcuts_write_and_read_the_general_bytes(tags):
    """Floats, bools, tuples of floats (the truth tags) are written and read without the general PMT
    code: the bytes of one pmt.serialize per part, and the values one pmt.deserialize per part gives."""
    header = encode_header(5, tags)
    assert header == reference_header(5, tags)
    assert same_tags(decode_header(header)[1], reference_tags(header))


def test_duplicated_and_reordered_items_pair_the_same_with_either_decoder():
    """A stream that repeats indices 15..17 and brings 20..21 late: the same pairs and counts
    with the fast and the general decoder, every pair holding one index on both streams."""
    a = [message(0, 40, 3, extra=[Tag(i, "truth", i, "src") for i in range(0, 40, 5)], eos=True)]
    b = [message(0, 5, 2), encode_message(np.zeros((1, 2), np.complex64), 5, []), message(6, 3, 2, index0=7),
         message(9, 10, 2, index0=10), message(19, 3, 2, index0=15), message(22, 4, 2, index0=22),
         message(26, 2, 2, index0=20), message(28, 12, 2, index0=26, eos=True)]
    fast, general = _pair_messages(a, b, fast=True), _pair_messages(a, b, fast=False)
    assert np.array_equal(fast[0], general[0]) and np.array_equal(fast[1], general[1]) and fast[2] == general[2]
    keys = ("foreign", "unpaired", "leftover", "untagged")
    for name in ("a", "b"):
        assert {k: fast[3]["streams"][name][k] for k in keys} == {k: general[3]["streams"][name][k] for k in keys}
    assert {k: fast[3][k] for k in ("paired", "gaps", "first_index", "last_index", "duplicates")} == \
        {k: general[3][k] for k in ("paired", "gaps", "first_index", "last_index", "duplicates")}
    assert fast[0][:, 0].real.tolist() == fast[1][:, 0].real.tolist()
    assert fast[3]["duplicates"] == 3  # the repeated 15..17: counted as such, never output twice
    assert len(set(fast[0][:, 0].real.tolist())) == len(fast[0])


@pytest.mark.parametrize("first, index0", [(2**64 - 2, 0), (0, 2**64 - 3), (2**63 - 1, 2**63 - 1)])
def test_offsets_and_indices_at_the_ends_of_the_integer_ranges_pair(first, index0):
    """Offsets near 2**64 (fast records) and indices beyond int64 (general records, paired as
    Python integers) pair like any others."""
    a = [message(first, 2, 3, index0=index0, eos=True)]
    b = [message(first, 2, 2, index0=index0, eos=True)]
    for fast in (True, False):
        got = _pair_messages(a, b, fast=fast)
        assert got[0][:, 0].real.tolist() == [float(index0), float(index0 + 1)]
        assert (got[3]["paired"], got[3]["first_index"], got[3]["last_index"]) == (2, index0, index0 + 1)


def _overwrite(header: bytes, at: int, patch: bytes) -> bytes:
    at = HEADER_SIZE + at % (len(header) - HEADER_SIZE)
    return header[:at] + patch + header[at + len(patch):]


@settings(max_examples=500, deadline=None)
@given(st.one_of(
    st.binary(max_size=120).map(lambda b: b"\xf0\x5f\x01" + b),  # past the magic and version
    st.tuples(st.integers(0, 6), st.binary(max_size=200)).map(  # a valid count of records, then noise
        lambda t: encode_header(3, seq_tags(3, t[0]))[:HEADER_SIZE] + t[1]),
    st.tuples(st.integers(1, 6), st.integers(0, 10**6), st.binary(min_size=1, max_size=4)).map(  # a few bytes
        lambda t: _overwrite(encode_header(3, seq_tags(3, t[0])), t[1], t[2]))))  # of valid records overwritten
def test_fast_decoder_on_random_bytes_raises_what_the_general_one_raises(frame):
    decoder = SeqDecoder(SEQ_KEY)
    fast_decode(encode_header(0, seq_tags(0, 2)), decoder)
    try:
        general = decode_header(frame)
    except WireFormatError as exc:
        with pytest.raises(WireFormatError) as caught:
            decoder.decode_header(frame)
        assert str(caught.value) == str(exc)
        return
    first, tags, runs, size = decoder.decode_header(frame)
    assert (first, size) == (general[0], general[2]) and same_tags(SeqDecoder.merged(tags, runs), general[1])
