"""Tracking a drifting array online, without labels (beyond the paper).

`ArrayTracker` is the online learner of `learning.online` (`OnlineSpacingTrainer`: a sink, its
replay buffer, its learner thread off the stream's critical path, its message port) turned
into a tracker of a whole impaired array ``a_pert = C diag(g) a(theta; d)`` (`dsp.impairments`):

* the model is a `SpacingModel` with gains (and coupling, if asked), started from an array
  learned or calibrated before (not from lambda/2);
* the loss is the unsupervised one (eq. 21) on the frames whose statistic crosses the
  threshold, with the gradient through the receiver's rows and the transmit precoder
  (eq. 5-6; the frame's snapshot stands in for the unknown ``a_tx``, as in the trainer);
* **forgetting**: the replay buffer is short (`replay` frames, the oldest dropped first), so
  a step only sees the array of the last few hundred frames, and Adam's step size stays
  constant (no decay): the learner keeps moving at up to ``lr`` per step, which bounds the
  drift rate it can follow and sets its jitter;
* each new array is published as an `ArrayImpairments` on the message port ``spacing``
  (the estimator and the beamformer take it as they take a spacing vector).

`KalmanGainTracker` is the state-space alternative: a Kalman filter on the gains' log-amplitude
and phase with the drift's random walk as its state model, and as its measurement a
label-free LS fit of the gains to the snapshots at the map peaks (decision-directed:
`dsp.calibration`'s gain step with the estimated angles in place of labels).  `docs/drift.md`
compares the two.
"""

from __future__ import annotations

import numpy as np
import torch

from ..dsp.angle_delay import RangeProjectedFrames
from ..dsp.calibration import _ls_gains
from ..dsp.impairments import ArrayImpairments, check_array, coupling_matrix, parse_kinds, spacing_of
from ..dsp.mbml import estimate, window_indices
from ..dsp.steering import element_positions, steering_phase, unit_phasor
from ..errors import ConfigError
from ..validation import check_real
from . import differentiable as diff
from .model import SpacingModel
from .online import OnlineSpacingTrainer
from .window import learner_search, projected_peak

#: The `SpacingModel` parameters of each impairment kind.
MODEL_PARAMETERS = {"spacing": ("u",), "gain": ("log_amplitude", "phase"), "coupling": ("coupling_re", "coupling_im")}


def _kind_names(kinds) -> tuple[str, ...]:
    return tuple(k.strip() for k in (kinds.split(",") if isinstance(kinds, str) else kinds))


