"""``isac bench`` without the source tree: the benchmark is part of the installed package.

The checks run the interpreter isolated (``-I``: no ``PYTHONPATH``, no working directory or
script folder on ``sys.path``) from an empty directory, so only what is installed can be
imported; with this checkout installed editable that is the package `isacblocks` and not
the ``benchmarks/`` folder beside it.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "isacblocks" / "bench"


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_no_module_of_the_package_imports_the_source_tree_scripts():
    offenders = {str(path.relative_to(ROOT)): sorted(n for n in _imports(path) if n.split(".")[0] == "benchmarks")
                 for path in sorted((ROOT / "isacblocks").rglob("*.py"))}
    assert not {k: v for k, v in offenders.items() if v}
    assert (BENCH / "dense_reference.py").is_file() and (BENCH / "suite.py").is_file()


def _isolated(args: list[str], cwd: Path, timeout: float = 300.0) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, "-I", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture
def installed(tmp_path):
    """An empty working directory from which this checkout's `isacblocks` imports as installed."""
    empty = tmp_path / "empty"
    empty.mkdir()
    probe = _isolated(["-c", "import isacblocks; print(isacblocks.__file__)"], empty)
    if probe.returncode != 0:
        pytest.skip("isacblocks is not installed in this interpreter (only on sys.path)")
    if Path(probe.stdout.strip()).resolve().parent != ROOT / "isacblocks":
        pytest.skip(f"the installed isacblocks is another copy ({probe.stdout.strip()}), not this checkout")
    return empty


#: Bench modules that run only in the Python that has GNU Radio (`.venv-gr`): the `gr_native`
#: section starts them there as a process of their own.
NEEDS_GNURADIO = {"gr_native"}


def test_every_bench_module_imports_without_the_source_tree(installed):
    modules = sorted(f"isacblocks.bench.{p.stem}" for p in BENCH.glob("*.py")
                     if p.stem != "__main__" and p.stem not in NEEDS_GNURADIO)
    code = ("import importlib, json, sys\n"
            f"for name in {modules!r}:\n"
            "    importlib.import_module(name)\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'benchmarks')))\n")
    run = _isolated(["-c", code], installed)
    assert run.returncode == 0, run.stderr[-3000:]
    assert json.loads(run.stdout.strip().splitlines()[-1]) == []


def test_isac_bench_help_and_a_cheap_section_run_from_an_empty_directory(installed):
    run = _isolated(["-m", "isacblocks.cli", "bench", "--help"], installed)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "--only" in run.stdout and "stream" in run.stdout
    script = Path(sys.executable).with_name("isac")
    if script.is_file():  # the console script of the install
        run = subprocess.run([str(script), "bench", "--help"], cwd=installed, capture_output=True, text=True,
                             timeout=120)
        assert run.returncode == 0 and "usage: isac bench" in run.stdout, run.stderr[-3000:]
    out = installed / "out"
    run = _isolated(["-m", "isacblocks.bench", "--quick", "--only", "work_overhead", "--out", str(out)], installed)
    assert run.returncode == 0, run.stderr[-3000:]
    record = json.loads((out / "bench.json").read_text())
    assert record["meta"]["command"].startswith("python -m isacblocks.bench")
    assert record["results"]["work_overhead"]["64"]["us_per_call"] > 0
    assert sorted(p.name for p in installed.iterdir()) == ["out"]  # nothing else written to the working directory
