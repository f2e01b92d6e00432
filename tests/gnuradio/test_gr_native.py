"""isacblocks blocks inside GNU Radio 3.10's own scheduler (`isacblocks.gnuradio.as_gr_block`).

The project's venv cannot import GNU Radio, so the GNU Radio side runs in one child process of
``.venv-gr/bin/python`` (``make gnuradio``), or of ``/usr/bin/python3`` with this checkout on
its path where ``.venv-gr`` is absent: this file run as a script (``python
tests/gnuradio/test_gr_native.py OUT.json``).  The child drives wrapped blocks from GNU Radio's own
sources and sinks (``blocks.vector_source_*`` with tags, ``vector_sink_*``, ``message_strobe``,
``message_debug``), runs the same blocks in isacblocks' `Flowgraph` on the same inputs in the
same process, and writes what both gave; the tests compare.  Numbers are compared bit for bit
(same code, same inputs, same process; the blocks' outputs do not depend on how the stream is
cut into calls), tags by offset, key, srcid and the bytes of their PMT values.  Where GNU Radio
or ``.venv-gr`` is absent the tests skip with the reason; under ``CI=true`` that is a failure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
GR_VENV_PYTHON = ROOT / ".venv-gr" / "bin" / "python"
SYSTEM_PYTHON = "/usr/bin/python3"

# =============================================================================== the child
# Everything from here to the tests runs in the child (GNU Radio's Python); it imports
# gnuradio and isacblocks.gnuradio inside the functions.


def _blocks():
    """The user's blocks of the test, written as docs/writing-blocks.md says."""
    from isacblocks.core import (
        WORK_CALLED_PRODUCE,
        WORK_DONE,
        WORK_WAITING,
        DecimBlock,
        GeneralBlock,
        InterpBlock,
        SourceBlock,
        SyncBlock,
    )

    class ScaleFrames(SyncBlock):
        """y = gain * x on (2, 3) frames; notes the ``mark`` tags it reads; tags every 25th item."""

        def __init__(self, gain, name=None):
            super().__init__(in_sig=[(np.float32, (2, 3))], out_sig=[(np.float32, (2, 3))], name=name)
            self.gain = gain
            self.seen = []

        def reset(self):
            self.seen = []

        def work(self, inputs, outputs):
            x = inputs[0]
            n = len(x)
            assert x.shape[1:] == (2, 3) and not x.flags.writeable
            outputs[0][:n] = self.gain * x
            base = self.nitems_read(0)
            self.seen += [(t.offset, t.key) for t in self.get_tags_in_window(0, 0, n, "mark")]
            for i in np.flatnonzero(np.round(x[:, 0, 0]) % 150 == 0):
                self.add_tag(0, self.nitems_written(0) + int(i), "every25", int(base + i))
            return n

    class Average(DecimBlock):
        def __init__(self, n, name=None):
            super().__init__(in_sig=[np.float32], out_sig=[np.float32], decimation=n, name=name)

        def work(self, inputs, outputs):
            m = len(outputs[0])
            outputs[0][:] = inputs[0].reshape(m, self.decimation).mean(axis=1)
            return m

    class Repeat(InterpBlock):
        """Each (2,) item `k` times."""

        def __init__(self, k, name=None):
            super().__init__(in_sig=[(np.float32, 2)], out_sig=[(np.float32, 2)], interpolation=k, name=name)

        def work(self, inputs, outputs):
            x = inputs[0]
            outputs[0][:len(x) * self.interpolation] = np.repeat(x, self.interpolation, axis=0)
            return len(x) * self.interpolation

    class KeepTagged(GeneralBlock):
        """docs/writing-blocks.md's general block (int32 items: GNU Radio's vector_source_i)."""

        tag_propagation = "none"

        def __init__(self, name=None):
            super().__init__(in_sig=[np.int32], out_sig=[np.int32], name=name)

        def general_work(self, inputs, outputs):
            x, out = inputs[0], outputs[0]
            base = self.nitems_read(0)
            keep = [t for t in self.get_tags_in_range(0, base, base + len(x), "keep")][:len(out)]
            used = keep[-1].offset - base + 1 if len(keep) == len(out) else len(x)
            for j, tag in enumerate(keep):
                out[j] = x[tag.offset - base]
                self.add_tag(0, self.nitems_written(0) + j, tag.key, tag.value)
            self.consume(0, used)
            return len(keep)

    class Split(GeneralBlock):
        """Items >= 50 to output 0, the others to output 1: a different count per output (produce())."""

        tag_propagation = "none"

        def __init__(self, name=None):
            super().__init__(in_sig=[np.float32], out_sig=[np.float32, np.float32], name=name)

        def general_work(self, inputs, outputs):
            x = inputs[0][:min(len(outputs[0]), len(outputs[1]))]
            big, small = x[x >= 50], x[x < 50]
            outputs[0][:len(big)], outputs[1][:len(small)] = big, small
            self.consume(0, len(x))
            self.produce(0, len(big))
            self.produce(1, len(small))
            return WORK_CALLED_PRODUCE

    class Ticks(SourceBlock):
        """docs/writing-blocks.md's source that waits for the clock (WORK_WAITING)."""

        def __init__(self, period, count, name=None):
            super().__init__(out_sig=[np.int64], name=name)
            self.period, self.count = period, count

        def start(self):
            self.sent, self.due, self.waits = 0, time.monotonic(), 0

        def work(self, inputs, outputs):
            if self.sent == self.count:
                return WORK_DONE
            if time.monotonic() < self.due:
                self.waits += 1
                return WORK_WAITING
            outputs[0][0] = self.sent
            self.sent, self.due = self.sent + 1, self.due + self.period
            return 1

    class Boom(SyncBlock):
        """Raises in work() once item `at` arrives."""

        def __init__(self, at, name=None):
            super().__init__(in_sig=[np.float32], out_sig=[np.float32], name=name)
            self.at = at

        def work(self, inputs, outputs):
            if self.nitems_read(0) + len(inputs[0]) > self.at:
                raise ValueError(f"item {self.at} is cursed")
            outputs[0][:] = inputs[0]
            return len(inputs[0])

    class BadStart(SyncBlock):
        def __init__(self, name=None):
            super().__init__(in_sig=[np.float32], out_sig=[np.float32], name=name)

        def start(self):
            raise RuntimeError("no device")

        def work(self, inputs, outputs):  # pragma: no cover - never reached
            outputs[0][:] = inputs[0]
            return len(inputs[0])

    class Recorder(SyncBlock):
        """Records every call of its life cycle (construction must make none)."""

        def __init__(self, name=None):
            self.calls = []
            super().__init__(in_sig=[(np.complex128, 3)], out_sig=[(np.complex128, 3)], name=name)
            self.message_port_register_in("cmd", self.calls.append)
            self.message_port_register_out("out")

        def reset(self):
            self.calls.append("reset")

        def start(self):
            self.calls.append("start")

        def stop(self):
            self.calls.append("stop")

        def work(self, inputs, outputs):
            self.calls.append("work")
            outputs[0][:] = inputs[0]
            return len(inputs[0])

    return dict(ScaleFrames=ScaleFrames, Average=Average, Repeat=Repeat, KeepTagged=KeepTagged, Split=Split,
                Ticks=Ticks, Boom=Boom, BadStart=BadStart, Recorder=Recorder)