class ArrayTracker(OnlineSpacingTrainer):
    """Follows a drifting array from the frames it sees, with no labels (module docstring).

    `init_array`: the array to start from (spacing vector or `ArrayImpairments`); `kinds`: what
    the model holds (default spacing and gains); `follow`: the kinds it moves (default all of
    `kinds`), the others held where they start: a temperature drift stretches the aperture by
    ``alpha dT`` (1.7e-4 for 10 K), far below what the map resolves, while K free spacings
    under a label-free loss wander along directions it hardly sees (docs/drift.md).  The other parameters are the
    `OnlineSpacingTrainer`'s, with tracking defaults: 4 steps per 128 frames on 128 frames drawn
    from the last 1 024 detected frames, Adam step `lr` metres (the same relative step for the
    gains' nepers and radians), no angle curriculum (the gate is open to 70 degrees from the
    start: the array is near its start, inside the main lobe of the objective).  Labels, if a
    frame has them, are ignored.

    Input
    -----
    Y_tilde : [n, K, S], complex64
        The reciprocal-filtered frames (eq. 7), tagged ``sector``.

    Messages
    --------
    spacing (out)
        Each learned array (an `ArrayImpairments`), after every Adam step.
    """

    def __init__(self, params, init_array, kinds=("spacing", "gain"), *, follow=None, batch_size: int = 128,
                 lr: float = 1.5e-5, steps_per_batch: int = 4, step_frames: int = 128, min_step_frames: int = 64,
                 replay: int = 1024, gate_deg: float = 70.0, threshold: float | None = None,
                 transmit_gradient: bool = True, asynchronous: bool = True, seed=0, name=None):
        init_array = check_array(init_array, params.n_antennas, "ArrayTracker.init_array")
        gate_deg = check_real("ArrayTracker", "gate_deg", gate_deg, 0.0, 90.0)
        super().__init__(params, spacing_of(init_array), batch_size=batch_size, lr=lr,
                         steps_per_batch=steps_per_batch, step_frames=step_frames, min_step_frames=min_step_frames,
                         replay=replay, gate_start_deg=gate_deg, gate_end_deg=gate_deg, gate_frames=0,
                         threshold=threshold, transmit_gradient=transmit_gradient, asynchronous=asynchronous,
                         seed=seed, name=name)
        coupling_band = init_array.coupling.size if isinstance(init_array, ArrayImpairments) and \
            init_array.coupling is not None else 2
        self.kinds = parse_kinds(kinds)
        self.model = SpacingModel(params, init_array, kinds=self.kinds, coupling_band=coupling_band)
        self.follow = self.kinds if follow is None else tuple(k for k in self.kinds if k in _kind_names(follow))
        unknown = sorted(set(_kind_names(follow or ())) - set(self.kinds))
        if unknown or not self.follow:
            raise ConfigError(f"ArrayTracker.follow = {follow!r}: choose among the model's kinds {self.kinds}")
        for kind, names in MODEL_PARAMETERS.items():
            if kind in self.kinds and kind not in self.follow:  # held where it starts
                for name in names:
                    getattr(self.model, name).requires_grad_(False)
        self.optimizer = torch.optim.Adam([q for q in self.model.parameters() if q.requires_grad],
                                          lr=lr / self.model.scale)
        self._adopt(self.model.array_numpy())  # the latest published array (the gate's estimates use it)

    @property
    def array(self):
        """The latest array published (the initial one before the first step)."""
        return self._spacing

    def loss(self, projected, sectors, labels):
        """The unsupervised loss (eq. 21) of the frames (B, K, r) that cross the threshold, and their
        mask; differentiable in every parameter of the model."""
        p = self.params
        grid_tx = self.model.grid_rows()  # a_pert(theta_n)^T of the model on the grid
        grid_a = self.model.receiver_rows(grid_tx)
        self._learner_search.recreate(self.model.array_numpy())
        peak = projected_peak(projected, sectors, self._learner_search)
        used = peak.statistic > self.threshold
        if not used.any():
            return torch.zeros((), dtype=torch.float64), used
        projected, sectors, i_hat, j_hat = projected[used], sectors[used], peak.i_hat[used], peak.j_hat[used]
        rows, cols, rv, cv = window_indices(i_hat, j_hat, p)
        valid = torch.as_tensor(rv[:, :, None] & cv[:, None, :])
        z = projected @ self.basis.v[:, cols].transpose(1, 0, 2).astype(np.complex64)  # Y~ Phi_d^*[:, cols]
        window = diff.window_map(torch.as_tensor(z), torch.as_tensor(rows), grid_a)
        if self.transmit_gradient:
            window = window * self._transmit_gain(projected, sectors, j_hat, grid_tx)[:, None, None]
        return diff.unsupervised_loss(window, valid), used

    def _model_array(self):
        """What the tracker publishes after a step: the whole array (`ArrayImpairments`)."""
        return self.model.array_numpy()


