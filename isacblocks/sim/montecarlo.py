"""Fast Monte Carlo sensing frames for training and evaluation studies.

The streaming blocks carry full (K, S) frames.  A study that only needs the MB-ML
receiver's output can skip most of that work, exactly in distribution:

* the reciprocal filter removes PSK symbols exactly (|x| = 1) and leaves white noise
  white, so the symbols need not be drawn (eq. 7);
* the receiver only sees ``Y~ Phi_d^*``.  With the truncated SVD ``Phi_d^* = G V``,
  ``G = U Sigma`` (U orthonormal, `RangeDictionary`), the noise part ``N G = (N U) Sigma``
  where ``N U`` is again i.i.d. CN(0, N0): K x r normals instead of K x S (r ~ 60);
* the target echo is rank one: ``alpha a_rx(theta) (rho(tau)^T G)``.

`tests/sim/test_montecarlo.py` checks that these frames give the same distribution of the
detection statistic as full frames through the blocks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..dsp.angle_delay import AngleDelayGrid
from ..dsp.channels import complex_normal, frame_noise
from ..dsp.impairments import array_rows, array_steering
from ..dsp.precoder import beampattern_precoder
from ..dsp.scenario import draw_targets, training_sectors
from ..dsp.steering import array_gain, range_steering
from ..params import SystemParams

#: Frames per noise generator in `draw_projected_frames` (streams are filled in parallel).
NOISE_FRAMES_PER_STREAM = 32


@dataclass(frozen=True)
class ProjectedBasis:
    """``G`` (S, r) complex, its column norms ``sigma`` (r,), and ``V`` (r, N_tau), ``Phi_d^* = G V``."""

    g: np.ndarray
    sigma: np.ndarray
    v: np.ndarray

    @classmethod
    def for_params(cls, params: SystemParams) -> ProjectedBasis:
        """The receiver's own factorisation of the range dictionary (`AngleDelayGrid.factors`)."""
        return cls(*AngleDelayGrid.of(params).factors)

    @property
    def rank(self) -> int:
        return self.g.shape[1]


@dataclass
class ProjectedFrames:
    """A batch of range-projected frames ``C = Y~ G = gain * signal + noise``, each (B, K, r).

    The echo is rank one: ``signal = amplitude a_rx(theta) (rho(tau)^T G)`` with
    ``amplitude = psi / sqrt(S)`` (zero on target-free frames), kept as its factors; `gain`
    is ``a_tx(theta)^T f`` (B,).  Keeping gain apart lets a learner put a gradient on the
    precoder through `gain` alone.
    """

    amplitude: np.ndarray  # (B,) complex128
    steering: np.ndarray  # (B, K) complex64, a_rx(theta)
    delay: np.ndarray  # (B, r) complex64, rho(tau)^T G
    noise: np.ndarray | None  # (B, K, r) complex64 (None: drawn elsewhere, `draw_frame_factors`)
    present: np.ndarray
    theta: np.ndarray
    ranges: np.ndarray

    def combine(self, gain) -> np.ndarray:
        """``C = gain * signal + noise`` as complex64 (B, K, r)."""
        scale = (self.amplitude * np.asarray(gain)).astype(np.complex64)
        out = self.steering * scale[:, None]
        out = out[:, :, None] * self.delay[:, None, :]
        out += self.noise
        return out

    def echo(self) -> np.ndarray:
        """The echo's antenna factor ``amplitude a_rx(theta)`` (B, K) complex64."""
        return self.steering * self.amplitude.astype(np.complex64)[:, None]


