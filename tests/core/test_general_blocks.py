"""General, decimating and interpolating blocks: rates, tag offsets across the rate change
(checked against GNU Radio's own scheduler when it is installed), batch-size independence,
partial frames at the end of a stream."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from _gnuradio import require_gnuradio, run_gr

from isacblocks.core import (
    WORK_CALLED_PRODUCE,
    DecimBlock,
    Flowgraph,
    GeneralBlock,
    InterpBlock,
    NullSink,
    StreamWarning,
    Tag,
    VectorSink,
    VectorSource,
)
from isacblocks.errors import BlockError, ConfigError

pytestmark = pytest.mark.usefixtures("each_scheduler")


# --------------------------------------------------------------------------- example blocks
class AverageSnapshots(DecimBlock):
    """Average every `n` snapshots (K, S) into one (a decimator)."""

    def __init__(self, shape, n, name=None):
        super().__init__(in_sig=[(np.complex64, shape)], out_sig=[(np.complex64, shape)], decimation=n, name=name)

    def work(self, inputs, outputs):
        x = inputs[0]
        m = len(outputs[0])
        outputs[0][:] = x.reshape(m, self.decimation, *x.shape[1:]).mean(axis=1)
        return m


class BurstDetector(DecimBlock):
    """One detection per burst of `n` statistics: [max, index of the max in the burst]."""

    def __init__(self, n, name=None):
        super().__init__(in_sig=[np.float64], out_sig=[(np.float64, 2)], decimation=n, name=name)

    def work(self, inputs, outputs):
        m = len(outputs[0])
        bursts = inputs[0].reshape(m, self.decimation)
        outputs[0][:, 0] = bursts.max(axis=1)
        outputs[0][:, 1] = bursts.argmax(axis=1)
        return m


class SplitSubcarriers(InterpBlock):
    """A frame of S subcarriers in, S scalar items out (an interpolator)."""

    def __init__(self, s, name=None):
        super().__init__(in_sig=[(np.complex64, s)], out_sig=[np.complex64], interpolation=s, name=name)

    def work(self, inputs, outputs):
        outputs[0][:] = inputs[0].reshape(-1)
        return len(outputs[0])


class DropUntagged(GeneralBlock):
    """Variable rate: passes only the frames that carry a `keep` tag, re-tagging them at their
    output offsets (tag_propagation "none": it places the tags itself)."""

    tag_propagation = "none"

    def __init__(self, limit=None, name=None):
        super().__init__(in_sig=[np.int64], out_sig=[np.int64], name=name)
        self.limit = limit

    def general_work(self, inputs, outputs):
        x = inputs[0]
        n_in = len(x) if self.limit is None else min(len(x), self.limit)
        base = self.nitems_read(0)
        tags = self.get_tags_in_range(0, base, base + n_in)
        keep = sorted({t.offset - base for t in tags if t.key == "keep"})
        keep = keep[:len(outputs[0])]
        if len(keep) == len(outputs[0]) and keep:  # out of room: consume up to the last kept frame
            n_in = keep[-1] + 1
        outputs[0][:len(keep)] = x[keep]
        out_base = self.nitems_written(0)
        for j, i in enumerate(keep):
            for t in tags:
                if t.offset == base + i:
                    self.add_tag(0, out_base + j, t.key, t.value, t.srcid)
        self.consume(0, n_in)
        return len(keep)


class PairSum(GeneralBlock):
    """Needs 2 inputs per output (forecast), consumes them; multiple outputs via produce():
    out0 gets the pair sums, out1 every second sum only."""

    def __init__(self, name=None):
        super().__init__(in_sig=[np.int64], out_sig=[np.int64, np.int64], name=name)
        self.set_relative_rate(1, 2)
        self.count = 0

    def start(self):
        self.count = 0

    def forecast(self, noutput_items, ninputs):
        return [2 * noutput_items]

    def general_work(self, inputs, outputs):
        m = min(len(inputs[0]) // 2, len(outputs[0]))
        sums = inputs[0][:2 * m].reshape(m, 2).sum(axis=1)
        outputs[0][:m] = sums
        index = self.count + np.arange(m)
        second = sums[index % 2 == 1]
        outputs[1][:len(second)] = second
        self.count += m
        self.consume_each(2 * m)
        self.produce(0, m)
        self.produce(1, len(second))
        return WORK_CALLED_PRODUCE


def _gr_round(offset: int, interp: int, decim: int) -> int:
    """GNU Radio's mapping, written independently: floor(o * interp/decim + 1/2) with Fractions."""
    return int(Fraction(offset * interp, decim) + Fraction(1, 2))


