"""The block runtime: blocks, ports, stream tags, message ports, flowgraphs. Knows nothing about radio."""

from .basic import Head, MessageCollector, NullSink, TagDebug, TagFilter, Throttle, VectorSink, VectorSource
from .block import (
                    WORK_CALLED_PRODUCE,
                    WORK_DONE,
                    WORK_WAITING,
                    Block,
                    DecimBlock,
                    GeneralBlock,
                    InterpBlock,
                    SinkBlock,
                    SourceBlock,
                    StreamWarning,
                    SyncBlock,
)
from .detail import BlockDetail
from .file import FileSink, FileSource
from .flowgraph import Flowgraph
from .harness import HarnessResult, run_block
from .hier import HierBlock
from .messages import Setting
from .performance import format_performance
from .ports import PortSpec, port
from .tags import Tag

__all__ = ["Block", "SyncBlock", "SourceBlock", "SinkBlock", "GeneralBlock", "DecimBlock", "InterpBlock",
           "WORK_DONE", "WORK_CALLED_PRODUCE", "WORK_WAITING", "BlockDetail", "StreamWarning", "Flowgraph",
           "HierBlock", "Setting",
           "PortSpec", "port",
           "Tag", "VectorSource", "FileSource", "FileSink", "Head", "Throttle", "TagDebug", "VectorSink", "NullSink",
           "TagFilter", "MessageCollector", "run_block", "HarnessResult", "format_performance"]
