"""Parameter checks shared by every layer: type predicates (a bool is not a number here) and the
checks that raise `ConfigError` naming the owner, the field, the value and the rule it breaks."""

from __future__ import annotations

import ipaddress

import numpy as np

from .errors import ConfigError


def is_integer(value) -> bool:
    """A Python or numpy integer, not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def is_real(value) -> bool:
    """A Python or numpy integer or float, not a bool."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


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


def is_loopback_host(host: str) -> bool:
    """Whether a host name or address stays on this machine: ``localhost``, 127.0.0.0/8 or ::1."""
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
