"""The link's per-frame sequence metadata: encode, decode and pairing, fast path against general path.

Every frame of every stream of ``isac tx`` carries the tag ``stream_seq = (run id, index)``;
``isac rx`` decodes them and pairs the streams frame by frame (`PairedPullSource`).  This
measures, in one process and one run, the frames per second of

* **encode**: the gr-zeromq tag header of a 64-frame message -- the general encoder on
  `Tag` objects (what `PushSink` did before) against the fixed-layout records of
  `isacblocks.zeromq.seqtags` (the bytes are the same);
* **decode**: that header -- the general decoder (`wire.decode_header`) against `SeqDecoder`;
* **pairing**: two streams of 64-frame messages through `PairedPullSource.work` over
  ``inproc`` sockets (receive, decode, pair, copy out), with the sources' sequence
  decoder switched off (the general path: sequence tags decoded as `Tag` objects and
  sorted into the pairing arrays one by one) and on.

Frames are tiny (4 complex64 samples), so the times are those of the metadata.  `run`
returns the frames/s of both paths and their ratio; ``python -m benchmarks.link_pairing``
prints them.  `two_process` (``--link N``) runs ``isac tx`` -> ``isac rx --estimator mbml
--no-comm`` on loopback and reports rx frames / rx wall time next to `mbml_estimate` on
512 frames from memory (fused and low-rank) on the same machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import zmq

from isacblocks.core.buffer import Buffer, Writer
from isacblocks.core.tags import Tag
from isacblocks.zeromq import SEQ_KEY, PairedPullSource, decode_header, encode_header, encode_message

try:
    from isacblocks.zeromq.seqtags import SeqLayout, SeqRecords
    try:
        from isacblocks.zeromq.seqdecoder import SeqDecoder
    except ImportError:  # a tree from before SeqDecoder had a module of its own
        from isacblocks.zeromq.wire import SeqDecoder
except ImportError:  # a tree from before the fast path: its general path only (the "before" figures)
    SeqLayout = SeqRecords = SeqDecoder = None

FRAMES_PER_MESSAGE = 64
RUN_ID = "8b0866a2a8e54e94"  # what new_run_id() draws: 16 hex digits
SRCID = "tx_Y_r"


def _best_rate(fn, frames: int, repeats: int) -> float:
    """Frames per second of the fastest of `repeats` calls of ``fn()`` (each handles `frames`)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return frames / best


def _seq_tags(first: int, n: int) -> list[Tag]:
    return [Tag(i, SEQ_KEY, (RUN_ID, i), SRCID) for i in range(first, first + n)]


def encode_decode(messages: int, repeats: int = 5) -> dict:
    """frames/s of the general and the fast encoder and decoder on `messages` 64-frame headers."""
    firsts = [k * FRAMES_PER_MESSAGE for k in range(messages)]
    n = messages * FRAMES_PER_MESSAGE

    def encode_general():
        return [encode_header(f, _seq_tags(f, FRAMES_PER_MESSAGE)) for f in firsts]

    def encode_fast():
        out = []
        for f in firsts:
            index = np.arange(f, f + FRAMES_PER_MESSAGE, dtype=np.int64)
            out.append(encode_header(f, [], SeqRecords(layout, index, index)))
        return out

    headers = encode_general()

    def decode_general():
        for h in headers:
            decode_header(h)

    result = {"encode_general": _best_rate(encode_general, n, repeats),
              "decode_general": _best_rate(decode_general, n, repeats)}
    if SeqLayout is None:
        return result
    layout = SeqLayout(RUN_ID, SRCID, SEQ_KEY)
    assert headers == encode_fast(), "the fast encoder must write the general encoder's bytes"
    decoder = SeqDecoder(SEQ_KEY)
    decoder.decode_header(headers[0])  # learns the layout from the first (general) record

    def decode_fast():
        for h in headers:
            decoder.decode_header(h)

    return {**result, "encode_fast": _best_rate(encode_fast, n, repeats),
            "decode_fast": _best_rate(decode_fast, n, repeats)}


