"""Multi-target sensing: scenes of up to T Swerling-1 targets and a successive-detection receiver.

Beyond the paper (single target, Algorithm 1), after its multi-target follow-up: the echo is
the sum of eq. 1 over the targets of a frame,

    Y_r = 1/sqrt(S) sum_t psi_t a_rx(theta_t) a_tx^T(theta_t) f [x(m) * rho(tau_t)]^T + W,

each ``psi_t ~ CN(0, sigma_r^2)`` independent (so SNR_r is the per-target SNR).  The
receiver detects the targets one by one (greedy successive detection, orthogonal matching
pursuit style):

1. Algorithm 1 (`mbml.estimate`) on the residual frame: the sector maximum of the map
   (eq. 15-16) is the detection statistic; the soft estimate (eq. 17-19) is the position;
2. if the maximum exceeds the threshold (set on H0 statistics for a fixed Pfa), the target
   is declared, the complex gains of all targets declared so far are fitted jointly by
   least squares to the reciprocal-filtered frame with the model
   ``psi_j / sqrt(S) (a^T(theta_j; d) f) a(theta_j; d) rho(tau_j)^T`` (assumed spacing
   ``d``), and the residual is the frame minus their sum;
3. repeat on the residual until a maximum does not exceed the threshold, or T targets.

On a target-free frame the first maximum is the single-target statistic, so the threshold
of the existing receiver (`detection.threshold_at_pfa` of its H0 statistics) keeps the
frame's false-alarm probability at Pfa; with T = 1 the receiver is Algorithm 1.

Targets of a scene are resolvable by construction: any two differ in angle by at least
``delta_theta`` angle-grid steps or in range by at least ``delta_R`` range-grid steps
(the eq.-12 window half-widths, about one resolution cell each; `minimum_separation`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..errors import ConfigError, ShapeError
from ..validation import is_integer
from .channels import complex_normal, target_echo
from .impairments import array_rows, array_steering
from .mbml import estimate, search_for
from .metrics import position
from .steering import range_steering

COUNT_DISTRIBUTIONS = ("uniform", "binomial")

#: Whole scenes redrawn at most this often before the separation rule is declared unsatisfiable.
MAX_SCENE_ATTEMPTS = 1000


# ------------------------------------------------------------------------------------------ scenes
def minimum_separation(params) -> tuple[float, float]:
    """``(delta_theta grid steps in rad, delta_R grid steps in m)``: two targets of a scene differ
    by at least the first in angle or by at least the second in range."""
    angle_step = np.pi / (params.n_angle_grid - 1)
    range_step = (params.range_max_m - params.range_min_m) / (params.n_range_grid - 1)
    return params.window_half_angle * angle_step, params.window_half_range * range_step


def well_separated(theta, ranges, params) -> bool:
    """Whether every pair of targets obeys the `minimum_separation` rule (angle OR range)."""
    theta, ranges = np.asarray(theta, dtype=np.float64), np.asarray(ranges, dtype=np.float64)
    d_theta, d_range = minimum_separation(params)
    close = ((np.abs(theta[:, None] - theta[None, :]) < d_theta)
             & (np.abs(ranges[:, None] - ranges[None, :]) < d_range))
    return not np.any(np.triu(close, k=1))


def target_count_pmf(max_targets: int, distribution: str = "uniform", probability: float = 0.5) -> np.ndarray:
    """``P(n)`` for ``n = 0..T``: uniform on 0..T, or Binomial(T, `probability`)."""
    check_max_targets("target_count_pmf", max_targets)
    n = np.arange(max_targets + 1)
    if distribution == "uniform":
        return np.full(max_targets + 1, 1.0 / (max_targets + 1))
    if distribution == "binomial":
        if not 0.0 <= probability <= 1.0:
            raise ConfigError(f"target_count_pmf: probability = {probability!r}: must lie in [0, 1]")
        from scipy.stats import binom

        return binom.pmf(n, max_targets, probability)
    raise ConfigError(f"target_count_pmf: distribution = {distribution!r}: expected one of {COUNT_DISTRIBUTIONS}")


def check_max_targets(owner: str, max_targets) -> int:
    if not is_integer(max_targets) or max_targets < 1:
        raise ConfigError(f"{owner}: max_targets = {max_targets!r}: must be an integer >= 1")
    return int(max_targets)


@dataclass
class Scenes:
    """Targets of B frames, padded to T slots: `count` (B,) int64; `theta` (rad), `ranges` (m)
    (B, T) float64, NaN past the count; `unit_gain` (B, T) complex128, ``psi / sigma_r``
    (CN(0, 1), zero past the count)."""

    count: np.ndarray
    theta: np.ndarray
    ranges: np.ndarray
    unit_gain: np.ndarray

    @property
    def max_targets(self) -> int:
        return self.theta.shape[1]

    def frame(self, b: int) -> tuple[np.ndarray, np.ndarray]:
        """``(theta, ranges)`` of frame `b`'s targets, each (count[b],)."""
        n = int(self.count[b])
        return self.theta[b, :n], self.ranges[b, :n]

    def gains(self, params) -> np.ndarray:
        """``psi = sigma_r * unit_gain`` at the SNR of `params` (B, T)."""
        return self.unit_gain * np.sqrt(params.target_gain_variance)


