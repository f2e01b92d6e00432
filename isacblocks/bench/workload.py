"""The inputs every benchmark shares: full sensing frames and training batches.

Frames follow the system model (eq. 1, 7): after the reciprocal filter, which removes
the PSK symbols exactly, a frame is ``Y~ = (psi g / sqrt(S)) a(theta) rho(tau)^T + W``
with ``g = a_tx(theta)^T f`` for the LS sector precoder ``f`` (eq. 5-6), ``psi ~ CN(0,
sigma_r^2)`` and white ``W ~ CN(0, N0)``.  A training batch keeps the same quantities
apart so that the dense torch step (full frames) and `isacblocks`' trainer (projected
frames ``Y~ G``) can be handed exactly the same draw.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from isacblocks.dsp.channels import complex_normal, target_echo
from isacblocks.dsp.precoder import beampattern_precoder
from isacblocks.dsp.scenario import training_sectors
from isacblocks.dsp.steering import range_steering, ula_steering
from isacblocks.sim.montecarlo import ProjectedBasis, ProjectedFrames


@dataclass
class SensingFrames:
    """A batch of frames after the reciprocal filter, with their prior sector and truth."""

    Y_tilde: np.ndarray  # (B, K, S) complex64
    theta_min: np.ndarray  # (B,) rad
    theta_max: np.ndarray
    r_min: float  # m
    r_max: float
    present: np.ndarray  # (B,) bool
    theta: np.ndarray  # (B,) rad, NaN without a target
    ranges: np.ndarray  # (B,) m, NaN without a target

    def __len__(self) -> int:
        return len(self.Y_tilde)

    def head(self, n: int) -> SensingFrames:
        """The first `n` frames."""
        return SensingFrames(self.Y_tilde[:n], self.theta_min[:n], self.theta_max[:n], self.r_min, self.r_max,
                             self.present[:n], self.theta[:n], self.ranges[:n])


def sensing_frames(params, true_spacing, n_frames: int, seed: int, sector=None) -> SensingFrames:
    """`n_frames` frames on `sector` (default: the test sector), target on every odd frame.

    The transmitter knows the true spacing (the precoder of the known-spacing baseline).
    """
    rng = np.random.default_rng(seed)
    lo, hi = params.test_sector if sector is None else sector
    present = np.arange(n_frames) % 2 == 1
    theta = np.where(present, rng.uniform(lo, hi, n_frames), np.nan)
    ranges = np.where(present, rng.uniform(params.range_min_m, params.range_max_m, n_frames), np.nan)
    Y = complex_normal(rng, (n_frames, params.n_antennas, params.n_subcarriers), params.noise_power)
    idx = np.flatnonzero(present)
    if idx.size:
        f = beampattern_precoder(lo, hi, true_spacing, params)
        steering = ula_steering(theta[idx], true_spacing, params.wavelength).T  # (B1, K)
        psi = complex_normal(rng, idx.size, params.target_gain_variance, dtype=np.complex128)
        gain = psi * (steering @ f)
        delay = range_steering(ranges[idx], params).T  # (B1, S)
        symbols = np.ones_like(delay)  # removed exactly by the reciprocal filter
        Y[idx] += target_echo(gain, steering, symbols, delay, params.n_subcarriers).astype(np.complex64)
    return SensingFrames(Y, np.full(n_frames, lo), np.full(n_frames, hi), params.range_min_m, params.range_max_m,
                         present, theta, ranges)


@dataclass
class TrainingDraw:
    """One training batch (Sec. V-A), every frame with a target, as its factors.

    The full frame is ``(psi g(d) / sqrt(S)) a_true(theta) rho(tau)^T + noise``, where the
    gain ``g(d) = a_true(theta)^T f(d)`` depends on the learned spacing through the
    precoder.
    """

    theta_min: np.ndarray  # (B,) rad, a random training sector per frame
    theta_max: np.ndarray
    theta: np.ndarray  # (B,) rad
    ranges: np.ndarray  # (B,) m
    psi: np.ndarray  # (B,) complex128
    steering: np.ndarray  # (B, K) complex128, a_true(theta)
    delay: np.ndarray  # (B, S) complex128, rho(tau)
    noise: np.ndarray  # (B, K, S) complex64

    def __len__(self) -> int:
        return len(self.theta)

    def projected(self, basis: ProjectedBasis) -> ProjectedFrames:
        """The same frames as `isacblocks`' trainer sees them: ``C = Y~ G`` factored
        (`isacblocks.sim.montecarlo.ProjectedFrames`), exactly the projection of this draw."""
        g = basis.g.astype(np.complex64)
        return ProjectedFrames(amplitude=self.psi / np.sqrt(self.delay.shape[1]),
                               steering=self.steering.astype(np.complex64),
                               delay=(self.delay @ basis.g).astype(np.complex64),
                               noise=self.noise @ g,
                               present=np.ones(len(self), dtype=bool), theta=self.theta, ranges=self.ranges)


def training_draw(rng: np.random.Generator, params, true_spacing, batch_size: int) -> TrainingDraw:
    """A batch of `batch_size` full training frames: random sectors, a target in each."""
    theta_min, theta_max = training_sectors(rng, params, batch_size)
    theta = rng.uniform(theta_min, theta_max, batch_size)
    ranges = rng.uniform(params.range_min_m, params.range_max_m, batch_size)
    psi = complex_normal(rng, batch_size, params.target_gain_variance, dtype=np.complex128)
    noise = complex_normal(rng, (batch_size, params.n_antennas, params.n_subcarriers), params.noise_power)
    steering = ula_steering(theta, true_spacing, params.wavelength).T
    delay = range_steering(ranges, params).T
    return TrainingDraw(theta_min, theta_max, theta, ranges, psi, steering, delay, noise)
