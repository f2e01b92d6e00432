"""The command-line vocabulary every ``isac`` command shares, and its argument-time checks.

Each ``type=`` function below checks one kind of value when argparse reads it, so a user
mistake ends as ``isac <command>: error: argument --x: <what, the value, the rule>`` (exit
2) before any computation starts.

The vocabulary:

- ``--seed N`` (a non-negative integer), ``--config FILE`` (a SystemParams TOML file);
- ``--true-spacing FILE``: the spacing of the true, impaired array (default: drawn from ``--seed``);
- ``--assume known|nominal|FILE``: the spacing the transceiver assumes: the true one, lambda/2,
  or one read from a file;
- ``--json PATH``: a JSON record of every number (strict JSON), checked writable up front;
- ``--device cpu|cuda``: where the map kernel (and training's torch parts) run; "cuda" is
  checked for a usable device when the option is read.

`load_params` and `assumed_spacing` turn ``--config`` and ``--assume`` into the objects a command runs with.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from ..blocks.ula import ImpairedULA
from ..dsp.impairments import load_array
from ..errors import IsacError
from ..params import SystemParams

ASSUME_CHOICES = ("known", "nominal")


class HelpFormatter(argparse.HelpFormatter):
    """Shows every option's default in ``--help`` (unless the help text already states it)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if (not action.option_strings or "default" in text or action.default is None or action.default is False
                or action.default is argparse.SUPPRESS):
            return text
        return f"{text} (default: %(default)s)"


def _fail(value, rule: str):
    raise argparse.ArgumentTypeError(f"{value!r}: {rule}")