class KalmanGainTracker:
    """A Kalman filter on the gains (log-amplitude and phase per element) of a drifting array.

    State: ``s = [log|g|, arg g]`` (2K,), random walk with per-frame variances `q` (2,) (the drift
    process's ``sigma^2``, `dsp.drift.DriftParams.sigmas`).  Every `update_frames` detected frames,
    a measurement: the LS gains (`dsp.calibration`'s gain step) of the snapshots at the map peaks
    of those frames, at the estimated angles and ranges, with the current spacing and coupling;
    its variance per element ``N0 / (2 S sum_n |alpha_n|^2)`` (the LS estimate's, radians^2 and
    nepers^2: the snapshots' noise is CN(0, N0 / S)).  The common phase and amplitude are
    unobservable: both the measurement and the state are referred to the mean (``mean(g) = 1``).
    The spacing is held where it started.
    """

    def __init__(self, params, init_array, q, threshold: float, update_frames: int = 256):
        init_array = check_array(init_array, params.n_antennas, "KalmanGainTracker.init_array")
        if not isinstance(init_array, ArrayImpairments) or init_array.gain is None:
            raise ConfigError("KalmanGainTracker: init_array must be an ArrayImpairments with gains")
        self.params, self.threshold, self.update_frames = params, threshold, update_frames
        self.spacing, self.coupling = init_array.spacing, init_array.coupling
        gain = init_array.gain / np.mean(init_array.gain)
        self.state = np.stack([np.log(np.abs(gain)), np.angle(gain)])  # (2, K)
        self.variance = np.zeros((2, params.n_antennas))
        self.q = np.asarray(q, dtype=np.float64)[:, None]
        self._search = learner_search(self.array, params, owner="KalmanGainTracker")  # follows `array`
        self._frames_since = 0
        self._pending: list[np.ndarray] = []
        self._angles: list[np.ndarray] = []
        self.updates = 0

    @property
    def array(self) -> ArrayImpairments:
        return ArrayImpairments(self.spacing, np.exp(self.state[0] + 1j * self.state[1]), self.coupling)

    def receive(self, projected, sectors, snapshots_at) -> None:
        """Take in range-projected frames (n, K, r) and their sectors (n, 4); `snapshots_at(projected,
        ranges)` gives the range-matched snapshots ``v_n`` (`sim.montecarlo.projected_snapshots`)."""
        stat, theta_hat, range_hat = estimate(self._search, RangeProjectedFrames(projected),
                                              *(sectors[:, i] for i in range(4)), owner="KalmanGainTracker")
        self._frames_since += len(projected)
        detected = stat > self.threshold
        if detected.any():
            self._pending.append(snapshots_at(projected[detected], range_hat[detected]))
            self._angles.append(theta_hat[detected])
        if sum(len(a) for a in self._angles) >= self.update_frames:
            self._update(np.concatenate(self._pending), np.concatenate(self._angles))

    def _update(self, v, theta) -> None:
        p = self.params
        self.variance += self.q * self._frames_since  # predict: the walk since the last update
        self._frames_since = 0
        self._pending, self._angles = [], []
        positions = element_positions(self.spacing)
        steering = unit_phasor(steering_phase(positions, np.sin(theta)[:, None], p.wavelength))
        coupling = coupling_matrix(self.coupling, p.n_antennas)
        gain = self.array.gain
        for _ in range(2):  # the frame gains and the element gains, alternated
            gain = _ls_gains(v, steering, gain, coupling)
        b = (steering * gain) @ coupling.T
        alpha = np.sum(b.conj() * v, axis=1) / np.sum(np.abs(b) ** 2, axis=1)
        r = p.noise_power / (2 * p.n_subcarriers * np.sum(np.abs(alpha) ** 2))  # per element, log-amplitude and phase
        current = np.exp(self.state[0] + 1j * self.state[1])
        relative = gain / current  # the innovation as a relative gain (no phase wrapping)
        relative /= np.exp(1j * np.angle(np.mean(relative)))
        innovation = np.stack([np.log(np.abs(relative)), np.angle(relative)])
        kalman_gain = self.variance / (self.variance + r)
        self.state = self.state + kalman_gain * innovation
        self.variance = (1 - kalman_gain) * self.variance
        self.updates += 1
        self._search.recreate(self.array)
