"""Stream tags: metadata attached to one absolute item offset of a stream (GNU Radio's tag_t)."""

from __future__ import annotations

from typing import Any, NamedTuple


class Tag(NamedTuple):
    """A stream tag: absolute item `offset`, `key` (str), `value`, and `srcid` (the block that added it)."""

    offset: int
    key: str
    value: Any
    srcid: str | None = None

    def moved(self, offset: int) -> Tag:
        """The same tag at another absolute offset."""
        return self._replace(offset=int(offset))
