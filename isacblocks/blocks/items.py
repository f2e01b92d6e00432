"""Stream item layouts and per-frame tags shared by the blocks (and by blocks built on them)."""

from __future__ import annotations

from ..core.messages import Setting
from ..dsp.impairments import check_array
from ..errors import BlockError

#: Item layout of the prior-sector stream: [theta_min, theta_max, r_min, r_max] (rad, m).
SECTOR_ITEM = 4

#: Item layout of an estimator's output: [statistic, theta_hat (rad), range_hat (m)].
ESTIMATE_ITEM = 3

#: Tag key a sensing receiver puts (value True) on the output item of a frame holding NaN or Inf.
INVALID_FRAME_KEY = "invalid_frame"


#: The array a beamformer or receiver assumes: a spacing vector (m) or an `ArrayImpairments`
#: with gains and coupling too, of the system's K elements.
SPACING_SETTING = Setting(lambda block, value: check_array(value, block.params.n_antennas, f"{block.name}.spacing"),
                          "the array the block assumes: a spacing vector (K,) in m, or an ArrayImpairments")


def required_tags(block, port: int, n: int, key: str) -> list:
    """Per-item values of tag `key` on input `port`; raise naming the first item without one."""
    values = block.frame_tags(port, n, key)
    for index, value in enumerate(values):
        if value is None:
            offset = block.nitems_read(port) + index
            raise BlockError(f"block {block.name!r}: input {block.in_sig[port].name} item {offset} has no "
                             f"{key!r} tag (expected one per frame from the scenario source)")
    return values