def _tagset(tags):
    return sorted((t.offset, t.key, repr(t.value)) for t in tags)


# --------------------------------------------------------------------------- decimation
@pytest.mark.parametrize("max_items", [1, 3, 64])
def test_average_snapshots_values_tags_and_partial_frame(run_fg, max_items):
    rng = np.random.default_rng(5)
    frames = (rng.standard_normal((23, 2, 3)) + 1j * rng.standard_normal((23, 2, 3))).astype(np.complex64)
    offsets = [0, 1, 2, 3, 4, 5, 6, 9, 13, 18, 19, 20, 22]
    tags = [Tag(o, "seq", o) for o in offsets]
    src, avg, sink = VectorSource(frames, tags), AverageSnapshots((2, 3), 4, name="avg"), \
        VectorSink(np.complex64, (2, 3))
    fg = Flowgraph(max_items=max_items)
    fg.connect(src, avg, sink)
    with pytest.warns(StreamWarning, match=r"'avg'.*in0: 3.*fewer than the 4"):
        run_fg(fg)
    expected = frames[:20].reshape(5, 4, 2, 3).mean(axis=1)
    np.testing.assert_allclose(sink.data, expected, rtol=1e-6)
    # every tag of the 20 consumed frames, at GR's offset; those rounding past the 5 outputs are not seen
    want = [(_gr_round(o, 1, 4), "seq", repr(o)) for o in offsets if o < 20 and _gr_round(o, 1, 4) < 5]
    assert _tagset(sink.tags) == sorted(want)
    assert (4, "seq", "13") not in _tagset(sink.tags) and (3, "seq", "13") in _tagset(sink.tags)
    assert fg.dropped == {"avg": {"in0": 3}}


def test_burst_detector_one_detection_per_burst_any_batch_size(run_fg):
    rng = np.random.default_rng(1)
    stats = rng.standard_normal(64)
    tags = [Tag(int(o), "truth", int(o)) for o in rng.choice(64, 20, replace=False)]
    runs = []
    for max_items in (1, 3, 64):
        sink = VectorSink(np.float64, 2)
        fg = Flowgraph(max_items=max_items)
        fg.connect(VectorSource(stats, tags), BurstDetector(8), sink)
        run_fg(fg)
        runs.append((sink.data, _tagset(sink.tags)))
    bursts = stats.reshape(8, 8)
    np.testing.assert_array_equal(runs[0][0][:, 0], bursts.max(axis=1))
    np.testing.assert_array_equal(runs[0][0][:, 1], bursts.argmax(axis=1))
    for data, tagset in runs[1:]:
        np.testing.assert_array_equal(data, runs[0][0])
        assert tagset == runs[0][1]
    assert runs[0][1] == sorted((_gr_round(t.offset, 1, 8), "truth", repr(t.value)) for t in tags
                                if _gr_round(t.offset, 1, 8) < 8)


# --------------------------------------------------------------------------- interpolation
@pytest.mark.parametrize("max_items", [1, 3, 64])
def test_split_subcarriers_interpolates_with_tags_on_first_item_of_each_frame(run_fg, max_items):
    s = 5
    frames = (np.arange(7 * s) + 1j).astype(np.complex64).reshape(7, s)
    tags = [Tag(0, "frame", 0), Tag(3, "frame", 3), Tag(6, "frame", 6)]
    sink = VectorSink(np.complex64)
    fg = Flowgraph(max_items=max_items)
    fg.connect(VectorSource(frames, tags), SplitSubcarriers(s), sink)
    run_fg(fg)
    np.testing.assert_array_equal(sink.data, frames.reshape(-1))
    assert [(t.offset, t.value) for t in sink.tags] == [(0, 0), (15, 3), (30, 6)]


