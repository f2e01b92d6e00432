"""ZeroMQ loopback throughput: PUSH/PULL and PUB/SUB, in one process and in two.

A `RepeatSource` streams (64, 256) complex64 frames (131 kB each) into a `PushSink` or
`PubSink` bound on ``tcp://127.0.0.1``; a `PullSource` or `SubSource` feeds a
`CountingSink`.  "In-process": both flowgraphs run in this process, each in its own
scheduler thread.  "Two processes": the receiving flowgraph runs in a child process
(``python -m isacblocks.bench.zmq_bench --address ...``), which prints its counters as JSON.

Throughput is measured at the receiver, from the arrival of the first work() call's
items to the last item (the first call's items are not counted), so connection set-up
and process start are left out.  Every frame carries its sequence number in its first
sample, so the receiver also counts frames lost or out of order (PUSH/PULL must lose
none; the PUB sink runs with ``drop_on_hwm=False``, so it holds items instead of dropping).
Library defaults otherwise: ``copy_mode="copy"``, one message per work() call, no tags.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np

from isacblocks.core import WORK_DONE, Flowgraph, SinkBlock, SourceBlock, port
from isacblocks.zeromq import PubSink, PullSource, PushSink, SubSource

from .timing import child_env

FRAME_SHAPE = (64, 256)
ADDRESS = "tcp://127.0.0.1:0"


class RepeatSource(SourceBlock):
    """`n_frames` complex64 frames copied from a fixed random pattern, frame number in sample [0, 0]."""

    def __init__(self, n_frames: int, shape=FRAME_SHAPE, pattern_frames: int = 64, name=None):
        super().__init__(out_sig=[port(np.complex64, shape)], name=name)
        rng = np.random.default_rng(0)
        self.pattern = rng.standard_normal((pattern_frames, *shape, 2), dtype=np.float32).view(np.complex64)[..., 0]
        self.n_frames = int(n_frames)
        self._sent = 0

    def start(self) -> None:
        self._sent = 0

    def work(self, inputs, outputs):
        out = outputs[0]
        n = min(len(out), self.n_frames - self._sent, len(self.pattern))
        if n <= 0:
            return WORK_DONE
        out[:n] = self.pattern[:n]
        out[:n, 0, 0] = np.arange(self._sent, self._sent + n, dtype=np.float32)
        self._sent += n
        return n


class CountingSink(SinkBlock):
    """Counts frames, checks their sequence numbers, and notes when the first and last arrived."""

    def __init__(self, shape=FRAME_SHAPE, name=None):
        super().__init__(in_sig=[port(np.complex64, shape)], name=name)
        self.frames = 0
        self.first_call_frames = 0
        self.t_first: float | None = None
        self.t_last: float | None = None
        self.expected = 0
        self.out_of_sequence = 0

    def work(self, inputs, outputs):
        x = inputs[0]
        n = len(x)
        if n:
            now = time.perf_counter()
            if self.t_first is None:
                self.t_first, self.first_call_frames = now, n
            self.t_last = now
            seq = x[:, 0, 0].real.astype(np.int64)
            self.out_of_sequence += int(np.count_nonzero(seq != np.arange(self.expected, self.expected + n)))
            self.expected = int(seq[-1]) + 1
            self.frames += n
        return n

    def report(self, item_bytes: int) -> dict:
        span = (self.t_last - self.t_first) if self.t_first is not None else 0.0
        counted = self.frames - self.first_call_frames
        rate = counted / span if span > 0 else float("nan")
        return {"frames": self.frames, "out_of_sequence": self.out_of_sequence, "span_s": span,
                "frames_per_s": rate, "gbytes_per_s": rate * item_bytes / 1e9}


def _source(kind: str, address: str, shape):
    return (PullSource if kind == "push" else SubSource)(np.complex64, shape, address, timeout=100)


def _sink(kind: str, shape):
    if kind == "push":
        return PushSink(np.complex64, shape, ADDRESS, timeout=100, linger=5000)
    return PubSink(np.complex64, shape, ADDRESS, timeout=100, drop_on_hwm=False, linger=5000)


def receive(kind: str, address: str, shape=FRAME_SHAPE, max_items: int = 64) -> tuple[Flowgraph, CountingSink]:
    """The receiving flowgraph (not started)."""
    fg = Flowgraph(max_items=max_items, name=f"rx-{kind}")
    counter = CountingSink(shape, name="count")
    fg.connect(_source(kind, address, shape), counter)
    return fg, counter


def loopback(kind: str, n_frames: int, two_process: bool, max_items: int = 64, shape=FRAME_SHAPE,
             timeout_s: float = 120.0) -> dict:
    """One transfer of `n_frames` frames; returns the receiver's counters."""
    item_bytes = int(np.prod(shape)) * 8
    sink = _sink(kind, shape)
    tx = Flowgraph(max_items=max_items, name=f"tx-{kind}")
    tx.connect(RepeatSource(n_frames, shape, max_items, name="repeat"), sink)
    child = rx = counter = None
    if two_process:
        child = subprocess.Popen([sys.executable, "-m", "isacblocks.bench.zmq_bench", "--kind", kind, "--address",
                                  sink.endpoint, "--max-items", str(max_items), "--shape", *map(str, shape)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env())
    else:
        rx, counter = receive(kind, sink.endpoint, shape, max_items)
        rx.start()
    try:
        if kind == "pub" and not sink.wait_for_subscribers(1, timeout=timeout_s):
            raise RuntimeError(f"zmq {kind}: no subscriber within {timeout_s} s")
        start = time.perf_counter()
        tx.run()
        sender_s = time.perf_counter() - start
        if two_process:
            out, err = child.communicate(timeout=timeout_s)
            if child.returncode != 0:
                raise RuntimeError(f"zmq receiver process failed ({child.returncode}): {err.strip()[-2000:]}")
            report = json.loads(out.strip().splitlines()[-1])
        else:
            rx.wait(timeout=timeout_s)
            if rx.running:
                rx.stop(timeout=5.0)
                raise RuntimeError(f"zmq {kind}: the receiver did not end within {timeout_s} s")
            report = counter.report(item_bytes)
    finally:
        if child is not None and child.poll() is None:
            child.kill()
            child.wait()
    report.update({"kind": kind, "processes": 2 if two_process else 1, "sent_frames": n_frames,
                   "lost_frames": n_frames - report["frames"], "sender_wall_s": sender_s,
                   "messages_sent": sink.messages_sent, "dropped_messages": sink.dropped,
                   "frame_bytes": item_bytes, "frames_per_message": max_items})
    return report


def run(n_frames: int, reps: int, max_items: int = 64) -> dict:
    """Each of PUSH/PULL and PUB/SUB, in one and in two processes, `reps` times; medians and min-max."""
    results = {}
    for kind in ("push", "pub"):
        for two_process in (False, True):
            runs = [loopback(kind, n_frames, two_process, max_items) for _ in range(reps)]
            gbs = [r["gbytes_per_s"] for r in runs]
            fps = [r["frames_per_s"] for r in runs]
            key = f"{'push_pull' if kind == 'push' else 'pub_sub'}_{'two_process' if two_process else 'in_process'}"
            results[key] = {
                "gbytes_per_s": {"median": float(np.median(gbs)), "min": min(gbs), "max": max(gbs)},
                "frames_per_s": {"median": float(np.median(fps)), "min": min(fps), "max": max(fps)},
                "lost_frames": sum(r["lost_frames"] for r in runs),
                "out_of_sequence": sum(r["out_of_sequence"] for r in runs),
                "dropped_messages": sum(r["dropped_messages"] for r in runs),
                "runs": runs,
            }
    return {"frame_shape": list(FRAME_SHAPE), "frames_per_run": n_frames, "frames_per_message": max_items,
            "repetitions": reps, "results": results}


def main(argv=None) -> int:
    """The receiving side of a two-process run: print the counters as one JSON line."""
    parser = argparse.ArgumentParser(description="ZeroMQ benchmark receiver (started by isacblocks.bench.zmq_bench)")
    parser.add_argument("--kind", choices=("push", "pub"), required=True)
    parser.add_argument("--address", required=True)
    parser.add_argument("--max-items", type=int, default=64)
    parser.add_argument("--shape", type=int, nargs="+", default=list(FRAME_SHAPE))
    args = parser.parse_args(argv)
    shape = tuple(args.shape)
    fg, counter = receive(args.kind, args.address, shape, args.max_items)
    fg.run()
    print(json.dumps(counter.report(int(np.prod(shape)) * 8)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
