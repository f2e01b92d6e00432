"""What the studies and the commands share in their records and tables: the configuration part
of a JSON record (`run_record`) and Markdown tables."""

from __future__ import annotations

import platform
import sys
import time

import numpy as np

from .. import __version__
from ..blocks import ImpairedULA
from ..dsp.impairments import ArrayImpairments
from ..params import SystemParams


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


def fmt_interval(value: float, interval, digits: int = 4) -> str:
    lo, hi = interval
    return f"{value:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def table(headers: list[str], rows: list[list]) -> str:
    """A markdown table."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line = lambda row: "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |"  # noqa: E731
    return "\n".join([line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, cells)])
