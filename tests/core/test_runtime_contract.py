"""The runtime contract: a second run starts fresh, work() return values are checked, a graph
that cannot progress is reported instead of running forever, blocks built from different
params are refused at connect, unequal streams into one block are reported."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pytest

from isacblocks import SystemParams
from isacblocks.blocks import DetectionMetricsSink, OFDMModulator, SERSink, SymbolSource
from isacblocks.core import (
    WORK_WAITING,
    Block,
    Flowgraph,
    GeneralBlock,
    NullSink,
    SinkBlock,
    SourceBlock,
    StreamWarning,
    SyncBlock,
    Tag,
    VectorSink,
    VectorSource,
)
from isacblocks.errors import BlockError, ConnectError

pytestmark = pytest.mark.usefixtures("each_scheduler")


# --------------------------------------------------------------------------- run twice
def test_second_run_starts_from_fresh_state_metrics_and_ser_sinks_count_once(run_fg):
    est = np.array([[1.0, 0.1, 10.0], [5.0, 0.2, 20.0], [0.5, 0.0, 0.0]] * 4)
    tags = [Tag(i, "target_present", i % 3 == 1) for i in range(12)]
    params = SystemParams(n_antennas=4, n_subcarriers=3, n_angle_grid=16, n_range_grid=4, n_taps=2)
    metrics = DetectionMetricsSink(params, threshold=2.0)
    ser = SERSink(params)
    fg = Flowgraph(max_items=5)
    fg.connect(VectorSource(est, tags), metrics)
    sent = np.arange(12 * 3, dtype=np.int32).reshape(12, 3) % 4
    decided = sent.copy()
    decided[0, 0] = (decided[0, 0] + 1) % 4
    fg.connect((VectorSource(decided, name="decided"), 0), (ser, 0))
    fg.connect((VectorSource(sent, name="sent"), 0), (ser, 1))
    run_fg(fg)
    first = (metrics.records.copy(), ser.errors, ser.symbols)
    run_fg(fg)
    assert len(metrics.records) == 12 and ser.symbols == 36 and ser.errors == 1
    np.testing.assert_array_equal(metrics.records, first[0])
    assert (ser.errors, ser.symbols) == first[1:]


def test_default_start_calls_reset_and_vector_sink_does_not_keep_old_items(run_fg):
    sink = VectorSink(np.int64)
    fg = Flowgraph(max_items=3)
    fg.connect(VectorSource(np.arange(5, dtype=np.int64), [Tag(1, "k", 1)]), sink)
    run_fg(fg)
    run_fg(fg)
    np.testing.assert_array_equal(sink.data, np.arange(5))
    assert len(sink.tags) == 1


# --------------------------------------------------------------------------- return values
class Returns(SyncBlock):
    def __init__(self, value, name):
        super().__init__(in_sig=[np.int64], out_sig=[np.int64], name=name)
        self.value = value

    def work(self, inputs, outputs):
        outputs[0][:] = inputs[0]
        return self.value(len(inputs[0])) if callable(self.value) else self.value


@pytest.mark.parametrize("value,pattern", [
    (2.0, r"returned 2\.0 \(float\)"), (True, r"returned True \(bool\)"), (None, r"returned None"),
    ("3", r"returned '3'"), (-5, r"returned -5, expected 0\.\."), (lambda n: n + 1, r"returned \d+, expected 0\.\.")],
    ids=["float", "bool", "none", "str", "negative", "oversize"])
def test_bad_work_return_values_raise_block_error_naming_block_and_value(run_fg, value, pattern):
    fg = Flowgraph(max_items=4)
    fg.connect(VectorSource(np.arange(10, dtype=np.int64)), Returns(value, "bad_ret"), NullSink(np.int64))
    with pytest.raises(BlockError, match=rf"'bad_ret'.*{pattern}"):
        run_fg(fg)


def test_numpy_integer_return_values_are_accepted(run_fg):
    sink = VectorSink(np.int64)
    fg = Flowgraph(max_items=4)
    fg.connect(VectorSource(np.arange(10, dtype=np.int64)), Returns(lambda n: np.int64(n), "np_ret"), sink)
    run_fg(fg)
    np.testing.assert_array_equal(sink.data, np.arange(10))


def test_a_source_returning_more_than_its_output_space_is_named(run_fg):
    class Liar(SourceBlock):
        waits_for_external_input = False

        def __init__(self):
            super().__init__(out_sig=[np.int64], name="liar")

        def work(self, inputs, outputs):
            return len(outputs[0]) + 3

    fg = Flowgraph(max_items=4)
    fg.connect(Liar(), NullSink(np.int64))
    with pytest.raises(BlockError, match=r"'liar'.*returned 7, expected 0\.\.4"):
        run_fg(fg)


# --------------------------------------------------------------------------- stuck graphs
class Refuses(SinkBlock):
    """Takes 3 items, then returns 0 forever (a buggy sink)."""

    def __init__(self, name="refuses"):
        super().__init__(in_sig=[np.int64], name=name)
        self.taken = 0

    def work(self, inputs, outputs):
        if self.taken >= 3:
            return 0
        n = min(len(inputs[0]), 3 - self.taken)
        self.taken += n
        return n


def test_sink_returning_zero_forever_after_upstream_ended_is_reported_as_stuck(run_fg):
    fg = Flowgraph(max_items=2, name="stuck_fg")
    fg.connect(VectorSource(np.arange(10, dtype=np.int64), name="src10"), Refuses())
    with pytest.raises(BlockError, match=r"flowgraph 'stuck_fg' is stuck.*\['refuses'\].*in0: \d+ item\(s\) waiting "
                                         r"\(upstream 'src10' (ended|running)\).*waits_for_external_input"):
        run_fg(fg, timeout=10)


def test_general_block_that_never_consumes_is_reported_as_stuck(run_fg):
    class Lazy(GeneralBlock):
        def __init__(self):
            super().__init__(in_sig=[np.int64], out_sig=[np.int64], name="lazy")

        def general_work(self, inputs, outputs):
            return 0

    fg = Flowgraph(max_items=4)
    fg.connect(VectorSource(np.arange(10, dtype=np.int64)), Lazy(), NullSink(np.int64))
    with pytest.raises(BlockError, match=r"is stuck.*\['lazy'\]"):
        run_fg(fg, timeout=10)


def test_a_block_waiting_for_the_outside_is_not_reported_and_stop_ends_it():
    class WaitsForPeer(Refuses):
        waits_for_external_input = True

    sink = WaitsForPeer(name="peer_sink")
    fg = Flowgraph(max_items=2, name="waiting_fg")
    fg.connect(VectorSource(np.arange(10, dtype=np.int64)), sink)
    fg.start()
    time.sleep(0.2)
    assert fg.running
    fg.stop()
    assert not fg.running
    fg.wait()  # no error was stored


def test_a_block_that_says_it_waits_is_not_reported_and_stop_ends_it():
    """A block that waits for the outside says so per call (WORK_WAITING), as a socket poll
    with a timeout does; the flowgraph keeps calling it until stop()."""
    class Polls(Refuses):
        def work(self, inputs, outputs):
            n = super().work(inputs, outputs)
            if not n:
                self.polls = getattr(self, "polls", 0) + 1
                return WORK_WAITING
            return n

    polls = Polls(name="polls")
    fg = Flowgraph(max_items=2, name="polling_fg")
    fg.connect(VectorSource(np.arange(10, dtype=np.int64)), polls)
    fg.start()
    time.sleep(0.2)
    assert fg.running
    fg.stop()
    fg.wait()
    assert polls.polls >= 10  # called again and again, with a back-off of at most 1 ms


def test_a_block_that_blocks_inside_work_but_returns_zero_is_reported(run_fg):
    """No timing guess: a work() that sleeps and returns 0 without saying it waits is stuck."""
    class Sleeps(Refuses):
        def work(self, inputs, outputs):
            n = super().work(inputs, outputs)
            if not n:
                time.sleep(0.005)
            return n

    fg = Flowgraph(max_items=2, name="sleeping_fg")
    fg.connect(VectorSource(np.arange(10, dtype=np.int64)), Sleeps(name="sleeps"))
    with pytest.raises(BlockError, match=r"'sleeping_fg' is stuck.*\['sleeps'\].*WORK_WAITING"):
        run_fg(fg, timeout=10)


# --------------------------------------------------------------------------- params
def test_connect_refuses_blocks_built_from_different_system_params():
    a = SystemParams(n_antennas=4, n_subcarriers=8, n_angle_grid=16, n_range_grid=4, n_taps=2)
    b = SystemParams(n_antennas=4, n_subcarriers=8, n_angle_grid=16, n_range_grid=4, n_taps=2, snr_comm_db=3.0)
    fg = Flowgraph()
    with pytest.raises(ConnectError, match=r"symbols_a:symbols to ofdm_b:symbols.*SystemParams\.snr_comm_db = "
                                           r"20\.0 \(symbols_a\) != 3\.0 \(ofdm_b\)"):
        fg.connect((SymbolSource(a, name="symbols_a"), 0), OFDMModulator(b, name="ofdm_b"))
    fg.connect((SymbolSource(a, name="symbols_c"), 0), OFDMModulator(SystemParams(**{
        "n_antennas": 4, "n_subcarriers": 8, "n_angle_grid": 16, "n_range_grid": 4, "n_taps": 2}), name="ofdm_c"))


def test_params_check_is_generic_over_dataclasses():
    @dataclass
    class Cfg:
        rate: float
        taps: tuple

    class P(Block):
        def __init__(self, params, name, out=True):
            super().__init__(in_sig=[] if out else [np.int64], out_sig=[np.int64] if out else [], name=name)
            self.params = params

    fg = Flowgraph()
    with pytest.raises(ConnectError, match=r"Cfg\.taps = \(1, 2\) \(pa\) != \(1, 3\) \(pb\)"):
        fg.connect(P(Cfg(1.0, (1, 2)), "pa"), P(Cfg(1.0, (1, 3)), "pb", out=False))
    fg.connect(P(Cfg(1.0, (1, 2)), "pc"), P(Cfg(1.0, (1, 2)), "pd", out=False))
    fg.connect(P({"not": "a dataclass"}, "pe"), P(Cfg(1.0, (1, 2)), "pf", out=False))


# --------------------------------------------------------------------------- unequal streams
def test_unequal_sources_into_one_sync_block_are_reported_with_counts(run_fg):
    class Add(SyncBlock):
        def __init__(self):
            super().__init__(in_sig=[np.int64, np.int64], out_sig=[np.int64], name="adder")

        def work(self, inputs, outputs):
            outputs[0][:] = inputs[0] + inputs[1]
            return len(outputs[0])

    long, short = VectorSource(np.arange(12, dtype=np.int64), name="long"), \
        VectorSource(np.arange(5, dtype=np.int64), name="short")
    add, sink = Add(), VectorSink(np.int64)
    fg = Flowgraph(max_items=64)
    fg.connect(long, (add, 0))
    fg.connect(short, (add, 1))
    fg.connect(add, sink)
    with pytest.warns(StreamWarning, match=r"'adder'.*in0: 7.*unequal lengths: in1 \(from 'short'\) ended after 5 "
                                           r"item\(s\); in0 \(from 'long'\) brought 12"):
        run_fg(fg)
    np.testing.assert_array_equal(sink.data, 2 * np.arange(5))
    assert fg.dropped == {"adder": {"in0": 7}}
