"""GNU Radio 3.10 flowgraphs at the other end of a ZeroMQ socket (tests, benchmarks, by hand).

Runs under Debian's ``/usr/bin/python3`` (which has ``gnuradio``), never in the project's
venv.  Items travel as ``.npy`` files; tags as JSON lists of ``[offset, key, value, srcid]``
whose key, value and srcid are hex strings of PMT serialisations, so each end builds and
reads its PMTs with its own (de)serialiser.  Both are read and written by `isacblocks.safeio`
(loaded by its path).

    gr_peer.py push  ADDRESS ITEMS.npy TAGS.json [--pub KEY]    GR push_sink / pub_sink sends
    gr_peer.py pull  ADDRESS N VLEN OUT.npy OUT.json [--sub KEY] GR pull_source / sub_source receives N items
    gr_peer.py relay FROM TO VLEN [FROM TO VLEN ...]             pull_source -> push_sink, pass_tags,
                                                                 until SIGTERM
    gr_peer.py rate  push|pull ADDRESS N VLEN                    throughput of one end (JSON on stdout)
"""

from __future__ import annotations

import importlib.util
import json
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pmt
from gnuradio import blocks, gr, zeromq


def _load_safeio():
    """`isacblocks.safeio` (numpy and the standard library only), loaded by its path: this
    interpreter has no isacblocks."""
    spec = importlib.util.spec_from_file_location("isacblocks_safeio", Path(__file__).parents[1] / "safeio.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


safeio = _load_safeio()


def _pmt(hex_text):
    return pmt.deserialize_str(bytes.fromhex(hex_text))


def _hex(obj) -> str:
    return pmt.serialize_str(obj).hex()


def push(address, items_path, tags_path, pub_key=None):
    items = safeio.read_npy(items_path, "items file")
    vlen = int(np.prod(items.shape[1:])) if items.ndim > 1 else 1
    tags = [gr.tag_utils.python_to_tag((int(o), _pmt(k), _pmt(v), _pmt(s)))
            for o, k, v, s in safeio.read_json(tags_path, "tags file")]
    tb = gr.top_block()
    src = blocks.vector_source_c(items.reshape(-1).tolist(), False, vlen, tags)
    if pub_key is None:
        sink = zeromq.push_sink(gr.sizeof_gr_complex, vlen, address, 100, True, -1)
    else:
        sink = zeromq.pub_sink(gr.sizeof_gr_complex, vlen, address, 100, True, -1, pub_key, False)
        time.sleep(1.0)  # let the subscriber's connection and subscription arrive (PUB/SUB's slow joiner)
    tb.connect(src, sink)
    tb.run()
    time.sleep(1.0)  # the socket hands its queue to the kernel before the process ends


def pull(address, n, vlen, out_items, out_tags, sub_key=None):
    n, vlen = int(n), int(vlen)
    tb = gr.top_block()
    if sub_key is None:
        src = zeromq.pull_source(gr.sizeof_gr_complex, vlen, address, 100, True, -1)
    else:
        src = zeromq.sub_source(gr.sizeof_gr_complex, vlen, address, 100, True, -1, sub_key)
    sink = blocks.vector_sink_c(vlen)
    tb.connect(src, sink)
    tb.start()
    print("ready", flush=True)
    # a zeromq source never ends, and a head() after it does not end GNU Radio's run() either
    deadline = time.monotonic() + 60
    while len(sink.data()) < n * vlen and time.monotonic() < deadline:
        time.sleep(0.05)
    tb.stop()
    tb.wait()
    if len(sink.data()) != n * vlen:
        sys.exit(f"received {len(sink.data()) // vlen} items, expected {n}")
    items = np.asarray(sink.data(), dtype=np.complex64).reshape(n, vlen)
    safeio.atomic_write(out_items, lambda f: np.save(f, items))
    tags = [[t.offset, _hex(t.key), _hex(t.value), _hex(t.srcid)] for t in sink.tags()]
    safeio.write_text(out_tags, json.dumps(tags))


def relay(*triples):
    tb = gr.top_block()
    for i in range(0, len(triples), 3):
        src_addr, dst_addr, vlen = triples[i], triples[i + 1], int(triples[i + 2])
        src = zeromq.pull_source(gr.sizeof_gr_complex, vlen, src_addr, 100, True, -1)
        sink = zeromq.push_sink(gr.sizeof_gr_complex, vlen, dst_addr, 100, True, -1)
        tb.connect(src, sink)
    signal.signal(signal.SIGTERM, lambda *_: (tb.stop(), tb.wait(), sys.exit(0)))
    tb.start()
    print("relaying", flush=True)
    while True:
        time.sleep(0.2)


def rate(role, address, n, vlen):
    """One end of a throughput measurement: a GR push_sink sending N items, or a pull_source
    receiving them (timed from the first item to the N-th).  Prints JSON."""
    n, vlen = int(n), int(vlen)
    size = gr.sizeof_gr_complex * vlen
    tb = gr.top_block()
    if role == "push":
        tb.connect(blocks.null_source(size), blocks.head(size, n),
                   zeromq.push_sink(gr.sizeof_gr_complex, vlen, address, 100, False, -1))
        print("ready", flush=True)
        start = time.perf_counter()
        tb.run()
        elapsed = time.perf_counter() - start
        time.sleep(1.0)  # the queue drains to the receiver before the process ends
    else:
        counter = blocks.null_sink(size)
        tb.connect(zeromq.pull_source(gr.sizeof_gr_complex, vlen, address, 100, False, -1), counter)
        tb.start()
        print("ready", flush=True)
        deadline = time.monotonic() + 120
        while counter.nitems_read(0) == 0 and time.monotonic() < deadline:
            time.sleep(0.0005)
        start = time.perf_counter()
        first = counter.nitems_read(0)
        while counter.nitems_read(0) < n and time.monotonic() < deadline:
            time.sleep(0.0005)
        elapsed = time.perf_counter() - start
        n = counter.nitems_read(0) - first
        tb.stop()
        tb.wait()
    print(json.dumps({"role": role, "items": n, "bytes": n * size, "seconds": elapsed}), flush=True)


if __name__ == "__main__":
    command, *rest = sys.argv[1:]
    if command in ("push", "pull") and len(rest) >= 2 and rest[-2] in ("--pub", "--sub"):
        rest = rest[:-2] + [rest[-1]]
    try:
        {"push": push, "pull": pull, "relay": relay, "rate": rate}[command](*rest)
    except (safeio.InputFileError, safeio.OutputError) as exc:
        sys.exit(f"gr_peer.py {command}: error: {exc}")
