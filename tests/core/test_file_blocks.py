"""FileSource / FileSink (GNU Radio's raw file format, bit for bit against GNU Radio when it is
installed), Head, Throttle, TagDebug."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from _gnuradio import require_gnuradio, run_gr

from isacblocks.core import (
    FileSink,
    FileSource,
    Flowgraph,
    Head,
    SourceBlock,
    Tag,
    TagDebug,
    Throttle,
    VectorSink,
    VectorSource,
)
from isacblocks.errors import ConfigError


def _frames(n=37, vlen=5, seed=3):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, vlen)) + 1j * rng.standard_normal((n, vlen))).astype(np.complex64)


@pytest.mark.parametrize("max_items", [1, 3, 64])
def test_file_sink_writes_raw_items_and_file_source_plays_them_back(run_fg, tmp_path, max_items):
    data = _frames()
    path = tmp_path / "x.c64"
    fg = Flowgraph(max_items=max_items)
    fg.connect(VectorSource(data), FileSink(path, np.complex64, 5))
    run_fg(fg)
    assert path.read_bytes() == data.tobytes()  # raw items, no header
    sink = VectorSink(np.complex64, 5)
    fg = Flowgraph(max_items=max_items)
    fg.connect(FileSource(path, np.complex64, 5), sink)
    run_fg(fg)
    np.testing.assert_array_equal(sink.data, data)


def test_file_source_repeat_with_head(run_fg, tmp_path):
    path = tmp_path / "r.i16"
    np.arange(7, dtype=np.int16).tofile(path)
    sink = VectorSink(np.int16)
    fg = Flowgraph(max_items=4)
    fg.connect(FileSource(path, np.int16, repeat=True), Head(np.int16, n=20), sink)
    run_fg(fg)
    np.testing.assert_array_equal(sink.data, np.arange(20) % 7)


def test_file_of_partial_items_is_refused_naming_the_sizes(tmp_path):
    path = tmp_path / "bad.c64"
    path.write_bytes(b"\0" * (8 * 5 * 3 + 12))
    with pytest.raises(ConfigError, match=r"132 bytes, not a whole number of 40-byte items \(3 items and 12 bytes"):
        FileSource(path, np.complex64, 5)
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    with pytest.raises(ConfigError, match="empty; repeat=True"):
        FileSource(empty, np.float32, repeat=True)
    with pytest.raises(ConfigError, match="cannot read"):
        FileSource(tmp_path / "missing", np.float32)


GR_WRITE = r'''
import json, numpy as np
from gnuradio import gr, blocks
data = np.fromfile(%(inp)r, dtype=np.complex64)
tb = gr.top_block()
src = blocks.vector_source_c(data.tolist(), False, %(vlen)d)
snk = blocks.file_sink(gr.sizeof_gr_complex * %(vlen)d, %(out)r, False)
snk.set_unbuffered(False)
tb.connect(src, snk); tb.run(); snk.close()
print(json.dumps({"ok": True}))
'''

GR_READ = r'''
import json, numpy as np
from gnuradio import gr, blocks
tb = gr.top_block()
src = blocks.file_source(gr.sizeof_gr_complex * %(vlen)d, %(inp)r, False)
snk = blocks.vector_sink_c(%(vlen)d)
tb.connect(src, snk); tb.run()
np.array(snk.data(), dtype=np.complex64).tofile(%(out)r)
print(json.dumps({"n": len(snk.data())}))
'''


def test_files_are_exchanged_with_gnu_radio_bit_for_bit(run_fg, tmp_path):
    require_gnuradio()
    vlen = 5
    data = _frames(41, vlen)
    data[3, 2] = np.complex64(complex(np.nan, -0.0))  # odd values survive too
    reference = tmp_path / "reference.bin"
    data.tofile(reference)
    # GR vector_source_c -> file_sink (vlen) -> our FileSource
    gr_file = tmp_path / "from_gr.c64"
    run_gr(GR_WRITE % {"inp": str(reference), "out": str(gr_file), "vlen": vlen})
    assert gr_file.read_bytes() == data.tobytes()
    sink = VectorSink(np.complex64, vlen)
    fg = Flowgraph(max_items=8)
    fg.connect(FileSource(gr_file, np.complex64, vlen), sink)
    run_fg(fg)
    assert sink.data.tobytes() == data.tobytes()
    # our FileSink -> GR file_source -> vector_sink
    ours = tmp_path / "ours.c64"
    fg = Flowgraph(max_items=3)
    fg.connect(VectorSource(data), FileSink(ours, np.complex64, vlen))
    run_fg(fg)
    back = tmp_path / "back.bin"
    got = run_gr(GR_READ % {"inp": str(ours), "out": str(back), "vlen": vlen})
    assert got["n"] == data.size
    assert back.read_bytes() == data.tobytes()


def test_head_passes_n_items_then_ends(run_fg):
    sink = VectorSink(np.int64)
    fg = Flowgraph(max_items=3)
    fg.connect(VectorSource(np.arange(100, dtype=np.int64), [Tag(2, "a", 1), Tag(50, "b", 2)]), Head(np.int64, n=10),
               sink)
    run_fg(fg)
    np.testing.assert_array_equal(sink.data, np.arange(10))
    assert [(t.offset, t.key) for t in sink.tags] == [(2, "a")]
    with pytest.raises(ConfigError, match="n = -1"):
        Head(np.int64, n=-1)


def test_head_ends_the_graph_even_when_its_source_then_goes_idle(run_fg):
    class FiveThenIdle(SourceBlock):
        def __init__(self):
            super().__init__(out_sig=[np.int64], name="five_then_idle")
            self.sent = 0

        def work(self, inputs, outputs):
            if self.sent:
                return 0  # waiting for the outside, forever
            outputs[0][:5] = np.arange(5)
            self.sent = 5
            return 5

    sink = VectorSink(np.int64)
    fg = Flowgraph(max_items=8)
    fg.connect(FiveThenIdle(), Head(np.int64, n=5), sink)
    run_fg(fg, timeout=10)
    np.testing.assert_array_equal(sink.data, np.arange(5))


def test_throttle_paces_items_and_stops_promptly():
    """Not a timing test of the rate: it checks that a slow throttle does not hold stop()."""
    sink = VectorSink(np.int64)
    fg = Flowgraph(max_items=16, name="throttled")
    fg.connect(VectorSource(np.arange(1000, dtype=np.int64)), Throttle(np.int64, items_per_second=20.0,
                                                                         name="throttle"), sink)
    fg.start()
    deadline = time.monotonic() + 5
    while not sink._chunks and time.monotonic() < deadline:
        time.sleep(0.01)
    fg.stop(timeout=2.0)
    assert not fg.running
    assert not any(t.name == "isacblocks-throttled" and t.is_alive() for t in threading.enumerate())
    assert 1 <= len(sink.data) < 1000
    # no busy wait: each work() call passes items or sleeps until the next one is due (or 50 ms)
    assert fg.work_calls["throttle"] <= 2 * len(sink.data) + 200
    np.testing.assert_array_equal(sink.data, np.arange(len(sink.data)))
    with pytest.raises(ConfigError, match="items_per_second = 0"):
        Throttle(np.int64, items_per_second=0)


def test_throttle_passes_everything_in_order(run_fg):
    sink = VectorSink(np.int64)
    fg = Flowgraph(max_items=4)
    fg.connect(VectorSource(np.arange(30, dtype=np.int64)), Throttle(np.int64, items_per_second=1e6), sink)
    run_fg(fg)
    np.testing.assert_array_equal(sink.data, np.arange(30))


def test_tag_debug_collects_prints_and_filters(run_fg, capsys):
    tags = [Tag(1, "a", 1), Tag(3, "b", "x"), Tag(8, "a", 2.5)]
    every, only_a = TagDebug(np.int64, label="all"), TagDebug(np.int64, key_filter="a", display=False)
    src = VectorSource(np.arange(10, dtype=np.int64), tags)
    fg = Flowgraph(max_items=4)
    fg.connect(src, every)
    fg.connect(src, only_a)
    run_fg(fg)
    assert [(t.offset, t.key, t.value) for t in every.tags] == [(1, "a", 1), (3, "b", "x"), (8, "a", 2.5)]
    assert [(t.offset, t.value) for t in only_a.tags] == [(1, 1), (8, 2.5)] and only_a.num_tags() == 2
    out = capsys.readouterr().out
    assert "Tag Debug: all" in out and "Offset: 3" in out and "Key: b" in out and "Value: 'x'" in out
    run_fg(fg)  # a second run starts fresh
    assert every.num_tags() == 3