def _tag_rows(tags):
    """Tags as comparable JSON rows: offset, key, srcid, the hex of the value's PMT bytes."""
    from isacblocks.zeromq.pmt import serialize

    return [[int(t.offset), t.key, t.srcid, serialize(t.value).hex()] for t in tags]


def _gr_tags(tags):
    """isacblocks tags as GNU Radio tags (for vector_source_*)."""
    from gnuradio import gr

    from isacblocks.gnuradio import to_pmt

    return [gr.tag_utils.python_to_tag((t.offset, to_pmt(t.key), to_pmt(t.value),
                                        to_pmt(t.srcid) if t.srcid is not None else to_pmt(False)))
            for t in tags]


def _from_gr_tags(tags):
    from isacblocks.core import Tag
    from isacblocks.gnuradio import from_pmt

    return [Tag(t.offset, from_pmt(t.key), from_pmt(t.value), None if from_pmt(t.srcid) is False
                else from_pmt(t.srcid)) for t in tags]


def _run_gr(tb, timeout: float = 30.0) -> float:
    """``tb.run()`` that fails instead of hanging; returns the seconds it took."""
    box = {}
    t0 = time.perf_counter()
    tb.start()
    thread = threading.Thread(target=lambda: (tb.wait(), box.setdefault("done", True)), daemon=True)
    thread.start()
    thread.join(timeout)
    if "done" not in box:
        tb.stop()
        thread.join(5)
        raise TimeoutError(f"GNU Radio flowgraph did not end within {timeout} s")
    return time.perf_counter() - t0


def _run_until(tb, condition, timeout: float = 10.0) -> None:
    """Start `tb`, wait for `condition()`, stop it (a flowgraph with a message strobe never ends)."""
    tb.start()
    deadline = time.monotonic() + timeout
    try:
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met within {timeout} s")
            time.sleep(0.01)
    finally:
        tb.stop()
        tb.wait()


