"""Shared helpers of the block shells: seeded random streams and per-frame tag reading."""

from __future__ import annotations

import numpy as np

from ..errors import BlockError

#: Item layout of the prior-sector stream: [theta_min, theta_max, r_min, r_max] (rad, m).
SECTOR_ITEM = 4

#: Item layout of an estimator's output: [statistic, theta_hat (rad), range_hat (m)].
ESTIMATE_ITEM = 3


def seed_sequence(seed) -> np.random.SeedSequence:
    """A fresh `SeedSequence` from an int, a sequence of ints or a `SeedSequence` (copied, so that
    spawning from it again gives the same children)."""
    if isinstance(seed, np.random.SeedSequence):
        return np.random.SeedSequence(seed.entropy, spawn_key=seed.spawn_key, pool_size=seed.pool_size)
    return np.random.SeedSequence(seed)


def random_streams(seed, names: tuple[str, ...]) -> dict[str, np.random.Generator]:
    """Independent generators, one per named random quantity.

    Each quantity is drawn from its own stream, a fixed number of variates per frame,
    so a block's output does not depend on how its input was cut into batches.
    """
    children = seed_sequence(seed).spawn(len(names))
    return {name: np.random.default_rng(child) for name, child in zip(names, children)}


def required_tags(block, port: int, n: int, key: str) -> list:
    """Per-item values of tag `key` on input `port`; raise naming the first item without one."""
    values = block.frame_tags(port, n, key)
    for index, value in enumerate(values):
        if value is None:
            offset = block.nitems_read(port) + index
            raise BlockError(f"block {block.name!r}: input {block.in_sig[port].name} item {offset} has no "
                             f"{key!r} tag (expected one per frame from the scenario source)")
    return values
