"""`IndexSet` (the indices a pairing source accounted for): the same set as Python's, in any
arrival order, at a bounded cost per index."""

from __future__ import annotations

import random
import time

import pytest

from isacblocks.zeromq import indexset
from isacblocks.zeromq.indexset import IndexSet


def _runs(n: int, rng: random.Random) -> list[tuple[int, int]]:
    """``[0, n)`` cut into runs ``(start, length)``, shuffled."""
    cuts = sorted(rng.sample(range(1, n), rng.randint(0, n - 1))) if n > 1 else []
    bounds = [0, *cuts, n]
    runs = [(a, b - a) for a, b in zip(bounds, bounds[1:])]
    rng.shuffle(runs)
    return runs


@pytest.mark.parametrize("seed", range(40))
def test_any_arrival_order_gives_the_set_python_gives(monkeypatch, seed):
    monkeypatch.setattr(indexset, "CHUNK", 2)  # small chunks: splits, merges across chunks, emptied chunks
    rng = random.Random(seed)
    n = rng.randint(1, 120)
    seen, ref = IndexSet(), set()
    for start, length in _runs(n, rng):
        assert all((q in seen) == (q in ref) for q in range(-2, n + 2))
        seen.add(start, length)
        ref.update(range(start, start + length))
        starts, stops = seen.starts, seen.stops
        assert all(a < b for a, b in zip(starts, stops)) and all(b < a for b, a in zip(stops, starts[1:]))
        assert (len(seen), seen.first, seen.last) == (len(ref), min(ref), max(ref))
        low, high = rng.randint(-3, n), rng.randint(-3, n + 3)
        assert seen.count_in(low, high) == sum(low <= x < high for x in ref)
    assert (seen.starts, seen.stops) == ([0], [n])


def test_fifty_thousand_shuffled_indices_cost_a_bounded_amount_each():
    """An add is two bisections and moves at most ``2 * CHUNK`` entries of one chunk (a single sorted
    list of runs moves O(n) entries per add: ~n^2/8 for a shuffled arrival, 3e8 at this n)."""
    n = 50_000
    order = list(range(n))
    random.Random(7).shuffle(order)
    seen = IndexSet()
    largest_chunk = runs_peak = 0
    began = time.process_time()
    for count, index in enumerate(order, 1):
        seen.add(index)
        if count % 500 == 0:
            largest_chunk = max(largest_chunk, *map(len, seen._starts))
            runs_peak = max(runs_peak, sum(map(len, seen._starts)))
    spent = time.process_time() - began
    assert (seen.starts, seen.stops, len(seen)) == ([0], [n], n)
    assert runs_peak > 10 * indexset.CHUNK  # the order did scatter the set into many runs
    assert largest_chunk <= 2 * indexset.CHUNK
    moved_at_most = n * 2 * indexset.CHUNK  # entries moved by the adds, at most
    assert moved_at_most < n * runs_peak / 8  # ... well below what one list of the runs moves
    assert spent < 5.0  # ~0.1 s; generous for a loaded machine
    assert all(i in seen for i in order[:1000]) and -1 not in seen and n not in seen
