"""GNU Radio Companion block descriptions generated from the block classes, and the helpers their
``make`` templates call.

`block_yaml(cls)` writes the GRC YAML (``file_format: 1``) of any block class: parameters from the
constructor's signature (`inspect.signature`), ports from the ``in_sig`` / ``out_sig`` the class
declares, message ports by name, ``make`` = ``isacblocks.gnuradio.as_gr_block(module.Class(...))``,
callbacks for what a block can change while it runs, and the class docstring.  `install` writes
the YAML of every public block (`public_blocks`) into a folder GRC reads (``isac grc install``).

Nothing here imports GNU Radio: the YAML is made, and checked, in any Python
(``isac grc install`` loads this file on its own where the package ``isacblocks.gnuradio``, which
needs GNU Radio, cannot be imported).

**Ports.**  Our item shape flattened: a ``(K, S)`` complex64 frame is GRC's ``complex`` with
``vlen: K * S``.  The port sizes depend on the parameters, so `block_yaml` builds the block a few
times (paper defaults, then K, S and each integer parameter one higher) and writes each item
dimension as the affine function of the parameters it follows (``n_subcarriers + cyclic_prefix``,
``max_targets * 6``), checked once more at a third point.  numpy dtypes map to GRC's own types
(`PORT_TYPES`): float64 is ``f64`` and complex128 ``fc64`` (GRC's core types "Float 64" and
"Complex Float 64", 8 and 16 bytes an element), not bytes: the item size is the same, and GRC
still refuses to connect an estimate (f64) to a float32 port, as it must.

**System configuration.**  A block that takes ``params`` gets, on a "System" tab: ``config`` (a
SystemParams TOML file, ``''`` = the paper's defaults), ``n_antennas`` and ``n_subcarriers``
(GRC must know K and S to size the ports, so they are fields of their own; a file or dict that sets
another K or S is refused, naming both) and ``system`` (a dict of any other SystemParams field,
e.g. ``{'snr_radar_db': 10.0}``, over the file's).  All blocks of a flowgraph should show the same
values: point them at GRC variables.

**Callbacks.**  A parameter that is one of the block's run-time ``settings`` (or has a
``set_<name>`` method) changes while the flowgraph runs: when the block has an input message port
of that name (``spacing``; the combiner's ``tradeoff`` for ``eta`` and ``phi``), the new value is
posted there and handled in the block's own thread before
its next work(), as a message from a GNU Radio port would be; otherwise the setter is called.

**GRC's numbers.**  GRC passes floats where ints are meant (``1e3``, a QT range, a ``real``
variable); the ``make`` template passes every integer parameter through `integer`, which turns an
integral float into an int and leaves anything else to the block's own check.

**Construction.**  GNU Radio 3.10's GRC does not build blocks while a flowgraph is edited: it
evaluates the parameter expressions, runs the ``imports`` and looks up ``as_gr_block`` for its
docstring.  The defaults written here are literals, and none of the generated blocks opens a
socket, starts a thread or compiles a kernel in its constructor (``device='cuda'`` makes
`SensingEstimator` / `SuccessiveDetector` ask Numba whether a CUDA device is usable, which starts
the CUDA driver).  The ZeroMQ blocks (`isacblocks.zmq`), which bind or connect their socket when
built, are not generated: gr-zeromq's blocks are GNU Radio's own, byte-compatible with them.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import itertools
import json
import math
import os
import re
import subprocess
import tomllib
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from .. import __version__
from ..blocks import (
    DetectionMetricsSink,
    ISACCombiner,
    MAPRTDetector,
    MBMLEstimator,
    MLDemapper,
    OFDMDemodulator,
    OFDMModulator,
    ReciprocalFilter,
    ScenarioSource,
    SectorBeamformer,
    SERSink,
    SymbolSource,
    TargetChannel,
    UEChannel,
)
from ..blocks.multitarget import MultiTargetChannel, MultiTargetMetricsSink, SuccessiveDetector
from ..blocks.receivers import MBML_METHODS
from ..blocks.ula import ImpairedULA
from ..blocks.ula import true_array as run_true_array
from ..core import Block, TagFilter
from ..dsp.angle_delay_cuda import DEVICES
from ..dsp.impairments import load_array
from ..dsp.multitarget import COUNT_DISTRIBUTIONS
from ..errors import ConfigError
from ..params import SystemParams
from ..safeio import OutputError, make_folder, read_text, write_text
from ..validation import is_integer

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

#: The item types a ``dtype`` parameter offers (TagFilter): numpy expression, GRC type, label.
DTYPE_OPTIONS = (("numpy.complex64", "complex", "complex64"), ("numpy.float32", "float", "float32"),
                 ("numpy.float64", "f64", "float64"), ("numpy.complex128", "fc64", "complex128"),
                 ("numpy.int32", "int", "int32"), ("numpy.int16", "short", "int16"),
                 ("numpy.int8", "byte", "int8"))

#: Prefix of the block ids and file names; `install` removes only such files that it wrote.
PREFIX = "isacblocks"

#: First line of every generated file (how `install` knows a file as its own).
GENERATED_MARK = "# Generated by isacblocks.gnuradio.grc"

#: GRC's own parameter ids (every block has them), which a constructor parameter may not take.
GRC_RESERVED = frozenset({"id", "alias", "affinity", "minoutbuf", "maxoutbuf", "comment"})

#: The GRC parameters that stand for a constructor's ``params`` (the "System" tab).
SYSTEM_FIELDS = ("config", "n_antennas", "n_subcarriers", "system")

#: The GRC menu of each generated block class (under "[isacblocks]").
CATEGORIES = {
    ScenarioSource: "Sources", SymbolSource: "Sources",
    OFDMModulator: "Transmitter", SectorBeamformer: "Transmitter", ISACCombiner: "Transmitter",
    TargetChannel: "Channels", UEChannel: "Channels", MultiTargetChannel: "Channels",
    ReciprocalFilter: "Sensing", MAPRTDetector: "Sensing", MBMLEstimator: "Sensing", SuccessiveDetector: "Sensing",
    OFDMDemodulator: "Communication", MLDemapper: "Communication",
    DetectionMetricsSink: "Metrics", SERSink: "Metrics", MultiTargetMetricsSink: "Metrics",
    TagFilter: "Tags",
}

#: Public classes of `isacblocks.blocks` and `isacblocks.core` that get no GRC block, and why.
EXCLUDED = {
    "SensingEstimator": "the base class of MAPRTDetector and MBMLEstimator: it has no estimate() of its own",
    "ImpairedULA": "not a block but the hardware both channels share: a channel's `ula` parameter takes a seed, "
                   "a file or an ImpairedULA expression",
    "VectorSource": "GNU Radio's Vector Source (blocks.vector_source_*) does the same for any type and vlen",
    "VectorSink": "GNU Radio's Vector Sink; what it collects is out of reach of a GRC flowgraph anyway",
    "NullSink": "GNU Radio's Null Sink",
    "Head": "GNU Radio's Head",
    "Throttle": "GNU Radio's Throttle",
    "TagDebug": "GNU Radio's Tag Debug",
    "FileSource": "GNU Radio's File Source reads the same raw items (no header, no tags)",
    "FileSink": "GNU Radio's File Sink writes the same raw items",
    "MessageCollector": "GNU Radio's Message Debug; what it collects is out of reach of a GRC flowgraph",
    "HierBlock": "the base class of blocks made of blocks; GRC builds its own hier blocks from flowgraphs",
    "PushSink": "gr-zeromq's ZMQ PUSH Sink (byte-compatible); it binds its socket when built",
    "PullSource": "gr-zeromq's ZMQ PULL Source (byte-compatible); it connects its socket when built",
    "PubSink": "gr-zeromq's ZMQ PUB Sink (byte-compatible); it binds its socket when built",
    "SubSource": "gr-zeromq's ZMQ SUB Source (byte-compatible); it connects its socket when built",
}

#: What the signature cannot say, per class: ``enum`` (name -> the allowed values), ``raw`` (name ->
#: suggested values of a parameter typed as a Python expression), ``labels`` (name -> label),
#: ``callbacks`` (templates replacing the ``set_<name>`` rule), ``placeholders`` (name -> a value,
#: or a callable of the SystemParams, for a required parameter while the class is built to read its
#: ports), ``vlen`` (port name -> GRC vlen text).  A class of one's own may carry its hints in a
#: class attribute ``grc_hints`` of the same form, or pass them to `block_yaml`.
HINTS: dict[type, dict] = {
    ScenarioSource: {"raw": {"sector": ["test", "train"]}},
    MBMLEstimator: {"enum": {"method": MBML_METHODS}},
    MultiTargetChannel: {"enum": {"distribution": COUNT_DISTRIBUTIONS}},
    ISACCombiner: {"callbacks": [
        "isacblocks.gnuradio.grc.post(self.${id}, 'tradeoff', {'eta': ${eta}, 'phi': ${phi}})"]},
}

#: Hints for a parameter name in any class.
GENERIC_ENUMS = {"device": DEVICES}

#: Labels of the "System" tab and of the parameters whose name is terse.
LABELS = {"config": "Config (TOML, '' = defaults)", "n_antennas": "K (antennas)", "n_subcarriers": "S (subcarriers)",
          "system": "Other SystemParams fields", "ula": "True array (seed, file or ImpairedULA)",
          "spacing": "Spacing (None = lambda/2, vector, file)", "dtype": "Item type"}

_EMPTY = inspect.Parameter.empty


class GenerationError(ConfigError):
    """A block class whose GRC description cannot be made from its signature (with the reason)."""


# ------------------------------------------------------------------------------------------------
# Helpers the generated make templates call (at run time, in GNU Radio's Python)
# ------------------------------------------------------------------------------------------------
def integer(value):
    """`value` as an int when it is an integral number (GRC's ``1e3`` or a float variable), else
    unchanged: the block's own check names the rule a non-integral value breaks."""
    if isinstance(value, (bool, np.bool_)):
        return value
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer():
        return int(value)
    return value


def _toml_fields(path) -> dict:
    """The field names and values a SystemParams TOML file sets (``[system]`` table or top level)."""
    data = tomllib.loads(read_text(path, "configuration"))
    return data["system"] if isinstance(data.get("system"), dict) else data


def system_params(config="", n_antennas=None, n_subcarriers=None, system=None) -> SystemParams:
    """The `SystemParams` of a GRC block's "System" tab: the paper's defaults, or the TOML file
    `config`, then the fields of the dict `system`, then K and S.

    K and S size the ports in GRC, so they are always given; a file or a `system` dict that sets
    another value is refused, naming both, rather than silently overridden."""
    if config is None or not isinstance(config, (str, os.PathLike)):
        raise ConfigError(f"config = {config!r}: expected the path of a SystemParams TOML file, or '' for the "
                          "paper's defaults")
    params = SystemParams.from_toml(config) if str(config) else SystemParams()
    from_file = _toml_fields(config) if str(config) else {}
    system = {} if system is None else system
    if not isinstance(system, dict):
        raise ConfigError(f"system = {system!r}: expected a dict of SystemParams fields, e.g. {{'snr_radar_db': 10.0}}")
    fields = {name: integer(value) for name, value in system.items()}
    for name, value in (("n_antennas", n_antennas), ("n_subcarriers", n_subcarriers)):
        if value is None:
            continue
        value = integer(value)
        for source, given in ((f"config {config}", from_file), ("system", fields)):
            if name in given and given[name] != value:
                raise ConfigError(f"{source} sets {name} = {given[name]!r} but the block's {name} is {value!r}: "
                                  f"give {given[name]!r} to the block's {name} (GRC sizes the ports from it)")
        fields[name] = value
    return params.replace(**fields) if fields else params


def true_array(ula, params: SystemParams) -> ImpairedULA:
    """A channel's true array from GRC: an `ImpairedULA` as it is; an int seed draws the array that
    ``isac ... --seed N`` draws (spacing errors, `isacblocks.blocks.true_array`); a file holds a spacing vector
    (``.npy`` or text, metres) or an array (``.npz``); a vector is a spacing vector."""
    if isinstance(ula, ImpairedULA):
        return ula
    if ula is None or isinstance(ula, (bool, np.bool_)):
        raise ConfigError(f"ula = {ula!r}: give the true array: a seed (an int), a file (.npy, .txt, .npz) or an "
                          "ImpairedULA")
    seed = integer(ula)
    if is_integer(seed):
        if seed < 0:
            raise ConfigError(f"ula = {ula!r}: a seed must be >= 0")
        return run_true_array(params, seed)
    if isinstance(ula, (str, os.PathLike)):
        return ImpairedULA.from_file(params, ula)
    return ImpairedULA(params, ula)


def array(spacing, params: SystemParams):
    """A receiver's or precoder's assumed array from GRC: None is lambda/2; a file holds a spacing
    vector (``.npy`` or text) or an array (``.npz``); a vector or an `ArrayImpairments` as it is."""
    if spacing is None:
        return params.nominal_spacing
    if isinstance(spacing, (str, os.PathLike)):
        return load_array(spacing, params.n_antennas, params.wavelength)
    return spacing


def post(gr_block, port: str, value) -> None:
    """A GRC callback: queue `value` for the wrapped block's input message port `port`; the block
    handles it in its own thread before its next work() (as a message from a GNU Radio port)."""
    wrapped_block(gr_block).post(port, value)


def post_array(gr_block, port: str, spacing) -> None:
    """A GRC callback for a new assumed array: `array` of `spacing` (a file read with the block's
    own SystemParams) posted to message port `port` (``spacing``)."""
    block = wrapped_block(gr_block)
    block.post(port, array(spacing, block.params))


def wrapped_block(gr_block) -> Block:
    """The isacblocks block inside what `as_gr_block` returned (or `gr_block` itself)."""
    if isinstance(gr_block, Block):
        return gr_block
    for name in ("block", "isac_block", "wrapped", "_block"):
        inner = getattr(gr_block, name, None)
        if isinstance(inner, Block):
            return inner
    for inner in vars(gr_block).values() if hasattr(gr_block, "__dict__") else ():
        if isinstance(inner, Block):
            return inner
    raise ConfigError(f"{gr_block!r} holds no isacblocks block")


def call(gr_block, method: str, *args):
    """A GRC callback: call the wrapped isacblocks block's `method` (the one the YAML was made from)."""
    return getattr(wrapped_block(gr_block), method)(*args)


# ------------------------------------------------------------------------------------------------
# The description of a class
# ------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class GrcParam:
    """One GRC parameter and how the make template passes it to the constructor."""

    id: str
    label: str
    dtype: str
    default: str
    #: How the make template passes it: "plain" as typed, "int" through `integer`, "ula" through
    #: `true_array`, "spacing" through `array`, "dtype" a numpy type; "grc": a System tab field.
    kind: str = "plain"
    required: bool = False
    options: list[str] | None = None
    option_labels: list[str] | None = None
    option_attributes: dict | None = None
    category: str | None = None
    hide: str | None = None

    def yaml(self) -> dict:
        out = {"id": self.id, "label": self.label, "dtype": self.dtype, "default": self.default}
        for key in ("options", "option_labels", "option_attributes", "category", "hide"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out


def _annotation(parameter: inspect.Parameter) -> str:
    ann = parameter.annotation
    if ann is _EMPTY:
        return ""
    text = ann if isinstance(ann, str) else getattr(ann, "__name__", str(ann))
    return text.replace("typing.", "").replace(" ", "")


def _label(name: str) -> str:
    return LABELS.get(name) or name.replace("_", " ").capitalize()


def _pyliteral(value) -> str:
    """`value` as Python source that GRC evaluates back to it (strings double-quoted)."""
    if isinstance(value, str):
        return json.dumps(value)
    text = repr(value)
    try:
        same = ast.literal_eval(text) == value
    except (ValueError, SyntaxError, TypeError):
        same = False
    if not same:
        raise GenerationError(f"default {value!r} cannot be written as a Python literal")
    return text


def _words(name: str, sep: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", sep, name)


def block_id(cls: type, prefix: str = PREFIX) -> str:
    """``isacblocks_mbml_estimator`` for `MBMLEstimator`."""
    return f"{prefix}_{_words(cls.__name__, '_').lower()}"


def _hints(cls: type, extra: dict | None) -> dict:
    hints: dict = {"enum": dict(GENERIC_ENUMS), "raw": {}, "callbacks": None, "labels": {}}
    for source in (HINTS.get(cls, {}), getattr(cls, "grc_hints", None) or {}, extra or {}):
        for key, value in source.items():
            if key in ("enum", "raw", "labels"):
                hints[key] = {**hints[key], **value}
            else:
                hints[key] = value
    return hints


def _constructor(cls: type) -> list[inspect.Parameter]:
    try:
        signature = inspect.signature(cls.__init__)
    except (TypeError, ValueError) as exc:
        raise GenerationError(f"{cls.__name__}: cannot read the constructor's signature ({exc})") from None
    return [p for name, p in signature.parameters.items() if name != "self"
            and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)]


def _system_params() -> list[GrcParam]:
    d = SystemParams()
    return [GrcParam("config", _label("config"), "file_open", "''", "grc", category="System", hide="part"),
            GrcParam("n_antennas", _label("n_antennas"), "int", str(d.n_antennas), "grc", category="System",
                     hide="part"),
            GrcParam("n_subcarriers", _label("n_subcarriers"), "int", str(d.n_subcarriers), "grc", category="System",
                     hide="part"),
            GrcParam("system", _label("system"), "raw", "{}", "grc", category="System", hide="part")]


def grc_params(cls: type, hints: dict | None = None) -> list[GrcParam]:
    """The GRC parameters of `cls`: one per constructor parameter (``name`` is the GRC id, ``params``
    the System tab), typed from the annotation or the default."""
    hints = _hints(cls, hints)
    out: list[GrcParam] = []
    for p in _constructor(cls):
        name, ann, default = p.name, _annotation(p), p.default
        required = default is _EMPTY
        label = hints["labels"].get(name) or _label(name)
        if name == "name":
            continue
        if name in GRC_RESERVED or name in SYSTEM_FIELDS:
            raise GenerationError(f"{cls.__name__}: constructor parameter {name!r} clashes with a GRC parameter id")
        if name == "params" or ann == "SystemParams":
            if name != "params":
                raise GenerationError(f"{cls.__name__}: a SystemParams parameter must be called 'params'")
            out.extend(_system_params())
            continue
        if ann == "ImpairedULA":
            out.append(GrcParam(name, label, "raw", "" if required else _pyliteral(default), "ula", required))
            continue
        if name == "spacing":
            out.append(GrcParam(name, label, "raw", "" if required else _pyliteral(default), "spacing", required))
            continue
        if name in hints["enum"]:
            values = list(hints["enum"][name])
            options = [_pyliteral(v) for v in values]
            text = options[0] if required else _pyliteral(default)
            if text not in options:
                raise GenerationError(f"{cls.__name__}: default {default!r} of {name!r} is none of {values}")
            out.append(GrcParam(name, label, "enum", text, "plain", required, options, [str(v) for v in values]))
            continue
        if name == "dtype":
            out.append(GrcParam(name, label, "enum", DTYPE_OPTIONS[0][0], "dtype", required,
                                [o[0] for o in DTYPE_OPTIONS], [o[2] for o in DTYPE_OPTIONS],
                                {"grc": [o[1] for o in DTYPE_OPTIONS]}))
            continue
        text = "" if required else _pyliteral(default)
        if name in hints["raw"]:
            values = list(hints["raw"][name])
            out.append(GrcParam(name, label, "raw", text, "plain", required, [_pyliteral(v) for v in values] or None,
                                [str(v) for v in values] or None))
        elif ann == "bool" or isinstance(default, bool):
            out.append(GrcParam(name, label, "bool", text or "False", "plain", required, ["True", "False"],
                                ["Yes", "No"]))
        elif ann == "int" or (not ann and type(default) is int):
            out.append(GrcParam(name, label, "int", text, "int", required))
        elif ann == "float" or (not ann and type(default) is float):
            out.append(GrcParam(name, label, "real", text, "plain", required))
        elif ann == "complex" or (not ann and type(default) is complex):
            out.append(GrcParam(name, label, "complex", text, "plain", required))
        elif ann == "str" or (not ann and isinstance(default, str)):
            out.append(GrcParam(name, label, "string", text, "plain", required))
        elif ann in ("int|None", "Optional[int]", "None|int"):
            out.append(GrcParam(name, label, "raw", text, "int", required))
        else:
            out.append(GrcParam(name, label, "raw", text, "plain", required))
    return out


# ------------------------------------------------------------------------------------------------
# Ports: build the block at a few points, fit each item dimension
# ------------------------------------------------------------------------------------------------
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
    hints = _hints(cls, hints)
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


# ------------------------------------------------------------------------------------------------
# Templates and the YAML
# ------------------------------------------------------------------------------------------------
def public_module(cls: type) -> str:
    """The shortest module path that exports `cls` (``isacblocks.blocks`` for `MBMLEstimator`)."""
    parts = cls.__module__.split(".")
    if parts[0] == "__main__":
        raise GenerationError(f"{cls.__name__} is defined in __main__: a GRC flowgraph cannot import it; define it "
                              "in a module")
    import importlib

    for n in range(1, len(parts) + 1):
        name = ".".join(parts[:n])
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if getattr(module, cls.__name__, None) is cls:
            return name
    return cls.__module__


def _argument(p: GrcParam) -> str:
    system = "isacblocks.gnuradio.grc.system_params(${config}, ${n_antennas}, ${n_subcarriers}, ${system})"
    return {"system": system,
            "ula": f"isacblocks.gnuradio.grc.true_array(${{{p.id}}}, {system})",
            "spacing": f"isacblocks.gnuradio.grc.array(${{{p.id}}}, {system})",
            "int": f"isacblocks.gnuradio.grc.integer(${{{p.id}}})"}.get(p.kind, f"${{{p.id}}}")


def templates(cls: type, plist: list[GrcParam], hints: dict | None = None, ports_in: tuple[str, ...] = ()) -> dict:
    """``imports``, ``make`` and ``callbacks`` of `cls`."""
    hints = _hints(cls, hints)
    module = public_module(cls)
    names = [p.name for p in _constructor(cls)]
    args = []
    for p in plist:
        if p.kind == "grc":
            if p.id == "config":
                args.append(f"params={_argument(GrcParam('params', '', 'raw', '', 'system'))}")
            continue
        args.append(f"{p.id}={_argument(p)}")
    if "name" in names:
        args.append("name='${id}'")
    imports = [f"import {module}", "import isacblocks.gnuradio", "import isacblocks.gnuradio.grc"]
    if any(p.kind == "dtype" for p in plist):
        imports.append("import numpy")
    out = {"imports": "\n".join(dict.fromkeys(imports)),
           "make": f"isacblocks.gnuradio.as_gr_block({module}.{cls.__name__}({', '.join(args)}))"}
    callbacks = hints["callbacks"]
    if callbacks is None:
        callbacks = [_setter(p, ports_in) for p in plist if p.kind not in ("grc", "ula", "dtype")
                     and (callable(getattr(cls, f"set_{p.id}", None)) or p.id in getattr(cls, "settings", {}))]
    out["callbacks"] = [_callback(c) for c in callbacks]
    if not out["callbacks"]:
        del out["callbacks"]
    return out


def _setter(p: GrcParam, ports_in: tuple[str, ...]) -> str:
    """The callback of a run-time setting (or a ``set_<name>`` parameter): a message to the input port of the
    same name where there is one (handled in the block's thread between work() calls), else a call.
    It names no System field, so GRC calls it when this parameter changes, not when K or S does."""
    if p.id in ports_in:
        helper = "post_array" if p.kind == "spacing" else "post"
        value = f"${{{p.id}}}" if p.kind == "spacing" else _argument(p)
        return f"isacblocks.gnuradio.grc.{helper}(self.${{id}}, '{p.id}', {value})"
    return f"set_{p.id}({_argument(p)})"


def _callback(text: str) -> str:
    """``set_x(args)`` as a call through `call` (the wrapper may not have set_x itself)."""
    match = re.fullmatch(r"\s*([A-Za-z_]\w*)\((.*)\)\s*", text, re.S)
    if not match:
        return text
    method, args = match.groups()
    return f"isacblocks.gnuradio.grc.call(self.${{id}}, '{method}'" + (f", {args})" if args.strip() else ")")


def _documentation(cls: type, module: str, plist: list[GrcParam]) -> str:
    doc = inspect.getdoc(cls) or cls.__name__
    notes = []
    if any(p.kind == "grc" for p in plist):
        notes.append("System tab: the SystemParams of the block: Config (a TOML file; '' = the paper's defaults), "
                     "K and S (they size the ports; a file or dict that sets other values is refused), and a "
                     "dict of any other field (over the file's). Give every block of the flowgraph the same values "
                     "(GRC variables).")
    if any(p.kind == "ula" for p in plist):
        notes.append("True array: a seed (the array isac --seed N draws), a spacing file (.npy, .txt) or an array "
                     "file (.npz), or an ImpairedULA expression; the channels of one flowgraph must share it.")
    if any(p.kind == "spacing" for p in plist):
        notes.append("Spacing: None (lambda/2), a spacing vector (m), a file (.npy, .txt, .npz), or an "
                     "ArrayImpairments; a new one also arrives on message port 'spacing'.")
    notes.append(f"Generated from {module}.{cls.__name__} by isacblocks {__version__} (isac grc install).")
    return doc + "\n\n" + "\n\n".join(notes)


def block_description(cls: type, *, category: str | None = None, hints: dict | None = None,
                      prefix: str = PREFIX) -> dict:
    """The GRC block description of `cls` as plain data (what `block_yaml` writes)."""
    if not (isinstance(cls, type) and issubclass(cls, Block)):
        raise GenerationError(f"{cls!r} is not an isacblocks block class")
    hints = _hints(cls, hints)
    plist = grc_params(cls, hints)
    ports = grc_ports(cls, plist, hints)
    module = public_module(cls)
    menu = category or CATEGORIES.get(cls) or cls.__module__.rsplit(".", 1)[-1].replace("_", " ").title()
    data: dict = {"id": block_id(cls, prefix), "label": _words(cls.__name__, " "),
                  "category": menu if menu.startswith("[") else f"[{prefix}]/{menu}", "flags": ["python"],
                  "parameters": [p.yaml() for p in plist]}
    inputs = [p.yaml() for p in ports if p.direction == "in"]
    outputs = [p.yaml() for p in ports if p.direction == "out"]
    if inputs:
        data["inputs"] = inputs
    if outputs:
        data["outputs"] = outputs
    asserts = [f"${{ {p.id} is not None }}" for p in plist if p.required and p.dtype == "raw"]
    if asserts:
        data["asserts"] = asserts
    data["templates"] = templates(cls, plist, hints, tuple(p.name for p in ports
                                                          if p.domain == "message" and p.direction == "in"))
    data["documentation"] = _documentation(cls, module, plist)
    data["file_format"] = 1
    return data


#: Plain words YAML 1.1 would read as something else than a string.
_YAML_WORDS = frozenset({"y", "n", "yes", "no", "true", "false", "on", "off", "null"})


def _scalar(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if value is None:
        return "null"
    text = str(value)
    if re.fullmatch(r"[A-Za-z_][\w.\-/]*", text) and text.lower() not in _YAML_WORDS:
        return text
    return "'" + text.replace("'", "''") + "'"


def _emit(value, indent: int) -> list[str]:
    pad = " " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, str) and "\n" in item:
                lines.append(f"{pad}{key}: |-")
                lines += [f"{pad}    {line}" if line else "" for line in item.split("\n")]
            elif isinstance(item, dict):
                lines.append(f"{pad}{key}:")
                lines += _emit(item, indent + 4)
            elif isinstance(item, list) and item and isinstance(item[0], dict):
                lines.append(f"{pad}{key}:")
                lines += _emit(item, indent)
            elif isinstance(item, list):
                lines.append(f"{pad}{key}: [{', '.join(_scalar(v) for v in item)}]")
            else:
                lines.append(f"{pad}{key}: {_scalar(item)}")
    else:  # a list of mappings
        for item in value:
            body = _emit(item, indent + 4)
            lines.append(f"{pad}-   {body[0][indent + 4:]}")
            lines += body[1:]
    return lines


def to_yaml(data: dict) -> str:
    """A block description as GRC YAML text (block style, every string quoted)."""
    blocks = []
    for key, value in data.items():
        blocks.append("\n".join(_emit({key: value}, 0)))
    spaced = {"parameters", "inputs", "outputs", "asserts", "templates", "documentation", "file_format"}
    text = ""
    for key, chunk in zip(data, blocks):
        text += ("\n" if key in spaced else "") + chunk + "\n"
    return f"{GENERATED_MARK} {__version__} (isac grc install); edits are overwritten.\n" + text


def block_yaml(cls: type, *, category: str | None = None, hints: dict | None = None, prefix: str = PREFIX) -> str:
    """The GRC YAML (``file_format: 1``) of the block class `cls` -- ours or one's own.

    `category`: the GRC menu (default: the class's in `CATEGORIES`, else its module's name, under
    ``[isacblocks]``).  `hints`: what the signature cannot say (see `HINTS`).  The class is built a
    few times with its defaults to read its ports: its constructor must not open sockets or files.
    """
    return to_yaml(block_description(cls, category=category, hints=hints, prefix=prefix))


def file_name(cls: type, prefix: str = PREFIX) -> str:
    return f"{block_id(cls, prefix)}.block.yml"


# ------------------------------------------------------------------------------------------------
# The public blocks, and installing them
# ------------------------------------------------------------------------------------------------
def public_blocks() -> list[type]:
    """The block classes that get a GRC block: the blocks of `isacblocks.blocks` (its ``__all__``
    and the multi-target blocks it imports) and of `isacblocks.core`, less `EXCLUDED`."""
    from .. import blocks, core

    names = [*blocks.__all__, *(n for n, v in vars(blocks).items() if isinstance(v, type) and issubclass(v, Block)
                                and v.__module__.startswith("isacblocks.blocks") and not n.startswith("_")),
             *core.__all__]
    classes = []
    for name in dict.fromkeys(names):
        cls = getattr(blocks, name, None) or getattr(core, name, None)
        if isinstance(cls, type) and issubclass(cls, Block) and name not in EXCLUDED and cls is not Block \
                and cls.__module__ not in ("isacblocks.core.block",):
            classes.append(cls)
    return classes


def all_yaml(classes: Iterable[type] | None = None) -> dict[str, str]:
    """``{file name: YAML}`` of `classes` (default: `public_blocks`)."""
    return {file_name(cls): block_yaml(cls) for cls in (public_blocks() if classes is None else classes)}


def _gnuradio_hier_dir(python: str) -> str | None:
    """The folder the installed GRC reads its user blocks from (``Config.hier_block_lib_dir``:
    ``~/.grc_gnuradio`` in GNU Radio 3.10.5, ``~/.local/state/gnuradio`` since GNU Radio PR #7350
    (3.10.11), or ``$GRC_HIER_PATH``), asked of GNU Radio's Python; None when it cannot tell."""
    script = "from gnuradio.grc.core.Config import Config; print(Config.hier_block_lib_dir)"
    try:
        done = subprocess.run([python, "-c", script], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = done.stdout.strip().splitlines()
    return lines[-1] if done.returncode == 0 and lines else None


def default_folder(python: str | None = None) -> tuple[Path, str]:
    """Where `install` writes by default, and why: the first folder of ``$GRC_BLOCKS_PATH``; else the
    user block folder the installed GRC reads (asked of GNU Radio's Python); else
    ``$GRC_HIER_PATH``, else ``~/.local/state/gnuradio`` (the newer GNU Radio's)."""
    from ..zmq.gnuradio import GR_PYTHON

    paths = [p for p in os.environ.get("GRC_BLOCKS_PATH", "").split(os.pathsep) if p.strip()]
    if paths:
        return Path(os.path.expandvars(paths[0])).expanduser(), "the first folder of GRC_BLOCKS_PATH"
    found = _gnuradio_hier_dir(python or GR_PYTHON)
    if found:
        return Path(found).expanduser(), "the user block folder of GNU Radio Companion"
    if os.environ.get("GRC_HIER_PATH"):
        return Path(os.environ["GRC_HIER_PATH"]).expanduser(), "GRC_HIER_PATH"
    return Path("~/.local/state/gnuradio").expanduser(), "GNU Radio 3.10.11+'s user block folder (GNU Radio not found)"


def _ours(path: Path, prefix: str) -> bool:
    if not (path.name.startswith(prefix + "_") and path.name.endswith(".block.yml") and path.is_file()):
        return False
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.readline().startswith(GENERATED_MARK)
    except OSError:
        return False


@dataclasses.dataclass
class InstallResult:
    folder: Path
    written: list[Path]
    removed: list[Path]


def install(folder, files: dict[str, str] | None = None, prefix: str = PREFIX,
            on_file: Callable[[Path], None] | None = None) -> InstallResult:
    """Write the YAML `files` (default: `all_yaml`) into `folder` (created if needed), each
    atomically, then remove the ``isacblocks_*.block.yml`` files that an earlier install wrote there
    and this one did not (a file without `GENERATED_MARK` is left alone)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"cannot install into {folder}: it is not a folder")
    files = all_yaml() if files is None else files
    make_folder(folder)
    written = []
    for name, text in files.items():
        path = folder / name
        write_text(path, text, "GRC block description")
        written.append(path)
        if on_file:
            on_file(path)
    removed = []
    for path in sorted(folder.glob(f"{prefix}_*.block.yml")):
        if path.name not in files and _ours(path, prefix):
            try:
                path.unlink()
            except OSError as exc:
                raise OutputError(f"cannot remove the stale {path}: {exc.strerror or exc}") from None
            removed.append(path)
    return InstallResult(folder, written, removed)