def integer_at_least(minimum: int):
    """``type=`` for an integer >= `minimum`."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            _fail(text, f"must be an integer >= {minimum}")
        if value < minimum:
            _fail(text, f"must be an integer >= {minimum}")
        return value
    parse.__name__ = f"integer >= {minimum}"
    return parse


seed_value = integer_at_least(0)
count_value = integer_at_least(1)


def real_in(lo: float, hi: float, lo_open: bool = False, hi_open: bool = False):
    """``type=`` for a finite real number in the interval ``[lo, hi]`` (ends open when asked)."""
    rule = f"must be a number in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            _fail(text, rule)
        below = value <= lo if lo_open else value < lo
        above = value >= hi if hi_open else value > hi
        if value != value or below or above:
            _fail(text, rule)
        return value
    parse.__name__ = "number"
    return parse


ratio_value = real_in(0.0, 1.0)
positive_real = real_in(0.0, float("inf"), lo_open=True, hi_open=True)


def input_file(text: str) -> str:
    """``type=`` for a file that must exist and be readable."""
    path = Path(text)
    if not path.exists():
        _fail(text, "no such file")
    if path.is_dir():
        _fail(text, "is a folder; a file is expected")
    if not os.access(path, os.R_OK):
        _fail(text, "cannot be read (permission denied)")
    return text


def output_file(text: str) -> str:
    """``type=`` for a file to be written: its folder exists and is writable, the path is no folder."""
    path = Path(text)
    if text.endswith(os.sep) or path.is_dir():
        _fail(text, "is a folder; a file name is expected")
    folder = path.parent
    if not folder.is_dir():
        _fail(text, f"folder {str(folder)!r} does not exist (create it first)")
    if not _can_write_in(folder) or (path.exists() and not os.access(path, os.W_OK)):
        _fail(text, "is not writable (cannot create a file there)")
    return text


def _can_write_in(folder: Path) -> bool:
    """Whether a file can be created in `folder` (tried, not guessed from permission bits)."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def output_dir(text: str) -> str:
    """``type=`` for a folder to be written (created if needed): no file is in the way and the
    nearest existing folder above it is writable."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        _fail(text, "is a file; a folder is expected")
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        _fail(text, f"{str(existing)!r} is a file; a folder is expected")
    if not _can_write_in(existing):
        _fail(text, f"folder {str(existing)!r} is not writable (cannot create a file there)")
    return text


def assume_value(text: str) -> str:
    """``type=`` of ``--assume``: ``known``, ``nominal`` or a readable spacing file."""
    return text if text in ASSUME_CHOICES else input_file(text)


def add_run_options(parser: argparse.ArgumentParser, seed_help: str = "seed of the run and of the drawn true array",
                    config: bool = True) -> None:
    """``--seed`` and ``--config``."""
    parser.add_argument("--seed", type=seed_value, default=0, help=seed_help)
    if config:
        parser.add_argument("--config", metavar="FILE", type=input_file, default=None,
                            help="SystemParams TOML file (default: the paper's parameters)")


def add_true_spacing_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--true-spacing", metavar="FILE", type=input_file, default=None,
                        help="the true, impaired array's spacing (.npy or text, metres, one per antenna), or a "
                             "whole impaired array (.npz with spacing, gain, coupling); default: drawn from the "
                             "impairment model with --seed")


def add_doc_option(parser: argparse.ArgumentParser, begin: str, end: str, example: str) -> None:
    """``--doc FILE``: the document whose table between the markers `begin` and `end` a command rewrites."""
    parser.add_argument("--doc", metavar="FILE", type=input_file, default=None,
                        help=f"replace the table between {begin} and {end} in FILE ({example})")


def impairments_value(text: str) -> tuple[str, ...]:
    """``type=`` of ``--impairments``: a comma list of spacing, gain, coupling."""
    from ..dsp.impairments import parse_kinds
    from ..errors import ConfigError

    try:
        return parse_kinds(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_impairments_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--impairments", metavar="KINDS", type=impairments_value, default=("spacing",),
                        help="array impairments, a comma list of spacing, gain, coupling (a_pert = C diag(g) "
                             f"a(theta; d)): those of the true array drawn with --seed{what} (default: spacing)")


def add_assume_option(parser: argparse.ArgumentParser, default: str | None = "known", required: bool = False) -> None:
    parser.add_argument("--assume", metavar="known|nominal|FILE", type=assume_value, default=default,
                        required=required,
                        help="the spacing the transceiver assumes: the true one (known), lambda/2 (nominal), "
                             "or one read from FILE (.npy or text, metres)")


def device_value(text: str) -> str:
    """``--device cpu|cuda``; "cuda" is refused here, before any work, where no CUDA device is usable."""
    from ..dsp.angle_delay import DEVICES, resolve_device

    if text not in DEVICES:
        _fail(text, f"expected one of {', '.join(DEVICES)}")
    try:
        return resolve_device(text, "--device", "value")
    except IsacError as exc:
        raise argparse.ArgumentTypeError(str(exc).replace("--device.value = 'cuda': ", "cuda: ")) from None


def add_device_option(parser: argparse.ArgumentParser, what: str) -> None:
    """``--device cpu|cuda``: where `what` runs (cuda: numba-cuda and, for training, a CUDA build of torch)."""
    parser.add_argument("--device", type=device_value, default="cpu", metavar="{cpu,cuda}",
                        help=f"where {what} runs (cuda needs the 'cuda' extra and a GPU)")


def add_json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", metavar="PATH", type=output_file, default=None,
                        help="write every number, with version, seed, configuration and the true spacing's "
                             "source, to this JSON file")


def add_spacing_options(parser: argparse.ArgumentParser, assume: bool = False) -> None:
    """The shared vocabulary of a command that simulates an array: ``--seed``, ``--config``,
    ``--true-spacing`` (and ``--assume`` when the command lets the transceiver assume a spacing)
    and ``--json``."""
    add_run_options(parser)
    add_true_spacing_option(parser)
    if assume:
        add_assume_option(parser)
    add_json_option(parser)


def add_common_options(parser: argparse.ArgumentParser, frames: int, frames_help: str) -> None:
    """The options of a flowgraph study: the shared vocabulary (`add_spacing_options`, with
    ``--assume`` repeatable), ``--frames`` and ``--max-items``."""
    add_run_options(parser)
    add_true_spacing_option(parser)
    parser.add_argument("--assume", metavar="known|nominal|FILE", type=assume_value, action="append", default=None,
                        help="a spacing the receiver assumes: the true one (known), lambda/2 (nominal), or one "
                             "read from FILE; repeat for several (default: known and nominal)")
    add_impairments_option(parser, "")
    add_json_option(parser)
    parser.add_argument("--frames", type=count_value, default=frames, help=f"{frames_help} (default {frames})")
    parser.add_argument("--max-items", type=count_value, default=64, help="frames per work() call (default 64)")


def add_study_options(parser: argparse.ArgumentParser) -> None:
    """--seed, --config, --true-spacing and --json of the learning studies."""
    add_spacing_options(parser)


def load_params(args) -> SystemParams:
    """The `SystemParams` of ``--config`` (default: the paper's)."""
    return SystemParams.from_toml(args.config) if args.config else SystemParams()


#: The label of each ``--assume`` keyword in tables and JSON records.
ASSUME_LABELS = {"known": "known", "nominal": "unknown"}


def assumed_spacing(choice: str, params: SystemParams, ula: ImpairedULA):
    """The array that ``--assume choice`` names: the true one (with its gains and coupling, if
    any), lambda/2, or a file's (a spacing vector, or an ``.npz`` array)."""
    if choice == "known":
        return ula.array
    if choice == "nominal":
        return params.nominal_spacing
    return load_array(choice, params.n_antennas, params.wavelength)


def assumed_spacings(choices, params: SystemParams, ula: ImpairedULA) -> dict:
    """``{label: spacing}`` for a repeatable ``--assume`` (default: known and nominal)."""
    choices = choices or ["known", "nominal"]
    return {ASSUME_LABELS.get(c, c): assumed_spacing(c, params, ula) for c in choices}
