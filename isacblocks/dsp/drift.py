"""A drifting array (beyond the paper): the impairments of `dsp.impairments` as a process over frames.

Real arrays do not stay fixed: temperature moves element gains and phases and stretches the
aperture.  `ArrayDrift` gives the true array at every frame ``n`` of a stream, starting from a
base array ``a_pert = C diag(g_0) a(theta; d_0)`` (eq. 13 and `dsp.impairments`):

* **gains**: ``g_k(n) = g_0k exp(x_k(n) + j phi_k(n))``, the log-amplitude ``x`` and the phase
  ``phi`` of each element a Gauss-Markov walk from 0 at frame 0,
  ``s(n) = rho s(n-1) + sigma e(n)``, ``e(n) ~ N(0, 1)`` i.i.d.;  ``rho = 1`` (a random walk,
  ``Var s(n) = n sigma^2``) or ``rho = exp(-1 / reversion_frames)`` (Ornstein-Uhlenbeck,
  ``Var s(n) = sigma^2 (1 - rho^(2n)) / (1 - rho^2)``).  The rates are given as the walk's
  standard deviation after `reference_frames` frames: ``sigma = std / sqrt(reference_frames)``;
* **thermal scale**: every element position times ``1 + alpha dT(n)`` (the spacing vector
  scales with it), ``dT(n) = ramp n / reference_frames + swing sin(2 pi n / period)`` kelvin;
* **element replacement** (optional steps): at each frame of `replace_at` one element (drawn)
  gets a new gain, ``|g| = 1 + N(0, 0.1^2)``, ``arg g ~ U[0, 2 pi)`` (a new element and its cable),
  and its walk restarts from 0;
* coupling, if the base array has it, stays fixed.

The process is seeded and sequential: `advance(n)` returns the next ``n`` frames' arrays, the
same whatever the chunking (one walk increment per frame, drawn in order; the walks bit for bit,
the gains to rounding).
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
from scipy.signal import lfilter

from ..errors import ConfigError
from ..params import SystemParams
from ..safeio import read_text
from ..validation import is_integer, is_real
from .impairments import ArrayImpairments, perturb_rows
from .steering import element_offsets, steering_phase, unit_phasor


@dataclass(frozen=True)
class DriftParams:
    """The drift process's parameters (module docstring); validated on construction.

    Rates are per `reference_frames` frames: `gain_phase_deg` and `gain_log_amplitude` are the
    walks' standard deviations (degrees, nepers) after that many frames (random walk);
    `temperature_ramp_k` the temperature change over that many frames.  `reversion_frames` 0
    is a random walk, > 0 the Ornstein-Uhlenbeck time constant in frames.  `thermal_coefficient`
    is alpha (1/K; FR-4 / copper in plane: about 1.7e-5).
    """

    gain_phase_deg: float = 25.0
    gain_log_amplitude: float = 0.08
    reference_frames: int = 10000
    reversion_frames: float = 0.0
    thermal_coefficient: float = 1.7e-5
    temperature_ramp_k: float = 10.0
    temperature_swing_k: float = 0.0
    temperature_period_frames: int = 0
    replace_at: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        def rule(ok: bool, name: str, text: str) -> None:
            if not ok:
                raise ConfigError(f"DriftParams.{name} = {getattr(self, name)!r}: {text}")

        for name in ("gain_phase_deg", "gain_log_amplitude", "reversion_frames", "temperature_swing_k"):
            value = getattr(self, name)
            rule(is_real(value) and math.isfinite(value) and value >= 0, name, "must be a finite number >= 0")
        for name in ("thermal_coefficient", "temperature_ramp_k"):
            value = getattr(self, name)
            rule(is_real(value) and math.isfinite(value), name, "must be a finite number")
        rule(is_integer(self.reference_frames) and self.reference_frames >= 1, "reference_frames",
             "must be an integer >= 1")
        rule(is_integer(self.temperature_period_frames) and self.temperature_period_frames >= 0,
             "temperature_period_frames", "must be an integer >= 0 (0: no swing)")
        rule(self.temperature_swing_k == 0 or self.temperature_period_frames > 0, "temperature_swing_k",
             "a swing needs temperature_period_frames > 0")
        replace_at = self.replace_at
        rule(isinstance(replace_at, (tuple, list)) and all(is_integer(v) and v >= 1 for v in replace_at),
             "replace_at", "must be a list of frame numbers >= 1")
        object.__setattr__(self, "replace_at", tuple(sorted(int(v) for v in replace_at)))

    @property
    def rho(self) -> float:
        """The walks' per-frame memory: 1 (random walk) or ``exp(-1 / reversion_frames)``."""
        return 1.0 if self.reversion_frames == 0 else math.exp(-1.0 / self.reversion_frames)

    @property
    def sigmas(self) -> np.ndarray:
        """Per-frame innovation standard deviations ``sigma`` of (log-amplitude, phase rad), (2,)."""
        return np.array([self.gain_log_amplitude, math.radians(self.gain_phase_deg)]) / math.sqrt(self.reference_frames)

    def walk_variance(self, n) -> np.ndarray:
        """``Var s(n)`` of (log-amplitude, phase) after `n` frames, closed form, (..., 2)."""
        n = np.asarray(n, dtype=np.float64)[..., None]
        rho = self.rho
        factor = n if rho == 1.0 else (1 - rho ** (2 * n)) / (1 - rho ** 2)
        return factor * self.sigmas ** 2

    def temperature(self, frames) -> np.ndarray:
        """``dT(n)`` (K) at frame numbers `frames`."""
        n = np.asarray(frames, dtype=np.float64)
        dt = self.temperature_ramp_k * n / self.reference_frames
        if self.temperature_period_frames:
            dt = dt + self.temperature_swing_k * np.sin(2 * np.pi * n / self.temperature_period_frames)
        return dt

    def scale(self, frames) -> np.ndarray:
        """The thermal scale of the element positions, ``1 + alpha dT(n)``."""
        return 1.0 + self.thermal_coefficient * self.temperature(frames)

    def to_dict(self) -> dict:
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v) for f in fields(self)}

    @classmethod
    def from_dict(cls, values: dict, where: str = "[drift]") -> DriftParams:
        if not isinstance(values, dict):
            raise ConfigError(f"{where}: expected a table of DriftParams fields")
        names = [f.name for f in fields(cls)]
        unknown = [k for k in values if k not in names]
        if unknown:
            raise ConfigError(f"{where}: unknown field {unknown[0]!r}; valid names: {', '.join(names)}")
        return cls(**values)


