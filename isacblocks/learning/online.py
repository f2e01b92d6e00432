"""Online learning of ``d`` inside a running flowgraph (beyond the paper).

`OnlineSpacingTrainer` is a sink: it consumes reciprocal-filtered frames, keeps the
recent ones in a replay buffer, and after every `batch_size` received frames takes
`steps_per_batch` Adam steps on ``d``, each on frames drawn from the buffer; it
publishes the new ``d`` on its message port ``spacing`` (connect it to the estimator's
and the beamformer's ``spacing`` ports).

Loss, per frame (semi-supervised): a frame that carries label tags (``theta``,
``range``) gives its supervised term (eq. 20), any other frame its unsupervised term
(eq. 21), provided its statistic crosses the detection threshold (without labels nobody
knows which frames hold a target; below the threshold the map peak is noise).  The step
minimises the mean of these terms over the used frames.

Angle gate (the sector curriculum, online): an element's position error e becomes the
phase ``2 pi e sin(theta) / lambda``, which wraps; far from broadside the outer elements
get stuck in side lobes of the objective.  So a frame is used only when its angle --
the label where there is one, else the MB-ML estimate at arrival -- satisfies
``|theta| <= g(n)``, with ``g`` growing linearly from `gate_start_deg` to `gate_end_deg`
over the first `gate_frames` received frames.  The source's sectors are whatever it
draws; the gate selects.

Transmit side: a streamed frame was already sent with the precoder in force, and the true
transmit gain ``a_tx(theta)^T f(d)`` (eq. 1) is unknown; but the array is monostatic, so the
frame's snapshot ``v`` at the estimated range is ``a_tx(theta)`` up to a scalar (eq. 7).  With
`transmit_gradient` an unlabelled frame's map window is multiplied by
``|v^T f(d)| / |v^T f(d)|`` (value 1, the denominator held constant): the gradient then
flows, as in the offline trainer, through the LS precoder of the frame's sector (eq. 5-6)
as well as through the receiver.  The receiver alone cannot see a common scaling of the
element positions (it only moves the peak in ``sin theta``); the precoder can.  The
beamformer follows the learned ``d`` through its message port.  Frames are stored
range-projected (``Y~ G``, K x r complex64, about 29 kB each at K = 64): `replay` frames
at most, the oldest dropped first.
"""

from __future__ import annotations

import numpy as np
import torch

from ..blocks.items import required_tags
from ..core import SinkBlock
from ..dsp.detection import threshold_at_pfa
from ..dsp.mbml import mbml_estimate_projected, mbml_peak_projected, window_indices
from ..dsp.steering import array_gain
from ..errors import ConfigError
from ..sim.montecarlo import ProjectedBasis, draw_projected_frames, projected_snapshots
from ..validation import check_int, check_real
from . import differentiable as diff
from .model import SpacingModel


class ReplayBuffer:
    """The last `capacity` frames: projected data (K, r), sector (4,), label (theta, range) or NaN,
    and the angle used by the gate."""

    def __init__(self, capacity: int, shape: tuple[int, int]):
        self.capacity = capacity
        self.data = np.empty((capacity, *shape), dtype=np.complex64)
        self.sector = np.empty((capacity, 4))
        self.label = np.full((capacity, 2), np.nan)
        self.angle = np.empty(capacity)
        self.size = 0
        self._next = 0

    def add(self, data, sector, label, angle) -> None:
        for i in range(len(data)):
            j = self._next
            self.data[j], self.sector[j], self.label[j], self.angle[j] = data[i], sector[i], label[i], angle[i]
            self._next = (j + 1) % self.capacity
            self.size = min(self.size + 1, self.capacity)


