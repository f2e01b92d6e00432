"""The layers import only downwards: `dsp` (the physics) imports nothing built on it, and no two
packages import each other, directly or around a circle.

The graph is read from the source with `ast` (every ``import`` and ``from ... import``, also
those inside functions), one node per subpackage of `isacblocks` (``isacblocks.dsp``, ...),
per top-level module (``isacblocks.params``, ...) and ``benchmarks`` (the developer scripts beside
the package).

`isacblocks.bench` (``isac bench``) is the top layer: it may import anything in the package,
and nothing in the package imports it except the ``isac`` command (`isacblocks.cli`).  Its
dense reference implementations are what the benchmark measures against, not library code.

Below it, the command lines (`isacblocks.commands`) and the studies they run
(`isacblocks.experiments`): no library layer imports either, and the scripts beside the package
(`flowgraphs/`, `benchmarks/`) take their library code from the library, not from the studies.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: What `dsp` must not import: everything that is built on it.
ABOVE_DSP = ("sim", "executor", "blocks", "experiments", "commands", "learning", "zeromq", "core", "cli", "bench")
#: The benchmark layer, and the only node of the package that may import it.
BENCH, BENCH_IMPORTER = "isacblocks.bench", "isacblocks.cli"
#: The command lines and the studies, and the nodes that may import each (the layers above them).
COMMANDS, EXPERIMENTS = "isacblocks.commands", "isacblocks.experiments"
COMMAND_IMPORTERS = {"isacblocks.cli", BENCH}
STUDY_IMPORTERS = {COMMANDS, *COMMAND_IMPORTERS}


def _node(module: str) -> str | None:
    """The graph node of a dotted module name, or None outside the project."""
    parts = module.split(".")
    if parts[0] == "benchmarks":
        return "benchmarks"
    if parts[0] != "isacblocks":
        return None
    return "isacblocks" if len(parts) == 1 else f"isacblocks.{parts[1]}"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _imports(path: Path, annotations: bool = True) -> set[str]:
    """Dotted names of the modules `path` imports (relative imports resolved, also those inside
    functions); without `annotations`, not those under ``if TYPE_CHECKING:``.  ``from package
    import module`` names the module (and the package only for the names that are not modules)."""
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = set() if annotations else {
        id(n) for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING") for n in ast.walk(node)}
    names = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            modules = [f"{module}.{alias.name}" for alias in node.names if _is_module(f"{module}.{alias.name}")]
            names.update(modules)
            if len(modules) < len(node.names):
                names.add(module)
    return names


def _graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for path in [*sorted((ROOT / "isacblocks").rglob("*.py")), *sorted((ROOT / "benchmarks").rglob("*.py"))]:
        source = _node(_module_name(path))
        targets = {_node(name) for name in _imports(path)}
        edges.setdefault(source, set()).update(t for t in targets if t and t != source and t != "isacblocks")
    return edges


def _module_edges(package: str) -> list[tuple[str, str]]:
    """(module, imported module) pairs of the modules of `package` that leave it."""
    out = []
    for path in sorted((ROOT / package.replace(".", "/")).rglob("*.py")):
        for name in _imports(path):
            node = _node(name)
            if node and node != package:
                out.append((_module_name(path), name))
    return out


def test_the_graph_is_read_from_the_source():
    edges = _graph()
    assert "isacblocks.dsp" in edges["isacblocks.sim"]  # sim is built on dsp
    assert "isacblocks.executor" in edges["isacblocks.sim"]
    assert "isacblocks.sim" in edges["isacblocks.learning"]
    assert "isacblocks.experiments" in edges[BENCH]
    assert BENCH in edges[BENCH_IMPORTER]
    assert BENCH in edges["benchmarks"]  # the developer scripts build on the installed benchmark


def test_only_the_cli_imports_the_benchmark_layer():
    importers = sorted(node for node, targets in _graph().items()
                       if BENCH in targets and node not in (BENCH_IMPORTER, "benchmarks"))
    assert not importers, f"the library imports the benchmarks (isacblocks.bench): {importers}"


def test_no_library_layer_imports_the_commands_or_the_studies():
    edges = _graph()
    for layer, importers in ((COMMANDS, COMMAND_IMPORTERS), (EXPERIMENTS, STUDY_IMPORTERS)):
        below = sorted(node for node, targets in edges.items()
                       if layer in targets and node not in importers and node != "benchmarks")
        assert not below, f"library layers import {layer}: {below}"


def test_the_scripts_take_library_code_from_the_library_not_from_the_studies():
    """`flowgraphs/` and `benchmarks/` build on the blocks, `sim` and the commands, never on `experiments`."""
    offenders = [(str(path.relative_to(ROOT)), name)
                 for path in sorted([*(ROOT / "flowgraphs").glob("*.py"), *(ROOT / "benchmarks").rglob("*.py")])
                 for name in _imports(path) if name == EXPERIMENTS or name.startswith(EXPERIMENTS + ".")]
    assert not offenders, f"scripts import the studies: {offenders}"


def test_the_package_never_imports_the_source_tree_scripts():
    """`benchmarks/` is not installed: an import of it from the package breaks `pip install .`."""
    offenders = [(module, name) for module, name in _module_edges("isacblocks") if _node(name) == "benchmarks"]
    assert not offenders, f"the package imports benchmarks/: {offenders}"


def test_dsp_imports_nothing_built_on_it():
    upward = [(module, name) for module, name in _module_edges("isacblocks.dsp")
              if _node(name) in {f"isacblocks.{p}" for p in ABOVE_DSP} or _node(name) == "benchmarks"]
    assert not upward, f"dsp imports from the layers above it: {upward}"


def _circle(edges: dict[str, set[str]]) -> list[str] | None:
    """An import circle of the graph `edges` (node -> the nodes it imports), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt in edges and nxt not in state and (circle := visit(nxt)):
                return circle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state and (circle := visit(start)):
            return circle
    return None


