"""The whole chain and the runtime's own costs.

* Frames/s of the tx -> channel -> rx flowgraph (`isacblocks.blocks.chains.isac_flowgraph`'s
  wiring, with communication: scenario, symbols, OFDM, both beamformers, combiner, target and
  UE channels, reciprocal filter, the sensing receiver, ML demapper, metric sinks), with
  `MBMLEstimator` and with the MAPRT detector, 64 frames per work() call, on the
  single-threaded scheduler (`Flowgraph(scheduler="single")` where the runtime has
  schedulers): the overhead below is defined for one thread; the `stream` section compares
  the schedulers.
* Scheduler overhead: every block's work() is wrapped with a timer (an instance attribute
  shadowing the method, so the library is untouched); the overhead is the run's wall time
  not spent inside any work(), as a share of the wall time.  The timer's own cost per
  call is measured and taken off.  A fresh flowgraph per repetition: what a run costs
  includes each block's start-up work (the LS precoders are cached per process, so the
  warm-up run pays for them).
* work() call overhead: the marginal cost of one more no-op sync block in a
  source -> N no-ops -> sink chain, per work() call, at 64 and 4096 items per call (the
  single-threaded scheduler too: the runtime's cost per call, not a thread hand-off's).
"""

from __future__ import annotations

import time

import numpy as np

from isacblocks.blocks import MAPRTDetector, MBMLEstimator
from isacblocks.blocks.chains import IsacReceiver, IsacTransmitter, connect_transceiver
from isacblocks.core import Flowgraph, GeneralBlock, NullSink, SyncBlock, VectorSource, port

from .timing import Timing, round_robin, time_call


class NoOpSync(SyncBlock):
    """A sync block whose work() does nothing but report every item as produced."""

    def __init__(self, name=None):
        super().__init__(in_sig=[port(np.complex64, ())], out_sig=[port(np.complex64, ())], name=name)

    def work(self, inputs, outputs):
        return len(inputs[0])


def _timed(work, counters: dict):
    """`work` wrapped so that each call adds its wall time and one call to `counters`."""
    def timed(inputs, outputs):
        start = time.perf_counter()
        try:
            return work(inputs, outputs)
        finally:
            counters["seconds"] += time.perf_counter() - start
            counters["calls"] += 1
    return timed


def instrument(fg: Flowgraph) -> dict[str, dict]:
    """Wrap every block's work() (a general block's general_work()) with a timer; returns the
    live per-block counters."""
    stats: dict[str, dict] = {}
    for block in fg.blocks:
        counters = {"calls": 0, "seconds": 0.0, "type": type(block).__name__}
        stats[block.name] = counters
        method = "general_work" if isinstance(block, GeneralBlock) else "work"
        setattr(block, method, _timed(getattr(block, method), counters))
    return stats


def timer_cost_per_call(calls: int = 200_000) -> float:
    """Seconds the `instrument` wrapper adds to one call (measured on a trivial callee)."""
    def plain(inputs, outputs):
        return 0

    timed = _timed(plain, {"calls": 0, "seconds": 0.0})

    def loop(fn):
        def run():
            for _ in range(calls):
                fn(None, None)
        return run

    timings = round_robin({"plain": loop(plain), "timed": loop(timed)}, 1, 3)
    return max(0.0, (timings["timed"].median - timings["plain"].median) / calls)


def _chain(params, ula, n_frames: int, receiver: str, seed: int, max_items: int) -> Flowgraph:
    """`isac_flowgraph`'s wiring (with comm, the true spacing assumed) on the single-threaded scheduler."""
    estimator = MBMLEstimator(params, ula.spacing) if receiver == "mbml" else MAPRTDetector(params, ula.spacing)
    fg = Flowgraph(max_items=max_items, name="isac", scheduler="single")
    connect_transceiver(fg, IsacTransmitter(params, ula, ula.spacing, n_frames, seed), IsacReceiver(params, estimator))
    return fg


def chain_throughput(params, ula, receiver: str, n_frames: int, warmup_frames: int, reps: int, seed: int,
                     max_items: int = 64) -> dict:
    """Frames/s of the whole chain and the scheduler's share of it.

    A fresh flowgraph per repetition (building it is not timed), every repetition
    instrumented: the wrapper costs well under a microsecond per work() call against
    milliseconds of work, and that cost is measured and taken off the overhead anyway.
    """
    _chain(params, ula, warmup_frames, receiver, seed, max_items).run()
    timer = timer_cost_per_call()
    timing = Timing()
    runs = []
    for rep in range(reps):
        fg = _chain(params, ula, n_frames, receiver, seed + rep, max_items)
        stats = instrument(fg)
        wall = time_call(fg.run)
        timing.samples.append(wall)
        calls = sum(s["calls"] for s in stats.values())
        inside = sum(s["seconds"] for s in stats.values())
        outside = wall - inside - timer * calls
        runs.append({"wall_s": wall, "work_s": inside, "work_calls": calls, "scheduler_s": outside,
                     "scheduler_overhead": outside / wall, "scheduler_us_per_call": outside / calls * 1e6,
                     "blocks": sorted(({"block": name, **s, "share_of_wall": s["seconds"] / wall}
                                       for name, s in stats.items()), key=lambda b: -b["seconds"])})
    median_run = sorted(runs, key=lambda r: r["scheduler_overhead"])[len(runs) // 2]
    return {"receiver": receiver, "frames": n_frames, "items_per_call": max_items,
            "scheduler": "single",
            "frames_per_s": timing.rate(n_frames), "timing": timing.to_dict(1e3, "ms"),
            "timer_cost_per_call_us": timer * 1e6,
            "scheduler_overhead": {"median": median_run["scheduler_overhead"],
                                   "min": min(r["scheduler_overhead"] for r in runs),
                                   "max": max(r["scheduler_overhead"] for r in runs)},
            "instrumented": median_run, "runs": runs}


def _noop_run(n_noop: int, items_per_call: int, calls: int, result: dict) -> None:
    data = np.zeros(items_per_call * calls, dtype=np.complex64)
    fg = Flowgraph(max_items=items_per_call, name=f"noop{n_noop}", scheduler="single")
    noops = [NoOpSync(name=f"noop{i}") for i in range(n_noop)]
    fg.connect(VectorSource(data, name="src"), *noops, NullSink(np.complex64, (), name="sink"))
    fg.run()
    result["noop_calls"] = sum(fg.work_calls[b.name] for b in noops)


def work_overhead(items_per_call: int, calls: int, extra_blocks: int, warmup: int, reps: int) -> dict:
    """Marginal seconds per work() call of a no-op sync block (`extra_blocks` of them vs none)."""
    counts = {0: {}, extra_blocks: {}}
    timings = round_robin({n: (lambda n=n: _noop_run(n, items_per_call, calls, counts[n])) for n in counts},
                          warmup, reps)
    noop_calls = counts[extra_blocks]["noop_calls"]
    # Repetitions were interleaved, so pair each run with no-ops with the run without that preceded it.
    per_call = Timing([(with_noops - without) / noop_calls
                       for with_noops, without in zip(timings[extra_blocks].samples, timings[0].samples)])
    return {"items_per_call": items_per_call, "calls_per_block": calls, "noop_blocks": extra_blocks,
            "us_per_call": per_call.median * 1e6, "us_per_call_min": per_call.min * 1e6,
            "us_per_call_max": per_call.max * 1e6,
            "baseline_chain_ms": timings[0].to_dict(1e3, "ms"),
            "with_noops_ms": timings[extra_blocks].to_dict(1e3, "ms")}