def pairing(messages: int, fast: bool, repeats: int = 3) -> float:
    """frames/s of `PairedPullSource.work` pairing two streams of `messages` 64-frame messages."""
    context = zmq.Context()
    try:
        rates = []
        for attempt in range(repeats):
            pushes, streams = [], {}
            for name, width in (("a", 4), ("b", 2)):
                push = context.socket(zmq.PUSH)
                push.setsockopt(zmq.SNDHWM, 0)
                address = f"inproc://link-pairing-{attempt}-{name}"
                push.bind(address)
                pushes.append((push, width))
                streams[name] = (np.complex64, (width,), address)
            paired = PairedPullSource(streams, hwm=0, max_pending=4 * FRAMES_PER_MESSAGE, context=context)
            for stream in paired.streams.values():
                if not fast:
                    stream.source._seq_decoder = None
            paired.start()
            _install_writers(paired)
            for push, width in pushes:
                for k in range(messages):
                    first = k * FRAMES_PER_MESSAGE
                    data = np.zeros((FRAMES_PER_MESSAGE, width), np.complex64)
                    push.send(encode_message(data, first, _seq_tags(first, FRAMES_PER_MESSAGE)))
            outputs = [np.empty((FRAMES_PER_MESSAGE, 4), np.complex64), np.empty((FRAMES_PER_MESSAGE, 2), np.complex64)]
            total = messages * FRAMES_PER_MESSAGE
            start = time.perf_counter()
            while paired.paired < total:
                paired.work([], outputs)
            rates.append(total / (time.perf_counter() - start))
            paired.stop()
            paired.close()
            for push, _ in pushes:
                push.close(linger=0)
        return max(rates)
    finally:
        context.term()


def _install_writers(block) -> None:
    """Output writers for a block driven outside a flowgraph (as a flowgraph installs them)."""
    writers = [Writer(Buffer(spec, 4 * FRAMES_PER_MESSAGE)) for spec in block.out_sig]
    try:
        from isacblocks.core.detail import BlockDetail
    except ImportError:  # the runtime before BlockDetail
        block._writers = writers
    else:
        block.detail = BlockDetail(writers=writers)


def run(quick: bool = False) -> dict:
    """frames/s of the general and the fast path for encode, decode and pairing, and fast / general
    (in a tree without the fast path: the general path only)."""
    messages = 20 if quick else 200
    result = encode_decode(messages, repeats=3 if quick else 5)
    result["pairing_general"] = pairing(messages, fast=False, repeats=1 if quick else 3)
    if SeqLayout is not None:
        result["pairing_fast"] = pairing(messages, fast=True, repeats=1 if quick else 3)
        for what in ("encode", "decode", "pairing"):
            result[f"{what}_ratio"] = result[f"{what}_fast"] / result[f"{what}_general"]
    result["frames_per_message"] = FRAMES_PER_MESSAGE
    return result


def kernel(frames: int = 512, repeats: int = 3) -> dict:
    """frames/s of `mbml_estimate` (fused and low-rank) on `frames` test-sector frames from memory."""
    from isacblocks import SystemParams
    from isacblocks.blocks import true_array
    from isacblocks.dsp.channels import complex_normal
    from isacblocks.dsp.mbml import mbml_estimate

    params = SystemParams()
    spacing = true_array(params, 0, None).spacing
    rng = np.random.default_rng(0)
    Y = complex_normal(rng, (frames, params.n_antennas, params.n_subcarriers), params.noise_power)
    sector = (*params.test_sector, params.range_min_m, params.range_max_m)
    out = {}
    for method in ("fused", "lowrank"):
        mbml_estimate(Y[:64], *sector, spacing, params, method=method)  # compile / factor once
        out[method] = _best_rate(lambda m=method: mbml_estimate(Y, *sector, spacing, params, method=m), frames,
                                 repeats)
    return out


