"""The ports of a GNU Radio Companion block (`grc_ports`): read from the class, sized by formula.

Our item shape flattened: a ``(K, S)`` complex64 frame is GRC's ``complex`` with ``vlen: K * S``.
The port sizes depend on the parameters, so `grc_ports` builds the block a few times (paper
defaults, then K, S and each integer parameter one higher) and writes each item dimension as the
affine function of the parameters it follows (``n_subcarriers + cyclic_prefix``,
``max_targets * 6``), checked once more at a third point.  numpy dtypes map to GRC's own types
(`PORT_TYPES`): float64 is ``f64`` and complex128 ``fc64`` (GRC's core types "Float 64" and
"Complex Float 64", 8 and 16 bytes an element), not bytes: the item size is the same, and GRC
still refuses to connect an estimate (f64) to a float32 port, as it must.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import itertools

import numpy as np

from ..blocks.ula import ImpairedULA
from ..core import Block
from ..params import SystemParams
from .grc_params import GenerationError, GrcParam, grc_params, merged_hints

_EMPTY = inspect.Parameter.empty

__all__ = [
    "PORT_TYPES", "grc_ports", "GrcPort",
]

#: numpy dtype of a port -> GRC port type (GRC's aliases where it has one, else its core types).
PORT_TYPES = {
    np.dtype(np.complex64): "complex",
    np.dtype(np.complex128): "fc64",
    np.dtype(np.float32): "float",
    np.dtype(np.float64): "f64",
    np.dtype(np.int64): "s64",
    np.dtype(np.int32): "int",
    np.dtype(np.int16): "short",
    np.dtype(np.int8): "byte",
    np.dtype(np.uint8): "byte",
    np.dtype(np.bool_): "byte",
}


def _placeholder(cls: type, param: GrcParam, params: SystemParams, hints: dict):
    """A value for a required constructor parameter while the block is built to read its ports."""
    given = (hints.get("placeholders") or {}).get(param.id, _EMPTY)
    if given is not _EMPTY:
        return given(params) if callable(given) else given
    if param.kind == "ula":
        return ImpairedULA(params)
    if param.kind == "spacing":
        return params.nominal_spacing
    if param.dtype in ("real", "int", "complex"):
        return {"real": 1.0, "int": 1, "complex": 1.0 + 0j}[param.dtype]
    if param.dtype == "string":
        return ""
    if param.dtype in ("enum", "bool"):
        return ast.literal_eval(param.default) if param.kind != "dtype" else np.complex64
    raise GenerationError(f"{cls.__name__}: cannot build it to read its ports: give parameter {param.id!r} a "
                          "placeholder (hints={'placeholders': {name: value or callable(params)}})")


def _build(cls: type, plist: list[GrcParam], hints: dict, values: dict) -> Block:
    """`cls` built with the defaults, K and S and the constructor values in `values`."""
    system = {k: values[k] for k in ("n_antennas", "n_subcarriers") if k in values}
    params = SystemParams(**system)
    kwargs = {}
    for p in plist:
        if p.kind == "grc":
            if p.id == "config":
                kwargs["params"] = params
        elif p.id in values:
            kwargs[p.id] = values[p.id]
        elif p.required:
            kwargs[p.id] = _placeholder(cls, p, params, hints)
    block = cls(**kwargs)
    if not isinstance(block, Block):
        raise GenerationError(f"{cls.__name__} is not an isacblocks block (isacblocks.core.Block)")
    return block


def _ports(block: Block) -> list[tuple[str, str, np.dtype, tuple[int, ...]]]:
    return ([("in", s.name, np.dtype(s.dtype), tuple(s.shape)) for s in block.in_sig]
            + [("out", s.name, np.dtype(s.dtype), tuple(s.shape)) for s in block.out_sig])


@dataclasses.dataclass
class GrcPort:
    direction: str  # "in" or "out"
    name: str
    domain: str  # "stream" or "message"
    dtype: str = ""  # GRC type or a ${ } expression
    vlen: int | str = 1

    def yaml(self) -> dict:
        if self.domain == "message":
            return {"domain": "message", "id": self.name, "label": self.name, "optional": True}
        return {"domain": "stream", "label": self.name, "dtype": self.dtype, "vlen": self.vlen}


def _affine_text(const: int, coefs: dict[str, int]) -> str:
    """``n_subcarriers + cyclic_prefix``, ``2 * max_targets - 1``, ..."""
    parts = [(c, name if abs(c) == 1 else f"{abs(c)} * {name}") for name, c in coefs.items() if c]
    if const:
        parts.append((const, str(abs(const))))
    text = ""
    for i, (sign, term) in enumerate(parts):
        text += ("-" if sign < 0 else "") + term if i == 0 else f" {'-' if sign < 0 else '+'} {term}"
    return text


def _vlen_text(dims: list[tuple[int, dict[str, int]]]) -> int | str:
    """The GRC vlen of an item whose dimensions are ``const + sum(coef * parameter)``."""
    number, factors = 1, []
    for const, coefs in dims:
        if not any(coefs.values()):
            number *= const
            continue
        factors.append(_affine_text(const, coefs))
    if not factors:
        return number
    if number != 1:
        factors.append(str(number))
    if len(factors) > 1:
        factors = [f"({f})" if (" + " in f or " - " in f) else f for f in factors]
    return "${ " + " * ".join(factors) + " }"


def grc_ports(cls: type, plist: list[GrcParam] | None = None, hints: dict | None = None) -> list[GrcPort]:
    """The stream and message ports of `cls`, each stream port's vlen as a function of the
    parameters (see the module docstring)."""
    hints = merged_hints(cls, hints)
    plist = grc_params(cls, hints) if plist is None else plist
    variables = {p.id: int(ast.literal_eval(p.default)) for p in plist
                 if p.dtype == "int" and p.default and not p.required}
    base_values: dict = {}
    dtype_param = any(p.kind == "dtype" for p in plist)
    item_param = any(p.id == "item_shape" for p in plist)
    if dtype_param:
        base_values = {"dtype": np.complex64, **({"item_shape": (2, 3)} if item_param else {})}
    flags = [p.id for p in plist if p.dtype == "bool"]

    def build(values):
        try:
            return _build(cls, plist, hints, {**base_values, **values})
        except GenerationError:
            raise
        except Exception as exc:
            raise GenerationError(f"{cls.__name__}: cannot build it with {values or 'its defaults'} to read its "
                                  f"ports: {type(exc).__name__}: {exc}") from None

    base = build({})
    ports = _ports(base)
    layout = [(d, n, len(s)) for d, n, _, s in ports]

    def same_layout(block):
        return [(d, n, len(s)) for d, n, _, s in _ports(block)] == layout

    coefs: dict[str, list] = {}
    flips: dict = {}
    for name, value in variables.items():
        for delta, flip in itertools.product((1, -1), [None, *flags]):
            extra = {} if flip is None else {flip: not ast.literal_eval(next(p.default for p in plist if p.id == flip))}
            try:
                probe = _build(cls, plist, hints, {**base_values, **variables, name: value + delta, **extra})
            except Exception:  # noqa: BLE001 - a constraint of the block: try the next point
                continue
            if same_layout(probe):
                flips.update(extra)
                coefs[name] = [[(b - a) // delta for a, b in zip(s0, s1)]
                               for (*_, s0), (*_, s1) in zip(ports, _ports(probe))]
            break
    fitted = {name: c for name, c in coefs.items() if c is not None}

    def predict(values):
        out = []
        for i, (_, _, _, shape) in enumerate(ports):
            out.append(tuple(shape[k] + sum(c[i][k] * (values[n] - variables[n]) for n, c in fitted.items())
                             for k in range(len(shape))))
        return out

    vlen_hints = hints.get("vlen") or {}
    check = {name: value + 2 for name, value in variables.items() if name in fitted}
    if check:
        block = build({**variables, **check, **flips})
        shapes = [s for (*_, s), (_, n, _, _) in zip(_ports(block), ports) if n not in vlen_hints]
        predicted = [s for s, (_, n, _, _) in zip(predict({**variables, **check}), ports) if n not in vlen_hints]
        if not same_layout(block) or shapes != predicted:
            raise GenerationError(f"{cls.__name__}: its port sizes are no affine function of {sorted(check)}; give "
                                  "them in hints={'vlen': {port name: '${ expression }'}}")
    other_ports = []
    if dtype_param:
        other = build({"dtype": np.int16, **({"item_shape": (5,)} if item_param else {})})
        other_ports = _ports(other)
    out = []
    for i, (direction, name, dtype, shape) in enumerate(ports):
        if dtype_param and dtype == np.complex64 and other_ports[i][2] == np.int16:
            grc_type = "${ dtype.grc }"
        elif dtype in PORT_TYPES:
            grc_type = PORT_TYPES[dtype]
        else:
            raise GenerationError(f"{cls.__name__}: port {name!r} has dtype {dtype}, which GRC has no type for")
        if name in vlen_hints:
            vlen = vlen_hints[name]
        elif item_param and dtype_param and shape == (2, 3) and other_ports[i][3] == (5,):
            vlen = "${ item_shape if isinstance(item_shape, int) else __import__('math').prod(item_shape) }"
        else:
            dims = [(shape[k] - sum(c[i][k] * variables[n] for n, c in fitted.items()),
                     {n: c[i][k] for n, c in fitted.items()}) for k in range(len(shape))]
            vlen = _vlen_text(dims)
        out.append(GrcPort(direction, name, "stream", grc_type, vlen))
    out += [GrcPort("in", name, "message") for name in base.message_ports_in]
    out += [GrcPort("out", name, "message") for name in base.message_ports_out]
    return out
