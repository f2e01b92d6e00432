"""gr-zeromq stream framing: the tag header, payload items, tag rebasing and PUB keys.

Byte-compatible with GNU Radio 3.10's gr-zeromq stream blocks (PUB/SUB, PUSH/PULL,
REQ/REP sinks and sources). Sources read:

* ``gr-zeromq/lib/tag_headers.cc`` -- ``gen_tag_header`` / ``parse_tag_header``;
* ``gr-zeromq/lib/base_impl.cc`` -- ``base_sink_impl::send_message`` (key frame, then
  header and payload memcpy'd into **one** ``zmq::message_t``) and
  ``base_source_impl::load_message`` / ``flush_pending`` (key frame discarded, header
  parsed, tag offsets rebased, "Incompatible vector sizes" check);
* ``gr-zeromq/lib/sub_source_impl.cc`` -- ``flush_pending(..., nitems_written(0) + done)``
  and the ``ZMQ_SUBSCRIBE`` filter set to the key;
* ``gnuradio-runtime/include/gnuradio/tags.h`` -- ``tag_t`` defaults ``srcid`` to ``PMT_F``.

Tag header layout (``gen_tag_header``). The fixed fields are written with
``ostream::write`` of the raw integers, i.e. in the sender's **host byte order**, which is
little-endian on every platform GNU Radio 3.10 is built for (x86-64, aarch64, ...); this
module always uses little-endian::

    offset  size  field
    0       2     u16 magic 0x5FF0            (bytes f0 5f)
    2       1     u8  version 1
    3       8     u64 absolute offset of the first payload item
    11      8     u64 number of tags N
    19      ...   N times: u64 absolute tag offset (host order), then the PMT-serialised
                  (big-endian, see :mod:`isacblocks.zeromq.pmt`) key, value and srcid
    ...           payload: the items' raw bytes, host byte order, no length field

With ``pass_tags`` off GNU Radio sends the bare payload (no header at all); the caller
then sends / receives payload bytes directly and only needs :func:`items_from_payload`.

When the block has a non-empty ``key`` the sink first sends the key as its own frame with
``ZMQ_SNDMORE``; the message (header + payload) is the second frame. See
:func:`pub_frames` and :func:`split_pub_frames`.

One tag's bytes are written and read by :mod:`isacblocks.zeromq.tagcodec`; a link's sequence
records are read as arrays by `isacblocks.zeromq.seqdecoder.SeqDecoder`.

Tag mapping: the key must be a symbol (``Tag.key`` is a ``str``); ``Tag.srcid`` ``None``
is sent as ``PMT_F`` (GNU Radio's default srcid), and ``PMT_F`` / ``PMT_NIL`` srcids
decode to ``None``.  Any other srcid is sent and received as the PMT it is: GNU Radio
allows any PMT there (a symbol, usually the block's alias), so an integer or a tuple
srcid arrives as that value.

Limits (one definition each, the same for the encoder and the decoder; beyond them
`WireLimitError`, a `WireFormatError`): a message of at most :data:`MAX_MESSAGE_BYTES`
(64 MiB; a receiving socket is also given it as ``ZMQ_MAXMSGSIZE``, so ZeroMQ drops the
connection of a peer that sends more instead of buffering it), at most :data:`MAX_TAGS`
(65 536) tags per message, at most `pmt.MAX_ELEMENTS` (65 536) PMT elements in all the tags
of one message together, PMTs nested at most `pmt.MAX_DEPTH` (128) deep.  Every count on the
wire is checked against the bytes that follow before anything is allocated for it.

Empty tuples: GNU Radio 3.10's ``pmt::deserialize`` cannot read a PMT tuple of length 0,
and the thread of a ``zeromq.pull_source`` / ``sub_source`` that receives one dies (the
flowgraph then waits forever).  `encode_header` therefore refuses a tag whose key, value
or srcid holds ``()`` anywhere, naming the tag; send ``None`` or ``[]`` instead.
"""

from __future__ import annotations

