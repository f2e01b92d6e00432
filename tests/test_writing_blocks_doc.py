"""Every Python code block of docs/writing-blocks.md runs, in order, in one namespace."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "writing-blocks.md"


def test_the_code_in_writing_blocks_runs():
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) >= 3
    namespace: dict = {"__name__": "writing_blocks_doc"}
    for index, code in enumerate(blocks):
        exec(compile(code, f"{DOC.name}[block {index}]", "exec"), namespace)  # noqa: S102 - our own doc
    assert {"Scale", "Average", "KeepTagged"} <= set(namespace)
