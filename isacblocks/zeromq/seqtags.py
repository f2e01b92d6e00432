"""The sequence tags of a link as fixed-layout byte records: numpy encode and decode.

A sink with ``stream_id`` tags every item ``i`` with ``Tag(i, SEQ_KEY, (stream_id, i),
srcid)`` (`PushSink`), so a message of n items carries n tag records in its gr-zeromq
header that differ in two fields only.  Serialised by the general encoder
(:func:`isacblocks.zeromq.wire.encode_header`, :mod:`isacblocks.zeromq.pmt`) one record is::

    u64 LE         tag offset                      8 bytes      varies
    02 00 0a ...   key: the symbol "stream_seq"    13 bytes
    0c 00000002    value: a tuple of two           5 bytes
    02 LLLL ...    the stream id (a symbol)        3 + len bytes
    03 i32 BE      the item index (PST_INT32)      5 bytes      the 4 bytes after 03 vary
    02 LLLL ...    srcid (a symbol; 01 for None)   3 + len bytes

`SeqLayout` is that record as a byte template (built with the general encoder, so the
bytes are its bytes by construction) with the offset and index columns left open:
`SeqLayout.encode` writes n records as an (n, size) uint8 array in a few numpy
operations, `SeqLayout.match` finds how many consecutive records of a received header are
exactly the template outside those two columns, and `SeqLayout.fields` reads their
offsets and indices as arrays.  Anything else -- an index outside int32 (the general
encoder switches to PST_INT64 there), another stream id or srcid, a tag in between, one
byte that differs -- is not a match and goes through the general decoder, which gives the
same tags for the records that do match (`tests/zeromq/test_pairing_fast_path.py`).

GNU Radio relays these records unchanged (its ``pmt::serialize`` writes the same bytes),
but sorts a message's tags by item, so behind a GNU Radio hop the sequence records
alternate with the other tags of each item and are decoded one record at a time.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from isacblocks.core.tags import Tag
from isacblocks.zeromq import pmt
from isacblocks.zeromq.pmt import WireFormatError

__all__ = ["SeqLayout", "SeqRecords", "SeqRun"]

_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
_OFFSET_BYTES = 8


class SeqLayout:
    """One tag record ``Tag(offset, key, (stream_id, index), srcid)`` as a byte template.

    `stream_id` is a str (a PMT symbol), `srcid` a str or None (sent as ``#f``).  Raises
    `WireFormatError` when the general encoder cannot write such a tag (a symbol longer
    than `pmt.MAX_SYMBOL_BYTES`, a stream id that is not a str).
    """

    __slots__ = ("stream_id", "srcid", "key", "template", "size", "index_at", "key_bytes", "_fixed")

    def __init__(self, stream_id: str, srcid: str | None, key: str):
        if not isinstance(stream_id, str) or not isinstance(key, str) or not (srcid is None or isinstance(srcid, str)):
            raise WireFormatError(f"sequence tag layout: stream_id {stream_id!r}, key {key!r} and srcid {srcid!r} "
                                  "must be str (srcid may be None)")
        self.stream_id, self.srcid, self.key = stream_id, srcid, key
        self.key_bytes = pmt.serialize(key)
        value = pmt.serialize((stream_id, 0))  # ends with 03 00 00 00 00: the index as PST_INT32
        record = bytes(_OFFSET_BYTES) + self.key_bytes + value + pmt.serialize(False if srcid is None else srcid)
        self.template = np.frombuffer(record, dtype=np.uint8)
        self.size = len(record)
        self.index_at = _OFFSET_BYTES + len(self.key_bytes) + len(value) - 4
        fixed = np.ones(self.size, dtype=bool)
        fixed[:_OFFSET_BYTES] = False
        fixed[self.index_at:self.index_at + 4] = False
        self._fixed = np.flatnonzero(fixed)

    def __repr__(self) -> str:
        return f"SeqLayout(stream_id={self.stream_id!r}, srcid={self.srcid!r}, key={self.key!r})"

    @classmethod
    def of_tag(cls, tag: Tag) -> SeqLayout | None:
        """The layout whose records decode as `tag` (a sequence tag with an int32 index, a str stream
        id and a str or None srcid), or None when `tag` has another form."""
        value = tag.value
        if not (isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str)
                and type(value[1]) is int and _INT32_MIN <= value[1] <= _INT32_MAX
                and (tag.srcid is None or isinstance(tag.srcid, str))):
            return None
        try:
            return cls(value[0], tag.srcid, tag.key)
        except WireFormatError:
            return None

    # ------------------------------------------------------------------ encoding
    def fits(self, indices: np.ndarray) -> bool:
        """Whether every index is written as PST_INT32 (the general encoder's choice in that range)."""
        return not indices.size or (int(indices.min()) >= _INT32_MIN and int(indices.max()) <= _INT32_MAX)

    def encode(self, offsets: np.ndarray, indices: np.ndarray) -> bytes:
        """The records of tags ``(offsets[k], key, (stream_id, indices[k]), srcid)``: the bytes the
        general encoder writes for them.  Offsets must lie in [0, 2**64), indices in int32 (`fits`)."""
        n = len(offsets)
        records = np.empty((n, self.size), dtype=np.uint8)
        records[:] = self.template
        records[:, :_OFFSET_BYTES] = np.asarray(offsets, dtype="<u8").reshape(n, 1).view(np.uint8)
        records[:, self.index_at:self.index_at + 4] = np.asarray(indices, dtype=">i4").reshape(n, 1).view(np.uint8)
        return records.tobytes()

    def tags(self, offsets, indices) -> list[Tag]:
        """The same records as `Tag` objects."""
        key, sid, srcid = self.key, self.stream_id, self.srcid
        return [Tag(int(o), key, (sid, int(i)), srcid) for o, i in zip(offsets, indices)]

    # ------------------------------------------------------------------ decoding
    def match(self, data: np.ndarray, pos: int, limit: int) -> int:
        """How many consecutive records of this layout start at byte `pos` of `data` (uint8), at most
        `limit`: each equal to the template in every byte but the offset and the index.

        Compares windows of 64, 128, 256, ... records, so a call costs O(64 + the count it
        returns), not O(the rest of the header): records that alternate with other tags (a GNU
        Radio hop) stay linear in the header's length."""
        count = min(limit, (len(data) - pos) // self.size)
        done, window, want = 0, 64, self.template[self._fixed]
        while done < count:
            n = min(window, count - done)
            start = pos + done * self.size
            block = data[start:start + n * self.size].reshape(n, self.size)
            same = (block[:, self._fixed] == want).all(axis=1)
            if not same.all():
                return done + int(np.argmin(same))
            done += n
            window *= 2
        return done

    def fields(self, data: np.ndarray, pos: int, count: int) -> tuple[np.ndarray, np.ndarray]:
        """Offsets (uint64) and indices (int64) of the `count` records at byte `pos` of `data`."""
        block = data[pos:pos + count * self.size].reshape(count, self.size)
        offsets = np.ascontiguousarray(block[:, :_OFFSET_BYTES]).view("<u8").reshape(count).astype(np.uint64)
        at = self.index_at
        indices = np.ascontiguousarray(block[:, at:at + 4]).view(">i4").reshape(count).astype(np.int64)
        return offsets, indices


class SeqRecords(NamedTuple):
    """Sequence tags to encode: `layout` with the tags' `offsets` and `indices` (arrays of one length)."""

    layout: SeqLayout
    offsets: np.ndarray
    indices: np.ndarray

    def __len__(self) -> int:  # type: ignore[override]
        return len(self.offsets)

    def tags(self) -> list[Tag]:
        return self.layout.tags(self.offsets, self.indices)


class SeqRun(NamedTuple):
    """Consecutive sequence records found in a header by the fast decoder: they stood before the
    `at`-th of the other (generally decoded) tags of the header."""

    at: int
    layout: SeqLayout
    offsets: np.ndarray
    indices: np.ndarray

    def tags(self) -> list[Tag]:
        return self.layout.tags(self.offsets, self.indices)
