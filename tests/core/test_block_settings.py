"""Run-time settings (GNU Radio 4 style): declared on the block, one `settings` port on every
block, aliases for the named ports, applied between work() calls, then `settings_changed`."""

import numpy as np
import pytest

from isacblocks.core import Block, Flowgraph, SyncBlock, VectorSink, VectorSource, run_block
from isacblocks.core.messages import Setting
from isacblocks.errors import BlockError, ConfigError
from isacblocks.validation import check_real


class Gain(SyncBlock):
    settings = {"gain": Setting(lambda block, value: check_real(block.name, "gain", value, 0.0), "the factor"),
                "bias": Setting(lambda block, value: check_real(block.name, "bias", value), "added after")}
    setting_ports = {"gain": "gain", "both": ("gain", "bias")}

    def __init__(self, gain=1.0, name=None):
        super().__init__(in_sig=[np.float64], out_sig=[np.float64], name=name)
        self.changes = []
        self.apply_settings({"gain": gain, "bias": 0.0})

    def settings_changed(self, old, new):
        self.changes.append((old, new))

    def work(self, inputs, outputs):
        outputs[0][:] = inputs[0] * self.gain + self.bias
        return len(inputs[0])


def test_every_block_has_one_settings_port_and_the_declared_aliases():
    assert Block().message_ports_in == ("settings",)
    assert Gain().message_ports_in == ("settings", "gain", "both")


@pytest.mark.parametrize("port, msg", [("settings", {"gain": 3.0, "bias": 1.0}), ("both", {"gain": 3.0, "bias": 1.0})])
def test_a_settings_update_is_applied_before_the_next_work_call(port, msg):
    block = Gain(name="g")
    out = run_block(block, [np.ones(4)], messages=[(port, msg)]).outputs[0]
    np.testing.assert_array_equal(out, 4.0)
    assert block.changes[-1] == ({"gain": 1.0, "bias": 0.0}, {"gain": 3.0, "bias": 1.0})


def test_updates_queued_together_are_applied_at_once_with_one_settings_changed():
    block = Gain()
    block.changes.clear()
    block.post("gain", 2.0)
    block.post("settings", {"bias": 5.0})
    block.post("settings", {"gain": 4.0})
    block.handle_messages()
    assert (block.gain, block.bias) == (4.0, 5.0)
    assert block.changes == [({"gain": 1.0, "bias": 0.0}, {"gain": 4.0, "bias": 5.0})]


@pytest.mark.parametrize("port, msg, match", [
    ("settings", {"gian": 2.0}, r"block 'g': no setting 'gian'; its settings: \['bias', 'gain'\]"),
    ("settings", {"gain": -1.0, "bias": 2.0}, "gain"),
    ("settings", 2.0, "expected a dict of setting name -> value"),
    ("both", {"gain": 1.0, "other": 2}, "both message .* expected a dict with 'gain' and/or 'bias'"),
])
def test_a_wrong_update_stops_the_run_naming_block_and_setting_and_changes_nothing(port, msg, match):
    block = Gain(2.0, name="g")
    with pytest.raises(BlockError, match="block 'g'") as info:
        run_block(block, [np.ones(3)], messages=[(port, msg)])
    assert info.match(match)
    assert (block.gain, block.bias) == (2.0, 0.0)


def test_apply_settings_raises_the_check_error_at_once():
    block = Gain(name="g")
    with pytest.raises(ConfigError, match="g: gain"):
        block.apply_settings({"gain": "x"})
    assert block.gain == 1.0


def test_a_setting_published_while_running_reaches_the_block_between_calls():
    class Publisher(Block):
        def __init__(self):
            super().__init__()
            self.message_port_register_out("out")

    pub, block, sink = Publisher(), Gain(), VectorSink(np.float64)
    fg = Flowgraph(max_items=2, scheduler="single")
    fg.connect(VectorSource(np.ones(6)), block, sink)
    fg.msg_connect(pub, "out", block, "settings")
    pub.message_port_pub("out", {"gain": 7.0})
    fg.run()
    np.testing.assert_array_equal(sink.data, 7.0)