def draw_projected_frames(rng: np.random.Generator, params: SystemParams, true_spacing, basis: ProjectedBasis,
                          theta_min, theta_max, n_frames: int, present=None,
                          noise_source=None) -> ProjectedFrames:
    """Draw `n_frames` projected sensing frames (eq. 1, 7, after ``Phi_d^*``'s left factor).

    Targets: ``theta ~ U[theta_min, theta_max]`` (scalars or (B,)), ``R ~ U[R_min, R_max]``,
    ``psi ~ CN(0, sigma_r^2)``; `present` is a (B,) bool array (default: all present).
    `noise_source(seed, out, noise_power)` fills the complex64 (B, K, r) array `out` with
    CN(0, noise_power) samples from the integer `seed` (default: `channels.frame_noise`,
    numpy's generators spread over threads); the learner passes torch's faster generator.
    """
    frames, seed = draw_frame_factors(rng, params, true_spacing, basis, theta_min, theta_max, n_frames, present)
    noise = np.empty((n_frames, params.n_antennas, basis.rank), dtype=np.complex64)
    (noise_source or _numpy_noise)(seed, noise, params.noise_power)
    noise *= basis.sigma.astype(np.float32)
    frames.noise = noise
    return frames


def draw_frame_factors(rng: np.random.Generator, params: SystemParams, true_array, basis: ProjectedBasis,
                       theta_min, theta_max, n_frames: int, present=None) -> tuple[ProjectedFrames, int]:
    """The small part of `draw_projected_frames`: targets and the echo's factors, with ``noise=None``,
    and the integer seed its noise is drawn from (the same draws from `rng`, in the same order), so
    that the noise can be drawn elsewhere (e.g. on the training device)."""
    present = np.ones(n_frames, dtype=bool) if present is None else np.asarray(present, dtype=bool)
    theta, ranges = draw_targets(rng, theta_min, theta_max, params.range_min_m, params.range_max_m, n_frames)
    psi = complex_normal(rng, n_frames, params.target_gain_variance, dtype=np.complex128)
    seed = int(rng.integers(2**63))
    steering = array_rows(theta, true_array, params.wavelength).astype(np.complex64)  # (B, K), a_pert(theta)^T
    delay = (range_steering(ranges, params).T @ basis.g).astype(np.complex64)  # (B, r)
    amplitude = np.where(present, psi, 0.0) / np.sqrt(params.n_subcarriers)
    return ProjectedFrames(amplitude, steering, delay, None, present, theta, ranges), seed


def projected_snapshots(projected, ranges, basis, params: SystemParams) -> np.ndarray:
    """``v_n`` from range-projected frames ``C = Y~ G`` (B, K, r): ``Y~ rho^* = C Sigma^-2 G^H rho^*``."""
    rho = range_steering(np.asarray(ranges, dtype=np.float64), params)  # (S, B)
    weights = (basis.g.conj().T @ rho.conj()) / (basis.sigma ** 2)[:, None]  # (r, B)
    return np.einsum("bkr,rb->bk", projected, weights) / params.n_subcarriers


def calibration_snapshots(rng: np.random.Generator, params: SystemParams, true_array, n_frames: int,
                          basis: ProjectedBasis | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Labelled frames for a classical calibration: one target per frame on random training
    sectors (`training_sectors`), the lambda/2 LS precoder of each sector, through the true
    array; returns the range-matched snapshots ``v_n`` (B, K) (`projected_snapshots`) and the
    label angles (B,)."""
    basis = basis or ProjectedBasis.for_params(params)
    theta_min, theta_max = training_sectors(rng, params, n_frames)
    frames = draw_projected_frames(rng, params, true_array, basis, theta_min, theta_max, n_frames)
    precoders = np.array([beampattern_precoder(lo, hi, params.nominal_spacing, params)
                          for lo, hi in zip(theta_min, theta_max)])  # the lambda/2 precoder per frame
    gain = array_gain(array_steering(frames.theta, true_array, params.wavelength).T, precoders)
    return projected_snapshots(frames.combine(gain), frames.ranges, basis, params), frames.theta


def _numpy_noise(seed: int, out: np.ndarray, noise_power: float) -> None:
    """CN(0, noise_power) frames into `out` from numpy's generators, filled in parallel (`frame_noise`)."""
    frame_noise(np.random.SeedSequence(seed), 0, out, noise_power, NOISE_FRAMES_PER_STREAM)