def child_sync_vector():
    from gnuradio import blocks, gr

    from isacblocks.core import Flowgraph, Tag, VectorSink, VectorSource
    from isacblocks.gnuradio import as_gr_block
    from isacblocks.zeromq.pmt import Pair, UInt64

    B = _blocks()
    data = np.arange(600 * 6, dtype=np.float32).reshape(600, 2, 3)
    values = [7, -2**40, UInt64(2**63 + 5), 2.5, complex(1, -2), "symbol", True, None, (1, "a", 2.0), [1, [2, 3]],
              {"k": 1, "z": (4.0, "x")}, np.arange(5, dtype=np.float32), (np.arange(3) + 1j).astype(np.complex64),
              Pair(1, Pair(2, None))]
    tags = [Tag(3 + 41 * i, "mark" if i % 2 else f"key{i}", v, f"src{i % 3}") for i, v in enumerate(values)]
    ours = B["ScaleFrames"](2.0, name="scale")
    sink = VectorSink(np.float32, (2, 3))
    fg = Flowgraph(max_items=64)
    fg.connect(VectorSource(data, tags), ours, sink)
    fg.run()

    block = B["ScaleFrames"](2.0, name="scale")
    tb = gr.top_block()
    src = blocks.vector_source_f(data.ravel().tolist(), False, 6, _gr_tags(tags))
    wrapped = as_gr_block(block)
    gr_sink = blocks.vector_sink_f(6)
    tb.connect(src, wrapped, gr_sink)
    _run_gr(tb)
    wrapped.check()
    return {"ours": np.asarray(sink.data).ravel().tolist(), "gr": list(gr_sink.data()),
            "ours_tags": _tag_rows(sink.tags), "gr_tags": _tag_rows(_from_gr_tags(gr_sink.tags())),
            "ours_seen": ours.seen, "gr_seen": block.seen, "n_tags_in": len(tags)}


def child_decim_interp():
    from gnuradio import blocks, gr

    from isacblocks.core import Flowgraph, Tag, VectorSink, VectorSource
    from isacblocks.gnuradio import as_gr_block

    B = _blocks()
    out = {}
    x = np.arange(64, dtype=np.float32) ** 1.5
    tags = [Tag(o, "t", o, "src") for o in range(0, 64, 3)]
    sink = VectorSink(np.float32)
    fg = Flowgraph(max_items=5)
    fg.connect(VectorSource(x, tags), B["Average"](4), sink)
    fg.run()
    tb = gr.top_block()
    gr_sink = blocks.vector_sink_f()
    wrapped = as_gr_block(B["Average"](4))
    tb.connect(blocks.vector_source_f(x.tolist(), False, 1, _gr_tags(tags)), wrapped, gr_sink)
    _run_gr(tb)
    wrapped.check()
    out["decim"] = {"ours": sink.data.tolist(), "gr": list(gr_sink.data()), "ours_tags": _tag_rows(sink.tags),
                    "gr_tags": _tag_rows(_from_gr_tags(gr_sink.tags()))}

    y = np.arange(40, dtype=np.float32).reshape(20, 2)
    tags = [Tag(o, "u", float(o), "src") for o in range(0, 20, 3)]
    sink = VectorSink(np.float32, 2)
    fg = Flowgraph(max_items=7)
    fg.connect(VectorSource(y, tags), B["Repeat"](3), sink)
    fg.run()
    tb = gr.top_block()
    gr_sink = blocks.vector_sink_f(2)
    wrapped = as_gr_block(B["Repeat"](3))
    tb.connect(blocks.vector_source_f(y.ravel().tolist(), False, 2, _gr_tags(tags)), wrapped, gr_sink)
    _run_gr(tb)
    wrapped.check()
    out["interp"] = {"ours": sink.data.ravel().tolist(), "gr": list(gr_sink.data()), "ours_tags": _tag_rows(sink.tags),
                     "gr_tags": _tag_rows(_from_gr_tags(gr_sink.tags()))}
    return out


def child_general():
    from gnuradio import blocks, gr

    from isacblocks.core import Flowgraph, Head, Tag, VectorSink, VectorSource
    from isacblocks.gnuradio import as_gr_block

    B = _blocks()
    x = (np.arange(1000) * 10).astype(np.int32)
    tags = [Tag(o, "keep", f"v{o}", "src") for o in (2, 3, 7, 40, 41, 300, 301, 302, 650, 900, 999)]
    sink = VectorSink(np.int32)
    fg = Flowgraph(max_items=16)
    fg.connect(VectorSource(x, tags), B["KeepTagged"](name="keep"), Head(np.int32, n=7), sink)
    fg.run()
    tb = gr.top_block()
    gr_sink = blocks.vector_sink_i()
    keep, head = as_gr_block(B["KeepTagged"](name="keep")), as_gr_block(Head(np.int32, n=7))
    tb.connect(blocks.vector_source_i(x.tolist(), False, 1, _gr_tags(tags)), keep, head, gr_sink)
    _run_gr(tb)
    keep.check()
    head.check()
    out = {"ours": sink.data.tolist(), "gr": list(gr_sink.data()), "ours_tags": _tag_rows(sink.tags),
           "gr_tags": _tag_rows(_from_gr_tags(gr_sink.tags()))}

    z = (np.random.default_rng(4).random(5000) * 100).astype(np.float32)
    tb = gr.top_block()
    split = as_gr_block(B["Split"]())
    big, small = blocks.vector_sink_f(), blocks.vector_sink_f()
    tb.connect(blocks.vector_source_f(z.tolist(), False), split)
    tb.connect((split, 0), big)
    tb.connect((split, 1), small)
    _run_gr(tb)
    split.check()
    out["split"] = [bool(np.array_equal(np.array(big.data(), np.float32), z[z >= 50])),
                    bool(np.array_equal(np.array(small.data(), np.float32), z[z < 50]))]
    return out


