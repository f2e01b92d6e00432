"""Online learning of ``d`` inside a running flowgraph (beyond the paper).

`OnlineSpacingTrainer` is a sink: it consumes reciprocal-filtered frames, collects
them into batches, takes one Adam step on ``d`` per batch and publishes the new ``d``
on its message port ``spacing``; connect it to the estimator's and the beamformer's
``spacing`` ports.  Frames that carry label tags (``theta``, ``range``) give the
supervised loss (eq. 20); the others give the unsupervised loss (eq. 21) on the frames
whose statistic crosses the detection threshold (without labels nobody knows which
frames hold a target; below the threshold the map peak is noise).

Streamed frames were already sent with the precoder in force, so online the gradient
flows through the receiver only; the beamformer follows the learned ``d`` through its
message port.
"""

from __future__ import annotations

import numpy as np
import torch

from ..blocks.items import required_tags
from ..core import SinkBlock
from ..dsp.detection import threshold_at_pfa
from ..dsp.mbml import mbml_peak_projected, window_indices
from ..sim.montecarlo import ProjectedBasis, draw_projected_frames
from ..validation import check_int, check_real
from . import differentiable as diff
from .model import SpacingModel


class OnlineSpacingTrainer(SinkBlock):
    """Learns ``d`` from the frames it sees; publishes each update on message port ``spacing``.

    Parameters: `batch_size` frames per step, `lr` (Adam step in metres), `threshold`
    for the unsupervised frames (default: the ``params.pfa`` threshold of target-free
    frames, estimated at start-up from 4 000 simulated noise frames).
    """

    def __init__(self, params, init_spacing=None, batch_size: int = 64, lr: float = 6.25e-6,
                 threshold: float | None = None, seed=0, name=None):
        k, s = params.n_antennas, params.n_subcarriers
        super().__init__(in_sig=[("Y_tilde", np.complex64, (k, s))], name=name)
        self.params = params
        lr = check_real(self.name, "lr", lr, 0.0, low_open=True)
        self.batch_size = check_int(self.name, "batch_size", batch_size, 1)
        if threshold is not None:
            threshold = check_real(self.name, "threshold", threshold, 0.0)
        self.model = SpacingModel(params, init_spacing)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=lr / self.model.scale)
        self.basis = ProjectedBasis.for_params(params)
        self.threshold = threshold if threshold is not None else self._noise_threshold(seed)
        self.message_port_register_out("spacing")
        self._pending: list[tuple] = []
        self.updates: list[dict] = []

    def _noise_threshold(self, seed) -> float:
        from ..dsp.mbml import mbml_estimate_projected

        p = self.params
        rng = np.random.default_rng(seed)
        frames = draw_projected_frames(rng, p, p.nominal_spacing, self.basis, *p.test_sector, 4000,
                                       present=np.zeros(4000, dtype=bool))
        stat, _, _ = mbml_estimate_projected(frames.combine(np.zeros(4000)), *p.test_sector, p.range_min_m,
                                             p.range_max_m, self.model.spacing_numpy(), p)
        return threshold_at_pfa(stat, p.pfa)

    def work(self, inputs, outputs):
        frames = inputs[0]
        n = len(frames)
        sectors = required_tags(self, 0, n, "sector")
        theta = self.frame_tags(0, n, "theta")
        ranges = self.frame_tags(0, n, "range")
        projected = np.einsum("bks,sr->bkr", frames, self.basis.g.astype(np.complex64))
        for i in range(n):
            label = (theta[i], ranges[i]) if theta[i] is not None and ranges[i] is not None else None
            self._pending.append((projected[i], sectors[i], label))
        while len(self._pending) >= self.batch_size:
            batch, self._pending = self._pending[:self.batch_size], self._pending[self.batch_size:]
            self._step(batch)
        return n

    def _step(self, batch) -> None:
        p = self.params
        projected = np.stack([b[0] for b in batch])
        sectors = np.array([b[1] for b in batch], dtype=np.float64)
        labelled = np.array([b[2] is not None for b in batch])
        spacing = self.model.spacing()
        peak = mbml_peak_projected(projected, sectors[:, 0], sectors[:, 1], sectors[:, 2], sectors[:, 3],
                                   spacing.detach().numpy(), p)
        rows, cols, rv, cv = window_indices(peak.i_hat, peak.j_hat, p)
        valid = torch.as_tensor(rv[:, :, None] & cv[:, None, :])
        z = projected @ self.basis.v[:, cols].transpose(1, 0, 2).astype(np.complex64)  # Y~ Phi_d^*[:, cols]
        window = diff.window_map(torch.as_tensor(z), torch.as_tensor(rows), diff.grid_steering(spacing, p))
        if labelled.mean() >= 0.5:
            kind, use = "sl", labelled
            labels = np.array([b[2] for b in batch if b[2] is not None])
            theta_hat, range_hat = diff.soft_estimate(window[use], valid[use], torch.as_tensor(rows[use]),
                                                      torch.as_tensor(cols[use]), p)
            loss = diff.supervised_loss(theta_hat, range_hat, torch.as_tensor(labels[:, 0]),
                                        torch.as_tensor(labels[:, 1]))
        else:
            kind, use = "ul", peak.statistic > self.threshold
            if not use.any():
                return
            loss = diff.unsupervised_loss(window[use], valid[use])
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        new = self.model.spacing_numpy()
        self.updates.append({"frames": len(batch), "used": int(use.sum()), "kind": kind, "loss": float(loss.detach())})
        self.message_port_pub("spacing", new)