def two_process(frames: int, port: int = 5750, cwd: str | None = None, rx_args: tuple = ()) -> dict:
    """``isac tx --no-comm --frames N`` and ``isac rx --estimator mbml --no-comm`` on loopback (tx
    started first, so it waits for rx); rx frames / rx wall time from rx's JSON record."""
    with tempfile.TemporaryDirectory() as tmp:
        base = [sys.executable, "-m", "isacblocks.commands"]
        common = ["--no-comm", "--address", f"tcp://127.0.0.1:{port}", "--report-interval", "0"]
        tx = subprocess.Popen([*base, "tx", *common, "--frames", str(frames), "--json", f"{tmp}/tx.json"],
                              cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(2.0)
            rx = subprocess.run([*base, "rx", *common, "--estimator", "mbml", *rx_args, "--json", f"{tmp}/rx.json"],
                                cwd=cwd, capture_output=True, text=True, timeout=1800)
            tx.wait(timeout=120)
        finally:
            tx.kill()
        if rx.returncode != 0:
            raise RuntimeError(f"isac rx exited {rx.returncode}: {rx.stderr[-2000:]}")
        record = json.loads(Path(f"{tmp}/rx.json").read_text())
        sent = json.loads(Path(f"{tmp}/tx.json").read_text())
    frames = record["frames_scored"]
    per_frame = {f"{role}_cpu_ms_per_frame": (r["cpu_s"] / frames * 1e3 if r.get("cpu_s") is not None else None)
                 for role, r in (("rx", record), ("tx", sent))}
    busy = {row["block"]: row["work_share"] for row in record.get("performance") or []}
    return {"frames": frames, "wall_s": record["wall_s"], "frames_per_s": frames / record["wall_s"],
            "complete": record["complete"], "estimator_form": record.get("mbml_form"), **per_frame,
            "rx_busiest_block": max(busy, key=busy.get) if busy else None,
            "rx_busiest_share": max(busy.values()) if busy else None}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.link_pairing", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer messages and repeats")
    parser.add_argument("--link", type=int, default=0, metavar="N",
                        help="also run isac tx -> isac rx --estimator mbml --no-comm with N frames")
    parser.add_argument("--port", type=int, default=5750, help="base tcp port of the two-process run")
    args = parser.parse_args(argv)
    result = run(args.quick)
    print(f"{'path':10s} {'general f/s':>12s} {'fast f/s':>12s} {'fast/general':>12s}")
    for what in ("encode", "decode", "pairing"):
        fast, ratio = result.get(what + "_fast"), result.get(what + "_ratio")
        print(f"{what:10s} {result[what + '_general']:12.0f} " + (f"{fast:12.0f} {ratio:11.1f}x" if fast else
                                                                    f"{'-':>12s} {'-':>12s}"))
    if args.link:
        link = two_process(args.link, args.port)
        rates = kernel()
        cpu = ", ".join(f"{role} {link[role + '_cpu_ms_per_frame']:.2f}" for role in ("rx", "tx")
                        if link.get(role + "_cpu_ms_per_frame") is not None)
        print(f"\nisac tx -> isac rx --estimator mbml --no-comm, {link['frames']} frames: "
              f"{link['frames_per_s']:.0f} frames/s of rx wall time ({link['wall_s']:.1f} s, complete "
              f"{link['complete']}, form {link['estimator_form']}" + (f"; CPU ms a frame: {cpu}" if cpu else "") + ")")
        if link.get("rx_busiest_block"):
            print(f"rx's busiest block: {link['rx_busiest_block']} (inside work() {link['rx_busiest_share']:.0%} "
                  "of the wall time)")
        print(f"mbml_estimate on 512 frames from memory: fused {rates['fused']:.0f} frames/s, low-rank "
              f"{rates['lowrank']:.0f} frames/s; link / fused = {link['frames_per_s'] / rates['fused']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