def child_source_sink():
    from gnuradio import blocks, gr

    from isacblocks.core import Tag, VectorSink, VectorSource
    from isacblocks.gnuradio import as_gr_block

    B = _blocks()
    data = np.arange(300, dtype=np.complex64).reshape(100, 3) * (1 - 1j)
    tags = [Tag(o, "k", o, "src") for o in range(0, 100, 9)]
    sink = VectorSink(np.complex64, 3)
    # GNU Radio keeps no reference to a Python block: the caller holds them while the flowgraph runs
    tb = gr.top_block()
    held = [as_gr_block(VectorSource(data, tags)), blocks.copy(gr.sizeof_gr_complex * 3), as_gr_block(sink)]
    tb.connect(*held)
    _run_gr(tb)
    ticks = B["Ticks"](0.01, 5)
    ticks_sink = VectorSink(np.int64)
    tb = gr.top_block()
    held = [as_gr_block(ticks), as_gr_block(ticks_sink)]
    tb.connect(*held)
    seconds = _run_gr(tb)
    return {"data_equal": bool(np.array_equal(sink.data, data)), "tags": _tag_rows(sink.tags),
            "want_tags": _tag_rows(tags), "ticks": ticks_sink.data.tolist(), "ticks_waits": ticks.waits,
            "ticks_s": seconds}


def _chain_setup(n_frames):
    from isacblocks import SystemParams
    from isacblocks.blocks import ImpairedULA

    p = SystemParams(n_antennas=16, n_subcarriers=64, n_angle_grid=180, n_range_grid=50)
    return p, ImpairedULA.drawn(p, seed=2)


def _frames(p, ula, n_frames, seed):
    """The transmitter's Y_r frames and symbols, with their tags, from isacblocks' runtime."""
    from isacblocks.blocks.chains import IsacTransmitter
    from isacblocks.core import Flowgraph, NullSink, VectorSink

    fg = Flowgraph(max_items=64)
    tx = IsacTransmitter(p, ula, ula.spacing, n_frames, seed=seed, with_comm=False)
    y_sink = VectorSink(np.complex64, (p.n_antennas, p.n_subcarriers))
    x_sink = VectorSink(np.complex64, p.n_subcarriers)
    fg.connect((tx, "Y_r"), y_sink)
    fg.connect((tx, "symbols"), x_sink)
    fg.connect((tx, "messages"), NullSink(np.int32, p.n_subcarriers))
    fg.run()
    return y_sink, x_sink


def child_chain():
    """The paper's sensing chain: reciprocal filter + MB-ML estimator + metrics."""
    from gnuradio import blocks, gr

    from isacblocks.blocks import DetectionMetricsSink, MBMLEstimator, ReciprocalFilter
    from isacblocks.blocks.chains import isac_flowgraph
    from isacblocks.blocks.sinks import records_report
    from isacblocks.core import Flowgraph, VectorSource
    from isacblocks.gnuradio import as_gr_block, gr_top_block, raise_errors

    n_frames, seed = 256, 5
    p, ula = _chain_setup(n_frames)
    # 1. isacblocks' runtime, the whole transceiver (isac_flowgraph)
    chain = isac_flowgraph(p, ula, ula.spacing, n_frames=n_frames, seed=seed, with_comm=False,
                           estimator=MBMLEstimator(p, ula.spacing))
    chain.flowgraph.run()
    whole = chain.detection.records
    # 2. the same transceiver, every block wrapped, under GNU Radio's scheduler
    chain_gr = isac_flowgraph(p, ula, ula.spacing, n_frames=n_frames, seed=seed, with_comm=False,
                              estimator=MBMLEstimator(p, ula.spacing))
    tb, wrappers = gr_top_block(chain_gr.flowgraph)
    _run_gr(tb, 60)
    raise_errors(wrappers.values())
    # 3. the receive chain fed by GNU Radio's vector sources with the transmitter's frames and tags
    y, x = _frames(p, ula, n_frames, seed)
    k, s = p.n_antennas, p.n_subcarriers
    tb = gr.top_block()
    src_y = blocks.vector_source_c(y.data.ravel().tolist(), False, k * s, _gr_tags(y.tags))
    src_x = blocks.vector_source_c(x.data.ravel().tolist(), False, s, _gr_tags(x.tags))
    src_y.set_min_output_buffer(128)
    recip, mbml, detection = ReciprocalFilter(p), MBMLEstimator(p, ula.spacing), DetectionMetricsSink(p)
    w_recip, w_mbml, w_det = as_gr_block(recip), as_gr_block(mbml), as_gr_block(detection)
    tb.connect(src_y, (w_recip, 0))
    tb.connect(src_x, (w_recip, 1))
    tb.connect(w_recip, w_mbml, w_det)
    _run_gr(tb, 60)
    raise_errors([w_recip, w_mbml, w_det])
    # 4. the same receive chain in isacblocks' runtime on the same frames
    fg = Flowgraph(max_items=64)
    det2 = DetectionMetricsSink(p)
    r2 = ReciprocalFilter(p)
    fg.connect(VectorSource(y.data, y.tags), (r2, 0))
    fg.connect(VectorSource(x.data, x.tags), (r2, 1))
    fg.connect(r2, MBMLEstimator(p, ula.spacing), det2)
    fg.run()
    # Pmd, Pfa check and RMSE with their intervals (scipy) at a Pfa the few H0 frames resolve
    reports = [repr(records_report(d.records, 0.05)) for d in (chain.detection, chain_gr.detection, detection, det2)]
    return {"whole": whole.tolist(), "whole_gr": chain_gr.detection.records.tolist(),
            "rx_gr": detection.records.tolist(), "rx_ours": det2.records.tolist(), "reports": reports,
            "frames": n_frames, "lowrank": [mbml.lowrank_frames, chain.estimator.lowrank_frames],
            "present": int(np.nansum(whole[:, 3]))}