def test_no_import_circle_between_packages():
    circle = _circle(_graph())
    assert circle is None, "import circle: " + " -> ".join(circle)


def test_no_package_imports_another_packages_private_module():
    private = []
    for package in sorted({n for n in _graph() if n.startswith("isacblocks.")}):
        for module, name in _module_edges(package):
            parts = name.split(".")
            if any(p.startswith("_") and not p.startswith("__") for p in parts[2:3]):
                private.append((module, name))
    assert not private, f"private modules used across packages: {private}"


def _runtime_imports(path: Path) -> set[str]:
    """The project modules `path` imports when it runs (`_imports` without annotations), each
    name cut back to the module that defines it."""
    resolved = set()
    for name in _imports(path, annotations=False):
        parts = name.split(".")
        while parts and not _is_module(".".join(parts)):
            parts.pop()
        if parts and parts[0] == "isacblocks":
            resolved.add(".".join(parts))
    return resolved


def test_no_import_circle_between_modules():
    """No module imports itself around a circle, counting the imports inside functions."""
    edges = {}
    for path in sorted((ROOT / "isacblocks").rglob("*.py")):
        name = _module_name(path)
        edges[name] = _runtime_imports(path) - {name}
    assert "isacblocks.dsp.angle_delay.cuda_kernel" in edges["isacblocks.dsp.angle_delay.cuda"]  # in a function
    circle = _circle(edges)
    assert circle is None, "import circle: " + " -> ".join(circle)


#: The longest a module may be (lines), and the exceptions: the PMT codec (one format, one file)
#: and the runtime core and the trainer, which are held shorter.
MAX_LINES, EXCEPTIONS = 450, {"isacblocks/zeromq/pmt.py": 800, "isacblocks/learning/trainer.py": 300}
MAX_CORE_LINES = 400


def test_modules_are_small():
    long = []
    for path in sorted((ROOT / "isacblocks").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        limit = EXCEPTIONS.get(rel, MAX_CORE_LINES if rel.startswith("isacblocks/core/") else MAX_LINES)
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > limit:
            long.append(f"{rel}: {lines} lines (at most {limit})")
    assert not long, "modules over their size: " + "; ".join(long)
