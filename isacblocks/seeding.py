"""Seeded random streams: one independent generator per random quantity of a block or study."""

from __future__ import annotations

import numpy as np

from .errors import ConfigError


def seed_sequence(seed) -> np.random.SeedSequence:
    """A fresh `SeedSequence` from an int, a sequence of ints or a `SeedSequence` (copied, so that
    spawning from it again gives the same children)."""
    if isinstance(seed, np.random.SeedSequence):
        return np.random.SeedSequence(seed.entropy, spawn_key=seed.spawn_key, pool_size=seed.pool_size)
    try:
        return np.random.SeedSequence(seed)
    except (TypeError, ValueError):
        raise ConfigError(f"seed = {seed!r}: must be a non-negative integer, a sequence of them, a SeedSequence "
                          "or None") from None


def random_streams(seed, names: tuple[str, ...]) -> dict[str, np.random.Generator]:
    """Independent generators, one per named random quantity.

    Each quantity is drawn from its own stream, a fixed number of variates per frame,
    so a block's output does not depend on how its input was cut into batches.
    """
    children = seed_sequence(seed).spawn(len(names))
    return {name: np.random.default_rng(child) for name, child in zip(names, children)}
