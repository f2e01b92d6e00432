"""Shared helpers of the block shells: seeded random streams and per-frame tag reading."""

from __future__ import annotations

import numpy as np

from ..errors import BlockError, ConfigError
from ..validation import is_integer

#: Item layout of the prior-sector stream: [theta_min, theta_max, r_min, r_max] (rad, m).
SECTOR_ITEM = 4

#: Item layout of an estimator's output: [statistic, theta_hat (rad), range_hat (m)].
ESTIMATE_ITEM = 3

#: Tag key a sensing receiver puts (value True) on the output item of a frame holding NaN or Inf.
INVALID_FRAME_KEY = "invalid_frame"


def check_int(owner: str, field: str, value, low: int) -> int:
    """An integer parameter ``>= low`` (bools refused); raise `ConfigError` naming field, value and rule."""
    if not is_integer(value) or value < low:
        raise ConfigError(f"{owner}: {field} = {value!r}: must be an integer >= {low}")
    return int(value)


def check_real(owner: str, field: str, value, low: float | None = None, high: float | None = None,
               low_open: bool = False) -> float:
    """A finite real parameter within ``[low, high]`` (``(low, high]`` with `low_open`); bools and
    strings refused; raise `ConfigError` naming field, value and rule."""
    if low is None and high is None:
        rule = "must be a finite real number"
    else:
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        rule = f"must lie in {'(' if low_open else '['}{lo}, {hi}{']' if high is not None else ')'}"
    if isinstance(value, (bool, np.bool_, str, bytes)):
        raise ConfigError(f"{owner}: {field} = {value!r}: {rule}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{owner}: {field} = {value!r}: {rule}") from None
    below = low is not None and (number <= low if low_open else number < low)
    if not np.isfinite(number) or below or (high is not None and number > high):
        raise ConfigError(f"{owner}: {field} = {value!r}: {rule}{'' if np.isfinite(number) else ' (finite)'}")
    return number


def check_sector(owner: str, field: str, value) -> tuple[float, float]:
    """An angular sector ``(theta_min, theta_max)`` in rad with ``-pi/2 <= min < max <= pi/2``."""
    try:
        if isinstance(value, (str, bytes)):
            raise TypeError
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"{owner}: {field} = {value!r}: expected a pair (theta_min, theta_max) in rad") from None
    if not -np.pi / 2 <= lo < hi <= np.pi / 2:
        raise ConfigError(f"{owner}: {field} = {value!r} rad: needs -pi/2 <= min < max <= pi/2")
    return lo, hi


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


def required_tags(block, port: int, n: int, key: str) -> list:
    """Per-item values of tag `key` on input `port`; raise naming the first item without one."""
    values = block.frame_tags(port, n, key)
    for index, value in enumerate(values):
        if value is None:
            offset = block.nitems_read(port) + index
            raise BlockError(f"block {block.name!r}: input {block.in_sig[port].name} item {offset} has no "
                             f"{key!r} tag (expected one per frame from the scenario source)")
    return values
