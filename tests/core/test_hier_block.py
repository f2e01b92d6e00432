"""`HierBlock` (GNU Radio's hier_block2): flattened into a Flowgraph, nesting, message
forwarding, and every wrong use as an error naming the hier block and its port."""

import numpy as np
import pytest

from isacblocks.core import Block, Flowgraph, HierBlock, MessageCollector, NullSink, SyncBlock, VectorSink, VectorSource
from isacblocks.errors import ConfigError, ConnectError


class Scale(SyncBlock):
    def __init__(self, factor, name=None):
        super().__init__(in_sig=[np.float32], out_sig=[np.float32], name=name)
        self.factor = np.float32(factor)
        self.message_port_register_in("factor", lambda msg: setattr(self, "factor", np.float32(msg)))

    def work(self, inputs, outputs):
        outputs[0][:] = inputs[0] * self.factor
        return len(inputs[0])


class Offset(SyncBlock):
    def __init__(self, offset, name=None):
        super().__init__(in_sig=[np.float32], out_sig=[np.float32], name=name)
        self.offset = np.float32(offset)

    def work(self, inputs, outputs):
        outputs[0][:] = inputs[0] + self.offset
        return len(inputs[0])


class Add(SyncBlock):
    def __init__(self, name=None):
        super().__init__(in_sig=[np.float32, np.float32], out_sig=[np.float32], name=name)

    def work(self, inputs, outputs):
        outputs[0][:] = inputs[0] + inputs[1]
        return len(inputs[0])


class Talker(Block):
    def __init__(self, name=None):
        super().__init__(name=name)
        self.message_port_register_out("out")


class ScaleOffset(HierBlock):
    def __init__(self, factor=2.0, offset=1.0, name="scale_offset"):
        super().__init__(in_sig=[np.float32], out_sig=[np.float32, np.float32], name=name)
        self.scale, self.offset = Scale(factor), Offset(offset)
        self.connect((self, 0), (self.scale, 0))
        self.connect(self.scale, self.offset)
        self.connect((self.offset, 0), (self, 0))
        self.connect((self.scale, 0), (self, 1))
        self.message_port_register_hier_in("factor")
        self.msg_connect(self, "factor", self.scale, "factor")


def _data(n=50):
    return np.arange(n, dtype=np.float32)


@pytest.mark.parametrize("scheduler", ["single", "threaded"])
def test_hier_block_gives_the_output_of_its_blocks_connected_directly(scheduler):
    direct = Flowgraph(max_items=7, scheduler=scheduler)
    scale, offset, want = Scale(2.0), Offset(1.0), VectorSink(np.float32)
    direct.connect(VectorSource(_data()), scale, offset, want)
    direct.connect(scale, NullSink(np.float32))
    direct.run()

    fg = Flowgraph(max_items=7, scheduler=scheduler)
    hier, got, second = ScaleOffset(), VectorSink(np.float32), VectorSink(np.float32)
    fg.connect(VectorSource(_data()), hier, got)
    fg.connect((hier, 1), second)
    fg.run()
    np.testing.assert_array_equal(got.data, want.data)
    np.testing.assert_array_equal(second.data, _data() * np.float32(2))
    assert {b.name for b in fg.blocks} >= {hier.scale.name, hier.offset.name}
    assert hier not in fg.blocks


def test_hier_input_fans_out_and_hier_ports_connect_by_name():
    class Twice(HierBlock):
        def __init__(self):
            super().__init__(in_sig=[("x", np.float32, ())], out_sig=[("y", np.float32, ())], name="twice")
            add = Add()
            self.connect((self, "x"), (add, 0))
            self.connect((self, "x"), (add, 1))
            self.connect(add, (self, "y"))

    fg, sink, hier = Flowgraph(), VectorSink(np.float32), Twice()
    fg.connect(VectorSource(_data()), (hier, "x"))
    fg.connect((hier, "y"), sink)
    fg.run()
    np.testing.assert_array_equal(sink.data, 2 * _data())


