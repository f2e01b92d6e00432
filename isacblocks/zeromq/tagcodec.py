"""One gr-zeromq tag on the wire: u64 offset, then the PMT-serialised key, value and srcid.

`encode_tag` and `decode_tag` write and read it exactly as ``pmt.serialize`` / ``pmt.read`` of
each part would, with shortcuts for the usual tags (symbols, doubles, bools, int32, nil, short
tuples of doubles) that give the same bytes and the same values.  Tag mapping: the key must be a
symbol (``Tag.key`` is a ``str``); ``Tag.srcid`` None is sent as ``PMT_F`` (GNU Radio's default
srcid) and ``PMT_F`` decodes to None; any other srcid is sent and received as the PMT it is.
A tag whose value or srcid holds ``()`` is refused (`holds_empty_tuple`): GNU Radio 3.10's
``pmt::deserialize`` cannot read it and the receiving thread dies.
"""

from __future__ import annotations

import struct
from typing import Any

from isacblocks.core.tags import Tag
from isacblocks.zeromq import pmt
from isacblocks.zeromq.pmt import WireFormatError

__all__ = ["MIN_TAG_SIZE", "TAG_OFFSET", "checked_u64", "decode_tag", "encode_tag", "holds_empty_tuple"]

#: The u64 offset that starts every tag.
TAG_OFFSET = struct.Struct("<Q")
#: The smallest possible serialised tag: u64 offset + three one-byte PMTs.
MIN_TAG_SIZE = TAG_OFFSET.size + 3
_UINT64_MAX = 2**64 - 1


def checked_u64(value: int, what: str) -> int:
    ivalue = int(value)
    if not 0 <= ivalue <= _UINT64_MAX:
        raise WireFormatError(f"{what} {ivalue} does not fit in a u64")
    return ivalue


_F64 = struct.Struct(">d")
_I32 = struct.Struct(">i")
_TUPLE_HEAD = struct.Struct(">BI")
_DOUBLE_PREFIX = bytes([pmt.PST_DOUBLE])

#: Serialised symbols of tag keys and srcids (a handful per stream, sent with every tag).
_SYMBOLS: dict[str, bytes] = {}


def _symbol(name: str) -> bytes:
    raw = _SYMBOLS.get(name)
    if raw is None:
        raw = pmt.serialize(name)
        if len(_SYMBOLS) >= 1024:
            _SYMBOLS.clear()
        _SYMBOLS[name] = raw
    return raw


def encode_tag(tag: Tag, out: bytearray, budget: pmt.Budget) -> None:
    """Append one tag (u64 offset, key, value, srcid) to `out`, as ``pmt.serialize`` writes each part."""
    key, value, srcid = tag.key, tag.value, tag.srcid
    if not isinstance(key, str):
        raise WireFormatError(
            f"tag key must be a str (sent as a PMT symbol), got {type(key).__name__}"
        )
    kind = type(value)
    if (kind is float or kind is bool or (kind is tuple and value and all(type(v) is float for v in value))) and \
            (srcid is None or type(srcid) is str):  # the usual truth tags: written here, the same bytes
        out += TAG_OFFSET.pack(checked_u64(tag.offset, "tag offset"))
        out += _symbol(key)
        if kind is float:
            out += _DOUBLE_PREFIX
            out += _F64.pack(value)
        elif kind is bool:
            out.append(pmt.PST_TRUE if value else pmt.PST_FALSE)
        else:
            budget.take(len(value), f"tag {key!r} at offset {tag.offset}")
            out += _TUPLE_HEAD.pack(pmt.PST_TUPLE, len(value))
            for v in value:
                out += _DOUBLE_PREFIX
                out += _F64.pack(v)
        if srcid is None:
            out.append(pmt.PST_FALSE)
        else:
            out += _symbol(srcid)
        return
    for part, item in (("value", value), ("srcid", srcid)):
        if holds_empty_tuple(item):
            raise WireFormatError(
                f"tag {key!r} at offset {tag.offset}: its {part} {item!r} holds an empty "
                "tuple (), which kills the receiving thread of GNU Radio's zeromq sources "
                "(pmt::deserialize cannot read it); send None or [] instead"
            )
    out += TAG_OFFSET.pack(checked_u64(tag.offset, "tag offset"))
    out += _symbol(key)
    pmt.write(value, out, budget)
    if srcid is None:
        out.append(pmt.PST_FALSE)
    elif type(srcid) is str:
        out += _symbol(srcid)
    else:
        pmt.write(srcid, out, budget)