import bisect
import math
import struct
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from isacblocks.core.tags import Tag
from isacblocks.zeromq import pmt
from isacblocks.zeromq.pmt import WireFormatError, WireLimitError
from isacblocks.zeromq.seqtags import SeqRecords
from isacblocks.zeromq.tagcodec import MIN_TAG_SIZE, checked_u64, decode_tag, encode_tag

__all__ = [
    "HEADER_MAGIC",
    "HEADER_SIZE",
    "HEADER_VERSION",
    "MAX_MESSAGE_BYTES",
    "MAX_TAGS",
    "WireFormatError",
    "WireLimitError",
    "decode_header",
    "decode_message",
    "encode_header",
    "encode_message",
    "items_from_payload",
    "pub_frames",
    "rebase_tags",
    "sort_tags",
    "split_pub_frames",
]

#: ``GR_HEADER_MAGIC`` in tag_headers.cc.
HEADER_MAGIC = 0x5FF0
#: ``GR_HEADER_VERSION``; parse_tag_header rejects any other version.
HEADER_VERSION = 1

_HEADER = struct.Struct("<HBQQ")  # magic, version, first item offset, number of tags
#: Size of the fixed part of the header (``min_len`` in parse_tag_header).
HEADER_SIZE = _HEADER.size
#: Largest message (header and payload) sent or received: 8x the link's default message
#: (64 frames of 64 x 256 complex64); a sink splits larger batches into several messages.
MAX_MESSAGE_BYTES = 64 * 2**20
#: Most tags in one message (a receiver decodes about 200 000 tags a second).
MAX_TAGS = 65536
#: Where a `pmt.Budget` of the header counts its elements (named in a limit error).
HEADER_SCOPE = "in the tags of one message"


def encode_header(first_offset: int, tags: Sequence[Tag], seq: SeqRecords | None = None,
                  after: Sequence[Tag] = ()) -> bytes:
    """The gr-zeromq tag header for a message whose first item has absolute offset
    ``first_offset``, carrying ``tags`` (absolute offsets, sent as given).

    ``seq`` (a `SeqRecords`) and ``after`` are more tags, written after ``tags`` in that
    order: the header is the same, byte for byte, as ``encode_header(first_offset, [*tags,
    *seq.tags(), *after])``, but the sequence records are written by numpy from their
    template (`isacblocks.zeromq.seqtags`) instead of one tag at a time.  More than
    :data:`MAX_TAGS` tags, or `pmt.MAX_ELEMENTS` elements in them, raise `WireLimitError`.
    """
    count = len(tags) + len(after) + (len(seq) if seq is not None else 0)
    if count > MAX_TAGS:
        raise WireLimitError(f"{count} tags in one message: more than MAX_TAGS = {MAX_TAGS}")
    budget = pmt.Budget(HEADER_SCOPE)
    out = bytearray(_HEADER.pack(HEADER_MAGIC, HEADER_VERSION, checked_u64(first_offset, "first offset"), count))
    for tag in tags:
        encode_tag(tag, out, budget)
    if seq is not None and len(seq):
        budget.take(2 * len(seq), f"{len(seq)} sequence tags")  # a (stream id, index) tuple each
        out += seq.layout.encode(seq.offsets, seq.indices)
    for tag in after:
        encode_tag(tag, out, budget)
    return bytes(out)


def encode_message(payload: Any, first_offset: int, tags: Sequence[Tag]) -> bytes:
    """One gr-zeromq frame: tag header followed by the payload bytes.

    ``payload`` is any bytes-like object or numpy array (its raw bytes are sent as
    stored -- GNU Radio peers expect host byte order). gr-zeromq puts header and payload
    in a *single* ZeroMQ frame (``base_sink_impl::send_message`` memcpy's both into one
    ``zmq::message_t``; ``parse_tag_header`` reads the payload from the same frame), so
    they are joined here with exactly one copy of the payload. Callers that manage their
    own send buffer can use :func:`encode_header` and place the payload right after it.
    """
    return b"".join((encode_header(first_offset, tags), _payload_bytes(payload)))


def _payload_bytes(payload: Any) -> Any:
    if isinstance(payload, np.ndarray):
        return np.ascontiguousarray(payload).reshape(-1).view(np.uint8)
    try:
        view = memoryview(payload)
    except TypeError:
        raise WireFormatError(
            f"payload must be bytes-like or a numpy array, got {type(payload).__name__}"
        ) from None
    if not view.c_contiguous:
        raise WireFormatError("payload buffer must be C-contiguous")
    return view