def test_hier_blocks_nest():
    class Outer(HierBlock):
        def __init__(self):
            super().__init__(in_sig=[np.float32], out_sig=[np.float32], name="outer")
            self.first, self.second = ScaleOffset(2.0, 1.0, name="first"), ScaleOffset(3.0, 0.0, name="second")
            self.connect((self, 0), self.first, self.second)
            self.connect((self.second, 0), (self, 0))
            self.connect((self.first, 1), NullSink(np.float32))
            self.connect((self.second, 1), NullSink(np.float32))
            self.message_port_register_hier_in("factor")
            self.msg_connect(self, "factor", self.first, "factor")

    fg, sink, outer = Flowgraph(max_items=5), VectorSink(np.float32), Outer()
    fg.connect(VectorSource(_data()), outer, sink)
    fg.run()
    np.testing.assert_array_equal(sink.data, (_data() * 2 + 1) * 3)
    assert all(not isinstance(b, HierBlock) for b in fg.blocks)

    outer.post("factor", 0.0)  # forwarded down two levels, handled before the next run's first work()
    outer.first.scale.handle_messages()
    assert outer.first.scale.factor == 0


def test_message_ports_are_forwarded_into_the_hier_block():
    fg, talker, hier = Flowgraph(), Talker(), ScaleOffset()
    fg.connect(VectorSource(_data(4)), hier, NullSink(np.float32))
    fg.connect((hier, 1), NullSink(np.float32))
    fg.msg_connect(talker, "out", hier, "factor")
    assert hier.message_ports_in == ("factor",)
    talker.message_port_pub("out", 5.0)
    hier.scale.handle_messages()
    assert hier.scale.factor == 5


def test_hier_message_output_reaches_outside():
    class Speaker(HierBlock):
        def __init__(self):
            super().__init__(name="speaker")
            self.talker = Talker()
            self.message_port_register_hier_out("said")
            self.msg_connect(self.talker, "out", self, "said")

    fg, speaker, collector = Flowgraph(), Speaker(), MessageCollector()
    fg.msg_connect(speaker, "said", collector, "in")
    fg.add(speaker)
    speaker.talker.message_port_pub("out", "hello")
    collector.handle_messages()
    assert collector.messages == ["hello"]
    assert speaker.talker in fg.blocks


def test_add_joins_a_message_only_hier_block():
    class Pair(HierBlock):
        def __init__(self):
            super().__init__(name="pair")
            self.talker, self.collector = Talker(), MessageCollector()
            self.msg_connect(self.talker, "out", self.collector, "in")

    fg, pair = Flowgraph(), Pair()
    fg.add(pair)
    assert pair.talker in fg.blocks and pair.collector in fg.blocks
    pair.talker.message_port_pub("out", 1)
    pair.collector.handle_messages()
    assert pair.collector.messages == [1]


# ---------------------------------------------------------------------- errors
def test_a_hier_port_out_of_range_is_named():
    hier = ScaleOffset()
    with pytest.raises(ConnectError, match="scale_offset.*output port 2"):
        Flowgraph().connect((hier, 2), NullSink(np.float32))
    with pytest.raises(ConnectError, match="scale_offset.*input port 1"):
        Flowgraph().connect(VectorSource(_data()), (hier, 1))

    class Bad(HierBlock):
        def __init__(self):
            super().__init__(in_sig=[np.float32], out_sig=[np.float32], name="bad")
            self.connect((self, 3), Scale(1.0))

    with pytest.raises(ConnectError, match="hier block 'bad'.*input port 3"):
        Bad()


def test_a_hier_port_left_unconnected_inside_is_named():
    class Half(HierBlock):
        def __init__(self):
            super().__init__(in_sig=[np.float32], out_sig=[np.float32, np.float32], name="half")
            scale = Scale(1.0)
            self.connect((self, 0), scale)
            self.connect(scale, (self, 0))

    with pytest.raises(ConfigError, match="hier block 'half': output out1 .* not connected inside"):
        Flowgraph().connect(VectorSource(_data()), Half())

    class Deaf(HierBlock):
        def __init__(self):
            super().__init__(name="deaf")
            self.message_port_register_hier_in("cmd")

    with pytest.raises(ConfigError, match="hier block 'deaf': message port 'cmd' is not connected inside"):
        Flowgraph().add(Deaf())


