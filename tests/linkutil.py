"""Helpers for tests that run ``isac tx`` / ``isac rx`` and GNU Radio flowgraphs in child processes."""

from __future__ import annotations

import queue
import re
import subprocess
import sys
import threading
import time

import pytest
from _gnuradio import require_gnuradio  # noqa: F401  (re-exported)

from isacblocks.bench.stream import free_base_port as bench_free_base_port
from isacblocks.blocks.link import LINK_STREAMS
from isacblocks.zeromq.gnuradio import GR_PYTHON, peer_command  # noqa: F401  (re-exported)


def free_base_port(count: int = len(LINK_STREAMS)) -> int:
    """A port P with P .. P+count-1 free on 127.0.0.1 (bounded number of tries); skips without one."""
    try:
        return bench_free_base_port(count)
    except RuntimeError:
        pytest.skip("no block of free loopback ports")


class Cli:
    """``python -m isacblocks.commands ...`` in a child process, output read by threads."""

    def __init__(self, *args, cwd):
        self.proc = subprocess.Popen([sys.executable, "-m", "isacblocks.commands", *map(str, args)],
                                     cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue = queue.Queue()
        self.out: list[str] = []
        self.err: list[str] = []
        self._threads = [threading.Thread(target=self._pump, args=(self.proc.stdout, self.out, True), daemon=True),
                         threading.Thread(target=self._pump, args=(self.proc.stderr, self.err, False), daemon=True)]
        for t in self._threads:
            t.start()

    def _pump(self, stream, store, forward):
        for line in stream:
            store.append(line)
            if forward:
                self.lines.put(line)

    def wait_for(self, pattern: str, timeout: float = 60.0) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                if self.proc.poll() is not None and self.lines.empty():
                    break
                continue
            match = re.search(pattern, line)
            if match:
                return match
        pytest.fail(f"no line matching {pattern!r}; stdout: {''.join(self.out)} stderr: {''.join(self.err)}")

    def finish(self, timeout: float = 120.0) -> int:
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            pytest.fail(f"process did not end; stdout: {''.join(self.out)} stderr: {''.join(self.err)}")
        for t in self._threads:
            t.join(5)
        return code

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    @property
    def stdout(self) -> str:
        return "".join(self.out)

    @property
    def stderr(self) -> str:
        return "".join(self.err)



#: A small system for link tests (K = 16, S = 64).
SMALL = "n_antennas = 16\nn_subcarriers = 64\nn_angle_grid = 180\nn_range_grid = 50\n"


def small_config(directory) -> str:
    """Write the `SMALL` configuration into `directory`; return its path."""
    path = directory / "small.toml"
    path.write_text(SMALL)
    return str(path)