def draw_scene(rng: np.random.Generator, params, sector, pmf) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One frame: ``n ~ pmf``, then ``theta_t ~ U[theta_min, theta_max]``, ``R_t ~ U[r_min, r_max]``
    i.i.d., the whole set redrawn until `well_separated`, then ``psi_t / sigma_r ~ CN(0, 1)``.

    `sector` is ``(theta_min, theta_max, r_min, r_max)``.  Returns ``(theta, ranges, unit_gain)``.
    """
    theta_min, theta_max, r_min, r_max = (float(v) for v in sector)
    n = int(np.searchsorted(np.cumsum(pmf), rng.random() * np.sum(pmf), side="right"))
    n = min(n, len(pmf) - 1)
    for _ in range(MAX_SCENE_ATTEMPTS):
        theta = rng.uniform(theta_min, theta_max, n)
        ranges = rng.uniform(r_min, r_max, n)
        if well_separated(theta, ranges, params):
            break
    else:
        d_theta, d_range = minimum_separation(params)
        raise ConfigError(f"draw_scene: {n} targets in sector [{theta_min:.4g}, {theta_max:.4g}] rad x "
                          f"[{r_min:g}, {r_max:g}] m could not be separated by {d_theta:.4g} rad or {d_range:.4g} m "
                          f"in {MAX_SCENE_ATTEMPTS} draws (sector too small for this many targets)")
    return theta, ranges, complex_normal(rng, n, 1.0, dtype=np.complex128)


def draw_scenes(rngs, params, sectors, max_targets: int, distribution: str = "uniform",
                probability: float = 0.5) -> Scenes:
    """`draw_scene` for each frame, with its own generator (``rngs[b]``) and sector (``sectors[b]``, (B, 4))."""
    pmf = target_count_pmf(max_targets, distribution, probability)
    sectors = np.asarray(sectors, dtype=np.float64)
    b = len(rngs)
    if sectors.shape != (b, 4):
        raise ShapeError(f"draw_scenes: sectors must have shape ({b}, 4), got {sectors.shape}")
    scenes = Scenes(np.zeros(b, dtype=np.int64), np.full((b, max_targets), np.nan), np.full((b, max_targets), np.nan),
                    np.zeros((b, max_targets), dtype=np.complex128))
    for i, rng in enumerate(rngs):
        theta, ranges, gain = draw_scene(rng, params, sectors[i], pmf)
        n = theta.size
        scenes.count[i] = n
        scenes.theta[i, :n], scenes.ranges[i, :n], scenes.unit_gain[i, :n] = theta, ranges, gain
    return scenes


def scene_echo(params, true_spacing, scenes: Scenes, precoders, symbols=None) -> np.ndarray:
    """Noise-free echo of every frame's targets: the sum over t of eq. 1 (`target_echo`), (B, K, S)
    complex128.  `precoders` (B, K); `symbols` x(m) (B, S), or None for the reciprocal-filtered
    frame (x = 1)."""
    precoders = np.asarray(precoders)
    b, s = len(scenes.count), params.n_subcarriers
    if precoders.shape != (b, params.n_antennas):
        raise ShapeError(f"scene_echo: precoders must have shape ({b}, {params.n_antennas}), got {precoders.shape}")
    symbols = np.ones((b, s)) if symbols is None else np.asarray(symbols)
    out = np.zeros((b, params.n_antennas, s), dtype=np.complex128)
    psi = scenes.gains(params)
    for t in range(scenes.max_targets):
        frames = np.flatnonzero(scenes.count > t)
        if frames.size == 0:
            break
        steering = array_steering(scenes.theta[frames, t], true_spacing, params.wavelength).T  # (F, K) a_rx = a_tx
        gain = psi[frames, t] * np.einsum("fk,fk->f", steering, precoders[frames])  # psi a_tx^T f
        delay = range_steering(scenes.ranges[frames, t], params).T  # (F, S)
        out[frames] += target_echo(gain, steering, symbols[frames], delay, s)
    return out


# ---------------------------------------------------------------------------------------- receiver
@dataclass
class Detections:
    """Output of `successive_detection` for B frames, T slots each.

    `statistic` (B, T): the k-th successive sector maximum (NaN where not computed: after the
    first one that did not exceed the threshold, or past T); `theta_hat`, `range_hat` (B, T):
    its Algorithm-1 estimate; `gain_hat` (B, T) complex: the LS estimate of ``psi`` of the
    declared targets (NaN elsewhere); `count` (B,): how many targets were declared (the first
    `count` slots)."""

    statistic: np.ndarray
    theta_hat: np.ndarray
    range_hat: np.ndarray
    gain_hat: np.ndarray
    count: np.ndarray

    @property
    def detected(self) -> np.ndarray:
        """(B, T) bool: slot k holds a declared target."""
        return np.arange(self.statistic.shape[1]) < self.count[:, None]

    def frame(self, b: int) -> tuple[np.ndarray, np.ndarray]:
        """``(theta_hat, range_hat)`` of frame `b`'s declared targets."""
        n = int(self.count[b])
        return self.theta_hat[b, :n], self.range_hat[b, :n]


