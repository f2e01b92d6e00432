"""Stream port declarations: dtype and item shape (GNU Radio's io_signature with vlen)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from ..errors import ConfigError


class PortSpec(NamedTuple):
    """One stream port: numpy `dtype`, `shape` of one item, optional `name`."""

    dtype: np.dtype
    shape: tuple[int, ...] = ()
    name: str | None = None

    @property
    def itemsize(self) -> int:
        """Bytes per item."""
        return int(np.dtype(self.dtype).itemsize * np.prod(self.shape, dtype=np.int64))

    def describe(self) -> str:
        return f"{np.dtype(self.dtype).name}{list(self.shape)}"


def port(dtype, shape: Sequence[int] | int = (), name: str | None = None) -> PortSpec:
    """Build a `PortSpec`; an int `shape` means a vector of that length."""
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    try:
        shape = tuple(int(s) for s in shape)
    except (TypeError, ValueError):
        raise ConfigError(f"port {name or ''}: item_shape = {shape!r}: expected an int or a tuple of ints") from None
    if any(s < 1 for s in shape):
        raise ConfigError(f"port {name or ''}: item_shape = {shape}: every dimension must be >= 1")
    try:
        dtype = np.dtype(dtype)
    except (TypeError, ValueError):
        raise ConfigError(f"port {name or ''}: dtype = {dtype!r}: not a numpy dtype") from None
    return PortSpec(dtype, shape, name)


def as_port_specs(sig: Sequence, direction: str, block_name: str) -> tuple[PortSpec, ...]:
    """Normalise a block's in/out signature to `PortSpec`s with names ('in0', 'out1', ...)."""
    specs = []
    for index, entry in enumerate(sig):
        if isinstance(entry, PortSpec):
            spec = entry
        elif isinstance(entry, tuple) and entry and isinstance(entry[0], str):
            spec = port(entry[1], entry[2] if len(entry) > 2 else (), entry[0])
        elif isinstance(entry, tuple):
            spec = port(*entry)
        else:
            try:
                spec = port(entry)
            except (TypeError, ConfigError):
                raise ConfigError(f"block {block_name!r}: {direction} port {index}: cannot read {entry!r} "
                                  "as a dtype or a (dtype, shape) pair") from None
        specs.append(spec._replace(name=spec.name or f"{direction}{index}"))
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ConfigError(f"block {block_name!r}: duplicate {direction} port names {names}")
    return tuple(specs)
