"""The ports of a wrapped block as GNU Radio sees them: io signatures (`gr_signature`), and the
reader, writer and message publisher that stand in for the block's buffers and subscribers while
GNU Radio runs it (`PortReader`, `PortWriter`, `MessageOut`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core.block import Block
from ..core.tags import Tag
from ..errors import BlockError, ConfigError
from ..zeromq import pmt as codec
from .requirement import require_gnuradio

try:
    import pmt  # GNU Radio's PMT module (not isacblocks.zeromq.pmt, imported as `codec`)
except ImportError:
    require_gnuradio()  # raises the ImportError that names the way to GNU Radio
    raise
from .pmt_values import from_pmt, srcid_from_pmt, srcid_to_pmt, to_pmt

__all__ = ["MessageOut", "PortReader", "PortWriter", "gr_signature"]

def gr_signature(block: Block, direction: str) -> list:
    """GNU Radio's Python io signature of a block's input ("in") or output ("out") ports: per
    port its numpy dtype, or ``(dtype, vector length)`` with the item shape flattened."""
    specs = block.in_sig if direction == "in" else block.out_sig
    sig = []
    for spec in specs:
        dtype = np.dtype(spec.dtype)
        if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None or dtype.itemsize == 0:
            raise ConfigError(f"block {block.name!r}: {direction}put port {spec.name!r} ({dtype}): GNU Radio "
                              "streams carry fixed-size items of plain numbers; this dtype has none")
        vlen = int(np.prod(spec.shape, dtype=np.int64)) if spec.shape else 1
        sig.append(dtype if vlen == 1 else (dtype, vlen))
    return sig


class PortReader:
    """One input of the wrapped block (`Block.nitems_read`, `get_tags_in_range`): GNU Radio's."""

    __slots__ = ("gateway", "port", "keys")

    def __init__(self, gateway, port: int):
        self.gateway, self.port, self.keys = gateway, port, {}

    @property
    def nread(self) -> int:
        return self.gateway.nitems_read(self.port)

    def tags_in_range(self, start: int, end: int, key: str | None = None) -> list[Tag]:
        if key is None:
            found = self.gateway.get_tags_in_range(self.port, start, end)
        else:
            symbol = self.keys.get(key)
            if symbol is None:
                symbol = self.keys[key] = pmt.intern(key)
            found = self.gateway.get_tags_in_range(self.port, start, end, symbol)
        return [Tag(t.offset, key if key is not None else from_pmt(t.key), from_pmt(t.value),
                    srcid_from_pmt(t.srcid)) for t in found]

    def available(self) -> int:  # pragma: no cover - GNU Radio says it per call
        raise BlockError("a block wrapped for GNU Radio learns its available input from the arrays it is given")


class PortWriter:
    """One output of the wrapped block (`Block.nitems_written`, `add_tag`): GNU Radio's."""

    __slots__ = ("gateway", "port", "owner")

    def __init__(self, gateway, port: int, owner: str):
        self.gateway, self.port, self.owner = gateway, port, owner

    @property
    def nwritten(self) -> int:
        return self.gateway.nitems_written(self.port)

    def add_tag(self, tag: Tag) -> None:
        try:
            key, value, srcid = to_pmt(tag.key), to_pmt(tag.value), srcid_to_pmt(tag.srcid)
        except (codec.WireFormatError, TypeError, ValueError) as exc:
            raise BlockError(f"block {self.owner!r}: tag {tag.key!r} at offset {tag.offset} on output "
                             f"{self.port}: {exc}") from exc
        self.gateway.add_item_tag(self.port, tag.offset, key, value, srcid)


class MessageOut:
    """Stands in for the subscribers of the wrapped block's output message ports during a GNU
    Radio run: what the block publishes goes out of the wrapper's GNU Radio port, as a PMT."""

    def __init__(self, gateway, owner: str):
        self.gateway, self.owner, self.ports = gateway, owner, {}

    def post(self, port: str, msg: Any) -> None:
        try:
            value = to_pmt(msg)
        except (codec.WireFormatError, TypeError, ValueError) as exc:
            raise BlockError(f"block {self.owner!r}: message on output port {port!r}: {exc}") from exc
        symbol = self.ports.get(port)
        if symbol is None:
            symbol = self.ports[port] = pmt.intern(port)
        self.gateway.message_port_pub(symbol, value)