def message_view(buf: Any) -> memoryview:
    return pmt.byte_view(buf, "message (a bytes-like message)")


def decode_header(buf: Any) -> tuple[int, list[Tag], int]:
    """Parse the tag header at the start of ``buf``.

    Returns ``(first_offset, tags, header_size)``; the payload starts at ``header_size``.
    Tag offsets are the sender's absolute offsets (see :func:`rebase_tags`). Raises
    :class:`WireFormatError` on a short message, bad magic or version, a tag count the
    message cannot hold, or a malformed / truncated tag; `WireLimitError` beyond
    :data:`MAX_MESSAGE_BYTES`, :data:`MAX_TAGS` or `pmt.MAX_ELEMENTS`.
    """
    view = message_view(buf)
    first_offset, ntags, offset = fixed_header(view)
    budget = pmt.Budget(HEADER_SCOPE)
    tags: list[Tag] = []
    for index in range(ntags):
        tag, offset = decode_tag(view, offset, index, ntags, budget)
        tags.append(tag)
    return first_offset, tags, offset


def fixed_header(view: memoryview) -> tuple[int, int, int]:
    """``(first_offset, ntags, offset of the first tag)`` of the header in `view`, checked."""
    _check_size(view)
    if len(view) < HEADER_SIZE:
        raise WireFormatError(
            f"message of {len(view)} bytes is too small to hold the {HEADER_SIZE}-byte "
            "gr-zeromq tag header"
        )
    magic, version, first_offset, ntags = _HEADER.unpack_from(view, 0)
    if magic != HEADER_MAGIC:
        raise WireFormatError(
            f"gr-zeromq header magic is 0x{magic:04x}, expected 0x{HEADER_MAGIC:04x} "
            "(is the sender's pass_tags option on?)"
        )
    if version != HEADER_VERSION:
        raise WireFormatError(
            f"gr-zeromq header version is {version}, only version {HEADER_VERSION} is known"
        )
    offset = HEADER_SIZE
    if ntags * MIN_TAG_SIZE > len(view) - offset:
        raise WireFormatError(
            f"gr-zeromq header announces {ntags} tags but only {len(view) - offset} bytes "
            f"follow (each tag takes at least {MIN_TAG_SIZE})"
        )
    if ntags > MAX_TAGS:
        raise WireLimitError(f"gr-zeromq header announces {ntags} tags: more than MAX_TAGS = {MAX_TAGS}")
    return first_offset, ntags, offset


def _check_size(view: memoryview) -> None:
    if len(view) > MAX_MESSAGE_BYTES:
        raise WireLimitError(f"message of {len(view)} bytes: more than MAX_MESSAGE_BYTES = {MAX_MESSAGE_BYTES}")


def decode_message(buf: Any) -> tuple[int, list[Tag], memoryview]:
    """Split one gr-zeromq frame (sent with ``pass_tags``) into header and payload.

    Returns ``(first_offset, tags, payload)`` where ``payload`` is a zero-copy
    ``memoryview`` of ``buf`` after the header and tags carry the sender's absolute
    offsets.
    """
    view = message_view(buf)
    first_offset, tags, header_size = decode_header(view)
    return first_offset, tags, view[header_size:]


