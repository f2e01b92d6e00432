#!/usr/bin/env python3
"""Bit-for-bit state comparison of two versions of isacblocks (for refactors that must move no number).

``capture`` runs a fixed set of small, seeded ``isac`` commands and flowgraphs against the source tree
``--root`` (imported through ``PYTHONPATH``, so an old checkout can be captured by the new script) and
keeps every JSON and array they write; ``compare`` walks two captures and reports every value that
differs.  Wall-clock fields (times, rates, counters of work calls) and the link's random run id
are left out of the comparison: they are measurements and labels, not results.

    python benchmarks/state_compare.py capture /tmp/before --root /path/to/old/checkout
    python benchmarks/state_compare.py capture /tmp/after
    python benchmarks/state_compare.py compare /tmp/before /tmp/after
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ISAC = "import sys; from isacblocks.cli import main; sys.exit(main(sys.argv[1:]))"

#: (name, argv of `isac`): each runs in its own folder of the capture.
COMMANDS = [
    ("draw_spacing", ["draw-spacing", "--seed", "3", "--out", "d.npy", "--json", "out.json"]),
    ("sensing", ["sensing", "--frames", "256", "--seed", "5", "--json", "out.json"]),
    ("isac_sweep", ["isac-sweep", "--frames", "24", "--seed", "5", "--json", "out.json"]),
    ("evaluate", ["evaluate", "--assume", "nominal", "--frames", "256", "--seed", "5", "--json", "out.json"]),
    ("train_ul", ["train", "--schedule", "ul", "--iterations", "6", "--batch-size", "16", "--seed", "5",
                  "--out", "d.npy", "--eval", "--eval-frames", "256", "--json", "out.json"]),
    ("train_sl_ul", ["train", "--schedule", "sl+ul", "--labeled-ratio", "0.5", "--iterations", "6",
                     "--batch-size", "16", "--seed", "6", "--out", "d.npy", "--json", "out.json"]),
    ("impairments", ["impairments", "--iterations", "4", "--batch-size", "16", "--eval-frames", "256",
                     "--calibration-frames", "8", "--seed", "5", "--out", "imp", "--json", "out.json"]),
    ("snr_sweep", ["snr-sweep", "--snr", "0:20:10", "--frames", "200", "--learned", "../train_sl_ul/d.npy",
                   "--seed", "5", "--out", "snr", "--json", "out.json"]),
    ("multi_target", ["multi-target", "--snr", "10:20:10", "--max-targets", "1:2", "--frames", "20", "--seed", "5",
                      "--out", "mt", "--json", "out.json"]),
    ("reproduce_fig3", ["reproduce", "--scale", "quick", "--fig", "3", "--seed", "5", "--out", "repro"]),
]
#: Keys whose values are measurements of time or of the run's own bookkeeping, not results.
TIMING_KEY = re.compile(r"(wall|second|_s$|^s$|time|fps|rate_|per_s|throughput|elapsed|perf|duration|started|"
                        r"work_calls|version|journal|path|out$|file|host|pid|created|run_id|stream_id)", re.IGNORECASE)

#: A link's random run id (16 hex digits), drawn anew by every run, inside a text.
RUN_ID = re.compile(r"\b[0-9a-f]{16}\b")


def _run(argv: list[str], cwd: Path, root: Path, log) -> int:
    env = dict(os.environ, PYTHONPATH=str(root), ISAC_KERNELS="native", MPLBACKEND="Agg")
    done = subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=1800)
    log.write(f"$ {' '.join(argv)}\n{done.stdout}\n")
    return done.returncode


def _link(folder: Path, root: Path, log) -> int:
    """`isac rx` and `isac tx` over loopback TCP, 40 frames."""
    address = "tcp://127.0.0.1:47555"
    base = [sys.executable, "-c", ISAC]
    env = dict(os.environ, PYTHONPATH=str(root), ISAC_KERNELS="native")
    rx = subprocess.Popen([*base, "rx", "--address", address, "--seed", "7", "--json", "rx.json",
                           "--idle-timeout", "60", "--save-records", "records.npz"], cwd=folder, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    tx = _run([*base, "tx", "--address", address, "--frames", "40", "--seed", "7", "--json", "tx.json"], folder, root,
              log)
    out, _ = rx.communicate(timeout=600)
    log.write(f"$ rx\n{out}\n")
    return tx or rx.returncode


def capture(out: Path, root: Path, only: list[str] | None = None) -> int:
    out.mkdir(parents=True, exist_ok=True)
    failed = 0
    with open(out / "log.txt", "a") as log:
        for name, argv in COMMANDS:
            if only and name not in only:
                continue
            folder = out / name
            folder.mkdir(exist_ok=True)
            rc = _run([sys.executable, "-c", ISAC, *argv], folder, root, log)
            print(f"{name}: exit {rc}", flush=True)
            failed += rc != 0
        if not only or "link" in only:
            folder = out / "link"
            folder.mkdir(exist_ok=True)
            rc = _link(folder, root, log)
            print(f"link: exit {rc}", flush=True)
            failed += rc != 0
    return 1 if failed else 0


def _diff_json(a, b, where: str, out: list[str]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if TIMING_KEY.search(str(key)):
                continue
            if key not in a or key not in b:
                out.append(f"{where}.{key}: only in {'after' if key not in a else 'before'}")
            else:
                _diff_json(a[key], b[key], f"{where}.{key}", out)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append(f"{where}: length {len(a)} vs {len(b)}")
        for i, (x, y) in enumerate(zip(a, b)):
            _diff_json(x, y, f"{where}[{i}]", out)
    elif isinstance(a, str) and isinstance(b, str):
        if RUN_ID.sub("<run>", a) != RUN_ID.sub("<run>", b):
            out.append(f"{where}: {a!r} vs {b!r}")
    elif a != b and not (isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b)):
        out.append(f"{where}: {a!r} vs {b!r}")


def _load_arrays(path: Path) -> dict:
    if path.suffix == ".npy":
        return {"": np.load(path, allow_pickle=False)}
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def compare(before: Path, after: Path) -> int:
    diffs: list[str] = []
    compared = 0
    for path in sorted(before.rglob("*")):
        rel = path.relative_to(before)
        other = after / rel
        if path.suffix not in (".json", ".npy", ".npz"):
            continue
        if not other.exists():
            diffs.append(f"{rel}: missing after")
            continue
        compared += 1
        if path.suffix == ".json":
            _diff_json(json.loads(path.read_text()), json.loads(other.read_text()), str(rel), diffs)
        else:
            a, b = _load_arrays(path), _load_arrays(other)
            for key in sorted(set(a) | set(b)):
                if key not in a or key not in b or a[key].shape != b[key].shape or a[key].dtype != b[key].dtype \
                        or not np.array_equal(a[key], b[key], equal_nan=a[key].dtype.kind in "fc"):
                    diffs.append(f"{rel}[{key}]: arrays differ")
    for line in diffs:
        print(line)
    print(f"{compared} files compared, {len(diffs)} differences")
    return 1 if diffs or compared == 0 else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    cap = sub.add_parser("capture", help="run the fixed commands and keep their outputs")
    cap.add_argument("out", type=Path)
    cap.add_argument("--root", type=Path, default=ROOT, help="source tree to import isacblocks from")
    cap.add_argument("--only", nargs="+", metavar="NAME", help="run only these entries (names as in COMMANDS, or link)")
    cmp_ = sub.add_parser("compare", help="report every result that differs between two captures")
    cmp_.add_argument("before", type=Path)
    cmp_.add_argument("after", type=Path)
    args = parser.parse_args(argv)
    if args.what == "capture":
        return capture(args.out.resolve(), args.root.resolve(), args.only)
    return compare(args.before, args.after)


if __name__ == "__main__":
    sys.exit(main())
