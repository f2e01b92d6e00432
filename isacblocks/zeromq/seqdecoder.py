"""`SeqDecoder`: `decode_header` with a link's sequence records read as arrays.

See `isacblocks.zeromq.seqtags` for the fixed-layout records; every other tag goes through the
general decoder (`isacblocks.zeromq.tagcodec`), so the result is the same as `wire.decode_header`'s.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from isacblocks.core.tags import Tag
from isacblocks.zeromq import pmt
from isacblocks.zeromq.seqtags import SeqLayout, SeqRun
from isacblocks.zeromq.tagcodec import TAG_OFFSET, decode_tag
from isacblocks.zeromq.wire import HEADER_SCOPE, fixed_header, message_view

__all__ = ["SeqDecoder"]


class SeqDecoder:
    """`decode_header` with the sequence records of a link read as arrays (`isacblocks.zeromq.seqtags`).

    Where a tag of key `key` starts in a header, the layouts learnt so far are tried: the
    records that equal a layout's template outside the offset and index bytes are read with
    numpy, as one `SeqRun`.  Every other tag goes through the general decoder; a sequence
    tag decoded that way teaches its layout (when the layout's encoder gives back exactly
    the tag's bytes), so the next records of that sender take the fast path.  The result is
    the general decoder's, with the matched records moved into runs
    (`SeqDecoder.merged` puts them back); malformed input raises the same errors.
    """

    #: Layouts kept (senders seen: a few stream ids and srcids per link).
    MAX_LAYOUTS = 8

    def __init__(self, key: str):
        self.key = key
        self.layouts: list[SeqLayout] = []
        self._key_bytes = pmt.serialize(key)

    def decode_header(self, buf: Any) -> tuple[int, list[Tag], list[SeqRun], int]:
        """``(first_offset, tags, runs, header_size)``: `tags` the generally decoded tags (in order),
        `runs` the sequence records read by the fast path, each standing before ``tags[run.at]``."""
        view = message_view(buf)
        first_offset, ntags, offset = fixed_header(view)
        budget = pmt.Budget(HEADER_SCOPE)
        tags: list[Tag] = []
        runs: list[SeqRun] = []
        data = None
        key_bytes, key_end = self._key_bytes, TAG_OFFSET.size + len(self._key_bytes)
        index = 0
        while index < ntags:
            if self.layouts and view[offset + TAG_OFFSET.size:offset + key_end] == key_bytes:
                if data is None:
                    data = np.frombuffer(view, dtype=np.uint8)
                for layout in self.layouts:
                    count = layout.match(data, offset, ntags - index)
                    if count:
                        budget.take(2 * count, f"{count} sequence tags at offset {offset}")
                        offsets, indices = layout.fields(data, offset, count)
                        runs.append(SeqRun(len(tags), layout, offsets, indices))
                        offset += count * layout.size
                        index += count
                        break
                else:
                    count = 0
                if count:
                    continue
            start = offset
            tag, offset = decode_tag(view, offset, index, ntags, budget)
            tags.append(tag)
            index += 1
            if tag.key == self.key:
                self._learn(tag, view[start:offset])
        return first_offset, tags, runs, offset

    def decode_message(self, buf: Any) -> tuple[int, list[Tag], list[SeqRun], memoryview]:
        """`decode_message` with the sequence records as runs: ``(first_offset, tags, runs, payload)``."""
        view = message_view(buf)
        first_offset, tags, runs, header_size = self.decode_header(view)
        return first_offset, tags, runs, view[header_size:]

    def _learn(self, tag: Tag, raw: memoryview) -> None:
        layout = SeqLayout.of_tag(tag)
        if layout is None or any(known.template.tobytes() == layout.template.tobytes() for known in self.layouts):
            return
        if layout.encode(np.array([tag.offset], np.uint64), np.array([tag.value[1]])) != raw:
            return  # the sender wrote this tag in another (valid) way: keep to the general decoder
        self.layouts.insert(0, layout)
        del self.layouts[self.MAX_LAYOUTS:]

    @staticmethod
    def merged(tags: list[Tag], runs: list[SeqRun]) -> list[Tag]:
        """Every tag of the header in its order: `tags` with the runs' records put back."""
        out: list[Tag] = []
        done = 0
        for run in runs:
            out += tags[done:run.at]
            done = run.at
            out += run.tags()
        return out + tags[done:]