def items_from_payload(
    payload: Any, dtype: Any, item_shape: Iterable[int] = ()
) -> np.ndarray:
    """View ``payload`` as an array of items of ``dtype`` and shape ``item_shape``.

    The result has shape ``(n_items, *item_shape)`` and shares memory with ``payload``
    (read-only when the payload is). gr-zeromq's ``itemsize * vlen`` corresponds to
    ``dtype.itemsize * prod(item_shape)``. Like ``load_message`` ("Incompatible vector
    sizes"), a payload that is not a whole number of items raises
    :class:`WireFormatError`. Items are in the sender's host byte order; pass an explicit
    ``'<'`` dtype to be independent of this machine's.
    """
    dt = np.dtype(dtype)
    shape = tuple(int(n) for n in item_shape)
    if any(n <= 0 for n in shape) or dt.itemsize == 0:
        raise WireFormatError(
            f"item of dtype {dt} and shape {shape} has no bytes; cannot split a payload"
        )
    item_bytes = dt.itemsize * math.prod(shape)
    view = message_view(payload)
    _check_size(view)
    if len(view) % item_bytes:
        raise WireFormatError(
            f"payload of {len(view)} bytes is not a whole number of {item_bytes}-byte items "
            f"(dtype {dt}, item shape {shape})"
        )
    return np.frombuffer(view, dtype=dt).reshape((len(view) // item_bytes, *shape))


def sort_tags(tags: Iterable[Tag]) -> list[Tag]:
    """`tags` by offset, in their order among equal offsets (a stable sort: O(n log n))."""
    return sorted(tags, key=_tag_offset)


def _tag_offset(tag: Tag) -> int:
    return tag.offset


def rebase_tags(
    tags: Sequence[Tag],
    remote_first_offset: int,
    local_nitems: int,
    nitems: int | None = None,
    presorted: bool = False,
) -> list[Tag]:
    """Move received tags from the sender's item count onto the receiver's.

    ``remote_first_offset`` is the header's first-item offset, ``local_nitems`` the
    receiver's absolute offset of that same item (its ``nitems_written`` when the
    message's first item is output). A tag at remote offset ``r`` lands at
    ``local_nitems + (r - remote_first_offset)``, as gr-zeromq's ``load_message`` and
    ``flush_pending`` compute it. Tags before the message are dropped (in GNU Radio the
    unsigned subtraction wraps and they are never emitted); when ``nitems`` (the number of
    items in the message) is given, tags at or after the message's end are dropped too,
    as ``flush_pending`` only emits tags that fall on copied items. Order is preserved.

    With `presorted` (`tags` sorted by offset, as `sort_tags` returns them) only the tags
    in the message are looked at (a bisection), so a message written out in many parts
    costs O(n log n) in all instead of n per part.
    """
    if presorted:
        lo = bisect.bisect_left(tags, remote_first_offset, key=_tag_offset)
        hi = len(tags) if nitems is None else \
            bisect.bisect_left(tags, remote_first_offset + nitems, lo, key=_tag_offset)
        shift = local_nitems - remote_first_offset
        return [tag.moved(tag.offset + shift) for tag in tags[lo:hi]]
    out: list[Tag] = []
    for tag in tags:
        relative = tag.offset - remote_first_offset
        if relative < 0 or (nitems is not None and relative >= nitems):
            continue
        out.append(tag.moved(local_nitems + relative))
    return out


def _key_bytes(key: bytes | str) -> bytes:
    return key.encode("utf-8") if isinstance(key, str) else bytes(key)


def pub_frames(message: Any, key: bytes | str = b"") -> list[Any]:
    """The ZeroMQ frames a gr-zeromq sink sends: ``[key, message]``, or ``[message]``
    when ``key`` is empty (``send_message`` sends the key with ``ZMQ_SNDMORE`` first)."""
    raw_key = _key_bytes(key)
    return [raw_key, message] if raw_key else [message]


def split_pub_frames(frames: Sequence[Any], key: bytes | str = b"") -> Any:
    """The message frame of a received multipart message, given the source's ``key``.

    With a key, GNU Radio expects ``[key, message]`` and drops single-frame messages;
    here any other frame count raises :class:`WireFormatError`, as does a first frame
    that does not start with ``key`` (the SUB subscription is a prefix match). Without a
    key exactly one frame is expected.
    """
    raw_key = _key_bytes(key)
    if raw_key:
        if len(frames) != 2:
            raise WireFormatError(
                f"expected [key, message] (2 frames) for key {raw_key!r}, got {len(frames)}"
            )
        if not bytes(frames[0]).startswith(raw_key):
            raise WireFormatError(
                f"key frame {bytes(frames[0])!r} does not match subscription key {raw_key!r}"
            )
        return frames[1]
    if len(frames) != 1:
        raise WireFormatError(
            f"expected a single-frame message (no key configured), got {len(frames)} frames"
        )
    return frames[0]