def child_messages():
    import pmt
    from gnuradio import blocks, gr

    from isacblocks.blocks import ScenarioSource, SectorBeamformer
    from isacblocks.core import MessageCollector, run_block
    from isacblocks.gnuradio import as_gr_block, from_pmt

    out = {}
    # a PMT from a GNU Radio message strobe into a message-only isacblocks block
    collector = MessageCollector()
    tb = gr.top_block()
    strobe = blocks.message_strobe(pmt.to_pmt({"spacing": 1.5, "tag": "new"}), 20)
    wrapped = as_gr_block(collector)
    tb.msg_connect(strobe, "strobe", wrapped, "in")
    _run_until(tb, lambda: len(collector.messages) >= 2)
    out["collector"] = [repr(m) for m in collector.messages[:2]]

    # a new spacing from a strobe reaches a running beamformer
    p, ula = _chain_setup(0)
    new = ula.spacing * 1.01
    beamformer = SectorBeamformer(p, p.nominal_spacing)
    tb = gr.top_block()
    source = as_gr_block(ScenarioSource(p, None, seed=1))
    throttle = blocks.throttle(8 * 4, 20000)
    wrapped = as_gr_block(beamformer)
    sink = blocks.vector_sink_c(p.n_antennas)
    strobe = blocks.message_strobe(pmt.init_f64vector(p.n_antennas, new.tolist()), 100)
    tb.connect(source, throttle, wrapped, sink)
    tb.msg_connect(strobe, "strobe", wrapped, "spacing")
    sector = np.array([[*p.test_sector, p.range_min_m, p.range_max_m]])
    before = run_block(SectorBeamformer(p, p.nominal_spacing), [sector]).outputs[0][0]
    after = run_block(SectorBeamformer(p, new), [sector]).outputs[0][0]

    def last():
        data = sink.data()
        return np.array(data[-p.n_antennas:], dtype=np.complex64) if data else None

    # the strobe posts its first message at start: the beamformer may see it before its first frame
    _run_until(tb, lambda: np.array_equal(beamformer.spacing, new) and np.array_equal(last(), after))
    out["beamformer"] = {"last_is_after": bool(np.array_equal(last(), after)),
                         "changed": bool(not np.array_equal(before, after)), "error": repr(wrapped.error)}

    # the online learner's `spacing` messages reach a GNU Radio message_debug
    out["learner"] = _learner(from_pmt)
    return out


def _learner(from_pmt):
    from gnuradio import blocks, gr

    from isacblocks.blocks import ReciprocalFilter
    from isacblocks.core import Flowgraph, MessageCollector, VectorSource, run_block
    from isacblocks.gnuradio import as_gr_block
    from isacblocks.learning.online import OnlineSpacingTrainer

    p, ula = _chain_setup(96)
    y, x = _frames(p, ula, 96, seed=7)
    y_tilde = run_block(ReciprocalFilter(p), [y.data, x.data]).outputs[0]

    def learner():
        return OnlineSpacingTrainer(p, batch_size=16, steps_per_batch=1, step_frames=16, min_step_frames=8,
                                    replay=64, gate_frames=0, gate_end_deg=90.0, threshold=1e12,
                                    asynchronous=False, seed=3)

    ours, collector = learner(), MessageCollector()
    fg = Flowgraph(max_items=64)
    fg.connect(VectorSource(y_tilde, y.tags), ours)
    fg.msg_connect(ours, "spacing", collector, "in")
    fg.run()

    block = learner()
    tb = gr.top_block()
    src = blocks.vector_source_c(y_tilde.ravel().tolist(), False, p.n_antennas * p.n_subcarriers, _gr_tags(y.tags))
    wrapped = as_gr_block(block)
    debug = blocks.message_debug()
    tb.connect(src, wrapped)
    tb.msg_connect(wrapped, "spacing", debug, "store")
    _run_gr(tb, 60)
    wrapped.check()
    got = [from_pmt(debug.get_message(i)) for i in range(debug.num_messages())]
    return {"updates": len(block.updates), "messages": len(got), "ours": len(collector.messages),
            "same_as_updates": all(np.array_equal(g, u["spacing"]) for g, u in zip(got, block.updates)),
            "vs_ours": max((float(np.max(np.abs(g / o - 1))) for g, o in zip(got, collector.messages)), default=None),
            "dtype": str(got[0].dtype) if got else None}


