"""General array impairments (beyond the paper): displacement, complex gains and mutual coupling.

The paper writes the impaired steering vector as ``a_pert(theta; d)``, "where the meaning
and dimensionality of d depend on the type of impairment", and studies one type: the
element spacing (eq. 13).  This module adds the two others it names, in the model

    a_pert(theta) = C diag(g) a(theta; d)

* ``d`` (K,): element spacings, positions ``(k - (K-1)/2) d_k`` (eq. 13, `dsp.steering`);
* ``g`` (K,): per-element complex gains (amplitude and phase errors), 1 when ideal;
* ``C`` (K, K): mutual coupling, symmetric banded Toeplitz, ``C[i, j] = c_|i-j|`` for
  ``|i - j| <= B`` and 0 beyond, with ``c_0 = 1`` (a common factor of C is a common gain);
  the array stores ``c_1 .. c_B``.

An *array* is what every part of the library that steers takes: a spacing vector ``d``
(the paper's impairment, and what all results up to here use), or an `ArrayImpairments`
holding any combination of the three.  With unit gains and no coupling, `ArrayImpairments`
steers exactly like its spacing vector.

Transmitter and channels use ``a_pert`` as it is (physical gains).  A receiver matches the
map's rows to ``a_pert`` normalised to ``||a_pert(theta)|| = sqrt(K)`` (`receive_rows`):
the noise on every row then has the same power, as on the ideal array, and a learner cannot
raise the map's peak by raising the gains (the statistic of the paper's receiver, whose
unit-modulus rows all have norm sqrt(K), is unchanged).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ConfigError, ShapeError
from ..params import SystemParams
from ..safeio import atomic_write, read_npz
from .spacing import check_spacing, draw_spacing, load_spacing, spacing_from_values
from .steering import steering_rows

#: The impairment types, in the order of ``C diag(g) a(theta; d)`` read from the right.
IMPAIRMENT_KINDS = ("spacing", "gain", "coupling")


@dataclass(frozen=True)
class ImpairmentSpec:
    """The seeded distribution of gains and coupling that `draw_impairments` uses.

    Gains: ``|g_k| = 1 + N(0, gain_amplitude_std^2)`` (clipped at 0.1), ``arg g_k ~
    N(0, gain_phase_std_deg^2)``.  Coupling: ``c_b = 10^(coupling_db[b-1] / 20) e^{j phi_b}``,
    ``phi_b ~ U[0, 2 pi)``, for b = 1 .. len(coupling_db) (the band B).  The defaults are
    typical of a mm-wave patch array: 10 % amplitude and 10 degrees phase spread, neighbour
    coupling -15 dB and -25 dB at two elements.
    """

    gain_amplitude_std: float = 0.1
    gain_phase_std_deg: float = 10.0
    coupling_db: tuple[float, ...] = (-15.0, -25.0)

    def __post_init__(self) -> None:
        for name in ("gain_amplitude_std", "gain_phase_std_deg"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ConfigError(f"ImpairmentSpec.{name} = {value!r}: must be a finite number >= 0")
        if not self.coupling_db or not all(isinstance(v, (int, float)) and math.isfinite(v) and v < 0
                                           for v in self.coupling_db):
            raise ConfigError(f"ImpairmentSpec.coupling_db = {self.coupling_db!r}: needs at least one level, "
                              "each finite and < 0 dB (weaker than the element itself)")


@dataclass(frozen=True, eq=False)
class ArrayImpairments:
    """An impaired array: spacings ``d`` (K,) m, gains ``g`` (K,) complex or None (all 1), and
    coupling ``c_1 .. c_B`` (B,) complex or None (C = I).  Read-only; hashable by `key`."""

    spacing: np.ndarray
    gain: np.ndarray | None = None
    coupling: np.ndarray | None = None
    _key: bytes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        spacing = check_spacing(self.spacing, np.size(self.spacing), "ArrayImpairments.spacing")
        k = spacing.size
        gain = coupling = None
        if self.gain is not None:
            gain = np.array(self.gain, dtype=np.complex128)
            if gain.shape != (k,):
                raise ShapeError(f"ArrayImpairments.gain: expected {k} gains (one per element), got shape {gain.shape}")
            if not (np.all(np.isfinite(gain)) and np.all(gain != 0)):
                raise ConfigError("ArrayImpairments.gain: gains must be finite and non-zero; entries "
                                  f"{np.flatnonzero(~np.isfinite(gain) | (gain == 0))[:5].tolist()} are not")
        if self.coupling is not None:
            coupling = np.array(self.coupling, dtype=np.complex128)
            if coupling.ndim != 1 or not 1 <= coupling.size < k:
                raise ShapeError(f"ArrayImpairments.coupling: expected c_1 .. c_B, a vector of 1 <= B < K = {k} "
                                 f"coefficients, got shape {coupling.shape}")
            if not np.all(np.isfinite(coupling)):
                raise ConfigError("ArrayImpairments.coupling: coefficients must be finite")
        spacing = spacing.copy()
        for array in (spacing, gain, coupling):
            if array is not None:
                array.setflags(write=False)
        object.__setattr__(self, "spacing", spacing)
        object.__setattr__(self, "gain", gain)
        object.__setattr__(self, "coupling", coupling)
        parts = [b"d", spacing.tobytes(), b"g", b"" if gain is None else gain.tobytes(),
                 b"c", b"" if coupling is None else coupling.tobytes()]
        object.__setattr__(self, "_key", b"".join(parts))

    @property
    def n_antennas(self) -> int:
        return self.spacing.size

    @property
    def kinds(self) -> tuple[str, ...]:
        """The impairment types this array has beyond its spacing (spacing is always there)."""
        return ("spacing", *(k for k, v in (("gain", self.gain), ("coupling", self.coupling)) if v is not None))

    @property
    def key(self) -> bytes:
        """Bytes that identify the array (cache keys)."""
        return self._key

    def __eq__(self, other) -> bool:
        return isinstance(other, ArrayImpairments) and self._key == other._key

    def __hash__(self) -> int:
        return hash(self._key)

    def coupling_matrix(self) -> np.ndarray:
        """``C`` (K, K) complex128 (the identity without coupling)."""
        return coupling_matrix(self.coupling, self.n_antennas)

    def save(self, path) -> None:
        """Write the array as ``.npz`` (arrays ``spacing`` and, where present, ``gain``, ``coupling``)."""
        arrays = {"spacing": self.spacing}
        arrays.update({k: v for k, v in (("gain", self.gain), ("coupling", self.coupling)) if v is not None})
        atomic_write(path, lambda f: np.savez(f, **arrays))


def coupling_matrix(coupling, n_antennas: int, xp=np):
    """The symmetric banded Toeplitz ``C``: ones on the diagonal, ``c_b`` on the b-th off-diagonals
    (b = 1 .. B); identity for ``coupling=None``.  numpy (complex128) or torch (`coupling`'s dtype)."""
    if coupling is None:
        return np.eye(n_antennas, dtype=np.complex128) if xp is np else None
    offsets = np.abs(np.subtract.outer(np.arange(n_antennas), np.arange(n_antennas)))
    if xp is np:
        band = np.concatenate([[1.0], np.asarray(coupling, dtype=np.complex128), np.zeros(n_antennas)])
        return band[offsets]
    one = xp.ones(1, dtype=coupling.dtype, device=coupling.device)
    band = xp.cat([one, coupling, xp.zeros(n_antennas, dtype=coupling.dtype, device=coupling.device)])
    return band[xp.as_tensor(offsets, device=coupling.device)]


def impaired_rows(theta, spacing, gain, coupling, wavelength: float, xp=np):
    """``a_pert(theta)^T = a(theta; d)^T diag(g) C^T`` as rows, theta (...,) -> (..., K), numpy or torch.

    `gain` (K,) or None, `coupling` ``c_1 .. c_B`` or None; with both None this is
    `steering.steering_rows` itself (the same bits)."""
    return perturb_rows(steering_rows(theta, spacing, wavelength, xp), gain, coupling, xp)


def perturb_rows(rows, gain, coupling, xp=np):
    """Steering rows ``a(theta; d)^T`` (..., K) with gains and coupling applied, ``a^T diag(g) C^T``."""
    if gain is not None:
        rows = rows * gain
    if coupling is not None:
        rows = rows @ coupling_matrix(coupling, rows.shape[-1], xp)  # C symmetric: C^T = C
    return rows


def receive_rows(rows, xp=np):
    """Rows scaled to norm ``sqrt(K)`` each (the receiver's dictionary for an array with gains or
    coupling); numpy or torch."""
    k = rows.shape[-1]
    if xp is np:
        return rows * (math.sqrt(k) / np.linalg.norm(rows, axis=-1, keepdims=True))
    return rows * (math.sqrt(k) / xp.linalg.vector_norm(rows, dim=-1, keepdim=True))


# ---------------------------------------------------------------- arrays in the library's API
def is_impaired(array) -> bool:
    """True for an `ArrayImpairments` with gains or coupling (its receiver rows are normalised)."""
    return isinstance(array, ArrayImpairments) and (array.gain is not None or array.coupling is not None)


def check_array(array, n_antennas: int, name: str = "array", ordered: bool = False):
    """Validate an array: a spacing vector (returned as float64 (K,), `check_spacing`) or an
    `ArrayImpairments` of K elements (returned as it is)."""
    if isinstance(array, ArrayImpairments):
        if array.n_antennas != n_antennas:
            raise ShapeError(f"{name}: expected an array of {n_antennas} elements, got {array.n_antennas}")
        check_spacing(array.spacing, n_antennas, f"{name}.spacing", ordered=ordered)
        return array
    return check_spacing(array, n_antennas, name, ordered=ordered)


def spacing_of(array) -> np.ndarray:
    """The spacing vector ``d`` of an array."""
    return array.spacing if isinstance(array, ArrayImpairments) else np.asarray(array, dtype=np.float64)


def array_key(array) -> bytes:
    """Bytes that identify an array (spacing vector or `ArrayImpairments`), for caches."""
    if isinstance(array, ArrayImpairments):
        return array.key
    return np.ascontiguousarray(array, dtype=np.float64).tobytes()


def array_rows(theta, array, wavelength: float) -> np.ndarray:
    """``a_pert(theta)^T`` rows (..., K) complex128 of an array (transmitter and channels)."""
    theta = np.asarray(theta, dtype=np.float64)
    if isinstance(array, ArrayImpairments):
        return impaired_rows(theta, array.spacing, array.gain, array.coupling, wavelength)
    return steering_rows(theta, array, wavelength)


def array_steering(theta, array, wavelength: float) -> np.ndarray:
    """``[a_pert(theta_1) ... a_pert(theta_N)]`` (K, N) complex128, C-contiguous (`ula_steering` for
    a spacing vector, the same bits)."""
    theta = np.atleast_1d(np.asarray(theta, dtype=np.float64))
    if theta.ndim != 1:
        raise ShapeError(f"theta: expected a scalar or a vector of angles, got shape {theta.shape}")
    return np.ascontiguousarray(array_rows(theta, array, wavelength).T)


def receiver_steering(theta, array, wavelength: float) -> np.ndarray:
    """The receiver's matched steering (K, N): `array_steering`, columns scaled to norm sqrt(K)
    where the array has gains or coupling (module docstring)."""
    steering = array_steering(theta, array, wavelength)
    if is_impaired(array):
        steering = np.ascontiguousarray(receive_rows(steering.T).T)
    return steering


# ---------------------------------------------------------------- drawing and files
def parse_kinds(text) -> tuple[str, ...]:
    """``"spacing,gain,coupling"`` (any subset, any order; spacing is always modelled) as the tuple
    of kinds in `IMPAIRMENT_KINDS` order."""
    kinds = [k.strip() for k in (text.split(",") if isinstance(text, str) else text)]
    bad = [k for k in kinds if k not in IMPAIRMENT_KINDS]
    if bad or not kinds:
        raise ConfigError(f"impairments {text!r}: {bad[0] if bad else 'nothing'} is not an impairment type; "
                          f"choose from {', '.join(IMPAIRMENT_KINDS)} (a comma list)")
    return tuple(k for k in IMPAIRMENT_KINDS if k in kinds or k == "spacing")


def draw_impairments(seed, params: SystemParams, kinds=("spacing",), spec: ImpairmentSpec | None = None):
    """An impaired array drawn from `seed` with the `kinds` of impairment (`parse_kinds`).

    The spacing comes from `draw_spacing` on ``default_rng(seed)`` (the same draw as an array
    of spacing errors only); gains and coupling from independent children of `seed`, so
    adding a kind changes nothing already drawn.  Spacing only: the spacing vector itself
    (float64 (K,)); otherwise an `ArrayImpairments`.
    """
    kinds = parse_kinds(kinds)
    spec = spec or ImpairmentSpec()
    sequence = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    spacing = draw_spacing(np.random.default_rng(sequence), params)
    if kinds == ("spacing",):
        return spacing
    gain_rng = np.random.default_rng(np.random.SeedSequence(sequence.entropy,
                                                            spawn_key=(*sequence.spawn_key, 0x6761696E)))
    coupling_rng = np.random.default_rng(np.random.SeedSequence(sequence.entropy,
                                                                spawn_key=(*sequence.spawn_key, 0x636F7570)))
    k = params.n_antennas
    gain = coupling = None
    if "gain" in kinds:
        amplitude = np.maximum(1.0 + spec.gain_amplitude_std * gain_rng.standard_normal(k), 0.1)
        gain = amplitude * np.exp(1j * np.radians(spec.gain_phase_std_deg) * gain_rng.standard_normal(k))
    if "coupling" in kinds:
        levels = 10 ** (np.asarray(spec.coupling_db, dtype=np.float64) / 20)
        coupling = levels * np.exp(2j * np.pi * coupling_rng.random(levels.size))
    return ArrayImpairments(spacing, gain, coupling)


def load_array(path, n_antennas: int, wavelength: float):
    """An array from a file: ``.npz`` as `ArrayImpairments.save` writes it (``spacing`` and
    optionally ``gain``, ``coupling``), anything else a spacing vector (`load_spacing`)."""
    path = Path(path)
    if path.suffix != ".npz":
        return load_spacing(path, n_antennas, wavelength)
    arrays = read_npz(path, "array file")
    unknown = sorted(set(arrays) - set(IMPAIRMENT_KINDS))
    if "spacing" not in arrays or unknown:
        raise ConfigError(f"array file {path}: holds {sorted(arrays)}; expected 'spacing' and optionally "
                          f"'gain', 'coupling'" + (f" (unknown: {unknown})" if unknown else ""))
    spacing = spacing_from_values(arrays["spacing"], n_antennas, wavelength, str(path))
    for name in ("gain", "coupling"):
        if name in arrays and arrays[name].dtype.kind not in "iufc":
            raise ConfigError(f"array file {path}: {name} holds dtype {arrays[name].dtype}; numbers expected")
    try:
        return ArrayImpairments(spacing, arrays.get("gain"), arrays.get("coupling"))
    except (ConfigError, ShapeError) as exc:
        raise type(exc)(f"array file {path}: {exc}") from None


def save_array(path, array) -> None:
    """Write an array: `ArrayImpairments` as ``.npz``, a spacing vector by `spacing.save_spacing`."""
    from .spacing import save_spacing

    if isinstance(array, ArrayImpairments):
        if Path(path).suffix != ".npz":
            raise ConfigError(f"{path}: an array with {'/'.join(array.kinds)} impairments is written as .npz")
        array.save(path)
    else:
        save_spacing(path, array)


def impairment_errors(array, true_array) -> dict:
    """How far an array is from the truth, per kind: the spacing errors (`spacing.spacing_errors`),
    the rms gain error after removing the common complex factor (unobservable), and the rms
    coupling error ``||c - c_true|| / sqrt(B)``."""
    from .spacing import spacing_errors

    errors = spacing_errors(spacing_of(array), spacing_of(true_array))
    k = spacing_of(true_array).size
    gain, true_gain = (a.gain if isinstance(a, ArrayImpairments) else None for a in (array, true_array))
    if gain is not None or true_gain is not None:
        g = np.ones(k) if gain is None else gain
        t = np.ones(k) if true_gain is None else true_gain
        common = np.vdot(g, t) / np.vdot(g, g)  # the complex factor that best maps g onto t
        errors["gain_error_rms"] = float(np.linalg.norm(common * g - t) / np.linalg.norm(t))
    coupling, true_coupling = (a.coupling if isinstance(a, ArrayImpairments) else None for a in (array, true_array))
    if coupling is not None or true_coupling is not None:
        band = max(np.size(v) for v in (coupling, true_coupling) if v is not None)
        c, t = (np.zeros(band, dtype=np.complex128) for _ in range(2))
        for out, v in ((c, coupling), (t, true_coupling)):
            if v is not None:
                out[:v.size] = v
        errors["coupling_error_rms"] = float(np.linalg.norm(c - t) / np.sqrt(band))
    return errors
