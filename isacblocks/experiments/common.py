"""What every study and flowgraph script shares: options, the true array, JSON and tables."""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np

from .. import __version__
from ..blocks import ImpairedULA
from ..dsp.impairments import ArrayImpairments, load_array
from ..errors import ConfigError
from ..params import SystemParams
from ..safeio import make_folder, write_text
from .options import (
    add_impairments_option,
    add_json_option,
    add_run_options,
    add_spacing_options,
    add_true_spacing_option,
    assume_value,
    count_value,
)

#: Spawn key of the true array's seed: the array drawn for ``--seed N`` is the same in every command.
ARRAY_SEED_KEY = 0xA11A


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
    return SystemParams.from_toml(args.config) if args.config else SystemParams()


def true_array(params: SystemParams, seed: int, spacing_file: str | None, kinds=("spacing",)) -> ImpairedULA:
    """The impaired array of this run: read from `spacing_file`, or drawn from `seed` with the
    impairment `kinds` (`dsp.impairments.draw_impairments`; the spacing is the same draw for any kinds)."""
    if spacing_file:
        return ImpairedULA.from_file(params, spacing_file)
    return ImpairedULA.drawn(params, np.random.SeedSequence(seed, spawn_key=(ARRAY_SEED_KEY,)), kinds)


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


def true_spacing_source(args) -> str:
    """Where the true spacing of a run came from: the ``--true-spacing`` file (``--spacing`` in a
    command that still has the old name), or the seed."""
    return getattr(args, "true_spacing", None) or getattr(args, "spacing", None) or f"drawn from seed {args.seed}"


def run_record(args, params: SystemParams, ula: ImpairedULA) -> dict:
    """The configuration part of a JSON record: version, command line, parameters, seeds, array, machine."""
    return {
        "isacblocks_version": __version__,
        "command": " ".join(sys.argv),
        "created_unix": time.time(),
        "seed": args.seed,
        "params": params.to_dict(),
        "true_spacing_source": true_spacing_source(args),
        "true_spacing_m": ula.spacing.tolist(),
        **array_record(ula.array, "true_"),
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "numpy": np.__version__},
    }


def array_record(array, prefix: str = "") -> dict:
    """The gains and coupling of an array as JSON fields (real and imaginary parts); none for a spacing vector."""
    if not isinstance(array, ArrayImpairments):
        return {}
    return {f"{prefix}{kind}": {"re": getattr(array, kind).real.tolist(), "im": getattr(array, kind).imag.tolist()}
            for kind in ("gain", "coupling") if getattr(array, kind) is not None}


def write_json(path, record: dict) -> None:
    """Write `record` as strict JSON: a NaN or infinite number becomes ``null``, and
    ``null_reasons`` says, for each such place, what the number was and why."""
    reasons: dict[str, str] = {}
    clean = strict_json_value(record, "", reasons)
    if reasons:
        clean["null_reasons"] = reasons
    path = Path(path)
    make_folder(path.parent)
    write_text(path, json.dumps(clean, indent=2, allow_nan=False) + "\n")


_NULL_REASON = {"nan": "NaN: not defined (e.g. no frame to average, or no value measured)",
                "inf": "+Inf: unbounded", "-inf": "-Inf: unbounded"}


def strict_json_value(value, where: str, reasons: dict):
    """`value` with numpy types turned into Python ones and NaN/Inf into None (noted in `reasons`)."""
    if isinstance(value, dict):
        return {str(k): strict_json_value(v, f"{where}.{k}" if where else str(k), reasons) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [strict_json_value(v, f"{where}[{i}]", reasons) for i, v in enumerate(value)]
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        reasons[where] = _NULL_REASON[repr(value).lower()]
        return None
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"not JSON serialisable at {where}: {type(value).__name__}")


def available_memory_bytes() -> int | None:
    """Memory this process may still use (``MemAvailable`` of /proc/meminfo), None where unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


#: Bytes kept per simulated frame by an evaluation (statistic, estimates and truth, float64) and per task.
BYTES_PER_FRAME = 64
BYTES_PER_TASK = 4096


def results_bytes(frames: int, frames_per_task: int = 2000) -> int:
    """Memory the per-frame results of `frames` simulated frames take (and their tasks)."""
    return frames * BYTES_PER_FRAME + -(-frames // frames_per_task) * BYTES_PER_TASK


def check_memory(need_bytes: int, what: str) -> None:
    """Refuse up front a run whose arrays cannot fit in the memory available, with the estimate."""
    have = available_memory_bytes()
    if have is not None and need_bytes > have:
        raise ConfigError(f"{what} need about {need_bytes / 2**30:.3g} GiB, more than the "
                          f"{have / 2**30:.3g} GiB available; make the run smaller")


def fmt_interval(value: float, interval, digits: int = 4) -> str:
    lo, hi = interval
    return f"{value:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def table(headers: list[str], rows: list[list]) -> str:
    """A markdown table."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line = lambda row: "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |"  # noqa: E731
    return "\n".join([line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, cells)])


def degrees(rad: float) -> float:
    return math.degrees(rad)