def child_errors():
    from gnuradio import blocks, gr

    from isacblocks.errors import BlockError
    from isacblocks.gnuradio import as_gr_block

    B = _blocks()
    out = {}
    tb = gr.top_block()
    boom = as_gr_block(B["Boom"](100, name="boomer"))
    sink = blocks.vector_sink_f()
    tb.connect(blocks.vector_source_f([1.0] * 5000, False), boom, sink)
    seconds = _run_gr(tb, 20)
    try:
        boom.check()
        raised = None
    except BlockError as exc:
        raised = str(exc)
    out["work"] = {"raised": raised, "error": str(boom.error), "items": len(sink.data()), "seconds": seconds}
    tb = gr.top_block()
    bad = as_gr_block(B["BadStart"](name="no_device_block"))
    tb.connect(blocks.vector_source_f([1.0] * 100, False), bad, blocks.null_sink(gr.sizeof_float))
    _run_gr(tb, 20)
    out["start"] = str(bad.error)

    # one isacblocks block wrapped twice in one flowgraph: the second wrapper cannot run it
    shared = B["Boom"](10**9, name="shared")
    tb = gr.top_block()
    held = [as_gr_block(shared), as_gr_block(shared)]
    for wrapper in held:
        tb.connect(blocks.vector_source_f([1.0] * 100, False), wrapper, blocks.null_sink(gr.sizeof_float))
    _run_gr(tb, 20)
    out["twice"] = sorted(str(w.error) for w in held)

    # a message its handler refuses: a spacing of the wrong length, from a strobe
    import pmt

    from isacblocks.blocks import ScenarioSource, SectorBeamformer

    p, _ = _chain_setup(0)
    tb = gr.top_block()
    held = [as_gr_block(ScenarioSource(p, None, seed=1)), blocks.throttle(32, 20000),
            as_gr_block(SectorBeamformer(p, p.nominal_spacing, name="bf_bad")),
            blocks.null_sink(gr.sizeof_gr_complex * p.n_antennas)]
    strobe = blocks.message_strobe(pmt.init_f64vector(3, [1.0, 2.0, 3.0]), 50)
    tb.connect(*held)
    tb.msg_connect(strobe, "strobe", held[2], "spacing")
    _run_until(tb, lambda: held[2].error is not None)
    out["handler"] = str(held[2].error)
    return out


def child_construction():
    from gnuradio import gr

    from isacblocks.core import Flowgraph, MessageCollector, SyncBlock
    from isacblocks.errors import ConfigError
    from isacblocks.gnuradio import as_gr_block, gr_signature

    B = _blocks()
    block = B["Recorder"](name="recorder")
    collector = MessageCollector()
    Flowgraph().msg_connect(block, "out", collector, "in")
    detail, subscribers = block.detail, dict(block._msg_out)
    wrapped = as_gr_block(block)
    out = {"calls": list(block.calls), "same_detail": block.detail is detail, "running_in": block.running_in,
           "subscribers_kept": block._msg_out == subscribers,
           "signature": [[str(np.dtype(d).base), np.dtype(d).itemsize] for d in gr_signature(block, "in")],
           "gr_in_itemsize": wrapped.gateway.input_signature().sizeof_stream_item(0),
           "msg_in": "cmd" in str(wrapped.gateway.message_ports_in()),
           "msg_out": "out" in str(wrapped.gateway.message_ports_out())}

    class Objects(SyncBlock):
        def __init__(self):
            super().__init__(in_sig=[("things", object)], out_sig=[])

    try:
        as_gr_block(Objects())
        out["objects"] = None
    except ConfigError as exc:
        out["objects"] = str(exc)

    class Pair2(SyncBlock):
        def __init__(self, policy):
            self.tag_propagation = policy
            super().__init__(in_sig=[np.float32] * 2, out_sig=[np.float32] * 2)

    out["policies"] = {policy: int(as_gr_block(Pair2(policy)).gateway.tag_propagation_policy())
                       for policy in ("all_to_all", "one_to_one", "none")}
    out["gr_policies"] = {"all_to_all": int(gr.TPP_ALL_TO_ALL), "one_to_one": int(gr.TPP_ONE_TO_ONE),
                          "none": int(gr.TPP_DONT)}
    return out


def child_environment():
    """Versions beside GNU Radio, and the figures of `isac reproduce` drawn with this matplotlib."""
    import tempfile

    import matplotlib
    import numba
    import scipy
    import torch
    import zmq
    from gnuradio import gr

    from isacblocks.experiments import figures
    from isacblocks.experiments.results import CurvePoint, Estimate, Evaluation, Fig3, Run, SpacingErrors

    est = Estimate(0.1, (0.05, 0.2), 500)
    errors = SpacingErrors(0.1, 0.2, 0.3, 0.4)
    evaluation = Evaluation(est, 0.5, 1.0, 0.01, (0.005, 0.02), errors)
    curve = tuple(CurvePoint(i, 10 * i, Estimate(0.1 / (i + 1), (0.05 / (i + 1), 0.2 / (i + 1)), 500), 0.5, errors)
                  for i in range(4))
    run = Run("SL", "sl", 1.0, False, 4, 16, 1e-5, curve, evaluation, (0.0025,) * 4, 40, 1.0)
    path = Path(tempfile.mkdtemp()) / "fig3.png"
    figures.plot_fig3(Fig3({"known": evaluation}, {"SL": run}), path, 0.01)
    return {"numpy": np.__version__, "scipy": scipy.__version__, "matplotlib": matplotlib.__version__,
            "pyzmq": zmq.__version__, "numba": numba.__version__, "torch": torch.__version__,
            "gnuradio": gr.version(), "python": sys.executable, "numpy_file": np.__file__,
            "png_bytes": path.stat().st_size if path.exists() else 0}