def test_interp_block_must_return_a_multiple_of_its_interpolation(run_fg):
    class Bad(SplitSubcarriers):
        def work(self, inputs, outputs):
            super().work(inputs, outputs)
            return len(outputs[0]) - 1

    fg = Flowgraph(max_items=8)
    fg.connect(VectorSource(np.zeros((4, 3), np.complex64)), Bad(3, name="bad_interp"), NullSink(np.complex64))
    with pytest.raises(BlockError,
                       match=r"'bad_interp'.*returned \d+, expected 0\.\.\d+, a multiple of interpolation = 3"):
        run_fg(fg)


def test_rates_are_validated():
    with pytest.raises(ConfigError, match="decimation = 0"):
        BurstDetector(0)
    with pytest.raises(ConfigError, match="interpolation = True"):
        SplitSubcarriers(True)


# --------------------------------------------------------------------------- general blocks
@pytest.mark.parametrize("max_items,limit", [(1, None), (3, None), (64, None), (64, 5), (7, 2)])
def test_general_block_drops_untagged_frames_and_keeps_tags_on_kept_frames(run_fg, max_items, limit):
    data = np.arange(40, dtype=np.int64) * 3
    kept = [0, 4, 5, 11, 12, 13, 27, 39]
    tags = [Tag(o, "keep", f"k{o}") for o in kept] + [Tag(7, "other", 1)]
    sink = VectorSink(np.int64)
    fg = Flowgraph(max_items=max_items)
    fg.connect(VectorSource(data, tags), DropUntagged(limit=limit), sink)
    run_fg(fg)
    np.testing.assert_array_equal(sink.data, data[kept])
    assert [(t.offset, t.value) for t in sink.tags] == [(j, f"k{o}") for j, o in enumerate(kept)]


@pytest.mark.parametrize("max_items", [1, 3, 64])
def test_general_block_with_forecast_produce_per_port_and_relative_rate_tags(run_fg, max_items):
    data = np.arange(21, dtype=np.int64)
    tags = [Tag(o, "t", o) for o in (0, 1, 2, 3, 9, 19, 20)]
    s0, s1 = VectorSink(np.int64), VectorSink(np.int64)
    pairs = PairSum(name="pairs")
    fg = Flowgraph(max_items=max_items)
    fg.connect(VectorSource(data, tags), pairs)
    fg.connect((pairs, 0), s0)
    fg.connect((pairs, 1), s1)
    with pytest.warns(StreamWarning, match=r"'pairs'.*in0: 1"):
        run_fg(fg)
    sums = data[:20].reshape(10, 2).sum(axis=1)
    np.testing.assert_array_equal(s0.data, sums)
    np.testing.assert_array_equal(s1.data, sums[1::2])
    # relative rate 1/2: tags of the 20 consumed items at round-half-up(o / 2), on both outputs
    want = [(_gr_round(o, 1, 2), "t", repr(o)) for o in (0, 1, 2, 3, 9, 19) if _gr_round(o, 1, 2) < 10]
    assert _tagset(s0.tags) == sorted(want)
    assert fg.dropped == {"pairs": {"in0": 1}}


def test_general_block_that_over_consumes_or_over_produces_is_named(run_fg):
    class Greedy(GeneralBlock):
        def __init__(self, what):
            super().__init__(in_sig=[np.int64], out_sig=[np.int64], name=f"greedy_{what}")
            self.what = what

        def general_work(self, inputs, outputs):
            if self.what == "consume":
                self.consume(0, len(inputs[0]) + 1)
                return 0
            self.consume_each(1)
            return len(outputs[0]) + 1

    for what, pattern in (("consume", r"consumed \d+ items of in0"), ("produce", r"returned \d+|produced \d+")):
        fg = Flowgraph(max_items=4)
        fg.connect(VectorSource(np.zeros(10, np.int64)), Greedy(what), NullSink(np.int64))
        with pytest.raises(BlockError, match=rf"'greedy_{what}'.*({pattern})"):
            run_fg(fg)


def test_forecast_asking_more_than_a_buffer_can_hold_is_an_error(run_fg):
    class Hungry(GeneralBlock):
        def __init__(self):
            super().__init__(in_sig=[np.int64], out_sig=[np.int64], name="hungry")
            self.calls = 0

        def forecast(self, noutput_items, ninputs):
            self.calls += 1
            return [1 if self.calls == 1 else 10_000]

        def general_work(self, inputs, outputs):
            return 0

    fg = Flowgraph(max_items=4)
    fg.connect(VectorSource(np.zeros(100, np.int64)), Hungry(), NullSink(np.int64))
    with pytest.raises(BlockError, match=r"'hungry'.*forecast\(\) asks for 10000 items.*more than its buffer"):
        run_fg(fg)


