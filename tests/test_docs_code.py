"""The Python code in the docs runs: every block of docs/writing-blocks.md, in order, in one
namespace, and the README's examples (the custom flowgraph, the benchmark of a flowgraph)
with their frame counts made small (512 frames: the detection threshold needs 100 frames without a target)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "writing-blocks.md"
README = ROOT / "README.md"


def _python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


def test_the_code_in_writing_blocks_runs():
    blocks = _python_blocks(DOC)
    assert len(blocks) >= 3
    namespace: dict = {"__name__": "writing_blocks_doc"}
    for index, code in enumerate(blocks):
        exec(compile(code, f"{DOC.name}[block {index}]", "exec"), namespace)  # noqa: S102 - our own doc
    assert {"Scale", "Average", "KeepTagged", "ScaleTwice"} <= set(namespace)


#: What makes the README's examples quick, without changing what they do.
SMALL = ((re.compile(r"n_frames=\d+"), "n_frames=512"), (re.compile(r"repeats=\d+"), "repeats=1"))


@pytest.mark.parametrize("index", range(len(_python_blocks(README))))
def test_the_code_in_the_readme_runs(index, capsys):
    code = _python_blocks(README)[index]
    for pattern, small in SMALL:
        code = pattern.sub(small, code)
    exec(compile(code, f"{README.name}[block {index}]", "exec"), {"__name__": "readme"})  # noqa: S102
    assert capsys.readouterr().out.strip()  # each example prints its result