CHILDREN = {name[len("child_"):]: fn for name, fn in list(globals().items()) if name.startswith("child_")}


def child_main(out_path: str) -> None:
    results = {}
    for name, fn in CHILDREN.items():
        t0 = time.perf_counter()
        try:
            results[name] = {"ok": fn()}
        except BaseException as exc:  # noqa: BLE001 - reported to the test of that scenario
            results[name] = {"error": f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"}
        results[name]["seconds"] = time.perf_counter() - t0
    Path(out_path).write_text(json.dumps(results))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    child_main(sys.argv[1])
    sys.stdout.flush()
    os._exit(0)  # GNU Radio's threads and loggers need no orderly teardown here


# =============================================================================== the tests
import pytest  # noqa: E402 - the child above runs where pytest is not installed
from _gnuradio import require_gnuradio  # noqa: E402


def _gr_python() -> tuple[list[str], dict]:
    """The child's interpreter: .venv-gr's, else Debian's with this checkout on its path."""
    env = dict(os.environ)
    if GR_VENV_PYTHON.exists():
        return [str(GR_VENV_PYTHON)], env
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return [SYSTEM_PYTHON], env


def _skip_or_fail(reason: str):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason + "; CI=true requires it")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def child(tmp_path_factory):
    """Run every scenario once in GNU Radio's Python; the results by scenario name."""
    require_gnuradio()
    python, env = _gr_python()
    probe = subprocess.run([*python, "-c", "import isacblocks.gnuradio"], capture_output=True, text=True, env=env,
                           timeout=120, cwd=ROOT)
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["?"])[-1]
        _skip_or_fail(f"{python[0]} cannot import isacblocks.gnuradio ({last}); run `make gnuradio`")
    out = tmp_path_factory.mktemp("gr_native") / "results.json"
    done = subprocess.run([*python, str(Path(__file__)), str(out)], capture_output=True, text=True, env=env,
                          timeout=300, cwd=ROOT)
    assert done.returncode == 0 and out.exists(), f"GNU Radio child failed:\n{done.stdout}\n{done.stderr}"
    results = json.loads(out.read_text())
    results["_output"] = done.stdout + done.stderr
    return results


def result(child, name):
    entry = child[name]
    assert "error" not in entry, entry.get("error")
    return entry["ok"]


def test_environment_beside_gnuradio(child):
    """.venv-gr uses Debian's numpy (< 2, the one GNU Radio's modules were built with) and meets every
    minimum of pyproject.toml; the figures of `isac reproduce` draw with its matplotlib."""
    import tomllib
    from importlib.metadata import version as _unused  # noqa: F401

    env = result(child, "environment")
    assert int(env["numpy"].split(".")[0]) < 2
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    minimum = {d.split(">=")[0]: d.split(">=")[1] for d in deps if ">=" in d}
    for name in ("numpy", "scipy", "matplotlib", "pyzmq", "numba"):
        have = tuple(int(part) for part in env[name].split("+")[0].split(".")[:2])
        need = tuple(int(part) for part in minimum[name].split(".")[:2])
        assert have >= need, (name, env[name], minimum[name])
    assert env["png_bytes"] > 1000


def test_sync_block_with_vector_items(child):
    r = result(child, "sync_vector")
    assert r["gr"] == r["ours"] and len(r["gr"]) == 600 * 6
    assert r["gr_tags"] == r["ours_tags"]
    assert len(r["gr_tags"]) == r["n_tags_in"] + 600 // 25  # the source's tags and the block's own
    assert r["gr_seen"] == r["ours_seen"] and len(r["gr_seen"]) == r["n_tags_in"] // 2


def test_decimating_and_interpolating_blocks(child):
    r = result(child, "decim_interp")
    assert r["decim"]["gr"] == r["decim"]["ours"] and len(r["decim"]["gr"]) == 16
    assert r["decim"]["gr_tags"] == r["decim"]["ours_tags"] and r["decim"]["gr_tags"]
    assert r["interp"]["gr"] == r["interp"]["ours"] and len(r["interp"]["gr"]) == 20 * 3 * 2
    assert r["interp"]["gr_tags"] == r["interp"]["ours_tags"]
    assert [row[0] for row in r["interp"]["gr_tags"]] == [3 * o for o in range(0, 20, 3)]


