"""`SystemParams`: the one configuration every block, function and study shares.

Like a resource grid handed to transmitter, channel and receiver, one frozen
`SystemParams` object is passed everywhere so that no two parts of a flowgraph can
disagree on K, S, the grids or the SNRs.  Defaults are the paper's (Sec. V-A).

Angles in the configuration are given in degrees (readable TOML files); every
derived quantity and every `dsp` function works in radians and SI units.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import tomllib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigError
from .safeio import read_text
from .validation import is_real

SPEED_OF_LIGHT = 299_792_458.0  # m/s

CONSTELLATIONS = ("qpsk",)


def _pair(name: str, value: Any) -> tuple[float, float]:
    try:
        items = list(value)
        if isinstance(value, (str, bytes, dict)) or not all(is_real(v) for v in items):
            raise TypeError
        lo, hi = (float(v) for v in items)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"SystemParams.{name} = {value!r}: expected a pair of numbers (min, max)") from None
    return lo, hi


@dataclass(frozen=True)
class SystemParams:
    """System configuration (paper Sec. II and V-A), validated on construction.

    Raises `ConfigError` naming the field, the value and the rule it breaks.
    """

    n_antennas: int = 64  # K
    n_subcarriers: int = 256  # S
    subcarrier_spacing_hz: float = 120e3  # Delta_f
    carrier_hz: float = 60e9  # f_c
    noise_power: float = 1.0  # N0
    snr_radar_db: float = 15.0  # SNR_r = K sigma_r^2 / N0
    snr_comm_db: float = 20.0  # SNR_c = sum_l sigma_l^2 / (S N0)
    constellation: str = "qpsk"  # pi/4-rotated QPSK
    n_taps: int = 5  # L
    tap_decay: float = 1.0  # sigma_l^2 proportional to exp(-tap_decay * l)
    n_angle_grid: int = 720  # N_theta over [-pi/2, pi/2]
    n_range_grid: int = 200  # N_tau over [range_min_m, range_max_m]
    range_min_m: float = 0.0
    range_max_m: float = 200.0
    spacing_std_wavelengths: float = 1.0 / 25.0  # sigma_lambda / lambda
    train_center_deg: tuple[float, float] = (-60.0, 60.0)  # theta_mean ~ U[...]
    train_width_deg: tuple[float, float] = (10.0, 20.0)  # theta_span ~ U[...]
    test_sector_deg: tuple[float, float] = (-40.0, -20.0)
    ue_sector_deg: tuple[float, float] = (30.0, 50.0)
    pfa: float = 1e-2

    def __post_init__(self) -> None:
        for name in ("train_center_deg", "train_width_deg", "test_sector_deg", "ue_sector_deg"):
            object.__setattr__(self, name, _pair(name, getattr(self, name)))
        for name in ("n_antennas", "n_subcarriers", "n_taps", "n_angle_grid", "n_range_grid"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise ConfigError(f"SystemParams.{name} = {value!r}: must be an integer")
            object.__setattr__(self, name, int(value))
        for name in ("subcarrier_spacing_hz", "carrier_hz", "noise_power", "snr_radar_db", "snr_comm_db",
                     "tap_decay", "range_min_m", "range_max_m", "spacing_std_wavelengths", "pfa"):
            value = getattr(self, name)
            if not is_real(value):
                raise ConfigError(f"SystemParams.{name} = {value!r}: must be a real number")
            try:
                finite = math.isfinite(float(value))
            except OverflowError:  # an int beyond the float range
                finite = False
            if not finite:
                raise ConfigError(f"SystemParams.{name} = {value!r}: must be finite")
            object.__setattr__(self, name, float(value))
        self._check()

    def _check(self) -> None:
        def rule(ok: bool, name: str, text: str) -> None:
            if not ok:
                raise ConfigError(f"SystemParams.{name} = {getattr(self, name)!r}: {text}")

        rule(self.n_antennas >= 2, "n_antennas", "needs K >= 2")
        rule(self.n_subcarriers >= 1, "n_subcarriers", "needs S >= 1")
        rule(self.subcarrier_spacing_hz > 0, "subcarrier_spacing_hz", "must be > 0")
        rule(self.carrier_hz > 0, "carrier_hz", "must be > 0")
        rule(self.noise_power > 0, "noise_power", "must be > 0")
        rule(isinstance(self.constellation, str) and self.constellation in CONSTELLATIONS, "constellation",
             f"must be one of {CONSTELLATIONS}")
        object.__setattr__(self, "constellation", str(self.constellation))  # a numpy str_ becomes a str
        rule(1 <= self.n_taps <= self.n_subcarriers, "n_taps",
             f"needs 1 <= L <= n_subcarriers (n_subcarriers = {self.n_subcarriers})")
        rule(self.tap_decay >= 0, "tap_decay", "must be >= 0")
        rule(self.n_angle_grid >= 2, "n_angle_grid", "needs at least 2 grid points")
        rule(self.n_range_grid >= 2, "n_range_grid", "needs at least 2 grid points")
        rule(self.range_min_m >= 0, "range_min_m", "must be >= 0")
        rule(self.range_max_m > self.range_min_m, "range_max_m", f"must be > range_min_m (= {self.range_min_m!r})")
        rule(self.spacing_std_wavelengths >= 0, "spacing_std_wavelengths", "must be >= 0")
        rule(0 < self.pfa < 1, "pfa", "must lie in (0, 1)")
        for name in ("test_sector_deg", "ue_sector_deg"):
            lo, hi = getattr(self, name)
            rule(-90 <= lo < hi <= 90, name, "needs -90 <= min < max <= 90 degrees")
        lo, hi = self.train_width_deg
        rule(0 < lo <= hi <= 180, "train_width_deg", "needs 0 < min <= max <= 180 degrees")
        lo, hi = self.train_center_deg
        rule(-90 <= lo <= hi <= 90, "train_center_deg", "needs -90 <= min <= max <= 90 degrees")

    # ----------------------------------------------------------------- derived
    @property
    def wavelength(self) -> float:
        """lambda = c / f_c (m)."""
        return SPEED_OF_LIGHT / self.carrier_hz

    @property
    def nominal_spacing(self) -> np.ndarray:
        """The unimpaired spacing vector (lambda/2) 1, shape (K,)."""
        return np.full(self.n_antennas, self.wavelength / 2)

    @property
    def spacing_std(self) -> float:
        """sigma_lambda (m)."""
        return self.spacing_std_wavelengths * self.wavelength

    @property
    def target_gain_variance(self) -> float:
        """sigma_r^2 = SNR_r N0 / K (Swerling-1 gain variance)."""
        return 10 ** (self.snr_radar_db / 10) * self.noise_power / self.n_antennas

    @property
    def tap_powers(self) -> np.ndarray:
        """sigma_l^2, l = 0..L-1, exponential profile scaled to sum to SNR_c S N0."""
        profile = np.exp(-self.tap_decay * np.arange(self.n_taps))
        return profile / profile.sum() * 10 ** (self.snr_comm_db / 10) * self.n_subcarriers * self.noise_power

    @property
    def angle_resolution(self) -> float:
        """Delta_theta ~ 2 / K (rad), eq. 11."""
        return 2.0 / self.n_antennas

    @property
    def range_resolution(self) -> float:
        """Delta_R ~ c / (2 S Delta_f) (m), eq. 11."""
        return SPEED_OF_LIGHT / (2 * self.n_subcarriers * self.subcarrier_spacing_hz)

    @property
    def window_half_angle(self) -> int:
        """delta_theta = floor(Delta_theta N_theta / pi), eq. 12 over the grid's span."""
        return int(math.floor(self.angle_resolution * self.n_angle_grid / math.pi))

    @property
    def window_half_range(self) -> int:
        """delta_R = floor(Delta_R N_tau / (R_max - R_min)), eq. 12."""
        return int(math.floor(self.range_resolution * self.n_range_grid / (self.range_max_m - self.range_min_m)))

    @cached_property
    def angle_grid(self) -> np.ndarray:
        """The MB-ML angle grid: N_theta points over [-pi/2, pi/2] (rad)."""
        grid = np.linspace(-np.pi / 2, np.pi / 2, self.n_angle_grid)
        grid.setflags(write=False)
        return grid

    @cached_property
    def range_grid(self) -> np.ndarray:
        """The MB-ML range grid: N_tau points over [R_min, R_max] (m)."""
        grid = np.linspace(self.range_min_m, self.range_max_m, self.n_range_grid)
        grid.setflags(write=False)
        return grid

    @property
    def test_sector(self) -> tuple[float, float]:
        """Test sector (rad)."""
        return tuple(math.radians(v) for v in self.test_sector_deg)

    @property
    def ue_sector(self) -> tuple[float, float]:
        """UE angular sector [phi_min, phi_max] (rad)."""
        return tuple(math.radians(v) for v in self.ue_sector_deg)

    def range_to_delay(self, r):
        """tau = 2 R / c."""
        return 2 * np.asarray(r) / SPEED_OF_LIGHT

    # --------------------------------------------------------------------- I/O
    def replace(self, **changes) -> SystemParams:
        """A copy with some fields changed (validated again)."""
        _check_names(changes)
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.init}

    @classmethod
    def from_dict(cls, values: dict) -> SystemParams:
        if not isinstance(values, dict):
            raise ConfigError(f"SystemParams.from_dict: expected a dict of field values, got {type(values).__name__}")
        _check_names(values)
        return cls(**values)

    @classmethod
    def from_toml(cls, path) -> SystemParams:
        """Load from a TOML file; keys are the field names (optionally under a ``[system]`` table)."""
        path = Path(path)
        text = read_text(path, "configuration")  # TOML files are UTF-8
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"cannot read configuration {path}: {exc}") from None
        except RecursionError:
            raise ConfigError(f"cannot read configuration {path}: arrays or tables nested too deeply") from None
        if "system" in data and isinstance(data["system"], dict):
            extra = set(data) - {"system"}
            if extra:
                raise ConfigError(f"{path}: unexpected top-level keys {sorted(extra)} beside [system]")
            data = data["system"]
        try:
            return cls.from_dict(data)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None


def _check_names(values: dict) -> None:
    valid = [f.name for f in dataclasses.fields(SystemParams) if f.init]
    for key in values:
        if key not in valid:
            near = difflib.get_close_matches(str(key), valid, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else f"; valid names: {', '.join(valid)}"
            raise ConfigError(f"SystemParams: unknown field {key!r}{hint}")
