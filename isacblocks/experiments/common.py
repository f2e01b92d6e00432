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

from ..blocks import ImpairedULA
from ..params import SystemParams

#: Spawn key of the true array's seed: the array drawn for ``--seed N`` is the same in every command.
ARRAY_SEED_KEY = 0xA11A


def add_common_options(parser: argparse.ArgumentParser, frames: int, frames_help: str) -> None:
    parser.add_argument("--seed", type=int, default=0, help="seed of the whole run (default 0)")
    parser.add_argument("--frames", type=int, default=frames, help=f"{frames_help} (default {frames})")
    parser.add_argument("--spacing", metavar="FILE", default=None,
                        help="true antenna spacing vector (.npy or text, metres, one per antenna); "
                             "default: drawn from the impairment model with --seed")
    parser.add_argument("--config", metavar="FILE", default=None, help="SystemParams TOML file (default: paper)")
    parser.add_argument("--json", metavar="PATH", default=None, help="write every number to this JSON file")
    parser.add_argument("--max-items", type=int, default=64, help="frames per work() call (default 64)")


def add_study_options(parser: argparse.ArgumentParser) -> None:
    """--seed, --config and --true-spacing of the learning studies."""
    parser.add_argument("--seed", type=int, default=0, help="seed of the run and of the drawn true array")
    parser.add_argument("--config", metavar="FILE", default=None, help="SystemParams TOML file")
    parser.add_argument("--true-spacing", metavar="FILE", default=None,
                        help="the true array's spacing (.npy or text); default: drawn from --seed")


def load_params(args) -> SystemParams:
    return SystemParams.from_toml(args.config) if args.config else SystemParams()


def true_array(params: SystemParams, seed: int, spacing_file: str | None) -> ImpairedULA:
    """The impaired array of this run: read from `spacing_file`, or drawn from `seed`."""
    if spacing_file:
        return ImpairedULA.from_file(params, spacing_file)
    return ImpairedULA.drawn(params, np.random.SeedSequence(seed, spawn_key=(ARRAY_SEED_KEY,)))


def run_record(args, params: SystemParams, ula: ImpairedULA) -> dict:
    """The configuration part of a JSON record: command line, parameters, seeds, array, machine."""
    return {
        "command": " ".join(sys.argv),
        "created_unix": time.time(),
        "seed": args.seed,
        "params": params.to_dict(),
        "true_spacing_source": _spacing_file(args) or f"drawn from seed {args.seed}",
        "true_spacing_m": ula.spacing.tolist(),
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "numpy": np.__version__},
    }


def _spacing_file(args) -> str | None:
    """The true-spacing file of a command line (``--spacing`` or ``--true-spacing``), if any."""
    return getattr(args, "spacing", None) or getattr(args, "true_spacing", None)


def write_json(path, record: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, default=_jsonable, allow_nan=True) + "\n")


def _jsonable(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


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