def test_general_block_and_head(child):
    r = result(child, "general")
    assert r["gr"] == r["ours"] == [20, 30, 70, 400, 410, 3000, 3010]
    assert r["gr_tags"] == r["ours_tags"]
    assert [row[0] for row in r["gr_tags"]] == list(range(7))
    assert r["split"] == [True, True]  # produce() per output, WORK_CALLED_PRODUCE


def test_wrapped_source_and_sink(child):
    r = result(child, "source_sink")
    assert r["data_equal"]
    assert r["tags"] == r["want_tags"]
    assert r["ticks"] == [0, 1, 2, 3, 4]
    assert r["ticks_waits"] > 0 and r["ticks_s"] < 5  # WORK_WAITING: called again after a back-off


def test_sensing_chain_same_detections_bit_for_bit(child):
    """The paper's sensing chain (ScenarioSource + target channel -> reciprocal filter -> MB-ML ->
    metrics) gives the same records under GNU Radio's scheduler as under isacblocks' runtime, bit
    for bit: the same code on the same frames, and every block's output independent of how the
    stream is cut into calls (GNU Radio picks other item counts per call)."""
    r = result(child, "chain")
    whole = np.array(r["whole"])
    assert whole.shape == (r["frames"], 6) and 0 < r["present"] < r["frames"]
    for other in ("whole_gr", "rx_gr", "rx_ours"):
        assert np.array_equal(np.array(r[other]), whole, equal_nan=True), other
    assert len(set(r["reports"])) == 1
    assert r["lowrank"][0] == r["lowrank"][1] > 0


def test_messages_into_and_out_of_wrapped_blocks(child):
    r = result(child, "messages")
    assert r["collector"] == ["{'spacing': 1.5, 'tag': 'new'}"] * 2
    b = r["beamformer"]
    assert b["changed"] and b["last_is_after"] and b["error"] == "None", b
    learner = r["learner"]
    assert learner["updates"] > 0 and learner["messages"] == learner["updates"] == learner["ours"]
    assert learner["same_as_updates"] and learner["dtype"] == "float64"
    # Not bit for bit: the learner projects each work() call's frames with one BLAS product, which
    # rounds differently for another number of frames per call (isacblocks' runtime shows the same
    # between max_items 7 and 64); the learned spacings agree to float32 rounding.
    assert learner["vs_ours"] < 1e-5


def test_errors_name_the_block_and_end_the_flowgraph(child):
    r = result(child, "errors")
    work = r["work"]
    assert work["raised"] == work["error"]
    assert work["error"].startswith("block 'boomer' (Boom) raised in work(): ValueError: item 100 is cursed")
    assert work["items"] <= 100 and work["seconds"] < 10  # ended, not hung
    assert r["start"].startswith("block 'no_device_block' (BadStart) raised in start(): RuntimeError: no device")
    assert "block 'boomer' (Boom) raised in work()" in child["_output"]  # GNU Radio's logger said it
    assert r["twice"][0] == "None"
    assert r["twice"][1].startswith("block 'shared' is running in flowgraph 'GNU Radio shared(")
    assert r["handler"].startswith("block 'bf_bad' (SectorBeamformer) raised in a message handler: "
                                   "ShapeError: bf_bad.spacing: expected 16")


def test_construction_has_no_side_effects(child):
    r = result(child, "construction")
    assert r["calls"] == [] and r["same_detail"] and r["running_in"] is None and r["subscribers_kept"]
    assert r["signature"] == [["complex128", 48]] and r["gr_in_itemsize"] == 48  # complex128 kept (GRC's fc64)
    assert r["msg_in"] and r["msg_out"]
    assert "things" in r["objects"] and "object" in r["objects"]
    assert r["policies"] == r["gr_policies"]


def test_child_is_fast(child):
    slow = {name: round(entry["seconds"], 1) for name, entry in child.items()
            if isinstance(entry, dict) and entry.get("seconds", 0) > 30}
    assert not slow


def test_import_error_names_the_way_to_gnuradio():
    """Where GNU Radio cannot be imported, isacblocks.gnuradio says how to get it."""
    try:
        import gnuradio  # noqa: F401
    except ImportError:
        pass
    else:  # pragma: no cover - a venv with GNU Radio
        pytest.skip("this interpreter has GNU Radio")
    with pytest.raises(ImportError, match=r"apt-get install gnuradio.*make gnuradio"):
        from isacblocks.gnuradio import as_gr_block  # noqa: F401
    with pytest.raises(ImportError, match=r"apt-get install gnuradio.*make gnuradio"):
        import isacblocks.gnuradio.wrapper  # noqa: F401
    from isacblocks.gnuradio import grc  # the YAML generator needs no GNU Radio

    assert callable(grc.block_yaml)


def test_nothing_else_imports_the_bridge():
    """isacblocks works without GNU Radio: no module of it imports isacblocks.gnuradio on import."""
    code = ("import sys, isacblocks, isacblocks.core, isacblocks.blocks, isacblocks.zeromq, isacblocks.learning, "
            "isacblocks.experiments.reproduce, isacblocks.bench, isacblocks.cli\n"
            "print('isacblocks.gnuradio' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
