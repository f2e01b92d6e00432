"""The ``gr_native`` section of ``isac bench``: isacblocks blocks inside GNU Radio's scheduler.

It runs `isacblocks.bench.gr_native` in the Python that imports both GNU Radio and isacblocks
(``.venv-gr``, made by ``make gnuradio``; ``$ISAC_GR_PYTHON`` names another) and reads its
JSON: the wrapper's cost per work() call against a plain ``gr.sync_block``, and the receive
chain and the whole transceiver in GNU Radio's scheduler against isacblocks' own runtime, in
the same run.  Where no such Python exists the section says so and is skipped.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path


def gr_native_python() -> str | None:
    """The Python that imports GNU Radio and isacblocks: ``$ISAC_GR_PYTHON``, else the checkout's ``.venv-gr``."""
    named = os.environ.get("ISAC_GR_PYTHON")
    if named:
        return named
    candidate = Path(__file__).resolve().parents[2] / ".venv-gr" / "bin" / "python"
    return str(candidate) if candidate.exists() else None


def run(frames: int, repeats: int, calls: int, timeout: float = 900.0) -> dict:
    python = gr_native_python()
    if python is None:
        return {"skipped": "no Python with GNU Radio and isacblocks (make gnuradio builds .venv-gr, or set "
                           "ISAC_GR_PYTHON)"}
    with tempfile.TemporaryDirectory(prefix="isac-gr-native-") as folder:
        out = Path(folder) / "gr_native.json"
        done = subprocess.run([python, "-m", "isacblocks.bench.gr_native", "--frames", str(frames), "--repeats",
                               str(repeats), "--calls", str(calls), "--json", str(out)],
                              capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "ISAC_KERNELS": os.environ.get("ISAC_KERNELS", "native")})
        if done.returncode != 0 or not out.exists():
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise RuntimeError(f"{python} -m isacblocks.bench.gr_native exited {done.returncode}: {' / '.join(tail)}")
        return json.loads(out.read_text())
