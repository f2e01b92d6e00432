"""ZeroMQ throughput between GNU Radio 3.10 and isacblocks, next to GNU Radio -> GNU Radio.

Frames are (64, 256) complex64 (GNU Radio: ``gr_complex`` with vlen 16384), PUSH/PULL on
loopback, no tags.  GNU Radio runs under Debian's ``/usr/bin/python3`` (`isacblocks/zeromq/gr_peer.py
rate`); the isacblocks ends run in this process.  Each receiver is timed from its first
item to the last, so process start and connection set-up are left out:

* GR -> GR: a GR ``push_sink`` (null_source, head) into a GR ``pull_source`` (null_sink);
* GR -> isacblocks: the same GR sender into a `PullSource` feeding a counting sink;
* isacblocks -> GR: a `PushSink` (repeated frames) into the GR receiver.

Without GNU Radio the section reports why it was skipped.
"""

from __future__ import annotations

import json
import subprocess
import time

import numpy as np

from isacblocks.core import Flowgraph
from isacblocks.zeromq import PullSource, PushSink
from isacblocks.zeromq.gnuradio import GR_PYTHON, gnuradio_version, peer_command

from .zmq_bench import FRAME_SHAPE, CountingSink, RepeatSource

VLEN = int(np.prod(FRAME_SHAPE))
FRAME_BYTES = VLEN * 8


def _peer(role: str, address: str, n_frames: int) -> subprocess.Popen:
    proc = subprocess.Popen(peer_command("rate", role, address, n_frames, VLEN),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if proc.stdout.readline().strip() != "ready":
        proc.kill()
        raise RuntimeError(f"GNU Radio {role} peer did not start: {proc.stderr.read()[-2000:]}")
    return proc


def _peer_report(proc: subprocess.Popen, timeout: float) -> dict:
    out, err = proc.communicate(timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"GNU Radio peer failed ({proc.returncode}): {err[-2000:]}")
    return json.loads(out.strip().splitlines()[-1])


def _rate(frames: int, seconds: float) -> dict:
    fps = frames / seconds if seconds > 0 else float("nan")
    return {"frames": frames, "seconds": seconds, "frames_per_s": fps, "gbytes_per_s": fps * FRAME_BYTES / 1e9}


def gr_to_gr(port: int, n_frames: int, timeout: float = 120.0) -> dict:
    address = f"tcp://127.0.0.1:{port}"
    rx = _peer("pull", address, n_frames)
    tx = _peer("push", address.replace("127.0.0.1", "*"), n_frames)
    try:
        report = _peer_report(rx, timeout)
        _peer_report(tx, timeout)
    finally:
        for p in (rx, tx):
            if p.poll() is None:
                p.kill()
    return _rate(report["items"], report["seconds"])


def gr_to_isacblocks(port: int, n_frames: int, timeout: float = 120.0) -> dict:
    fg = Flowgraph(max_items=64, name="rx")
    counter = CountingSink(FRAME_SHAPE, name="count")  # GR sends no end of stream: the idle timeout ends it
    fg.connect(PullSource(np.complex64, FRAME_SHAPE, f"tcp://127.0.0.1:{port}", idle_timeout=2), counter)
    fg.start()
    tx = _peer("push", f"tcp://*:{port}", n_frames)
    try:
        _peer_report(tx, timeout)
        fg.wait(timeout=timeout)
    finally:
        fg.stop(timeout=5)
        if tx.poll() is None:
            tx.kill()
    return _rate(counter.frames - counter.first_call_frames, counter.t_last - counter.t_first)


def isacblocks_to_gr(n_frames: int, timeout: float = 120.0) -> dict:
    sink = PushSink(np.complex64, FRAME_SHAPE, "tcp://127.0.0.1:0", linger=10000)
    rx = _peer("pull", sink.endpoint, n_frames)
    try:
        fg = Flowgraph(max_items=64, name="tx")
        fg.connect(RepeatSource(n_frames + 64, FRAME_SHAPE, 64), sink)  # a margin: GR times from its first item
        fg.start()
        report = _peer_report(rx, timeout)
        fg.stop(timeout=15)
    finally:
        if rx.poll() is None:
            rx.kill()
    return _rate(report["items"], report["seconds"])


def run(n_frames: int, reps: int) -> dict:
    """Each direction `reps` times; medians and min-max of GB/s."""
    version = gnuradio_version()
    if version is None:
        return {"skipped": f"GNU Radio is not importable by {GR_PYTHON} (apt-get install -y gnuradio)"}
    results = {}
    for name, fn in (("gr_to_gr", lambda p: gr_to_gr(p, n_frames)), ("gr_to_isacblocks",
                                                                     lambda p: gr_to_isacblocks(p, n_frames)),
                     ("isacblocks_to_gr", lambda p: isacblocks_to_gr(n_frames))):
        runs = []
        for _ in range(reps):
            runs.append(fn(_free_port()))
            time.sleep(0.2)
        g = [r["gbytes_per_s"] for r in runs]
        results[name] = {"gbytes_per_s": {"median": float(np.median(g)), "min": min(g), "max": max(g)},
                         "frames_per_s": float(np.median([r["frames_per_s"] for r in runs])), "runs": runs}
    return {"gnuradio": version, "frame_shape": list(FRAME_SHAPE), "frames_per_run": n_frames, "results": results}


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
