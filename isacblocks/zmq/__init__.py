"""ZeroMQ streaming compatible with GNU Radio 3.10's gr-zeromq: PMT (de)serialisation
(:mod:`isacblocks.zmq.pmt`), the stream tag header / framing (:mod:`isacblocks.zmq.wire`)
and the PUSH/PULL and PUB/SUB sink and source blocks (:mod:`isacblocks.zmq.blocks`)."""

from isacblocks.zmq.blocks import (
    EOS_KEY,
    PubSink,
    PullSource,
    PushSink,
    SubSource,
    ZmqDropWarning,
    ZmqWarning,
)
from isacblocks.zmq.pmt import Pair, UInt64, WireFormatError, deserialize, dumps, loads, serialize
from isacblocks.zmq.wire import (
    decode_header,
    decode_message,
    encode_header,
    encode_message,
    items_from_payload,
    pub_frames,
    rebase_tags,
    split_pub_frames,
)

__all__ = [
    "EOS_KEY",
    "Pair",
    "PubSink",
    "PullSource",
    "PushSink",
    "SubSource",
    "ZmqDropWarning",
    "ZmqWarning",
    "UInt64",
    "WireFormatError",
    "decode_header",
    "decode_message",
    "deserialize",
    "dumps",
    "encode_header",
    "encode_message",
    "items_from_payload",
    "loads",
    "pub_frames",
    "rebase_tags",
    "serialize",
    "split_pub_frames",
]
