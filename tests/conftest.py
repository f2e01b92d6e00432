"""Small shared fixtures for the runtime, physics and chain tests."""

from __future__ import annotations

import os
import tempfile
import threading

import pytest

# The journal's per-user secret lives in a folder of the test session, not in the user's home.
os.environ.setdefault("ISACBLOCKS_STATE_DIR", tempfile.mkdtemp(prefix="isacblocks-state-"))
# `isac` run by the tests keeps this process's kernels (no restart with the pinned set: one
# Numba build per CPU name, half a second per command); tests/test_portability.py runs the pinned set.
os.environ.setdefault("ISAC_KERNELS", "native")

from hypothesis import settings

from isacblocks import SystemParams

# Property tests draw the same examples on every run (a seed per test, no example database):
# a failure is reproducible, and a suite that passed once does not fail later on a new draw.
settings.register_profile("isacblocks", derandomize=True, database=None)
settings.load_profile("isacblocks")


@pytest.fixture(scope="session")
def paper_params() -> SystemParams:
    """The paper's configuration (Sec. V-A)."""
    return SystemParams()


@pytest.fixture(scope="session")
def small_params() -> SystemParams:
    """A small system (K = 16, S = 64) for fast statistics and flowgraphs."""
    return SystemParams(n_antennas=16, n_subcarriers=64, n_angle_grid=180, n_range_grid=50)


def run_with_timeout(fg, timeout: float = 10.0) -> None:
    """Run `fg` in a helper thread; fail (after stopping it) instead of hanging the suite.

    Re-raises whatever `fg.run()` raised.
    """
    box: dict = {}

    def target():
        try:
            fg.run()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        fg.stop()  # sets the stop event the run loop polls; returns at once for a synchronous run
        thread.join(2.0)
        pytest.fail(f"flowgraph {fg.name!r} did not finish within {timeout} s (hang)")
    if "error" in box:
        raise box["error"]


@pytest.fixture(params=["single", "threaded"])
def each_scheduler(request, monkeypatch):
    """Run the test once with each scheduler as the flowgraphs' default."""
    from isacblocks.core import flowgraph

    monkeypatch.setattr(flowgraph, "DEFAULT_SCHEDULER", request.param)
    return request.param


@pytest.fixture
def run_fg():
    """`run_fg(fg, timeout=10)`: run a flowgraph to completion or fail on a hang."""
    return run_with_timeout


class LineStream(list):
    """A terminal stand-in for progress lines: keeps what is written, says when something was."""

    def __init__(self):
        super().__init__()
        self.wrote = threading.Event()

    def write(self, text):
        self.append(text)
        self.wrote.set()

    def flush(self):
        pass

    def isatty(self):
        return False
