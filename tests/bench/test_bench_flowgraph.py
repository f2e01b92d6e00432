"""`isacblocks.bench.benchmark_flowgraph` on a tiny flowgraph: VectorSource -> a block -> VectorSink.

No timing is asserted (a shared machine's numbers mean nothing): the rate is positive, and
the per-block counters (``Flowgraph.performance()``, or a subclass's own) count exactly the
items that went through.
"""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest

from isacblocks.bench import FlowgraphBenchmark, benchmark_flowgraph
from isacblocks.bench.flowgraph import ROW_KEYS
from isacblocks.core import Flowgraph, SyncBlock, VectorSink, VectorSource, port
from isacblocks.errors import ConfigError

N = 1000


class Twice(SyncBlock):
    def __init__(self, name="twice"):
        super().__init__(in_sig=[port(np.float32, ())], out_sig=[port(np.float32, ())], name=name)

    def work(self, inputs, outputs):
        outputs[0][:] = 2 * inputs[0]
        return len(inputs[0])


def _build(flowgraph=Flowgraph, sinks: list | None = None):
    def build():
        fg = flowgraph(max_items=64, name="tiny")
        sink = VectorSink(np.float32, name="sink")
        fg.connect(VectorSource(np.arange(N, dtype=np.float32), name="src"), Twice(), sink)
        if sinks is not None:
            sinks.append(sink)
        return fg
    return build


def _check(result: FlowgraphBenchmark):
    assert result.frames == N and result.frames_from == "sinks"
    assert 0 < result.rate["min"] <= result.rate["median"] <= result.rate["max"]
    assert len(result.wall_s) == 3 and result.median_wall_s in result.wall_s
    rows = {row["block"]: row for row in result.blocks}
    assert set(rows) == {"src", "twice", "sink"}
    for row in rows.values():
        assert set(ROW_KEYS) <= set(row) and row["calls"] > 0 and row["work_s"] >= 0
        assert row["share_of_wall"] == pytest.approx(row["work_s"] / result.median_wall_s)
    assert (rows["src"]["items_in"], rows["src"]["items_out"]) == (0, N)
    assert (rows["twice"]["items_in"], rows["twice"]["items_out"]) == (N, N)
    assert (rows["sink"]["items_in"], rows["sink"]["items_out"]) == (N, 0)
    assert rows["sink"]["buffer_fill"] is None  # a sink has no output buffer
    assert [r["work_s"] for r in result.blocks] == sorted((r["work_s"] for r in result.blocks), reverse=True)

    text = result.table()
    lines = text.splitlines()
    assert lines[0].startswith("| block") and "buffer fill" in lines[0] and "share of wall" in lines[0]
    assert len(lines) == 2 + 3 and all(line.startswith("|") for line in lines)
    assert "tiny" in result.summary() and "frames/s" in result.summary()
    record = json.loads(json.dumps(result.to_dict()))
    assert record["frames"] == N and record["runs"] == 3 and len(record["blocks"]) == 3


def test_counts_the_items_through_every_block():
    sinks: list = []
    result = benchmark_flowgraph(_build(sinks=sinks), repeats=3, warmup=1)
    _check(result)
    assert len(sinks) == 4  # one fresh flowgraph per run: the warm-up and three timed runs
    assert all(np.array_equal(s.data, 2 * np.arange(N, dtype=np.float32)) for s in sinks)


@pytest.mark.parametrize("scheduler", ["single", "threaded"])
def test_each_scheduler_gives_the_same_counts(scheduler):
    result = benchmark_flowgraph(_build(functools.partial(Flowgraph, scheduler=scheduler)), repeats=3, warmup=0)
    _check(result)
    assert result.scheduler == scheduler and result.to_dict()["scheduler"] == scheduler


def test_prefers_the_flowgraphs_own_performance_counters():
    class Counted(Flowgraph):
        def performance(self):
            return [{"block": b.name, "type": type(b).__name__, "calls": 7,
                     "items_in": sum(b.nitems_read(p) for p in range(len(b.in_sig))),
                     "items_out": sum(b.nitems_written(p) for p in range(len(b.out_sig))),
                     "work_s": 1e-4, "buffer_fill": None if not b.out_sig else 0.25} for b in self.blocks]

    result = benchmark_flowgraph(_build(Counted), repeats=3, warmup=0)
    _check(result)
    assert {row["calls"] for row in result.blocks} == {7}
    assert {row["buffer_fill"] for row in result.blocks if row["block"] != "sink"} == {0.25}
    assert "25%" in result.table()


def test_frames_given_set_the_rate():
    result = benchmark_flowgraph(_build(), frames=10, repeats=1, warmup=0)
    assert result.frames == 10 and result.frames_from == "given"
    assert result.rate["median"] == pytest.approx(10 / result.wall_s[0])


def test_refuses_what_cannot_be_timed():
    fg = _build()()
    with pytest.raises(ConfigError, match="new Flowgraph"):
        benchmark_flowgraph(lambda: fg, repeats=2, warmup=0)
    with pytest.raises(ConfigError, match="not a Flowgraph"):
        benchmark_flowgraph(lambda: 42)
    with pytest.raises(ConfigError, match="not callable"):
        benchmark_flowgraph(fg)
    with pytest.raises(ConfigError, match="repeats"):
        benchmark_flowgraph(_build(), repeats=0)
    with pytest.raises(ConfigError, match="frames"):
        benchmark_flowgraph(_build(), frames=0)
