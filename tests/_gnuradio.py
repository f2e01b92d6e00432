"""GNU Radio in the tests: skip (with the reason) where it is absent, fail under ``CI=true``,
and run GNU Radio scripts in a subprocess of Debian's Python (the venv cannot import gnuradio)."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from isacblocks.zeromq.gnuradio import GR_PYTHON, gnuradio_version


def require_gnuradio() -> str:
    """GNU Radio's version; skip with the reason when it is absent (under ``CI=true``: fail)."""
    version = gnuradio_version()
    if version is None:
        reason = (f"GNU Radio is not importable by {GR_PYTHON} (install it with "
                  "`apt-get install -y gnuradio`)")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason + "; CI=true requires it")
        pytest.skip(reason)
    return version


def run_gr(script: str, cwd=None, timeout: float = 120) -> dict:
    """Run `script` with GNU Radio's Python; it prints one JSON object as its last line."""
    proc = subprocess.run([GR_PYTHON, "-c", script], capture_output=True, text=True, timeout=timeout, cwd=cwd)
    assert proc.returncode == 0, f"GNU Radio script failed:\n{proc.stderr}"
    return json.loads(proc.stdout.strip().splitlines()[-1])
