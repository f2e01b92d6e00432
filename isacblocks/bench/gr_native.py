"""isacblocks blocks inside GNU Radio 3.10's scheduler (`isacblocks.gnuradio.as_gr_block`): what the
wrapper costs, and the receive chain's frames/s there and in isacblocks' own runtime.

Run with GNU Radio's Python (``make gnuradio``)::

    .venv-gr/bin/python -m isacblocks.bench.gr_native [--frames 1024] [--repeats 5] [--json PATH]

* **per-call overhead**: X is a plain ``gr.sync_block`` doing ``np.multiply(x, 2, out=y)`` on
  float32 items, or an isacblocks `SyncBlock` doing the same, wrapped, with 64 or 4096 items a
  call.  *Direct*: X's work() called on arrays in a loop (what GNU Radio's gateway calls once it
  has made the arrays); the difference is the wrapper's own cost.  *Scheduler*:
  ``null_source -> head(N) -> X -> null_sink`` in GNU Radio (``set_max_noutput_items`` on X), per
  call of X less the same graph without X: GNU Radio's Python gateway and thread hand-offs
  included, so the difference of the two is within their noise on a loaded machine.
* **receive chain**: frames of the paper's system (K = 64, S = 256) from the transmitter
  (ScenarioSource, target channel), held in memory with their tags, through ReciprocalFilter ->
  MBMLEstimator -> DetectionMetricsSink: in isacblocks' `Flowgraph` (threaded scheduler,
  ``max_items=64``) and in a GNU Radio top block of the same blocks wrapped (buffers of 128
  items, `as_gr_block`'s default), repetitions interleaved; both give the same records (checked).
  Also the whole transceiver without comm (`isac_flowgraph`, as ``isac bench``'s stream section)
  in both schedulers.

The load average (2.0 fills 2 cores) is printed at the start and the end: other jobs on the
cores move every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np
from gnuradio import blocks, gr

from isacblocks import SystemParams
from isacblocks.blocks import DetectionMetricsSink, ImpairedULA, MBMLEstimator, ReciprocalFilter
from isacblocks.blocks.chains import IsacTransmitter, isac_flowgraph
from isacblocks.core import Flowgraph, NullSink, SyncBlock, VectorSink, VectorSource
from isacblocks.gnuradio import as_gr_block, gr_top_block, raise_errors


class PlainDouble(gr.sync_block):
    """A plain GNU Radio Python block: y = 2 x."""

    def __init__(self):
        gr.sync_block.__init__(self, "plain_double", [np.float32], [np.float32])
        self.calls = 0

    def work(self, input_items, output_items):
        self.calls += 1
        np.multiply(input_items[0], 2.0, out=output_items[0])
        return len(output_items[0])


class Double(SyncBlock):
    """The same as an isacblocks block."""

    def __init__(self):
        super().__init__(in_sig=[np.float32], out_sig=[np.float32])
        self.calls = 0

    def work(self, inputs, outputs):
        self.calls += 1
        np.multiply(inputs[0], 2.0, out=outputs[0])
        return len(outputs[0])


def _overhead_run(kind: str, items_per_call: int, calls: int) -> tuple[float, int]:
    """Seconds of one run and the work() calls of X (0 without X)."""
    tb = gr.top_block()
    n = items_per_call * calls
    src = blocks.null_source(gr.sizeof_float)
    head = blocks.head(gr.sizeof_float, n)
    sink = blocks.null_sink(gr.sizeof_float)
    if kind == "none":
        tb.connect(src, head, sink)
        block = None
    else:
        block = PlainDouble() if kind == "plain" else as_gr_block(Double(), min_output_items=None)
        block.set_max_noutput_items(items_per_call)
        tb.connect(src, head, block, sink)
    start = time.perf_counter()
    tb.run()
    seconds = time.perf_counter() - start
    if block is None:
        return seconds, 0
    return seconds, block.calls if kind == "plain" else block.block.calls


def per_call_overhead(items_per_call: int, calls: int, repeats: int) -> dict:
    samples = {"none": [], "plain": [], "wrapped": []}
    counts = {}
    for kind in samples:  # warm-up
        _overhead_run(kind, items_per_call, max(10, calls // 10))
    for rep in range(repeats):
        for kind in ("none", "plain", "wrapped") if rep % 2 else ("none", "wrapped", "plain"):
            seconds, n_calls = _overhead_run(kind, items_per_call, calls)
            samples[kind].append(seconds)
            counts[kind] = n_calls
    med = {k: statistics.median(v) for k, v in samples.items()}
    per_call = {k: med[k] / max(counts[k], 1) * 1e6 for k in ("plain", "wrapped")}
    spread = {k: [min(samples[k]) / max(counts[k], 1) * 1e6, max(samples[k]) / max(counts[k], 1) * 1e6]
              for k in ("plain", "wrapped")}
    return {"items_per_call": items_per_call, "calls": counts, "seconds_median": med,
            "plain_us_per_call": per_call["plain"] - med["none"] / max(counts["plain"], 1) * 1e6,
            "wrapped_us_per_call": per_call["wrapped"] - med["none"] / max(counts["wrapped"], 1) * 1e6,
            "wrapper_overhead_us_per_call": per_call["wrapped"] - per_call["plain"],
            "range_us_per_call": spread, "samples_s": samples}


def direct_call_overhead(items_per_call: int, calls: int, repeats: int) -> dict:
    """work() called directly on arrays, as GNU Radio's gateway calls it after making them: the plain
    block's and the wrapper's (views, message check, return-value check, then the block's work())."""
    plain, wrapped = PlainDouble(), as_gr_block(Double(), min_output_items=None)
    x = np.ones(items_per_call, dtype=np.float32)
    y = np.empty_like(x)
    best = {}
    for name, block in (("plain", plain), ("wrapped", wrapped)):
        samples = []
        for _ in range(repeats + 1):
            start = time.perf_counter()
            for _ in range(calls):
                block.work([x], [y])
            samples.append(time.perf_counter() - start)
        best[name] = min(samples[1:]) / calls * 1e6
    return {"items_per_call": items_per_call, "plain_us": best["plain"], "wrapped_us": best["wrapped"],
            "overhead_us": best["wrapped"] - best["plain"]}


def _frames(p, ula, n_frames, seed):
    fg = Flowgraph(max_items=64)
    tx = IsacTransmitter(p, ula, ula.spacing, n_frames, seed=seed, with_comm=False)
    y = VectorSink(np.complex64, (p.n_antennas, p.n_subcarriers))
    x = VectorSink(np.complex64, p.n_subcarriers)
    fg.connect((tx, "Y_r"), y)
    fg.connect((tx, "symbols"), x)
    fg.connect((tx, "messages"), NullSink(np.int32, p.n_subcarriers))
    fg.run()
    return y, x


def _rx_blocks(p, ula, y, x):
    src_y, src_x = VectorSource(y.data, y.tags), VectorSource(x.data, x.tags)
    recip, mbml, det = ReciprocalFilter(p), MBMLEstimator(p, ula.spacing), DetectionMetricsSink(p)
    return src_y, src_x, recip, mbml, det


def rx_isacblocks(p, ula, y, x):
    src_y, src_x, recip, mbml, det = _rx_blocks(p, ula, y, x)
    fg = Flowgraph(max_items=64, scheduler="threaded")
    fg.connect(src_y, (recip, 0))
    fg.connect(src_x, (recip, 1))
    fg.connect(recip, mbml, det)
    start = time.perf_counter()
    fg.run()
    return time.perf_counter() - start, det.records


def rx_gnuradio(p, ula, y, x):
    held = [as_gr_block(b) for b in _rx_blocks(p, ula, y, x)]
    w_y, w_x, w_recip, w_mbml, w_det = held
    tb = gr.top_block()
    tb.connect(w_y, (w_recip, 0))
    tb.connect(w_x, (w_recip, 1))
    tb.connect(w_recip, w_mbml, w_det)
    start = time.perf_counter()
    tb.run()
    seconds = time.perf_counter() - start
    raise_errors(held)
    return seconds, w_det.block.records


def whole(p, ula, n_frames, scheduler: str):
    chain = isac_flowgraph(p, ula, ula.spacing, n_frames=n_frames, seed=5, with_comm=False,
                           estimator=MBMLEstimator(p, ula.spacing))
    if scheduler == "gnuradio":
        tb, wrappers = gr_top_block(chain.flowgraph)
        start = time.perf_counter()
        tb.run()
        seconds = time.perf_counter() - start
        raise_errors(wrappers.values())
    else:
        start = time.perf_counter()
        chain.flowgraph.run()
        seconds = time.perf_counter() - start
    return seconds, chain.detection.records


def chain_rates(n_frames: int, repeats: int) -> dict:
    p = SystemParams()
    ula = ImpairedULA.drawn(p, seed=2)
    y, x = _frames(p, ula, n_frames, seed=5)
    runs = {"rx isacblocks": lambda: rx_isacblocks(p, ula, y, x),
            "rx gnuradio": lambda: rx_gnuradio(p, ula, y, x),
            "whole isacblocks": lambda: whole(p, ula, n_frames, "isacblocks"),
            "whole gnuradio": lambda: whole(p, ula, n_frames, "gnuradio")}
    records = {name: fn()[1] for name, fn in runs.items()}  # warm-up (Numba kernels, caches)
    same = {"rx": bool(np.array_equal(records["rx isacblocks"], records["rx gnuradio"], equal_nan=True)),
            "whole": bool(np.array_equal(records["whole isacblocks"], records["whole gnuradio"], equal_nan=True))}
    samples = {name: [] for name in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            samples[name].append(fn()[0])
    rates = {name: {"median": n_frames / statistics.median(s), "min": n_frames / max(s), "max": n_frames / min(s)}
             for name, s in samples.items()}
    return {"frames": n_frames, "K": p.n_antennas, "S": p.n_subcarriers, "same_records": same, "frames_per_s": rates,
            "samples_s": samples}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=1024, help="frames per receive-chain run (default 1024)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repetitions, interleaved (default 5)")
    parser.add_argument("--calls", type=int, default=2000, help="work() calls per overhead run (default 2000)")
    parser.add_argument("--only", choices=("overhead", "chain"), help="one part only")
    parser.add_argument("--json", help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    load_start = [round(v, 2) for v in os.getloadavg()]
    print(f"GNU Radio {gr.version()}, numpy {np.__version__}, {os.cpu_count()} cores, "
          f"load average at start {load_start}", flush=True)
    out = {"gnuradio": gr.version(), "load_start": load_start, "overhead": [], "chain": None}
    print("\nwork() of X (float32, y = 2 x), us per call: called directly on arrays (best of the repetitions), "
          "and inside GNU Radio's scheduler in null_source -> head -> X -> null_sink (median; the graph without "
          "X subtracted)")
    print("| items/call | direct: plain gr.sync_block | direct: isacblocks block, wrapped | direct: wrapper "
          "overhead | scheduler: plain | scheduler: wrapped | scheduler: difference |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    out["direct"] = []
    for items in (64, 4096) if args.only != "chain" else ():
        calls = args.calls if items == 64 else max(200, args.calls // 4)
        d = direct_call_overhead(items, 20000, args.repeats)
        r = per_call_overhead(items, calls, args.repeats)
        out["direct"].append(d)
        out["overhead"].append(r)
        print(f"| {items} | {d['plain_us']:.2f} | {d['wrapped_us']:.2f} | {d['overhead_us']:.2f} | "
              f"{r['plain_us_per_call']:.1f} | {r['wrapped_us_per_call']:.1f} | "
              f"{r['wrapper_overhead_us_per_call']:.1f} |", flush=True)
    if args.only == "overhead":
        return _end(out, args)
    c = chain_rates(args.frames, args.repeats)
    out["chain"] = c
    print(f"\nframes/s, K = {c['K']}, S = {c['S']}, {c['frames']} frames a run, MB-ML (median [slowest-fastest] "
          f"of {args.repeats}):")
    print("| flowgraph | isacblocks runtime (threaded, 64 items/call) | GNU Radio scheduler (wrapped) | GR / ours | "
          "same records |")
    print("|---|---:|---:|---:|---|")
    for part, label in (("rx", "receive chain: recip. filter + MB-ML + metrics (frames in memory)"),
                        ("whole", "whole transceiver, no comm (isac_flowgraph)")):
        ours, theirs = c["frames_per_s"][f"{part} isacblocks"], c["frames_per_s"][f"{part} gnuradio"]
        print(f"| {label} | {ours['median']:.0f} [{ours['min']:.0f}-{ours['max']:.0f}] | "
              f"{theirs['median']:.0f} [{theirs['min']:.0f}-{theirs['max']:.0f}] | "
              f"{theirs['median'] / ours['median']:.2f} | {c['same_records'][part]} |")
    return _end(out, args)


def _end(out: dict, args) -> int:
    out["load_end"] = [round(v, 2) for v in os.getloadavg()]
    print(f"\nload average at end {out['load_end']}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1)
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    code = main()
    os._exit(code)  # GNU Radio's threads need no orderly teardown
