"""The block runtime: blocks, ports, stream tags, message ports, flowgraphs. Knows nothing about radio."""

from .basic import MessageCollector, NullSink, TagFilter, VectorSink, VectorSource
from .block import WORK_DONE, Block, SinkBlock, SourceBlock, SyncBlock
from .flowgraph import Flowgraph
from .harness import HarnessResult, run_block
from .ports import PortSpec, port
from .tags import Tag

__all__ = ["Block", "SyncBlock", "SourceBlock", "SinkBlock", "WORK_DONE", "Flowgraph", "PortSpec", "port",
           "Tag", "VectorSource", "VectorSink", "NullSink", "TagFilter", "MessageCollector", "run_block", "HarnessResult"]
