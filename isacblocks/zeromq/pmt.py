"""Pure-Python PMT (polymorphic type) serialiser and parser, byte-exact with GNU Radio 3.10.

The wire format follows GNU Radio's own implementation:

* ``gnuradio-runtime/lib/pmt/pmt_serialize.cc`` -- ``pmt::serialize`` / ``pmt::deserialize``
  and ``parse_pair`` (the encoding of every type below, including the quirks noted here);
* ``gnuradio-runtime/include/pmt/pmt_serial_tags.h`` -- the type-tag byte values
  (``PST_*``) and uniform-vector subtypes (``UVI_*``);
* ``gnuradio-runtime/lib/pmt/pmt_int.h`` / ``pmt.cc`` -- ``pmt_dict`` is a subclass of
  ``pmt_pair`` (``dcons``), and ``dict_add`` prepends ``(key . value)`` to the a-list;
* ``gnuradio-runtime/python/pmt/pmt_to_python.py`` -- the Python <-> PMT mapping GNU Radio
  uses (``to_pmt`` / ``to_python``), which this module follows where it is lossless;
* ``gnuradio-runtime/python/pmt/qa_pmt.py`` -- GNU Radio's absolute-serialisation tests
  (``test20``..``test23``), whose byte strings our tests reuse.

Encoding (every multi-byte number is **big-endian**)::

    PST_TRUE   0x00                      PST_FALSE  0x01            PST_NULL 0x06
    PST_SYMBOL 0x02 u16 len, len bytes   PST_INT32  0x03 i32        PST_DOUBLE 0x04 f64
    PST_COMPLEX 0x05 f64 re, f64 im      PST_INT64  0x0d i64        PST_UINT64 0x0b u64
    PST_PAIR   0x07 car cdr              PST_DICT   0x09 car cdr    (a dict a-list node)
    PST_VECTOR 0x08 u32 n, n objects     PST_TUPLE  0x0c u32 n, n objects
    PST_UNIFORM_VECTOR 0x0a u8 uvi, u32 n, u8 npad, npad bytes, n big-endian elements

Python mapping (``serialize`` direction; ``deserialize`` returns the same types):

=====================================  ==============================================
Python                                 PMT
=====================================  ==============================================
``True`` / ``False``                   ``PMT_T`` / ``PMT_F``
``None``                               ``PMT_NIL``
``str``                                symbol (UTF-8; undecodable bytes survive a
                                       round trip through ``surrogateescape``)
``int`` in int32 range                 ``PST_INT32`` -- what ``pmt::from_long`` emits
``int`` in int64 range, not int32      ``PST_INT64`` -- ditto, on 64-bit ``long``
``int`` in [2**63, 2**64)              ``PST_UINT64``
:class:`UInt64`                        ``PST_UINT64`` always (``pmt::from_uint64``,
                                       e.g. the seconds of a UHD ``rx_time`` tag)
``float``                              double
``complex``                            complex (two doubles)
:class:`Pair` ``(car, cdr)``           pair; a chain ``Pair(a, Pair(b, None))`` is
                                       the PMT list ``(a b)``
``dict``                               dict (a-list of ``(key . value)`` pairs)
``tuple``                              tuple
``list``                               generic vector
1-D ``numpy.ndarray``                  uniform vector (u8, s8, u16, s16, u32, s32,
                                       u64, s64, f32, f64, c32, c64)
``bytes`` / ``bytearray``              u8 vector (a blob); decoded as a uint8 array
numpy scalars                          as the matching Python scalar
=====================================  ==============================================

Why integers map this way: GNU Radio's Python ``to_pmt(int)`` calls ``pmt::from_long``,
and ``pmt::serialize`` writes a ``long`` as ``PST_INT32`` when it fits in 32 bits and as
``PST_INT64`` otherwise; ``PST_UINT64`` is only written for ``pmt::from_uint64`` objects.
Decoding ``PST_UINT64`` yields :class:`UInt64` (an ``int`` subclass) so that re-encoding
is byte-exact.

Arrays: every supported dtype maps to its own uniform-vector subtype (complex64 is c32,
complex128 is c64). GNU Radio's ``numpy_to_uvector`` differs in two ways this module does
not copy: its mapping table lists ``numpy.byte`` (= int8) after int8, so it sends int8
arrays as u8 vectors, and it has no entry for (u)int64 arrays.

Dictionaries: GNU Radio >= 3.9 serialises every node of a dict a-list with tag
``PST_DICT`` (``is_dict(obj) ? PST_DICT : PST_PAIR``), the car of each node being the
``(key . value)`` pair (``PST_PAIR``), and ends the a-list with ``PST_NULL``. Because
``pmt::dict_add`` *prepends*, GNU Radio's ``to_pmt(dict)`` produces the a-list in reverse
insertion order; :func:`serialize` does the same, and :func:`deserialize` inserts the
entries back in reverse a-list order, so a Python dict keeps its order through a round
trip and a dict received from GNU Radio re-serialises to the same bytes. The empty PMT
dict *is* ``PMT_NIL`` (``pmt::make_dict()``), so ``{}`` serialises as ``PST_NULL`` and
decodes as ``None`` -- exactly as in GNU Radio's Python bindings. When a key occurs twice
in an a-list the first occurrence wins, as with ``pmt::dict_ref``.

Where this parser is stricter than GNU Radio's (GNU Radio returns ``PMT_EOF`` or reads
garbage on some truncations), the data is rejected with :class:`WireFormatError`:
truncated input, unknown type tag or uniform-vector subtype, a dict node whose car is not
a pair or whose a-list does not end in ``PMT_NIL``, an unhashable dict key, and -- in
:func:`loads` only -- trailing bytes. The serialiser refuses symbols longer than
:data:`MAX_SYMBOL_BYTES` (1024) bytes because ``pmt::deserialize`` throws on them ("very long
symbol"); the parser accepts up to 65535.  It also refuses a dict key holding bytes (it would
arrive as a numpy array, which cannot be a key).

Limits, the same in both directions (the serialiser refuses what the parser would refuse,
counted the same way), raising :class:`WireLimitError`:

* :data:`MAX_DEPTH` (128) levels of nesting: a tuple, vector or pair's car one level below
  its container; a dict entry is a pair one level below the dict, its key and value one more;
  the cdrs of a PMT list stay on the list's level (lists are read in a loop).
* :data:`MAX_ELEMENTS` (65 536) elements in one PMT -- and in all the PMTs of one gr-zeromq
  tag header together (:mod:`isacblocks.zeromq.wire`): each tuple or vector item, each pair of a
  PMT list and each dict entry (2: the a-list node and its ``(key . value)`` pair) counts one;
  a uniform vector counts none (its elements take their wire size in memory).  An element
  takes 1 to 2 bytes on the wire but 50 to 100 bytes of Python objects once decoded (an
  8 MB PMT list took 200 MB), so this caps what one message can make a receiver allocate
  at a few MB; the count of a tuple or vector is checked before any of it is read.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from isacblocks.errors import IsacError

__all__ = [
    "MAX_DEPTH",
    "MAX_ELEMENTS",
    "MAX_SYMBOL_BYTES",
    "Budget",
    "Pair",
    "UInt64",
    "WireFormatError",
    "WireLimitError",
    "deserialize",
    "dumps",
    "equal",
    "loads",
    "read",
    "serialize",
    "write",
]


class WireFormatError(IsacError, ValueError):
    """Malformed wire data (PMT or gr-zeromq header), or a value that cannot be encoded."""


class WireLimitError(WireFormatError):
    """Wire data or a value beyond one of the wire limits (``MAX_*`` of `pmt` and `wire`)."""


# --- type tags: gnuradio-runtime/include/pmt/pmt_serial_tags.h ---------------------------
PST_TRUE = 0x00
PST_FALSE = 0x01
PST_SYMBOL = 0x02
PST_INT32 = 0x03
PST_DOUBLE = 0x04
PST_COMPLEX = 0x05
PST_NULL = 0x06
PST_PAIR = 0x07
PST_VECTOR = 0x08
PST_DICT = 0x09
PST_UNIFORM_VECTOR = 0x0A
PST_UINT64 = 0x0B
PST_TUPLE = 0x0C
PST_INT64 = 0x0D

# Uniform-vector subtype (UVI_*) <-> big-endian wire dtype. GNU Radio writes npad = 1 and
# one zero pad byte; on input it skips whatever npad says.
_UVI_TO_DTYPE: dict[int, np.dtype] = {
    0x00: np.dtype(">u1"),
    0x01: np.dtype(">i1"),
    0x02: np.dtype(">u2"),
    0x03: np.dtype(">i2"),
    0x04: np.dtype(">u4"),
    0x05: np.dtype(">i4"),
    0x06: np.dtype(">u8"),
    0x07: np.dtype(">i8"),
    0x08: np.dtype(">f4"),
    0x09: np.dtype(">f8"),
    0x0A: np.dtype(">c8"),
    0x0B: np.dtype(">c16"),
}
_KIND_SIZE_TO_UVI: dict[tuple[str, int], int] = {
    (dt.kind, dt.itemsize): uvi for uvi, dt in _UVI_TO_DTYPE.items()
}
_UV_NPAD = 1

#: Deepest nesting (pairs' cars, tuples, vectors, dict entries) accepted in either direction.
MAX_DEPTH = 128
#: Most elements (tuple / vector items, list pairs, dict entries as 2) in one PMT or one tag header.
MAX_ELEMENTS = 65536
#: Longest symbol ``pmt::deserialize`` accepts (its ``tmpbuf`` is 1024 bytes).
MAX_SYMBOL_BYTES = 1024

_U8 = struct.Struct(">B")
_U16 = struct.Struct(">H")
_I32 = struct.Struct(">i")
_U32 = struct.Struct(">I")
_I64 = struct.Struct(">q")
_U64 = struct.Struct(">Q")
_F64 = struct.Struct(">d")
_C128 = struct.Struct(">dd")
_UV_HEAD = struct.Struct(">BIB")  # uvi, nitems, npad

_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_UINT64_MAX = 2**64 - 1


class UInt64(int):
    """An unsigned 64-bit integer, always serialised as ``PST_UINT64`` (``pmt::from_uint64``).

    Decoding ``PST_UINT64`` yields this type, so re-encoding is byte-exact. It behaves as a
    plain ``int`` otherwise (arithmetic returns ``int``).
    """

    def __new__(cls, value: int = 0) -> UInt64:
        ivalue = int(value)
        if not 0 <= ivalue <= _UINT64_MAX:
            raise WireFormatError(f"UInt64 out of range [0, 2**64 - 1]: {ivalue}")
        return super().__new__(cls, ivalue)

    def __repr__(self) -> str:
        return f"UInt64({int(self)})"


class Pair:
    """A PMT pair ``(car . cdr)``; a chain ending in ``None`` is a PMT list.

    ``Pair`` is deliberately not a tuple (tuples are PMT tuples). Equality is structural
    (see :func:`equal`), so pairs holding numpy arrays compare sensibly.
    """

    __slots__ = ("car", "cdr")

    def __init__(self, car: Any, cdr: Any) -> None:
        object.__setattr__(self, "car", car)
        object.__setattr__(self, "cdr", cdr)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Pair is immutable")

    def __iter__(self) -> Iterator[Any]:
        """Unpack as ``car, cdr = pair``."""
        yield self.car
        yield self.cdr

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Pair):
            return NotImplemented
        return equal(self, other)

    def __hash__(self) -> int:
        # iterative along the cdr so that long PMT lists do not exhaust the stack
        car_hashes = []
        node: Any = self
        while isinstance(node, Pair):
            car_hashes.append(hash(node.car))
            node = node.cdr
        return hash((Pair, tuple(car_hashes), node))

    def __repr__(self) -> str:
        cars = []
        node: Any = self
        while isinstance(node, Pair):
            cars.append(repr(node.car))
            node = node.cdr
        return "".join(f"Pair({car}, " for car in cars) + repr(node) + ")" * len(cars)

    @classmethod
    def from_list(cls, items: Iterable[Any], tail: Any = None) -> Any:
        """Build the PMT list ``(items...)`` as a chain of pairs ending in ``tail``.

        An empty ``items`` gives ``tail`` itself (``PMT_NIL`` by default).
        """
        result = tail
        for item in reversed(list(items)):
            result = cls(item, result)
        return result

    def to_list(self) -> list[Any]:
        """The elements of a proper PMT list (a chain ending in ``None``)."""
        out: list[Any] = []
        node: Any = self
        while isinstance(node, Pair):
            out.append(node.car)
            node = node.cdr
        if node is not None:
            raise WireFormatError(f"not a proper PMT list: it ends in {node!r}, not None")
        return out


class Budget:
    """The elements one PMT, or one tag header, may still hold (:data:`MAX_ELEMENTS`); `scope`
    says which in the error."""

    __slots__ = ("left", "scope")

    def __init__(self, scope: str = "in one PMT") -> None:
        self.left = MAX_ELEMENTS
        self.scope = scope

    def take(self, count: int, where: str) -> None:
        """Spend `count` elements; raise `WireLimitError` (naming `where`) past the limit."""
        self.left -= count
        if self.left < 0:
            raise WireLimitError(
                f"more than MAX_ELEMENTS = {MAX_ELEMENTS} PMT elements (tuple and vector items, list pairs, "
                f"dict entries) {self.scope}, reached at {where}; send large data as a numpy array (a PMT "
                "uniform vector)"
            )


# ------------------------------------------------------------------------------------------
# serialisation
# ------------------------------------------------------------------------------------------


def serialize(obj: Any) -> bytes:
    """Encode ``obj`` as GNU Radio's ``pmt::serialize`` would encode the equivalent PMT.

    Raises :class:`WireFormatError` for a value with no PMT encoding (unsupported type,
    integer outside [-2**63, 2**64), symbol over 1024 bytes, multi-dimensional or
    unsupported-dtype array, a dict key holding bytes) and :class:`WireLimitError` beyond
    :data:`MAX_DEPTH` or :data:`MAX_ELEMENTS`.
    """
    out = bytearray()
    _write(obj, out, 0, Budget())
    return bytes(out)


def write(obj: Any, out: bytearray, budget: Budget | None = None) -> None:
    """Append the serialisation of ``obj`` to ``out`` (the bytes :func:`serialize` returns),
    spending its elements from `budget` (default: a budget of its own)."""
    _write(obj, out, 0, Budget() if budget is None else budget)


def dumps(obj: Any) -> bytes:
    """Alias of :func:`serialize`."""
    return serialize(obj)


def _write(obj: Any, out: bytearray, depth: int, budget: Budget) -> None:
    if depth > MAX_DEPTH:
        raise WireLimitError(f"PMT nesting deeper than MAX_DEPTH = {MAX_DEPTH} levels (cyclic structure?)")
    if isinstance(obj, np.generic) and not isinstance(obj, np.void):
        obj = obj.item()
    if obj is True:
        out.append(PST_TRUE)
    elif obj is False:
        out.append(PST_FALSE)
    elif obj is None:
        out.append(PST_NULL)
    elif isinstance(obj, str):
        _write_symbol(obj, out)
    elif isinstance(obj, UInt64):
        out.append(PST_UINT64)
        out += _U64.pack(obj)
    elif isinstance(obj, int):
        _write_int(obj, out)
    elif isinstance(obj, float):
        out.append(PST_DOUBLE)
        out += _F64.pack(obj)
    elif isinstance(obj, complex):
        out.append(PST_COMPLEX)
        out += _C128.pack(obj.real, obj.imag)
    elif isinstance(obj, Pair):
        _write_pair_chain(obj, out, depth, budget)
    elif isinstance(obj, dict):
        _write_dict(obj, out, depth, budget)
    elif isinstance(obj, (tuple, list)):
        what = "tuple" if isinstance(obj, tuple) else "vector"
        budget.take(len(obj), f"a {what} of {len(obj)}")
        out.append(PST_TUPLE if what == "tuple" else PST_VECTOR)
        out += _U32.pack(_count(len(obj), what))
        for item in obj:
            _write(item, out, depth + 1, budget)
    elif isinstance(obj, np.ndarray):
        _write_uniform_vector(obj, out)
    elif isinstance(obj, (bytes, bytearray, memoryview)):
        _write_uniform_vector(np.frombuffer(obj, dtype=np.uint8), out)
    else:
        raise WireFormatError(f"cannot serialize a {type(obj).__name__} as a PMT: {obj!r}")


def _count(n: int, what: str) -> int:
    if n > 0xFFFFFFFF:
        raise WireFormatError(f"{what} of {n} elements exceeds the u32 PMT length field")
    return n


def _write_symbol(name: str, out: bytearray) -> None:
    try:
        raw = name.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError as exc:
        raise WireFormatError(f"symbol {name!r} cannot be encoded as UTF-8: {exc}") from None
    if len(raw) > MAX_SYMBOL_BYTES:
        raise WireFormatError(
            f"symbol of {len(raw)} bytes is longer than the {MAX_SYMBOL_BYTES} bytes "
            "GNU Radio's pmt::deserialize accepts"
        )
    out.append(PST_SYMBOL)
    out += _U16.pack(len(raw))
    out += raw


def _write_int(value: int, out: bytearray) -> None:
    if _INT32_MIN <= value <= _INT32_MAX:
        out.append(PST_INT32)
        out += _I32.pack(value)
    elif _INT64_MIN <= value <= _INT64_MAX:
        out.append(PST_INT64)
        out += _I64.pack(value)
    elif 0 <= value <= _UINT64_MAX:
        out.append(PST_UINT64)
        out += _U64.pack(value)
    else:
        raise WireFormatError(f"integer {value} has no PMT encoding (outside [-2**63, 2**64))")


def _write_pair_chain(pair: Pair, out: bytearray, depth: int, budget: Budget) -> None:
    # pmt::serialize loops on the cdr ("goto tail_recursion"), so long lists never recurse.
    node: Any = pair
    while isinstance(node, Pair):
        budget.take(1, "a PMT list")
        out.append(PST_PAIR)
        _write(node.car, out, depth + 1, budget)
        node = node.cdr
    _write(node, out, depth + 1, budget)


def _write_dict(mapping: dict, out: bytearray, depth: int, budget: Budget) -> None:
    # pmt::dict_add prepends, so GNU Radio's to_pmt(dict) lists the last-inserted key first.
    # Each entry is written as the parser reads it: an a-list node holding the pair
    # (key . value) one level down (the same depth and element count both ways).
    for key, value in reversed(list(mapping.items())):
        if _holds_bytes(key):
            raise WireFormatError(f"dict key {key!r} holds bytes, which arrive as a numpy array and "
                                  "cannot be a dict key; use a str or a tuple of numbers")
        budget.take(1, "a dict")
        out.append(PST_DICT)
        _write(Pair(key, value), out, depth + 1, budget)
    out.append(PST_NULL)


def _holds_bytes(key: Any, depth: int = 0) -> bool:
    """Whether a (hashable) dict key is or holds bytes (decoded as an unhashable numpy array)."""
    while isinstance(key, Pair) and depth <= MAX_DEPTH:
        if _holds_bytes(key.car, depth + 1):
            return True
        key = key.cdr
    if isinstance(key, (bytes, bytearray, memoryview)):
        return True
    return isinstance(key, tuple) and depth <= MAX_DEPTH and any(_holds_bytes(k, depth + 1) for k in key)


def _write_uniform_vector(array: np.ndarray, out: bytearray) -> None:
    if array.ndim != 1:
        raise WireFormatError(
            f"a PMT uniform vector is 1-D; got an array of shape {array.shape}"
        )
    uvi = _KIND_SIZE_TO_UVI.get((array.dtype.kind, array.dtype.itemsize))
    if uvi is None:
        raise WireFormatError(
            f"no PMT uniform vector for dtype {array.dtype}; supported: "
            "uint8 int8 uint16 int16 uint32 int32 uint64 int64 float32 float64 "
            "complex64 complex128"
        )
    out.append(PST_UNIFORM_VECTOR)
    out += _UV_HEAD.pack(uvi, _count(array.shape[0], "uniform vector"), _UV_NPAD)
    out += bytes(_UV_NPAD)
    out += np.ascontiguousarray(array, dtype=_UVI_TO_DTYPE[uvi]).tobytes()


# ------------------------------------------------------------------------------------------
# parsing
# ------------------------------------------------------------------------------------------


def deserialize(buf: Any, offset: int = 0) -> tuple[Any, int]:
    """Decode one PMT from ``buf`` (any bytes-like object) starting at ``offset``.

    Returns ``(obj, new_offset)`` where ``new_offset`` is just past the PMT. Raises
    :class:`WireFormatError` (naming the offset and tag byte) on malformed data.
    """
    view = byte_view(buf)
    if not 0 <= offset <= len(view):
        raise WireFormatError(f"offset {offset} outside a buffer of {len(view)} bytes")
    return _read(view, offset, 0, Budget())


def read(view: memoryview, offset: int, budget: Budget | None = None) -> tuple[Any, int]:
    """:func:`deserialize` on a flat byte view (``byte_view``) at ``0 <= offset <= len(view)``,
    without checking either again (for parsers that read many PMTs from one view); its
    elements are spent from `budget` (default: a budget of its own)."""
    return _read(view, offset, 0, Budget() if budget is None else budget)


def loads(buf: Any) -> Any:
    """Decode exactly one PMT occupying all of ``buf``; trailing bytes are an error."""
    view = byte_view(buf)
    obj, end = _read(view, 0, 0, Budget())
    if end != len(view):
        raise WireFormatError(
            f"{len(view) - end} trailing bytes after the PMT that ends at offset {end}"
        )
    return obj


def byte_view(buf: Any, what: str = "PMT input") -> memoryview:
    """A flat byte view of a bytes-like `buf` (no copy); `what` names it in errors."""
    try:
        view = memoryview(buf)
    except TypeError:
        raise WireFormatError(
            f"{what}: expected a bytes-like object, got {type(buf).__name__}"
        ) from None
    if view.format != "B" or view.ndim != 1:
        if not view.c_contiguous:
            raise WireFormatError(f"{what} buffer must be C-contiguous")
        view = view.cast("B")
    return view


def _need(view: memoryview, offset: int, size: int, what: str, tag_at: int) -> None:
    if offset + size > len(view):
        raise WireFormatError(
            f"truncated PMT: {what} needs {size} bytes at offset {offset}, "
            f"{len(view) - offset} left (tag 0x{view[tag_at]:02x} at offset {tag_at})"
        )


def _read(view: memoryview, offset: int, depth: int, budget: Budget) -> tuple[Any, int]:
    if depth > MAX_DEPTH:
        raise WireLimitError(f"PMT nested deeper than MAX_DEPTH = {MAX_DEPTH} levels at offset {offset}")
    if offset >= len(view):
        raise WireFormatError(f"truncated PMT: expected a type tag at offset {offset}")
    tag_at = offset
    tag = view[offset]
    offset += 1
    if tag == PST_TRUE:
        return True, offset
    if tag == PST_FALSE:
        return False, offset
    if tag == PST_NULL:
        return None, offset
    if tag == PST_SYMBOL:
        _need(view, offset, 2, "symbol length", tag_at)
        (length,) = _U16.unpack_from(view, offset)
        offset += 2
        _need(view, offset, length, "symbol name", tag_at)
        name = bytes(view[offset : offset + length]).decode("utf-8", "surrogateescape")
        return name, offset + length
    if tag == PST_INT32:
        _need(view, offset, 4, "int32", tag_at)
        return _I32.unpack_from(view, offset)[0], offset + 4
    if tag == PST_INT64:
        _need(view, offset, 8, "int64", tag_at)
        return _I64.unpack_from(view, offset)[0], offset + 8
    if tag == PST_UINT64:
        _need(view, offset, 8, "uint64", tag_at)
        return UInt64(_U64.unpack_from(view, offset)[0]), offset + 8
    if tag == PST_DOUBLE:
        _need(view, offset, 8, "double", tag_at)
        return _F64.unpack_from(view, offset)[0], offset + 8
    if tag == PST_COMPLEX:
        _need(view, offset, 16, "complex", tag_at)
        re, im = _C128.unpack_from(view, offset)
        return complex(re, im), offset + 16
    if tag in (PST_PAIR, PST_DICT):
        return _read_chain(view, offset, tag, tag_at, depth, budget)
    if tag in (PST_TUPLE, PST_VECTOR):
        what = "tuple" if tag == PST_TUPLE else "vector"
        _need(view, offset, 4, f"{what} length", tag_at)
        (count,) = _U32.unpack_from(view, offset)
        offset += 4
        # every element takes at least one byte: reject absurd counts before looping
        _need(view, offset, count, f"{what} of {count} elements", tag_at)
        budget.take(count, f"a {what} of {count} at offset {tag_at}")
        items = []
        for _ in range(count):
            item, offset = _read(view, offset, depth + 1, budget)
            items.append(item)
        return (tuple(items) if tag == PST_TUPLE else items), offset
    if tag == PST_UNIFORM_VECTOR:
        return _read_uniform_vector(view, offset, tag_at)
    raise WireFormatError(f"unknown PMT type tag 0x{tag:02x} at offset {tag_at}")


def _read_uniform_vector(view: memoryview, offset: int, tag_at: int) -> tuple[np.ndarray, int]:
    _need(view, offset, _UV_HEAD.size, "uniform vector header", tag_at)
    uvi, count, npad = _UV_HEAD.unpack_from(view, offset)
    dtype = _UVI_TO_DTYPE.get(uvi)
    if dtype is None:
        raise WireFormatError(
            f"unknown uniform vector subtype 0x{uvi:02x} at offset {offset} "
            f"(tag 0x{PST_UNIFORM_VECTOR:02x} at offset {tag_at})"
        )
    offset += _UV_HEAD.size
    _need(view, offset, npad, "uniform vector padding", tag_at)
    offset += npad
    nbytes = count * dtype.itemsize
    _need(view, offset, nbytes, f"{count} uniform vector elements of {dtype.str}", tag_at)
    array = np.frombuffer(view, dtype=dtype, count=count, offset=offset)
    return array.astype(dtype.newbyteorder("="), copy=True), offset + nbytes


def _read_chain(
    view: memoryview, offset: int, kind: int, tag_at: int, depth: int, budget: Budget
) -> tuple[Any, int]:
    """Read a pair / dict chain; the first node's tag (``kind``) is already consumed.

    Mirrors ``parse_pair`` in pmt_serialize.cc: cars are read one after the other while
    the next tag is ``PST_PAIR`` (and, in a dict, ``PST_DICT``, which GNU Radio reaches by
    recursion with the same result), ``PST_NULL`` ends a proper list, anything else is the
    final cdr.
    """
    cars: list[Any] = []
    where = f"a PMT {'list' if kind == PST_PAIR else 'dict'} at offset {tag_at}"
    while True:
        budget.take(1, where)
        car, offset = _read(view, offset, depth + 1, budget)
        cars.append(car)
        if offset >= len(view):
            raise WireFormatError(
                f"truncated PMT: expected the cdr of the pair (tag 0x{kind:02x} at "
                f"offset {tag_at}) at offset {offset}"
            )
        next_tag = view[offset]
        if next_tag == PST_PAIR or (next_tag == PST_DICT and kind == PST_DICT):
            offset += 1
            continue
        if next_tag == PST_NULL:
            tail: Any = None
            offset += 1
        else:
            tail, offset = _read(view, offset, depth + 1, budget)
        break
    if kind == PST_PAIR:
        return Pair.from_list(cars, tail), offset
    if tail is not None:
        raise WireFormatError(
            f"PMT dict at offset {tag_at} does not end in PMT_NIL (its a-list ends in "
            f"{type(tail).__name__} {tail!r})"
        )
    result: dict[Any, Any] = {}
    for entry in reversed(cars):  # first occurrence of a key wins, as with pmt::dict_ref
        if not isinstance(entry, Pair):
            raise WireFormatError(
                f"PMT dict at offset {tag_at} has an entry that is not a (key . value) "
                f"pair: {type(entry).__name__}"
            )
        try:
            result[entry.car] = entry.cdr
        except TypeError:
            raise WireFormatError(
                f"PMT dict at offset {tag_at} has a key of unhashable type "
                f"{type(entry.car).__name__}"
            ) from None
    return result, offset


# ------------------------------------------------------------------------------------------
# structural equality
# ------------------------------------------------------------------------------------------


def equal(a: Any, b: Any) -> bool:
    """Structural equality of two PMT values (the Python analogue of ``pmt::equal``).

    Unlike ``==``: ``True`` differs from ``1``; floats compare equal when both are NaN;
    arrays are equal when dtype, shape and bytes match; ``tuple``, ``list``, ``dict`` and
    :class:`Pair` are compared element-wise with the same rules.
    """
    while True:
        if isinstance(a, Pair) or isinstance(b, Pair):
            if not (isinstance(a, Pair) and isinstance(b, Pair)):
                return False
            if not equal(a.car, b.car):
                return False
            a, b = a.cdr, b.cdr  # iterate along cdr chains instead of recursing
            continue
        return _equal_atom_or_container(a, b)


def _equal_atom_or_container(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (
            isinstance(a, np.ndarray)
            and isinstance(b, np.ndarray)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and a.tobytes() == b.tobytes()
        )
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if a is None or b is None:
        return a is b
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    if isinstance(a, int) or isinstance(b, int):  # int and UInt64 compare by value
        return isinstance(a, int) and isinstance(b, int) and int(a) == int(b)
    if isinstance(a, float) or isinstance(b, float):
        return (
            isinstance(a, float)
            and isinstance(b, float)
            and (a == b or (math.isnan(a) and math.isnan(b)))
        )
    if isinstance(a, complex) or isinstance(b, complex):
        return (
            isinstance(a, complex)
            and isinstance(b, complex)
            and _equal_atom_or_container(a.real, b.real)
            and _equal_atom_or_container(a.imag, b.imag)
        )
    if isinstance(a, (tuple, list)) or isinstance(b, (tuple, list)):
        return (
            type(a) is type(b)
            and len(a) == len(b)
            and all(equal(x, y) for x, y in zip(a, b))
        )
    if isinstance(a, dict) or isinstance(b, dict):
        return (
            isinstance(a, dict)
            and isinstance(b, dict)
            and a.keys() == b.keys()
            and all(equal(a[k], b[k]) for k in a)
        )
    return type(a) is type(b) and bool(a == b)
