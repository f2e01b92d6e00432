"""Where GNU Radio is, for code that runs GNU Radio flowgraphs at the other end of a socket.

GNU Radio 3.10 is not on PyPI; Debian's package gives it to ``/usr/bin/python3``, so its
flowgraphs run as subprocesses of that interpreter (`GR_PEER` holds the small ones the tests
and ``isac bench`` use).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

#: Debian's interpreter, which has ``gnuradio`` (a project venv cannot import it).
GR_PYTHON = "/usr/bin/python3"

#: GNU Radio flowgraphs (push, pull, relay, rate) run by `GR_PYTHON`; it imports no isacblocks.
GR_PEER = str(Path(__file__).with_name("gr_peer.py"))


def peer_command(*args) -> list[str]:
    """The command line that runs `GR_PEER` with `args` under `GR_PYTHON`.  ``-P``: the script's
    folder (which holds this package's ``pmt`` module) must not shadow GNU Radio's ``pmt``."""
    return [GR_PYTHON, "-P", GR_PEER, *map(str, args)]


def gnuradio_version() -> str | None:
    """GNU Radio's version as `GR_PYTHON` reports it, or None when it cannot import ``gnuradio.zeromq``."""
    try:
        done = subprocess.run([GR_PYTHON, "-c", "from gnuradio import gr, zeromq; print(gr.version())"],
                              capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None