def test_a_hier_port_left_unconnected_outside_is_named():
    fg, hier = Flowgraph(), ScaleOffset()
    fg.connect(VectorSource(_data()), hier, NullSink(np.float32))
    with pytest.raises(ConnectError, match="hier block 'scale_offset': output out1 .* is not connected"):
        fg.run()
    fg2 = Flowgraph()
    fg2.add(ScaleOffset(name="alone"))
    with pytest.raises(ConnectError, match="hier block 'alone': input in0 .* is not connected"):
        fg2.run()


def test_a_port_connected_twice_is_named():
    fg, hier = Flowgraph(), ScaleOffset()
    fg.connect(VectorSource(_data()), hier)
    with pytest.raises(ConnectError, match="hier block 'scale_offset': input in0 is already connected"):
        fg.connect(VectorSource(_data()), hier)

    class TwoSources(HierBlock):
        def __init__(self):
            super().__init__(in_sig=[np.float32], out_sig=[np.float32], name="two_sources")
            a, b = Scale(1.0), Scale(2.0)
            self.connect((self, 0), a)
            self.connect((self, 0), b)
            self.connect(a, (self, 0))
            self.connect(b, (self, 0))

    with pytest.raises(ConnectError, match="hier block 'two_sources': output out0 is already connected inside"):
        TwoSources()

    class Crossed(HierBlock):
        def __init__(self):
            super().__init__(in_sig=[np.float32], out_sig=[np.float32], name="crossed")
            a, b = Scale(1.0), Scale(2.0)
            self.connect(a, b)
            self.connect((self, 0), b)

    with pytest.raises(ConnectError, match="hier block 'crossed'.*in0 is already connected"):
        Crossed()


def test_dtype_and_shape_mismatches_follow_the_connect_rules():
    class Wrong(HierBlock):
        def __init__(self):
            super().__init__(in_sig=[np.complex64], out_sig=[np.float32], name="wrong")
            self.connect((self, 0), Scale(1.0))

    with pytest.raises(ConnectError, match="hier block 'wrong'.*dtype complex64 != float32"):
        Wrong()

    class WrongOut(HierBlock):
        def __init__(self):
            super().__init__(in_sig=[np.float32], out_sig=[(np.float32, 4)], name="wrong_out")
            scale = Scale(1.0)
            self.connect((self, 0), scale)
            self.connect(scale, (self, 0))

    with pytest.raises(ConnectError, match=r"hier block 'wrong_out'.*item shape \(\) != \(4,\)"):
        WrongOut()
    with pytest.raises(ConnectError, match="scale_offset:in0.*dtype complex64 != float32"):
        Flowgraph().connect(VectorSource(np.zeros(3, np.complex64)), ScaleOffset())


def test_passing_an_input_straight_to_an_output_is_refused():
    class Wire(HierBlock):
        def __init__(self):
            super().__init__(in_sig=[np.float32], out_sig=[np.float32], name="wire")
            self.connect((self, 0), (self, 0))

    with pytest.raises(ConfigError, match="hier block 'wire'.*straight"):
        Wire()


def test_unknown_hier_message_ports_are_named():
    hier = ScaleOffset()
    with pytest.raises(ConnectError, match="scale_offset.*no input message port 'gain'"):
        Flowgraph().msg_connect(Talker(), "out", hier, "gain")
    with pytest.raises(ConfigError, match="scale_offset.*no input message port 'gain'"):
        hier.post("gain", 1)

    class Bad(HierBlock):
        def __init__(self):
            super().__init__(name="bad_msg")
            self.msg_connect(self, "cmd", Scale(1.0), "factor")

    with pytest.raises(ConnectError, match="hier block 'bad_msg' has no input message port 'cmd'"):
        Bad()


def test_a_hier_block_does_not_run_by_itself():
    with pytest.raises(TypeError, match="hier block 'scale_offset' has no work"):
        ScaleOffset().work([], [])
