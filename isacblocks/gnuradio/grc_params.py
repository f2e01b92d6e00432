"""GNU Radio Companion parameters read from a block class's constructor (`grc_params`).

One GRC parameter per constructor parameter, typed from its annotation or default; a
``params: SystemParams`` becomes the "System" tab (``config``, ``n_antennas``, ``n_subcarriers``,
``system``; read back by `isacblocks.gnuradio.grc.system_params`); what the signature cannot say
comes from `HINTS`, a class's ``grc_hints`` or the caller.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import json
import re

from ..blocks import (
    ISACCombiner,
    MBMLEstimator,
    ScenarioSource,
)
from ..blocks.multitarget import MultiTargetChannel
from ..blocks.receivers import MBML_METHODS
from ..dsp.angle_delay import DEVICES
from ..dsp.multitarget import COUNT_DISTRIBUTIONS
from ..errors import ConfigError
from ..params import SystemParams

__all__ = [
    "DTYPE_OPTIONS", "GENERIC_ENUMS", "GRC_RESERVED", "HINTS", "LABELS", "PREFIX", "SYSTEM_FIELDS", "block_id",
    "GenerationError", "grc_params", "GrcParam",
]

#: The item types a ``dtype`` parameter offers (TagFilter): numpy expression, GRC type, label.
DTYPE_OPTIONS = (("numpy.complex64", "complex", "complex64"), ("numpy.float32", "float", "float32"),
                 ("numpy.float64", "f64", "float64"), ("numpy.complex128", "fc64", "complex128"),
                 ("numpy.int32", "int", "int32"), ("numpy.int16", "short", "int16"),
                 ("numpy.int8", "byte", "int8"))


#: Prefix of the block ids and file names; `install` removes only such files that it wrote.
PREFIX = "isacblocks"

#: GRC's own parameter ids (every block has them), which a constructor parameter may not take.
GRC_RESERVED = frozenset({"id", "alias", "affinity", "minoutbuf", "maxoutbuf", "comment"})

#: The GRC parameters that stand for a constructor's ``params`` (the "System" tab).
SYSTEM_FIELDS = ("config", "n_antennas", "n_subcarriers", "system")

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


def pyliteral(value) -> str:
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


def split_words(name: str, sep: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", sep, name)


def block_id(cls: type, prefix: str = PREFIX) -> str:
    """``isacblocks_mbml_estimator`` for `MBMLEstimator`."""
    return f"{prefix}_{split_words(cls.__name__, '_').lower()}"


def merged_hints(cls: type, extra: dict | None) -> dict:
    hints: dict = {"enum": dict(GENERIC_ENUMS), "raw": {}, "callbacks": None, "labels": {}}
    for source in (HINTS.get(cls, {}), getattr(cls, "grc_hints", None) or {}, extra or {}):
        for key, value in source.items():
            if key in ("enum", "raw", "labels"):
                hints[key] = {**hints[key], **value}
            else:
                hints[key] = value
    return hints


def constructor_parameters(cls: type) -> list[inspect.Parameter]:
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
    hints = merged_hints(cls, hints)
    out: list[GrcParam] = []
    for p in constructor_parameters(cls):
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
            out.append(GrcParam(name, label, "raw", "" if required else pyliteral(default), "ula", required))
            continue
        if name == "spacing":
            out.append(GrcParam(name, label, "raw", "" if required else pyliteral(default), "spacing", required))
            continue
        if name in hints["enum"]:
            values = list(hints["enum"][name])
            options = [pyliteral(v) for v in values]
            text = options[0] if required else pyliteral(default)
            if text not in options:
                raise GenerationError(f"{cls.__name__}: default {default!r} of {name!r} is none of {values}")
            out.append(GrcParam(name, label, "enum", text, "plain", required, options, [str(v) for v in values]))
            continue
        if name == "dtype":
            out.append(GrcParam(name, label, "enum", DTYPE_OPTIONS[0][0], "dtype", required,
                                [o[0] for o in DTYPE_OPTIONS], [o[2] for o in DTYPE_OPTIONS],
                                {"grc": [o[1] for o in DTYPE_OPTIONS]}))
            continue
        text = "" if required else pyliteral(default)
        if name in hints["raw"]:
            values = list(hints["raw"][name])
            out.append(GrcParam(name, label, "raw", text, "plain", required, [pyliteral(v) for v in values] or None,
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
