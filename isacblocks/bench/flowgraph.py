"""Benchmark your own flowgraph: frames/s over fresh runs, and where the time goes, per block.

    from isacblocks.bench import benchmark_flowgraph

    result = benchmark_flowgraph(build, repeats=5)   # build() returns a new Flowgraph each call
    print(result.summary())
    print(result.table())

`build` is called once per run (warm-up runs included), since a run starts from fresh state
(sources at their first item, sinks empty); building is not timed, ``Flowgraph.run()`` is,
so each block's start() (e.g. solving a precoder) is part of what a run costs.

Frames are the items through the sinks (blocks without outputs): the most that any sink
consumed in the run, since in a chain every frame reaches every sink once.  Pass `frames`
when that count is not what you mean (e.g. a sink fed by a decimating block).

The per-block counters of the median run come from ``Flowgraph.performance()`` (GNU Radio's
performance counters: work() calls and time, items in and out, output-buffer fill).

With the threaded scheduler the blocks run at the same time, so their shares of the wall
time can add up to more than 100 %; the block with the largest share limits the flowgraph.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..core import Flowgraph
from ..errors import ConfigError
from ..experiments.common import table as markdown_table

#: The keys of one per-block row (`Flowgraph.performance()`'s), plus ``share_of_wall``.
ROW_KEYS = ("block", "type", "calls", "items_in", "items_out", "work_s", "buffer_fill")


@dataclass
class FlowgraphBenchmark:
    """What `benchmark_flowgraph` measured.

    `rate`: frames/s, ``{"median", "min", "max"}`` over the timed runs; `wall_s`: each
    timed run's wall time; `frames`: frames per run; `blocks`: one row per block of the
    median run (by wall time), the largest ``work_s`` first, with the keys of `ROW_KEYS`
    and ``share_of_wall`` (``work_s`` over the run's wall time); `scheduler`: the flowgraph's
    scheduler ("single", "threaded").
    """

    name: str
    frames: int
    frames_from: str
    rate: dict
    wall_s: list[float]
    median_wall_s: float
    warmup: int
    scheduler: str | None = None
    blocks: list[dict] = field(default_factory=list)

    @property
    def work_s(self) -> float:
        """Seconds inside the blocks' work() in the median run (all blocks together)."""
        return sum(b["work_s"] for b in self.blocks)

    def summary(self) -> str:
        """One line: frames/s median [min-max], runs, and the largest work() share."""
        top = self.blocks[0] if self.blocks else None
        busiest = (f"; busiest block {top['block']} ({top['type']}) {top['share_of_wall']:.0%} of the wall time"
                   if top else "")
        scheduler = f" ({self.scheduler} scheduler)" if self.scheduler else ""
        return (f"flowgraph {self.name!r}{scheduler}: {self.frames} frames per run, {self.rate['median']:.1f} frames/s "
                f"[{self.rate['min']:.1f}-{self.rate['max']:.1f}] over {len(self.wall_s)} runs "
                f"(median run {self.median_wall_s * 1e3:.1f} ms){busiest}")

    def table(self) -> str:
        """The per-block counters of the median run as a Markdown table."""
        rows = [[b["block"], b["type"], b["calls"], b["items_in"], b["items_out"], f"{b['work_s']:.4f}",
                 f"{b['share_of_wall']:.1%}", "-" if b["buffer_fill"] is None else f"{b['buffer_fill']:.0%}"]
                for b in self.blocks]
        return markdown_table(["block", "type", "calls", "items in", "items out", "work s", "share of wall",
                               "buffer fill"], rows)

    def to_dict(self) -> dict:
        """Plain values (JSON-ready)."""
        return {"name": self.name, "frames": self.frames, "frames_from": self.frames_from,
                "frames_per_s": dict(self.rate), "wall_s": list(self.wall_s), "median_wall_s": self.median_wall_s,
                "runs": len(self.wall_s), "warmup": self.warmup, "scheduler": self.scheduler,
                "work_s": self.work_s, "blocks": [dict(b) for b in self.blocks]}


def _flowgraph_of(built, seen: list) -> Flowgraph:
    """The Flowgraph `build()` returned (or the ``.flowgraph`` of what it returned), checked to be new."""
    fg = built if isinstance(built, Flowgraph) else getattr(built, "flowgraph", None)
    if not isinstance(fg, Flowgraph):
        raise ConfigError(f"benchmark_flowgraph: build() returned {type(built).__name__}, not a Flowgraph")
    if any(fg is old for old in seen):
        raise ConfigError(f"benchmark_flowgraph: build() returned flowgraph {fg.name!r} again; a run starts from "
                          "fresh state, so build() must make a new Flowgraph (and new blocks) on every call")
    seen.append(fg)
    return fg


def _sink_items(fg: Flowgraph) -> int:
    """The most items any sink (a block with inputs and no outputs) consumed in the last run."""
    counts = [max(block.nitems_read(port) for port in range(len(block.in_sig)))
              for block in fg.blocks if block.in_sig and not block.out_sig]
    return max(counts, default=0)


def _performance_rows(fg: Flowgraph) -> list[dict]:
    rows = []
    for row in fg.performance():
        row = dict(row)
        for key in ROW_KEYS:
            row.setdefault(key, None)
        rows.append(row)
    return rows


def _one_run(build: Callable[[], object], seen: list, frames: int | None) -> dict:
    fg = _flowgraph_of(build(), seen)
    start = time.perf_counter()
    fg.run()
    wall = time.perf_counter() - start
    rows = _performance_rows(fg)
    for row in rows:
        row["work_s"] = float(row["work_s"] or 0.0)
        row["share_of_wall"] = row["work_s"] / wall if wall > 0 else math.nan
    rows.sort(key=lambda r: -r["work_s"])
    count = frames if frames is not None else _sink_items(fg)
    return {"name": fg.name, "wall_s": wall, "frames": count, "rows": rows, "scheduler": fg.scheduler}


def benchmark_flowgraph(build: Callable[[], object], *, frames: int | None = None, repeats: int = 3,
                        warmup: int = 1) -> FlowgraphBenchmark:
    """Run the flowgraph `build()` makes `warmup` times untimed, then `repeats` times timed.

    `build`: a zero-argument callable returning a new `Flowgraph` on every call (or an object
    with a ``.flowgraph``, such as `isacblocks.blocks.chains.isac_flowgraph`'s result).
    `frames`: frames per run for the rate; by default the items through the sinks.
    Returns a `FlowgraphBenchmark`: frames/s median, min and max over the timed runs, and
    the per-block counters of the median run (`FlowgraphBenchmark.table()`).
    """
    if not callable(build):
        raise ConfigError(f"benchmark_flowgraph: build = {build!r} is not callable; pass a function that "
                          "returns a new Flowgraph")
    for name, value, least in (("repeats", repeats, 1), ("warmup", warmup, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ConfigError(f"benchmark_flowgraph: {name} = {value!r}: must be an integer >= {least}")
    if frames is not None and (isinstance(frames, bool) or not isinstance(frames, int) or frames < 1):
        raise ConfigError(f"benchmark_flowgraph: frames = {frames!r}: must be an integer >= 1 (or None: the "
                          "items through the sinks)")
    seen: list = []
    for _ in range(warmup):
        _one_run(build, seen, frames)
    runs = [_one_run(build, seen, frames) for _ in range(repeats)]
    rates = [r["frames"] / r["wall_s"] if r["wall_s"] > 0 else math.inf for r in runs]
    median_run = sorted(runs, key=lambda r: r["wall_s"])[len(runs) // 2]
    return FlowgraphBenchmark(
        name=median_run["name"], frames=median_run["frames"], frames_from="given" if frames is not None else "sinks",
        rate={"median": statistics.median(rates), "min": min(rates), "max": max(rates)},
        wall_s=[r["wall_s"] for r in runs], median_wall_s=median_run["wall_s"], warmup=warmup,
        scheduler=median_run["scheduler"], blocks=median_run["rows"])