def test_relative_rate_is_validated():
    block = PairSum()
    with pytest.raises(ConfigError, match="relative rate"):
        block.set_relative_rate(0)
    block.set_relative_rate(0.5)
    assert block.relative_rate == Fraction(1, 2)


def test_one_to_one_maps_input_i_to_output_i(run_fg):
    class Swap(DecimBlock):
        tag_propagation = "one_to_one"

        def __init__(self):
            super().__init__(in_sig=[np.int64, np.int64], out_sig=[np.int64, np.int64], decimation=2)

        def work(self, inputs, outputs):
            outputs[0][:] = inputs[0][::2]
            outputs[1][:] = inputs[1][::2]
            return len(outputs[0])

    a = VectorSource(np.arange(8, dtype=np.int64), [Tag(4, "a", 1)])
    b = VectorSource(np.arange(8, dtype=np.int64), [Tag(6, "b", 2)])
    block, sa, sb = Swap(), VectorSink(np.int64), VectorSink(np.int64)
    fg = Flowgraph(max_items=3)
    fg.connect(a, (block, 0))
    fg.connect(b, (block, 1))
    fg.connect((block, 0), sa)
    fg.connect((block, 1), sb)
    run_fg(fg)
    assert [(t.offset, t.key) for t in sa.tags] == [(2, "a")]
    assert [(t.offset, t.key) for t in sb.tags] == [(3, "b")]


# --------------------------------------------------------------------------- against GNU Radio
GR_RATE_SCRIPT = r'''
import json
import numpy as np
import pmt
from gnuradio import gr, blocks
n, offs = 40, %(offsets)r
tags = [gr.tag_utils.python_to_tag((o, pmt.intern("k"), pmt.from_long(o), pmt.intern("s"))) for o in offs]
out = {}
for name, mk in (("decim4", lambda: blocks.integrate_ff(4)), ("interp3", lambda: blocks.repeat(gr.sizeof_float, 3))):
    tb = gr.top_block()
    src = blocks.vector_source_f(list(np.arange(n, dtype=float)), False, 1, tags)
    b = mk(); snk = blocks.vector_sink_f()
    tb.connect(src, b, snk); tb.run()
    out[name] = {"data": list(snk.data()), "tags": sorted((t.offset, pmt.to_long(t.value)) for t in snk.tags())}
print(json.dumps(out))
'''


def test_tag_offsets_across_rate_changes_match_gnu_radio(run_fg):
    """GR's integrate_ff (a sync_decimator) and repeat (a sync_interpolator) against ours."""
    require_gnuradio()
    offsets = [0, 1, 2, 3, 5, 6, 7, 9, 10, 11, 21, 22, 37, 38, 39]
    gr_out = run_gr(GR_RATE_SCRIPT % {"offsets": offsets})

    class Integrate(DecimBlock):
        def __init__(self):
            super().__init__(in_sig=[np.float32], out_sig=[np.float32], decimation=4)

        def work(self, inputs, outputs):
            outputs[0][:] = inputs[0].reshape(-1, 4).sum(axis=1)
            return len(outputs[0])

    class Repeat(InterpBlock):
        def __init__(self):
            super().__init__(in_sig=[np.float32], out_sig=[np.float32], interpolation=3)

        def work(self, inputs, outputs):
            outputs[0][:] = np.repeat(inputs[0], 3)
            return len(outputs[0])

    for name, make in (("decim4", Integrate), ("interp3", Repeat)):
        for max_items in (1, 3, 64):
            sink = VectorSink(np.float32)
            fg = Flowgraph(max_items=max_items)
            fg.connect(VectorSource(np.arange(40, dtype=np.float32), [Tag(o, "k", o) for o in offsets]),
                       make(), sink)
            run_fg(fg)
            np.testing.assert_array_equal(sink.data, np.array(gr_out[name]["data"], dtype=np.float32))
            assert sorted((t.offset, t.value) for t in sink.tags) == [tuple(x) for x in gr_out[name]["tags"]], \
                (name, max_items)