class OnlineSpacingTrainer(SinkBlock):
    """Learns ``d`` from the frames it sees; publishes each update on message port ``spacing``.

    Parameters: `batch_size` received frames per round of learning, `steps_per_batch` Adam steps per
    round, each on `step_frames` frames drawn from the replay buffer (only frames inside the angle
    gate, and only once `min_step_frames` of them are stored); `replay` frames kept; `lr` (Adam step
    in metres); the gate ``|theta| <= g`` with ``g`` from `gate_start_deg` to `gate_end_deg` over
    `gate_frames` received frames (``gate_frames=0``: ``g = gate_end_deg`` from the start);
    `threshold` for the unlabelled frames (default: the ``params.pfa`` threshold of target-free
    frames, estimated at start-up from 4 000 simulated noise frames); `transmit_gradient`: the
    unlabelled frames' gradient also through the transmit precoder (module docstring).
    """

    def __init__(self, params, init_spacing=None, batch_size: int = 128, lr: float = 6.25e-6,
                 steps_per_batch: int = 8, step_frames: int = 256, min_step_frames: int = 128, replay: int = 4096,
                 gate_start_deg: float = 15.0, gate_end_deg: float = 70.0, gate_frames: int = 15000,
                 threshold: float | None = None, transmit_gradient: bool = True, seed=0, name=None):
        k, s = params.n_antennas, params.n_subcarriers
        super().__init__(in_sig=[("Y_tilde", np.complex64, (k, s))], name=name)
        self.params = params
        lr = check_real(self.name, "lr", lr, 0.0, low_open=True)
        self.lr = lr
        self.batch_size = check_int(self.name, "batch_size", batch_size, 1)
        self.steps_per_batch = check_int(self.name, "steps_per_batch", steps_per_batch, 1)
        self.step_frames = check_int(self.name, "step_frames", step_frames, 1)
        self.min_step_frames = check_int(self.name, "min_step_frames", min_step_frames, 1)
        replay = check_int(self.name, "replay", replay, 1)
        if replay < self.batch_size:
            raise ConfigError(f"{self.name}: replay = {replay}: the buffer must hold at least one batch "
                              f"(batch_size = {self.batch_size}) frames")
        self.gate_start_deg = check_real(self.name, "gate_start_deg", gate_start_deg, 0.0, 90.0)
        self.gate_end_deg = check_real(self.name, "gate_end_deg", gate_end_deg, self.gate_start_deg, 90.0)
        self.gate_frames = check_int(self.name, "gate_frames", gate_frames, 0)
        if threshold is not None:
            threshold = check_real(self.name, "threshold", threshold, 0.0)
        if not isinstance(transmit_gradient, bool):
            raise ConfigError(f"{self.name}: transmit_gradient = {transmit_gradient!r}: expected True or False")
        self.transmit_gradient = transmit_gradient
        self.model = SpacingModel(params, init_spacing)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=lr / self.model.scale)
        self.basis = ProjectedBasis.for_params(params)
        self._g = self.basis.g.astype(np.complex64)
        self.threshold = threshold if threshold is not None else self._noise_threshold(seed)
        self.buffer = ReplayBuffer(replay, (k, self.basis.rank))
        self._rng = np.random.default_rng(seed)
        self.message_port_register_out("spacing")
        self._pending: list[tuple] = []
        self.frames_received = 0
        self.updates: list[dict] = []

    def _noise_threshold(self, seed) -> float:
        p = self.params
        rng = np.random.default_rng(seed)
        frames = draw_projected_frames(rng, p, p.nominal_spacing, self.basis, *p.test_sector, 4000,
                                       present=np.zeros(4000, dtype=bool))
        stat, _, _ = mbml_estimate_projected(frames.combine(np.zeros(4000)), *p.test_sector, p.range_min_m,
                                             p.range_max_m, self.model.spacing_numpy(), p)
        return threshold_at_pfa(stat, p.pfa)

    def gate_deg(self) -> float:
        """The angle gate ``g`` (degrees) after `frames_received` frames."""
        if self.gate_frames == 0:
            return self.gate_end_deg
        fraction = min(self.frames_received / self.gate_frames, 1.0)
        return self.gate_start_deg + (self.gate_end_deg - self.gate_start_deg) * fraction

    # ------------------------------------------------------------------ stream
    def work(self, inputs, outputs):
        frames = inputs[0]
        n = len(frames)
        sectors = np.asarray(required_tags(self, 0, n, "sector"), dtype=np.float64)
        theta = self.frame_tags(0, n, "theta")
        ranges = self.frame_tags(0, n, "range")
        labels = np.array([(t, r) if t is not None and r is not None else (np.nan, np.nan)
                           for t, r in zip(theta, ranges)], dtype=np.float64).reshape(n, 2)
        projected = frames @ self._g  # Y~ G, (n, K, r)
        self.receive(projected, sectors, labels)
        return n

    def receive(self, projected: np.ndarray, sectors: np.ndarray, labels: np.ndarray) -> None:
        """Take in range-projected frames (n, K, r), their sectors (n, 4) and labels (n, 2)
        (NaN where unlabelled); learn once per `batch_size` frames."""
        for i in range(len(projected)):
            self._pending.append((projected[i], sectors[i], labels[i]))
        while len(self._pending) >= self.batch_size:
            batch, self._pending = self._pending[:self.batch_size], self._pending[self.batch_size:]
            self._store([np.stack(part) for part in zip(*batch)])
            self.frames_received += len(batch)
            for _ in range(self.steps_per_batch):
                self._step()

    def _store(self, batch) -> None:
        """Keep the labelled frames and the unlabelled ones that cross the threshold, with the
        angle the gate uses: the label, else the MB-ML estimate with the current ``d``."""
        projected, sectors, labels = batch
        p = self.params
        stat, theta_hat, _ = mbml_estimate_projected(projected, sectors[:, 0], sectors[:, 1], sectors[:, 2],
                                                     sectors[:, 3], self.model.spacing_numpy(), p)
        labelled = ~np.isnan(labels[:, 0])
        keep = labelled | (stat > self.threshold)
        angle = np.where(labelled, labels[:, 0], theta_hat)
        self.buffer.add(projected[keep], sectors[keep], labels[keep], angle[keep])

    # ------------------------------------------------------------------ learning
    def loss(self, projected, sectors, labels) -> tuple[torch.Tensor, np.ndarray]:
        """The semi-supervised loss of frames (B, K, r), per frame: the eq.-20 term where the
        frame has a label, the eq.-21 term on the others that cross the threshold; the mean
        over the used frames, and the mask of used frames."""
        p = self.params
        spacing = self.model.spacing()
        peak = mbml_peak_projected(projected, sectors[:, 0], sectors[:, 1], sectors[:, 2], sectors[:, 3],
                                   spacing.detach().numpy(), p)
        labelled = ~np.isnan(labels[:, 0])
        unlabelled = ~labelled & (peak.statistic > self.threshold)
        used = labelled | unlabelled
        rows, cols, rv, cv = window_indices(peak.i_hat, peak.j_hat, p)
        valid = torch.as_tensor(rv[:, :, None] & cv[:, None, :])
        z = projected @ self.basis.v[:, cols].transpose(1, 0, 2).astype(np.complex64)  # Y~ Phi_d^*[:, cols]
        grid_a = diff.grid_steering(spacing, p)
        window = diff.window_map(torch.as_tensor(z), torch.as_tensor(rows), grid_a)
        total = torch.zeros((), dtype=torch.float64)
        if labelled.any():
            theta_hat, range_hat = diff.soft_estimate(window[labelled], valid[labelled],
                                                      torch.as_tensor(rows[labelled]),
                                                      torch.as_tensor(cols[labelled]), p)
            total = total + labelled.sum() * diff.supervised_loss(
                theta_hat, range_hat, torch.as_tensor(labels[labelled, 0]), torch.as_tensor(labels[labelled, 1]))
        if unlabelled.any():
            ul_window = window[unlabelled]
            if self.transmit_gradient:
                gain = self._transmit_gain(projected[unlabelled], sectors[unlabelled], peak.j_hat[unlabelled], grid_a)
                ul_window = ul_window * gain[:, None, None]
            total = total + unlabelled.sum() * diff.unsupervised_loss(ul_window, valid[unlabelled])
        return total / max(int(used.sum()), 1), used

    def _transmit_gain(self, projected, sectors, j_hat, grid_a) -> torch.Tensor:
        """``|v^T f(d)| / |v^T f(d)|`` (value 1, gradient of ``log |a_tx^T f(d)|``) per frame: the
        snapshot ``v`` at the estimated range is ``a_tx(theta)`` up to a scalar (monostatic, eq. 7),
        so it stands in for the unknown true steering vector of the transmit gain (eq. 1)."""
        v = projected_snapshots(projected, self.params.range_grid[j_hat], self.basis, self.params)  # (B, K)
        precoders = diff.ls_precoder(grid_a, sectors[:, 0], sectors[:, 1], self.params)
        gain = torch.abs(array_gain(torch.as_tensor(v).to(precoders.dtype), precoders))
        return gain / gain.detach().clamp_min(1e-30)

    def _step(self) -> None:
        buffer = self.buffer
        inside = np.flatnonzero(np.abs(buffer.angle[:buffer.size]) <= np.radians(self.gate_deg()))
        if inside.size < self.min_step_frames:  # a few frames give Adam a noisy direction at full step
            return
        pick = self._rng.choice(inside, size=min(self.step_frames, inside.size), replace=False)
        loss, used = self.loss(buffer.data[pick], buffer.sector[pick], buffer.label[pick])
        if not used.any():
            return
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        labelled = int(np.count_nonzero(~np.isnan(buffer.label[pick][used, 0])))
        self.updates.append({"frames_received": self.frames_received, "used": int(used.sum()),
                             "labelled": labelled, "gate_deg": self.gate_deg(), "loss": float(loss.detach())})
        self.message_port_pub("spacing", self.model.spacing_numpy())
