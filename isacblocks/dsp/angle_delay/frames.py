"""The kinds of frames an angle-delay search takes, and its result.

* `Frames`: full frames ``Y~`` (B, K, S) after the reciprocal filter (eq. 7).
* `RangeProjectedFrames`: range-projected frames ``C = Y~ G`` (B, K, r) on the grid's factor G
  (Monte Carlo studies and training draw them directly).
* `FactoredFrames`: projected frames given by their factors ``C = scale a d^T + N`` (rank-one
  echo plus noise), never formed outside the kernels.

The backend table (`backends`) is keyed by these types.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ...errors import ShapeError


class AngleDelayPeak(NamedTuple):
    """Result of a sector-peak search over B frames.

    statistic: (B,) float32, the map maximum inside the sector (eq. 16's value; the
        detection statistic of Algorithm 1 step 5).
    i_hat, j_hat: (B,) int64, its row (angle) and column (range) in the full map.
    window: (B, 2 delta_theta + 1, 2 delta_R + 1) float32, ``L[i_hat + n, j_hat + m]``
        for n, m in ``-delta..delta`` (eq. 17), NaN where the entry lies outside the map.
    valid: same shape, bool, False exactly where the window entry lies outside the map
        (row < 0 or >= N_theta, column < 0 or >= N_tau).  Entries outside the sector but
        inside the map are valid and computed.
    """

    statistic: np.ndarray
    i_hat: np.ndarray
    j_hat: np.ndarray
    window: np.ndarray
    valid: np.ndarray


def empty_peak(n_frames: int, half_angle: int, half_range: int) -> AngleDelayPeak:
    """Uninitialised outputs of a peak search over `n_frames` frames, for a kernel to fill."""
    shape = (n_frames, 2 * half_angle + 1, 2 * half_range + 1)
    return AngleDelayPeak(np.empty(n_frames, dtype=np.float32), np.empty(n_frames, dtype=np.int64),
                          np.empty(n_frames, dtype=np.int64), np.empty(shape, dtype=np.float32),
                          np.empty(shape, dtype=np.bool_))


def fill(peak: AngleDelayPeak, index, part: AngleDelayPeak) -> None:
    """Write the outputs `part` of the frames `index` into `peak`."""
    for whole, piece in zip(peak, part):
        whole[index] = piece


def _on_device(array) -> bool:
    return hasattr(array, "copy_to_host") or hasattr(array, "__cuda_array_interface__")


class Frames:
    """Full frames ``Y~`` (B, K, S); host arrays, or complex64 frames on a CUDA device (anything
    with ``__cuda_array_interface__``, read in place by the CUDA backend)."""

    #: The frames' name in errors, and what the kinds are called in method errors.
    label, what = "Y_tilde", "full frames"

    def __init__(self, data):
        self.data = data if _on_device(data) else np.asarray(data)

    @property
    def n_frames(self) -> int:
        return self.data.shape[0]

    def width(self, range_dict) -> int:
        """The last axis a frame must have for `range_dict`."""
        return range_dict.n_subcarriers

    def check(self, owner: str, n_antennas: int, range_dict) -> None:
        """Raise `ShapeError` naming `owner` unless the frames are (B, K, width)."""
        shape, expected = tuple(self.data.shape), (n_antennas, self.width(range_dict))
        if len(shape) != 3 or shape[1:] != expected:
            raise ShapeError(f"{owner}: {self.label} must have shape (B, {expected[0]}, {expected[1]}), got {shape}")

    def finite(self) -> np.ndarray:
        """(B,) bool: the frames without NaN or Inf (host frames)."""
        return np.isfinite(self.complex64().view(np.float32)).all(axis=(1, 2))

    def complex64(self) -> np.ndarray:
        """The frames as C-contiguous complex64 (no copy when they already are)."""
        return np.require(self.data, np.complex64, ["C"])


class RangeProjectedFrames(Frames):
    """Range-projected frames ``C = Y~ G`` (B, K, r) with the G of the search's range dictionary."""

    label, what = "C", "projected frames"

    def width(self, range_dict) -> int:
        return range_dict.rank


class FactoredFrames:
    """Projected frames given by their factors: ``C[b] = scale[b] steering[b] delay[b]^T + noise[b]``.

    `noise` (B, K, r), `steering` (B, K), `scale` (B,), `delay` (B, r), complex64 (the Monte
    Carlo frames of `isacblocks.sim`).  ``C`` is formed inside the kernels with complex64
    arithmetic in the order ``steering * scale`` then ``* delay`` then ``+ noise``, so a
    search gives the peak of `RangeProjectedFrames` (C).
    """

    label, what = "noise", "projected frames"

    def __init__(self, noise, steering, scale, delay):
        self.noise, self.steering, self.scale, self.delay = noise, steering, scale, delay

    @property
    def n_frames(self) -> int:
        return np.shape(self.noise)[0]

    def check(self, owner: str, n_antennas: int, range_dict) -> None:
        shape, rank = np.shape(self.noise), range_dict.rank
        if len(shape) != 3 or shape[1:] != (n_antennas, rank):
            raise ShapeError(f"{owner}: projected frames C = Y~ G must have shape (B, {n_antennas}, {rank}), "
                             f"got {tuple(shape)}")
        n_frames = shape[0]
        for name, value, want in (("steering", self.steering, (n_frames, n_antennas)),
                                  ("scale", self.scale, (n_frames,)), ("delay", self.delay, (n_frames, rank))):
            if np.shape(value) != want:
                raise ShapeError(f"{owner}: {name} must have shape {want}, got {np.shape(value)}")

    def parts(self) -> list[np.ndarray]:
        """``[noise, steering, scale, delay]`` as C-contiguous complex64."""
        return [np.require(v, np.complex64, ["C"]) for v in (self.noise, self.steering, self.scale, self.delay)]