def target_atoms(theta, ranges, spacing, params) -> tuple[np.ndarray, np.ndarray]:
    """Factors of the atoms ``a_pert(theta) rho(tau)^T`` (eq. 13-14) of the model's array:
    steering (..., K) and delay phases (..., S) for angles and ranges of any shape (...)."""
    theta, ranges = np.asarray(theta, dtype=np.float64), np.asarray(ranges, dtype=np.float64)
    steering = array_rows(theta, spacing, params.wavelength)
    delay = range_steering(ranges.ravel(), params).T.reshape(*ranges.shape, -1)
    return steering, delay


def atom_correlations(Y_tilde, steering, delay) -> np.ndarray:
    """``<a_j rho_j^T, Y~> = a_j^H Y~ rho_j^*`` per frame and atom: `Y_tilde` (B, K, S), `steering`
    (B, J, K), `delay` (B, J, S); returns (B, J) complex128."""
    Y_tilde = np.asarray(Y_tilde, dtype=np.complex64)
    out = np.empty(np.shape(steering)[:2], dtype=np.complex128)
    for j in range(out.shape[1]):
        y_rho = np.einsum("bks,bs->bk", Y_tilde, np.conj(delay[:, j]).astype(np.complex64))  # Y~ rho_j^*
        out[:, j] = np.einsum("bk,bk->b", np.conj(steering[:, j]), y_rho)
    return out


def fit_gains(Y_tilde, steering, delay, correlations=None) -> np.ndarray:
    """Joint least-squares amplitudes ``beta`` of ``Y~ ~ sum_j beta_j a_j rho_j^T`` per frame.

    `Y_tilde` (B, K, S); `steering` (B, J, K), `delay` (B, J, S).  Normal equations with the
    Gram matrix ``<a_i rho_i^T, a_j rho_j^T> = (a_i^H a_j)(rho_i^H rho_j)`` and right-hand side
    `atom_correlations` (computed unless given), solved by pseudo-inverse, so coinciding atoms
    share the amplitude.  Returns (B, J) complex128.
    """
    steering, delay = np.asarray(steering, dtype=np.complex128), np.asarray(delay, dtype=np.complex128)
    gram = (steering.conj() @ steering.transpose(0, 2, 1)) * (delay.conj() @ delay.transpose(0, 2, 1))
    rhs = atom_correlations(Y_tilde, steering, delay) if correlations is None else correlations
    return np.einsum("bij,bj->bi", np.linalg.pinv(gram, rcond=1e-9, hermitian=True), rhs)


def subtract_targets(Y_tilde, steering, delay, amplitude) -> np.ndarray:
    """``Y~ - sum_j beta_j a_j rho_j^T`` (B, K, S) complex64, the residual the next detection step searches."""
    residual = np.array(Y_tilde, dtype=np.complex64)
    weighted = (np.asarray(steering) * np.asarray(amplitude)[:, :, None]).astype(np.complex64)
    delay = np.asarray(delay).astype(np.complex64)
    for j in range(weighted.shape[1]):
        residual -= weighted[:, j, :, None] * delay[:, j, None, :]
    return residual