def holds_empty_tuple(value: Any, depth: int = 0) -> bool:
    """Whether `value` is or contains ``()`` (searched as deep as PMTs nest)."""
    if isinstance(value, tuple):
        return not value or any(holds_empty_tuple(v, depth + 1) for v in value)
    if depth > pmt.MAX_DEPTH:
        return False
    if isinstance(value, list):
        return any(holds_empty_tuple(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return any(holds_empty_tuple(k, depth + 1) or holds_empty_tuple(v, depth + 1)
                   for k, v in value.items())
    while isinstance(value, pmt.Pair):  # a PMT list: walk the chain without recursing on it
        if holds_empty_tuple(value.car, depth + 1):
            return True
        value = value.cdr
        if isinstance(value, tuple):
            return holds_empty_tuple(value, depth + 1)
    return False


def decode_tag(view: memoryview, offset: int, index: int, ntags: int, budget: pmt.Budget) -> tuple[Tag, int]:
    """The tag at byte `offset` of the header (the `index`-th of `ntags`) and the offset after it."""
    if offset + TAG_OFFSET.size > len(view):
        raise WireFormatError(
            f"truncated gr-zeromq header: tag {index} of {ntags} has no offset "
            f"(message ends at {len(view)})"
        )
    (tag_offset,) = TAG_OFFSET.unpack_from(view, offset)
    offset += TAG_OFFSET.size
    try:
        key, offset = _read_symbol(view, offset, budget)
        value, offset = _read_value(view, offset, budget)
        srcid, offset = _read_symbol(view, offset, budget)
    except WireFormatError as exc:
        raise type(exc)(f"gr-zeromq header, tag {index} of {ntags}: {exc}") from None
    if not isinstance(key, str):
        raise WireFormatError(
            f"gr-zeromq header, tag {index} of {ntags}: key is a "
            f"{type(key).__name__}, expected a PMT symbol"
        )
    if srcid is False:
        srcid = None
    return Tag(tag_offset, key, value, srcid), offset


#: Decoded symbols by their bytes (tag keys and srcids: a handful per stream, in every tag).
_NAMES: dict[bytes, str] = {}


def _read_symbol(view: memoryview, offset: int, budget: pmt.Budget) -> tuple[Any, int]:
    """`pmt.read` with a shortcut for a complete symbol (a tag's key or srcid); the same result."""
    end = offset + 3
    if end <= len(view) and view[offset] == pmt.PST_SYMBOL:
        end += (view[offset + 1] << 8) | view[offset + 2]
        if end <= len(view):
            raw = bytes(view[offset + 3:end])
            name = _NAMES.get(raw)
            if name is None:
                if len(_NAMES) >= 1024:
                    _NAMES.clear()
                name = _NAMES[raw] = raw.decode("utf-8", "surrogateescape")
            return name, end
    return pmt.read(view, offset, budget)


def _read_value(view: memoryview, offset: int, budget: pmt.Budget) -> tuple[Any, int]:
    """`pmt.read` with shortcuts for complete scalars (double, int32, bool, nil) and short tuples of
    doubles (a sector); the same result."""
    if offset < len(view):
        kind = view[offset]
        if kind == pmt.PST_DOUBLE and offset + 9 <= len(view):
            return _F64.unpack_from(view, offset + 1)[0], offset + 9
        if kind <= pmt.PST_FALSE:
            return kind == pmt.PST_TRUE, offset + 1
        if kind == pmt.PST_INT32 and offset + 5 <= len(view):
            return _I32.unpack_from(view, offset + 1)[0], offset + 5
        if kind == pmt.PST_NULL:
            return None, offset + 1
        if kind == pmt.PST_TUPLE and offset + 5 <= len(view):
            count = _TUPLE_HEAD.unpack_from(view, offset)[1]
            end = offset + 5 + 9 * count
            if 0 < count <= 8 and end <= len(view) and \
                    all(view[at] == pmt.PST_DOUBLE for at in range(offset + 5, end, 9)):
                budget.take(count, f"a tuple of {count} at offset {offset}")
                return tuple(_F64.unpack_from(view, at + 1)[0] for at in range(offset + 5, end, 9)), end
    return pmt.read(view, offset, budget)
