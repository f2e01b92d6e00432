"""Python values and GNU Radio PMTs (`to_pmt`, `from_pmt`), with `isacblocks.zeromq.pmt`'s mapping:
the same values as on the ZeroMQ wire.  A tag's srcid None is GNU Radio's ``PMT_F``.
"""

from __future__ import annotations

from typing import Any

from ..zeromq import pmt as codec
from .requirement import require_gnuradio

try:
    import pmt  # GNU Radio's PMT module (not isacblocks.zeromq.pmt, imported as `codec`)
except ImportError:
    require_gnuradio()  # raises the ImportError that names the way to GNU Radio
    raise

__all__ = ["from_pmt", "srcid_from_pmt", "srcid_to_pmt", "to_pmt"]

_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1

#: Symbols of the strings seen (tag keys, srcids): built once (a PMT symbol is interned anyway).
_SYMBOLS: dict = {}
_SYMBOLS_MAX = 4096


def to_pmt(value: Any):
    """A Python value as a GNU Radio PMT, with `isacblocks.zeromq.pmt`'s mapping (str -> symbol,
    int -> long, float -> double, tuple -> tuple, 1-D array -> uniform vector, ...).

    Raises `isacblocks.zeromq.pmt.WireFormatError` (a ValueError) for a value with no PMT form."""
    kind = type(value)
    if kind is str:
        symbol = _SYMBOLS.get(value)
        if symbol is None:
            if len(_SYMBOLS) >= _SYMBOLS_MAX:
                _SYMBOLS.clear()
            symbol = _SYMBOLS[value] = pmt.intern(value)
        return symbol
    if kind is bool:
        return pmt.PMT_T if value else pmt.PMT_F
    if value is None:
        return pmt.PMT_NIL
    if kind is float:
        return pmt.from_double(value)
    if kind is int and _INT64_MIN <= value <= _INT64_MAX:
        return pmt.from_long(value)
    if kind is tuple and len(value) <= 10:  # pmt::make_tuple takes up to 10 (and deserialize cannot read ())
        return pmt.make_tuple(*[to_pmt(v) for v in value])
    data = codec.serialize(value)
    try:
        return pmt.deserialize_str(data)
    except (ValueError, RuntimeError) as exc:
        raise codec.WireFormatError(f"{value!r} has no GNU Radio PMT form ({exc}); an empty tuple () inside "
                                    "another value is one: use None or [] instead") from exc


def from_pmt(obj) -> Any:
    """A GNU Radio PMT as the Python value `isacblocks.zeromq.pmt` decodes from its bytes (symbol ->
    str, long -> int, uint64 -> `UInt64`, dict -> dict, pair -> `Pair`, uniform vector -> array)."""
    if pmt.is_symbol(obj):
        return pmt.symbol_to_string(obj)
    if pmt.is_bool(obj):
        return pmt.to_bool(obj)
    if pmt.is_null(obj):
        return None
    if pmt.is_integer(obj):
        return pmt.to_long(obj)
    if pmt.is_real(obj):
        return pmt.to_double(obj)
    return codec.loads(pmt.serialize_str(obj))


def srcid_to_pmt(srcid):
    return pmt.PMT_F if srcid is None else to_pmt(srcid)


def srcid_from_pmt(obj):
    return None if pmt.eq(obj, pmt.PMT_F) else from_pmt(obj)
