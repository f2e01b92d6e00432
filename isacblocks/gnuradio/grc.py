"""GNU Radio Companion block descriptions generated from the block classes, and the helpers their
``make`` templates call.

`block_yaml(cls)` writes the GRC YAML (``file_format: 1``) of any block class: parameters from the
constructor's signature (`inspect.signature`), ports from the ``in_sig`` / ``out_sig`` the class
declares, message ports by name, ``make`` = ``isacblocks.gnuradio.as_gr_block(module.Class(...))``,
callbacks for what a block can change while it runs, and the class docstring.  `install` writes
the YAML of every public block (`public_blocks`) into a folder GRC reads (``isac grc install``).

The generator is in modules of its own, whose names this module also gives:
`~isacblocks.gnuradio.grc_params` (parameters), `~isacblocks.gnuradio.grc_ports` (ports),
`~isacblocks.gnuradio.grc_yaml` (templates, documentation, the YAML text) and
`~isacblocks.gnuradio.grc_install` (the public blocks, the folder, install).  This module holds the
helpers the generated ``make`` templates call as ``isacblocks.gnuradio.grc.NAME``.

Nothing here imports GNU Radio: the YAML is made, and checked, in any Python
(``isac grc install`` loads this file on its own where the package ``isacblocks.gnuradio``, which
needs GNU Radio, cannot be imported).

**System configuration.**  A block that takes ``params`` gets, on a "System" tab: ``config`` (a
SystemParams TOML file, ``''`` = the paper's defaults), ``n_antennas`` and ``n_subcarriers``
(GRC must know K and S to size the ports, so they are fields of their own; a file or dict that sets
another K or S is refused, naming both) and ``system`` (a dict of any other SystemParams field,
e.g. ``{'snr_radar_db': 10.0}``, over the file's).  All blocks of a flowgraph should show the same
values: point them at GRC variables.

**GRC's numbers.**  GRC passes floats where ints are meant (``1e3``, a QT range, a ``real``
variable); the ``make`` template passes every integer parameter through `integer`, which turns an
integral float into an int and leaves anything else to the block's own check.
"""

from __future__ import annotations

import math
import os
import tomllib

import numpy as np

from ..blocks.ula import ImpairedULA
from ..blocks.ula import true_array as run_true_array
from ..core import Block
from ..dsp.impairments import load_array
from ..errors import ConfigError
from ..params import SystemParams
from ..safeio import read_text
from ..validation import is_integer
from .grc_install import EXCLUDED, InstallResult, all_yaml, default_folder, install, public_blocks
from .grc_params import (
    DTYPE_OPTIONS,
    GENERIC_ENUMS,
    GRC_RESERVED,
    HINTS,
    LABELS,
    PREFIX,
    SYSTEM_FIELDS,
    GenerationError,
    GrcParam,
    block_id,
    grc_params,
)
from .grc_ports import PORT_TYPES, GrcPort, grc_ports
from .grc_yaml import (
    CATEGORIES,
    GENERATED_MARK,
    block_description,
    block_yaml,
    file_name,
    public_module,
    templates,
    to_yaml,
)

__all__ = [
    "CATEGORIES", "DTYPE_OPTIONS", "EXCLUDED", "GENERATED_MARK", "GENERIC_ENUMS", "GRC_RESERVED", "HINTS",
    "LABELS", "PORT_TYPES", "PREFIX", "SYSTEM_FIELDS", "all_yaml", "array", "block_description", "block_id",
    "block_yaml", "call", "default_folder", "file_name", "GenerationError", "grc_params", "grc_ports",
    "GrcParam", "GrcPort", "install", "InstallResult", "integer", "post", "post_array", "public_blocks",
    "public_module", "system_params", "templates", "to_yaml", "true_array", "wrapped_block",
]


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
