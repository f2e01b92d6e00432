"""ZeroMQ streaming compatible with GNU Radio 3.10's gr-zeromq.

Modules: :mod:`~isacblocks.zeromq.pmt` (PMT serialisation), :mod:`~isacblocks.zeromq.wire`
(the tag header, framing and wire limits), :mod:`~isacblocks.zeromq.tagcodec` (one tag's bytes),
:mod:`~isacblocks.zeromq.seqtags` (the sequence tags as fixed-layout records, written and read
with numpy) and :mod:`~isacblocks.zeromq.seqdecoder` (a header with those records read as arrays),
:mod:`~isacblocks.zeromq.endpoint` (socket ownership, errors, tag keys),
:mod:`~isacblocks.zeromq.sinkbase` (what the sinks share) and :mod:`~isacblocks.zeromq.sinks`,
:mod:`~isacblocks.zeromq.sources`, :mod:`~isacblocks.zeromq.pairing` (several streams of one sender
paired item by item: :mod:`~isacblocks.zeromq.staging` stages each stream,
:mod:`~isacblocks.zeromq.indexset` accounts for the indices), :mod:`~isacblocks.zeromq.curve` (CURVE
keys: an authenticated, encrypted link).

=================  ============================  =================================
block              ZeroMQ socket                 gr-zeromq counterpart
=================  ============================  =================================
`PushSink`         PUSH (binds by default)       ``zeromq.push_sink``
`PullSource`       PULL (connects by default)    ``zeromq.pull_source``
`PubSink`          XPUB (binds by default)       ``zeromq.pub_sink``
`SubSource`        SUB (connects by default)     ``zeromq.sub_source``
=================  ============================  =================================

Parameters are the ones GNU Radio users know: ``address``, ``timeout`` (ms), ``hwm``
(high-water mark in messages, -1 = ZeroMQ's default of 1000), ``pass_tags``, ``key``
(PUB/SUB), ``drop_on_hwm`` (PUB), ``bind``.  GNU Radio's ``itemsize, vlen`` become the
port's numpy ``dtype`` and ``item_shape`` (a (64, 256) complex64 frame is one item).
Messages are byte-compatible with gr-zeromq (:mod:`isacblocks.zeromq.wire`): with
``pass_tags`` every message is the tag header followed by the payload in one frame, and
a PUB ``key`` is sent as a frame of its own before it.

Behaviour, and where it differs from GNU Radio:

* **Binding.**  Sinks bind and sources connect by default, both configurable.  The
  socket is opened when the block is built, so ``tcp://127.0.0.1:0`` (or ``ipc://*``)
  binds a free port at once and `endpoint` names it; `stop()` closes it and a later
  `start()` binds the same endpoint again.
* **Batching.**  A sink sends all items of one work() call in one message, or at most
  ``max_items_per_message`` items per message; a batch whose message would break a wire
  limit (`wire.MAX_MESSAGE_BYTES` = 64 MiB, `wire.MAX_TAGS` = 65 536 tags,
  `pmt.MAX_ELEMENTS` = 65 536 PMT elements, `pmt.MAX_DEPTH` = 128 levels) goes as several
  messages, and a received message beyond a limit is counted malformed and skipped.
* **CURVE.**  ``curve=CurveKeys(DIR)`` (keys from ``isac keys DIR``) authenticates and
  encrypts the socket: the binding side is the CURVE server and admits only the client
  key in DIR.  gr-zeromq has no CURVE: a keyed link has isacblocks at both ends.  ``start_tags`` (a dict, with
  ``pass_tags``) are sent as tags on the first item of a run: stream metadata such as
  the sender's configuration.
* **Sources never hold the scheduler long.**  Under the single-thread scheduler every
  block shares one thread, so a source waits at most ``timeout`` ms for a message (GNU Radio's default is
  100 ms) and returns 0 items when none came; the scheduler then backs off and stays
  responsive to `Flowgraph.stop()`.
* **End of stream.**  At `stop()` a sink sends an end-of-stream message (``eos=True``):
  with ``pass_tags``, a header with no items and one tag of key `EOS_KEY` (``"eos"``);
  without, an empty message.  A source receiving it ends its stream (WORK_DONE) after
  the items before it.  GNU Radio receivers accept both forms as zero items.  The end of
  stream queues behind every message sent before it: while a receiver is connected the
  sink waits for room, with none connected it gives up after ``timeout`` ms; then it
  waits until the end of stream has left the socket -- all within ``linger`` ms
  (default 500; -1: no limit, `abort()` gives up) -- and closes the socket with
  ZMQ_LINGER 0; its own context is terminated.  Give `Flowgraph.stop()` a timeout above
  ``linger``.  (With several PULL peers the end of stream reaches only one of them, as
  PUSH load-balances.)  `PushSink.peers` counts connected receivers.
* **PUSH never drops.**  Like gr-zeromq, work() waits up to ``timeout`` ms for the
  socket to accept a message (a peer connected and below its high-water mark) and
  otherwise returns 0: the items stay upstream.  While no receiver is connected, a bound
  PUSH sink holds everything; a restarted receiver continues the stream.  Messages
  already handed to a receiver that is then killed (its queue and the kernel's socket
  buffers) are lost -- ZeroMQ has no end-to-end acknowledgement; the ``seq`` tags and the
  header offsets make such a gap visible (`PullSource.missed_items`).
* **PUB drops are counted, never silent** (GNU Radio issue #6192).  The socket is an XPUB
  with ZMQ_XPUB_NODROP, so reaching the high-water mark is reported to the sender instead
  of silently discarding the message for the slow subscriber.  With ``drop_on_hwm=True``
  (default) the message is then dropped *for every subscriber* and counted in `dropped`
  / `dropped_items`, with a `ZmqDropWarning` at stop(); with ``drop_on_hwm=False`` the
  sink waits up to ``timeout`` ms and otherwise holds the items (back-pressure).  XPUB is
  wire-identical to PUB for subscribers; it also lets the sink count its `subscribers`
  and `wait_for_subscribers()` before sending (PUB/SUB's "slow joiner").  Messages
  published while nobody subscribes go nowhere, as with any PUB socket.
* **Receiving.**  A source receives with zero copy (the payload is viewed in place with
  `items_from_payload`) and copies items once, into the flowgraph's buffer.  Received
  tags are rebased onto the source's own item count, as gr-zeromq does.  With
  ``pass_tags`` the header's item offsets also reveal items the sender sent but this
  source never saw (PUB drops, a lost connection): they are counted in `missed_items`.
* **No waiting forever.**  ``idle_timeout`` (s; None or 0: forever) on a source ends its
  stream when no message came for that long once one has (`timed_out`, a `ZmqWarning`
  at stop()); before the first message ``waiting_interval`` logs a "waiting for a sender
  on ADDRESS" line (logger ``isacblocks.zeromq``, level INFO).  On a sink, ``idle_timeout``
  raises `LinkIdleError` when no message could be queued for that long after the first
  one: the receiver is gone, stalled, or refused the stream.
* **End of stream that survives GNU Radio.**  GNU Radio drops messages of zero items, so
  the end-of-stream header alone does not cross a GNU Radio hop.  A sink given
  ``stream_length`` also puts the `EOS_KEY` tag on the stream's last item; GNU Radio
  passes it on with ``pass_tags``, and a source ends on either form.
* **Sequence tags.**  A sink given ``stream_id`` tags every item with `SEQ_KEY` =
  ``(stream_id, index)``; `PairedPullSource` pairs several streams by them.  They are
  ordinary tags on the wire (GNU Radio relays them), written from a byte template and read
  back as arrays where the bytes are exactly that template, by the general PMT code
  everywhere else (:mod:`~isacblocks.zeromq.seqtags`): the same bytes and the same tags, at
  about 15x the speed of one tag at a time.
* **Waiting is said so.**  A source with no message yet, and a sink whose receiver takes
  nothing, return ``WORK_WAITING`` (they wait for another process), so a scheduler calls
  them again instead of waiting for a neighbour.
* **Item size mismatch.**  A sender whose item size differs from the receiver's but
  divides the message size would be read as garbage.  With ``pass_tags`` the header
  reveals it -- a tag beyond the message's items (the sender's are smaller), a message
  starting inside the previous one as the receiver counted it (the sender's are larger).
  One such message is skipped (counted as ``wrong_size``); the source raises
  `ItemSizeMismatch`, naming both sizes, on consistent evidence only: 3 consecutive
  messages showing the same other size, or a stream that ends with no well-formed
  message after such evidence.  A sender with smaller items that tags none near a
  message's end is not seen, and without ``pass_tags`` nothing on the wire tells the
  sizes apart: the source then only notices a payload that is not a whole number of its
  items (counted as malformed).
* **Tags as sent.**  A tag's srcid arrives as the sender set it: GNU Radio's default
  ``#f`` as None (not the receiving block's name), any other PMT as that value.  A tag
  value holding an empty tuple ``()`` is refused at the sink (GNU Radio's deserialiser
  kills the receiving thread on it).
* **Malformed messages** (bad header, truncated tags or payload, a size that is not a
  whole number of items, an unknown PMT type, a wrong frame count) are counted in
  `malformed` and by kind in `malformed_kinds` (``bad_header``, ``bad_tags``,
  ``truncated``, ``wrong_size``, ``pass_tags``), described in `last_error`, logged once,
  and skipped; the source keeps running.  A ``pass_tags`` mismatch between sender and
  receiver is recognised and named as such (`pass_tags_mismatch`) instead of GNU Radio's
  "Incompatible vector sizes".

Zero-copy sends: the flowgraph reuses its buffers as soon as work() returns, so a
zero-copy send (pyzmq ``copy=False``) of an input view must be tracked
(`zmq.MessageTracker`) and waited for before work() returns.  ``copy_mode="track"`` does
that; it cannot carry ``pass_tags`` (gr-zeromq wants header and payload in one frame, which
needs a copy) and falls back to copying then.  ``copy_mode="copy"`` (default) copies each
message once into a recycled send buffer that is handed to ZeroMQ without a second copy
(copying into fresh memory instead -- pyzmq's ``copy=True`` -- also pays the page faults
and was ~1.5x slower).  Measured on loopback (2 cores shared with other jobs, so
noisy), (64, 256) complex64 frames, 8 or 64 frames per message, PUSH/PULL and PUB/SUB, one
or two processes: "track" moves 1.3-2.4 GB/s, "copy" 0.7-1.7 GB/s (with or without
tags).  "copy"
stays the default because "track" holds work() until ZeroMQ has written each message to
the kernel: a receiver that stops reading then stalls the whole flowgraph (only `abort()`
frees it), while "copy" returns after `timeout` ms with the items kept upstream.

Use one block from one thread (the scheduler's); `wait_for_subscribers`, `close` and
the counters may be used from another thread.
"""


from isacblocks.zeromq.endpoint import EOS_KEY, SEQ_KEY, ItemSizeMismatch, LinkIdleError
from isacblocks.zeromq.pairing import PairedPullSource
from isacblocks.zeromq.pmt import Pair, UInt64, WireFormatError, deserialize, dumps, loads, serialize
from isacblocks.zeromq.sinks import PubSink, PushSink
from isacblocks.zeromq.sources import PullSource, SubSource
from isacblocks.zeromq.warning import ZmqDropWarning, ZmqWarning
from isacblocks.zeromq.wire import (
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
    "ItemSizeMismatch",
    "LinkIdleError",
    "Pair",
    "PairedPullSource",
    "PubSink",
    "PullSource",
    "PushSink",
    "SEQ_KEY",
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