def successive_detection(Y_tilde, sectors, spacing, params, threshold: float, max_targets: int,
                         precoders=None, device: str = "cpu", search=None) -> Detections:
    """Greedy successive detection of up to `max_targets` targets per frame (module docstring).

    `Y_tilde` (B, K, S): reciprocal-filtered frames (eq. 7); `sectors` (B, 4) or (4,):
    ``[theta_min, theta_max, r_min, r_max]``; `spacing`: the assumed ``d`` (K,); `threshold`:
    a target is declared while the sector maximum is strictly above it; `precoders` (B, K) or
    (K,): the f of each frame, only used to turn the fitted amplitude into ``psi``
    (``beta = psi a^T(theta; d) f / sqrt(S)``; without it `gain_hat` is ``beta sqrt(S)``);
    `search`: the caller's `AngleDelaySearch` for `spacing` (default: one kept per value, on `device`).
    """
    T = check_max_targets("successive_detection", max_targets)
    Y_tilde = np.asarray(Y_tilde)
    if Y_tilde.ndim != 3 or Y_tilde.shape[1:] != (params.n_antennas, params.n_subcarriers):
        raise ShapeError(f"successive_detection: Y_tilde must have shape (B, {params.n_antennas}, "
                         f"{params.n_subcarriers}), got {Y_tilde.shape}")
    b = Y_tilde.shape[0]
    sectors = np.broadcast_to(np.asarray(sectors, dtype=np.float64), (b, 4))
    if not np.isfinite(threshold):
        raise ConfigError(f"successive_detection: threshold = {threshold!r}: must be finite")
    out = Detections(np.full((b, T), np.nan), np.full((b, T), np.nan), np.full((b, T), np.nan),
                     np.full((b, T), np.nan + 0j), np.zeros(b, dtype=np.int64))
    search = search_for(spacing, params, device) if search is None else search
    frame = np.asarray(Y_tilde, dtype=np.complex64)
    residual = frame.copy()
    active = np.arange(b)
    correlations = np.zeros((b, T), dtype=np.complex128)  # <atom_j, Y~> of the declared targets
    for k in range(T):
        if active.size == 0:
            break
        stat, theta, rng = estimate(search, residual[active], *sectors[active].T)
        out.statistic[active, k], out.theta_hat[active, k], out.range_hat[active, k] = stat, theta, rng
        active = active[stat > threshold]
        out.count[active] += 1
        if active.size == 0:
            break
        steering, delay = target_atoms(out.theta_hat[active, :k + 1], out.range_hat[active, :k + 1], spacing, params)
        correlations[active, k] = atom_correlations(frame[active], steering[:, k:], delay[:, k:])[:, 0]
        beta = fit_gains(frame[active], steering, delay, correlations[active, :k + 1])
        out.gain_hat[active, :k + 1] = beta * np.sqrt(params.n_subcarriers)
        if precoders is not None:
            f = np.broadcast_to(np.asarray(precoders), (b, params.n_antennas))[active]
            out.gain_hat[active, :k + 1] /= np.einsum("bjk,bk->bj", steering, f)  # a^T(theta_j; d) f
        if k + 1 < T:
            residual[active] = subtract_targets(frame[active], steering, delay, beta)
    return out


# ------------------------------------------------------------------------------------------ losses
def unsupervised_loss(detections: Detections) -> float:
    """Multi-target eq. 21: minus the mean over frames of the sum of the declared targets' maxima."""
    return -float(np.mean(np.sum(np.where(detections.detected, detections.statistic, 0.0), axis=1)))


def matched_squared_errors(truth_positions, estimated_positions) -> np.ndarray:
    """Squared position errors of the optimal (Hungarian) one-to-one matching of estimates to
    targets, minimising their sum; ``min(m, n)`` values.  Positions (m, 2), (n, 2) in metres."""
    truth, estimate = np.asarray(truth_positions).reshape(-1, 2), np.asarray(estimated_positions).reshape(-1, 2)
    cost = np.sum((truth[:, None, :] - estimate[None, :, :]) ** 2, axis=-1)
    rows, cols = linear_sum_assignment(cost)
    return cost[rows, cols]


def supervised_loss(detections: Detections, scenes: Scenes) -> float:
    """Multi-target eq. 20: the mean squared position error ``||p - p^||^2`` (eq. 2) over the
    targets matched to declared estimates (Hungarian matching per frame); NaN if none matched."""
    errors = [matched_squared_errors(position(*scenes.frame(b)), position(*detections.frame(b)))
              for b in range(len(scenes.count))]
    errors = np.concatenate(errors) if errors else np.empty(0)
    return float(np.mean(errors)) if errors.size else float("nan")
