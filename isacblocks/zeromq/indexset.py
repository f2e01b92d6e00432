"""`IndexSet`: the indices of a run that have been accounted for, as sorted disjoint runs.

In-order arrival keeps one run, and extending it costs O(1).  Out of order, the runs are kept
in chunks of at most ``2 * CHUNK`` runs, each chunk known by its first start: an add or a
membership test is a bisection over the chunks' starts and one within a chunk (O(log n)),
plus moving at most ``2 * CHUNK`` entries of that chunk; a full chunk is split in two, one
insertion into the list of chunks for every ``CHUNK`` new runs at least.  50 000 indices in
any order cost about as much as in order, where one sorted list of runs would move
O(n) entries per add (O(n^2) in all for an adversarial order).
"""

from __future__ import annotations

from bisect import bisect_right

__all__ = ["IndexSet"]

#: Runs per chunk after a split (a chunk holds at most twice as many).
CHUNK = 256


class IndexSet:
    """A set of integers held as sorted, disjoint runs ``[start, stop)``: the indices of a
    stream that have been accounted for (in-order arrival keeps one run)."""

    __slots__ = ("_starts", "_stops", "_heads", "count")

    def __init__(self):
        self._starts: list[list[int]] = []  # chunks of run starts, sorted within and across chunks
        self._stops: list[list[int]] = []  # the runs' stops, chunked alike
        self._heads: list[int] = []  # the first start of each chunk
        self.count = 0

    def __contains__(self, index: int) -> bool:
        c = bisect_right(self._heads, index) - 1
        if c < 0:
            return False
        k = bisect_right(self._starts[c], index)
        return index < self._stops[c][k - 1]

    def __len__(self) -> int:
        return self.count

    @property
    def starts(self) -> list[int]:
        """The starts of the runs, in order (a new list)."""
        return [start for chunk in self._starts for start in chunk]

    @property
    def stops(self) -> list[int]:
        """The stops of the runs (one past their last member), in order (a new list)."""
        return [stop for chunk in self._stops for stop in chunk]

    @property
    def first(self) -> int | None:
        return self._heads[0] if self._heads else None

    @property
    def last(self) -> int | None:
        return self._stops[-1][-1] - 1 if self._stops else None

    def add(self, index: int, n: int = 1) -> None:
        """Add ``index .. index + n - 1``, none of which is in the set yet."""
        stop = index + n
        self.count += n
        heads = self._heads
        if not heads:
            self._starts.append([index])
            self._stops.append([stop])
            heads.append(index)
            return
        tail = self._stops[-1]
        if tail[-1] == index:  # in order: the last run grows
            tail[-1] = stop
            return
        c = bisect_right(heads, index) - 1
        if c < 0:  # before every run
            c = k = 0
        else:
            k = bisect_right(self._starts[c], index)
        starts, stops = self._starts[c], self._stops[c]
        left = k > 0 and stops[k - 1] == index  # the run before ends at `index`
        if k < len(starts):
            if starts[k] == stop:  # the run after starts at `stop` (same chunk)
                if left:  # the new members join the two runs into one
                    stops[k - 1] = stops[k]
                    del starts[k], stops[k]
                else:
                    starts[k] = index
                    if k == 0:
                        heads[c] = index
                return
        elif c + 1 < len(heads) and heads[c + 1] == stop:  # the run after is the next chunk's first
            if left:
                stops[k - 1] = self._stops[c + 1][0]
                self._remove_first(c + 1)
            else:
                self._starts[c + 1][0] = heads[c + 1] = index
            return
        if left:
            stops[k - 1] = stop
            return
        starts.insert(k, index)
        stops.insert(k, stop)
        if k == 0:
            heads[c] = index
        if len(starts) > 2 * CHUNK:
            self._split(c)

    def _remove_first(self, c: int) -> None:
        """Forget the first run of chunk `c` (merged into the run before it)."""
        del self._starts[c][0], self._stops[c][0]
        if self._starts[c]:
            self._heads[c] = self._starts[c][0]
        else:
            del self._starts[c], self._stops[c], self._heads[c]

    def _split(self, c: int) -> None:
        """Split chunk `c` into two halves."""
        half = len(self._starts[c]) // 2
        self._starts.insert(c + 1, self._starts[c][half:])
        self._stops.insert(c + 1, self._stops[c][half:])
        del self._starts[c][half:], self._stops[c][half:]
        self._heads.insert(c + 1, self._starts[c + 1][0])

    def count_in(self, low: int, high: int) -> int:
        """How many members lie in ``[low, high)``."""
        return sum(max(0, min(stop, high) - max(start, low)) for start, stop in zip(self.starts, self.stops))
