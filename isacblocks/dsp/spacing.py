"""Antenna spacing vectors ``d``: the impairment model, and loading / saving them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ConfigError, ShapeError
from ..params import SystemParams
from ..safeio import atomic_write, read_npy, read_text_array
from .steering import element_positions


def draw_spacing(rng: np.random.Generator, params: SystemParams) -> np.ndarray:
    """Impaired spacings ``d_k ~ N(lambda/2, sigma_lambda^2)`` (Sec. V-A) with strictly
    increasing element positions ``(k-(K-1)/2) d_k``.

    Independent draws almost always give crossing elements near the array's ends
    (element 0 and 1 cross whenever ``d_1 > 1.03 d_0``), so the K drawn values are
    sorted and laid out from the centre outwards, alternately left and right: the
    spacing grows with the distance from the centre, so the positions are strictly
    increasing by construction and neighbours stay at least ``min(d)`` apart.
    Returns float64 (K,) in metres.
    """
    for _ in range(100):
        d = np.sort(rng.normal(params.wavelength / 2, params.spacing_std, params.n_antennas))
        if d[0] > 0:
            break
    else:
        raise ConfigError(f"draw_spacing: spacing_std_wavelengths = {params.spacing_std_wavelengths} "
                          "gives non-positive spacings in 100 draws")
    return np.concatenate([d[0::2][::-1], d[1::2]])


def check_spacing(spacing, n_antennas: int, name: str = "spacing", ordered: bool = False) -> np.ndarray:
    """Validate a spacing vector: length K, finite and positive; with `ordered`, also strictly
    increasing element positions (required of a physical array, not of a model's estimate,
    which may cross elements on its way)."""
    spacing = np.asarray(spacing, dtype=np.float64)
    if spacing.shape != (n_antennas,):
        raise ShapeError(f"{name}: expected {n_antennas} spacings (one per antenna), got shape {spacing.shape}")
    if not np.all(np.isfinite(spacing)) or not np.all(spacing > 0):
        bad = np.flatnonzero(~(np.isfinite(spacing) & (spacing > 0)))
        raise ConfigError(f"{name}: spacings must be finite and > 0; entries {bad[:5].tolist()} are not "
                          f"(e.g. {spacing[bad[0]]!r})")
    if ordered and not np.all(np.diff(element_positions(spacing)) > 0):
        k = int(np.flatnonzero(np.diff(element_positions(spacing)) <= 0)[0])
        raise ConfigError(f"{name}: element positions must be strictly increasing; elements {k} and {k + 1} "
                          "cross or coincide")
    return spacing


def spacing_errors(spacing, true_spacing) -> dict:
    """How far a spacing vector is from the truth (mm): ``||d - d_true||``, and the error of the
    element positions ``(k-(K-1)/2) d_k`` (norm, rms, max), which is what the phases see."""
    spacing, true_spacing = np.asarray(spacing), np.asarray(true_spacing)
    pos_err = element_positions(spacing) - element_positions(true_spacing)
    return {"spacing_error_mm": float(np.linalg.norm(spacing - true_spacing) * 1e3),
            "position_error_mm": float(np.linalg.norm(pos_err) * 1e3),
            "position_error_rms_mm": float(np.sqrt(np.mean(pos_err ** 2)) * 1e3),
            "position_error_max_mm": float(np.max(np.abs(pos_err)) * 1e3)}


#: A physical spacing lies within these multiples of the wavelength (the impairment is lambda/25 rms).
PLAUSIBLE_SPACING_WAVELENGTHS = (0.05, 5.0)


def check_plausible_spacing(spacing, wavelength: float, name: str = "spacing") -> np.ndarray:
    """Refuse a spacing vector whose values cannot be metres for this carrier (e.g. millimetres)."""
    lo, hi = (f * wavelength for f in PLAUSIBLE_SPACING_WAVELENGTHS)
    bad = np.flatnonzero((spacing < lo) | (spacing > hi))
    if bad.size:
        k = int(bad[0])
        hint = ""
        for unit, factor in (("millimetres", 1e-3), ("centimetres", 1e-2)):
            if np.all((spacing * factor >= lo) & (spacing * factor <= hi)):
                hint = f"; the values look like {unit}"
        raise ConfigError(f"{name}: spacing[{k}] = {float(spacing[k])!r} is not a plausible spacing in metres "
                          f"(expected {lo:.3g}..{hi:.3g} m, lambda/2 = {wavelength / 2:.4g} m){hint}; "
                          "metres expected")
    return spacing


def load_spacing(path, n_antennas: int | None = None, wavelength: float | None = None) -> np.ndarray:
    """Read a spacing vector (metres) from ``.npy`` or text (one value per antenna), within the
    limits of `safeio`.

    The file must hold one real number per antenna (a 1-D array or one column); with
    `wavelength`, the values must be plausible in metres (`check_plausible_spacing`)."""
    path = Path(path)
    if path.suffix == ".npy":
        raw = read_npy(path, "spacing file")
    else:
        raw = read_text_array(path, "spacing file")
    return spacing_from_values(raw, n_antennas, wavelength, str(path))


def spacing_from_values(raw: np.ndarray, n_antennas: int | None, wavelength: float | None, name: str) -> np.ndarray:
    """A spacing vector read from a file (`name`): real numbers, one per antenna, checked by
    `check_spacing` and, with `wavelength`, `check_plausible_spacing`."""
    if raw.dtype.kind not in "iuf":
        raise ConfigError(f"spacing file {name}: holds dtype {raw.dtype}; real numbers (metres) expected")
    if raw.ndim != 1:
        raise ShapeError(f"spacing file {name}: holds an array of shape {raw.shape}; a vector of "
                         f"{n_antennas or 'K'} spacings (one per antenna) expected")
    spacing = check_spacing(raw.astype(np.float64), n_antennas if n_antennas is not None else raw.size, name=name)
    return spacing if wavelength is None else check_plausible_spacing(spacing, wavelength, name)


def save_spacing(path, spacing) -> None:
    """Write a spacing vector as ``.npy`` or, for any other suffix, as text (one value per line)."""
    path = Path(path)
    spacing = np.asarray(spacing, dtype=np.float64)
    if spacing.ndim != 1:
        raise ShapeError(f"save_spacing: expected a vector of K spacings, got shape {spacing.shape}")
    if path.suffix == ".npy":
        atomic_write(path, lambda f: np.save(f, spacing))
    else:
        atomic_write(path, lambda f: np.savetxt(f, spacing, fmt="%.12e"))
