"""Run one block on given arrays and tags, without writing a flowgraph by hand.

Like FutureSDR's Mocker: the natural unit-test and micro-benchmark harness.  The
block runs inside a real `Flowgraph` (vector sources in, vector sinks out), so what
is tested is exactly what runs in production, tag propagation included.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ShapeError
from .basic import MessageCollector, VectorSink, VectorSource
from .block import Block
from .flowgraph import Flowgraph
from .tags import Tag


@dataclass
class HarnessResult:
    outputs: list[np.ndarray]
    tags: list[list[Tag]]
    messages: dict[str, list[Any]] = field(default_factory=dict)


def run_block(block: Block, inputs: Sequence = (), tags: Sequence[Sequence] | None = None,
              max_items: int = 64, messages: Sequence[tuple[str, Any]] = (),
              n_items: int | None = None) -> HarnessResult:
    """Run `block` once over `inputs` (one array per input port) with `tags` (per input
    port, a list of `Tag` or ``(offset, key, value)``) and posted `messages`
    (``(port, msg)`` pairs delivered before the first work()).

    A source block runs until it ends, or for `n_items` items when given.
    Returns the outputs, the tags on each output, and the messages on each output port.
    """
    if len(inputs) != len(block.in_sig):
        raise ShapeError(f"run_block({block.name}): {len(block.in_sig)} input array(s) expected, "
                         f"got {len(inputs)}")
    tags = tags or [[] for _ in inputs]
    fg = Flowgraph(max_items=max_items, name=f"harness-{block.name}")
    for index, (array, spec, port_tags) in enumerate(zip(inputs, block.in_sig, tags)):
        array = np.asarray(array)
        if array.dtype != spec.dtype or tuple(array.shape[1:]) != tuple(spec.shape):
            raise ShapeError(f"run_block({block.name}): input {index} ({spec.name}) expects items "
                             f"{spec.describe()}, got array {array.dtype.name}{list(array.shape)}")
        fg.connect(VectorSource(array, port_tags, name=f"src{index}"), (block, index))
    sinks = []
    for index, spec in enumerate(block.out_sig):
        sink = VectorSink(spec.dtype, spec.shape, limit=n_items, name=f"sink{index}")
        fg.connect((block, index), sink)
        sinks.append(sink)
    if not block.in_sig and not block.out_sig:
        fg.add(block)
    collectors = {}
    for port in block.message_ports_out:
        collectors[port] = MessageCollector(name=f"msg_{port}")
        fg.msg_connect(block, port, collectors[port], "in")
    for port, msg in messages:
        block.post(port, msg)
    fg.run()
    return HarnessResult([s.data for s in sinks], [s.tags for s in sinks],
                         {p: c.messages for p, c in collectors.items()})