def load_drift_config(path) -> tuple[SystemParams, DriftParams]:
    """A TOML file with a ``[system]`` table (`SystemParams` fields) and/or a ``[drift]`` table
    (`DriftParams` fields); absent tables take the defaults.  Anything else is an error."""
    path = Path(path)
    try:
        data = tomllib.loads(read_text(path, "configuration"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"cannot read configuration {path}: {exc}") from None
    extra = sorted(set(data) - {"system", "drift"})
    if extra:
        raise ConfigError(f"{path}: unexpected top-level keys {extra}; expected the tables [system] and [drift]")
    try:
        params = SystemParams.from_dict(data.get("system", {}))
        drift = DriftParams.from_dict(data.get("drift", {}), f"{path} [drift]")
    except (ConfigError, TypeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return params, drift


@dataclass
class DriftStates:
    """The true array at `frames` (n,): spacing (n, K) m, gain (n, K) complex, coupling (B,) or None,
    the temperature offset ``dT`` (n,) and the walks (n, 2, K): log-amplitude and phase offsets."""

    frames: np.ndarray
    spacing: np.ndarray
    gain: np.ndarray
    coupling: np.ndarray | None
    temperature: np.ndarray
    walk: np.ndarray

    def __len__(self) -> int:
        return self.frames.size

    def array(self, i: int = -1) -> ArrayImpairments:
        """The array at the `i`-th of these frames."""
        return ArrayImpairments(self.spacing[i], self.gain[i], self.coupling)

    def rows(self, theta, wavelength: float) -> np.ndarray:
        """``a_pert(theta_i)^T`` of frame i's array for each frame, theta (n,) -> (n, K) complex128."""
        positions = element_offsets(self.spacing.shape[1]) * self.spacing
        rows = unit_phasor(steering_phase(positions, np.sin(np.asarray(theta, dtype=np.float64))[:, None], wavelength))
        return perturb_rows(rows, self.gain, self.coupling)


class ArrayDrift:
    """The array at every frame of a stream (module docstring), from `base` (a spacing vector or an
    `ArrayImpairments`, the array at frame 0) and the seed."""

    def __init__(self, params: SystemParams, base, drift: DriftParams, seed=0):
        self.params, self.drift = params, drift
        if isinstance(base, ArrayImpairments):
            spacing, gain, coupling = base.spacing, base.gain, base.coupling
        else:
            spacing, gain, coupling = np.asarray(base, dtype=np.float64), None, None
        k = params.n_antennas
        if spacing.shape != (k,):
            raise ConfigError(f"ArrayDrift: the base array has {spacing.size} elements, params need {k}")
        self.base_spacing = spacing.copy()
        self.base_gain = np.ones(k, dtype=np.complex128) if gain is None else gain.copy()
        self.coupling = coupling
        sequence = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
        walk_seed, event_seed = sequence.spawn(2)
        self._rng = np.random.default_rng(walk_seed)
        events = np.random.default_rng(event_seed)
        self.replacements = []  # (frame, element, new gain)
        for frame in drift.replace_at:
            element = int(events.integers(k))
            amplitude = max(1.0 + 0.1 * events.standard_normal(), 0.1)
            self.replacements.append((frame, element, amplitude * np.exp(2j * np.pi * events.random())))
        self.frame = 0  # the next frame `advance` returns
        self._state = np.zeros((2, k))  # the walks at the last frame returned
        self._gain = self.base_gain.copy()

    def advance(self, n: int) -> DriftStates:
        """The arrays of the next `n` frames."""
        k, d = self.params.n_antennas, self.drift
        frames = np.arange(self.frame, self.frame + n)
        walk = np.empty((n, 2, k))
        gain_base = np.empty((n, k), dtype=np.complex128)
        start = 0
        while start < n:  # pieces between replacement events
            frame = self.frame + start
            events = [e for e in self.replacements if frame < e[0] < self.frame + n]
            stop = events[0][0] - self.frame if events else n
            if frame == 0:  # frame 0 is the base array itself
                walk[0] = 0.0
                gain_base[0] = self._gain
                first = 1
            else:
                first = 0
            count = stop - start - first
            if count > 0:
                innovations = self._rng.standard_normal((count, 2, k)) * d.sigmas[None, :, None]
                previous = walk[start] if first else self._state
                walk[start + first:stop] = lfilter([1.0], [1.0, -d.rho], innovations, axis=0,
                                                   zi=(d.rho * previous)[None])[0]
            gain_base[start + first:stop] = self._gain
            self._state = walk[stop - 1].copy()
            start = stop
            for event_frame, element, new_gain in self.replacements:
                if event_frame == self.frame + stop:  # applies from that frame on (the next piece or call)
                    self._gain[element] = new_gain
                    self._state[:, element] = 0.0
        self.frame += n
        gain = gain_base * (np.exp(walk[:, 0]) * unit_phasor(walk[:, 1]))
        spacing = self.base_spacing[None, :] * d.scale(frames)[:, None]
        return DriftStates(frames, spacing, gain, self.coupling, d.temperature(frames), walk)
