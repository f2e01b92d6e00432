"""Run GNU Radio flowgraphs in a subprocess of Debian's Python (the venv cannot import gnuradio)."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

GR_PYTHON = "/usr/bin/python3"


def gnuradio_available() -> tuple[bool, str]:
    try:
        proc = subprocess.run([GR_PYTHON, "-c", "import gnuradio, gnuradio.blocks"], capture_output=True,
                              text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"{GR_PYTHON} cannot run: {exc}"
    if proc.returncode:
        return False, f"{GR_PYTHON} -c 'import gnuradio' failed: {proc.stderr.strip().splitlines()[-1:]}"
    return True, ""


def require_gnuradio() -> None:
    """Skip with the reason when GNU Radio is missing; under CI=true, fail instead."""
    ok, why = gnuradio_available()
    if not ok:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"GNU Radio is required under CI=true: {why}")
        pytest.skip(f"GNU Radio not available: {why}")


def run_gr(script: str, cwd=None, timeout: float = 120) -> dict:
    """Run `script` with GNU Radio's Python; it prints one JSON object as its last line."""
    proc = subprocess.run([GR_PYTHON, "-c", script], capture_output=True, text=True, timeout=timeout, cwd=cwd)
    assert proc.returncode == 0, f"GNU Radio script failed:\n{proc.stderr}"
    return json.loads(proc.stdout.strip().splitlines()[-1])
