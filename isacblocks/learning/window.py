"""The MB-ML window with gradient through ``d`` (Alg. 1, eq. 16-21), for both trainers.

The arg-max of the sector map (eq. 16) needs no gradient: the map kernels of
`isacblocks.dsp` find it with the current ``d`` (the learners reach the peak search and
the window's indices and range columns through this module only, with an
`AngleDelaySearch` each learner owns and recreates for each new ``d``: `learner_search`).  Torch then recomputes
only the ``(2 delta_theta + 1) x (2 delta_R + 1)`` window around it (eq. 17,
`differentiable.window_map`), with gradient through ``d``; the losses (eq. 20-21) are
read from that window.

* `training_window`: the offline trainer's batches, frames given as rank-one echo plus
  noise (`sim.montecarlo.ProjectedFrames`), on three paths: formed inside the fused CPU
  kernel; formed in numpy for the CUDA kernel; formed in torch on the training device when
  the batch was made there (`TrainConfig.frames`).
* `projected_window`: range-projected frames ``Y~ G`` as the online trainer stores them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..dsp.angle_delay import (
                               AngleDelayGrid,
                               AngleDelaySearch,
                               FactoredFrames,
                               RangeProjectedFrames,
                               synthesise_columns,
                               window_synthesis,
)
from ..dsp.mbml import MapPeak, factored_sector_peak, sector_peak, window_indices
from ..params import SystemParams
from ..sim.montecarlo import ProjectedBasis
from . import differentiable as diff


@dataclass
class Window:
    """The eq.-17 windows of a batch: `values` ``|Phi_pert(d)[:, rows]^H (Y~ Phi_d^*)[:, cols]|``
    (B, R, C), differentiable in ``d``; `valid` (B, R, C) False where the window leaves the map;
    the grid `rows` (B, R) and `cols` (B, C); `peak` the arg-max it was centred on (eq. 16)."""

    values: torch.Tensor
    valid: torch.Tensor
    rows: torch.Tensor
    cols: torch.Tensor
    peak: MapPeak

    def __getitem__(self, which: np.ndarray) -> Window:
        """The windows of some of the frames (`which`: a mask or indices over the batch)."""
        return Window(self.values[which], self.valid[which], self.rows[which], self.cols[which],
                      MapPeak(*(np.asarray(field)[which] for field in self.peak)))

    def scaled(self, factor: torch.Tensor) -> Window:
        """The windows times a per-frame `factor` (B,)."""
        return Window(self.values * factor[:, None, None], self.valid, self.rows, self.cols, self.peak)

    def unsupervised_loss(self) -> torch.Tensor:
        """``J_UL = -max_ij L`` (eq. 21), averaged over the batch."""
        return diff.unsupervised_loss(self.values, self.valid)

    def supervised_loss(self, theta, ranges, params: SystemParams) -> torch.Tensor:
        """``J_SL`` (eq. 20) of the soft estimates (eq. 18-19) against the labels `theta`, `ranges` (B,)."""
        device = self.values.device
        theta_hat, range_hat = diff.soft_estimate(self.values, self.valid, self.rows, self.cols, params)
        return diff.supervised_loss(theta_hat, range_hat, torch.as_tensor(theta).to(device),
                                    torch.as_tensor(ranges).to(device))


def learner_search(array, params: SystemParams, device: str = "cpu", owner: str = "learner") -> AngleDelaySearch:
    """The `AngleDelaySearch` a learner owns: the system's grid, the array `array` (numpy spacing
    or `ArrayImpairments`), the map kernels on `device`; ``recreate`` it for each new ``d``."""
    return AngleDelaySearch(AngleDelayGrid.of(params), array, device, owner=owner)


def training_window(batch, gain: torch.Tensor, grid_a: torch.Tensor, search: AngleDelaySearch,
                    basis: ProjectedBasis, params: SystemParams) -> Window:
    """The window of a training batch (`batches.TrainingBatch`): frames ``gain echo delay^T + noise``
    with `gain` ``a_tx(theta)^T f(d)`` (B,), differentiable; the peak searched with `search` (the
    learner's, recreated for the model's array, on the training device's kind); `grid_a` the
    receiver's grid rows, on the training device (which also runs the map kernel when it is cuda)."""
    dev = grid_a.device
    echo, delay_cols, noise_cols, peak = _window_factors(batch, gain.detach().cpu().numpy(), search, basis, params,
                                                         dev)
    rows, cols, row_valid, col_valid = window_indices(peak.i_hat, peak.j_hat, params)
    values = diff.factored_window_map(gain, *(torch.as_tensor(x).to(dev) for x in (echo, delay_cols, noise_cols)),
                                      torch.as_tensor(rows).to(dev), grid_a)
    valid = torch.as_tensor(row_valid[:, :, None] & col_valid[:, None, :]).to(dev)
    return Window(values, valid, torch.as_tensor(rows).to(dev), torch.as_tensor(cols).to(dev), peak)


def _window_factors(batch, gain_np: np.ndarray, search: AngleDelaySearch, basis: ProjectedBasis,
                    params: SystemParams, dev: torch.device):
    """The arg-max of the sector map (eq. 16, no gradient) and the window's range-projected data
    ``gain echo delay_cols^T + noise_cols`` as its factors: the echo ``amplitude a_rx`` (B, K), its
    range columns (B, C) and the noise's (B, K, C)."""
    p, frames = params, batch.frames
    if batch.device_noise is not None:
        return _device_window_factors(batch, gain_np, search, basis, params, dev)
    if dev.type == "cpu":  # frames formed inside the map kernel; the window columns after it
        scale = (frames.amplitude * gain_np).astype(np.complex64)
        peak, noise_cols, delay_cols = factored_sector_peak(
            search, FactoredFrames(frames.noise, frames.steering, scale, frames.delay), batch.theta_min,
            batch.theta_max, p.range_min_m, p.range_max_m, p.window_half_range, owner="training_window")
    else:
        peak = MapPeak.of(sector_peak(search, RangeProjectedFrames(frames.combine(gain_np)), batch.theta_min,
                                      batch.theta_max, p.range_min_m, p.range_max_m, owner="training_window"))
        noise_cols, delay_cols = synthesise_columns(frames.noise, frames.delay,
                                                    window_synthesis(basis.v, peak.j_hat, p.window_half_range))
    return frames.echo(), delay_cols, noise_cols, peak


def _device_window_factors(batch, gain_np: np.ndarray, search: AngleDelaySearch, basis: ProjectedBasis,
                           params: SystemParams, dev: torch.device):
    """`_window_factors` for frames made on the training device: ``C = gain signal + noise`` formed
    there, the map kernel reading it in place (on cuda), the window's columns synthesised there."""
    p, frames = params, batch.frames
    steering = torch.as_tensor(frames.steering, device=dev)
    delay = torch.as_tensor(frames.delay, device=dev)
    scale = torch.as_tensor((frames.amplitude * gain_np).astype(np.complex64), device=dev)
    combined = ((steering * scale[:, None])[:, :, None] * delay[:, None, :] + batch.device_noise).contiguous()
    peak = MapPeak.of(sector_peak(search, RangeProjectedFrames(combined if dev.type == "cuda" else combined.numpy()),
                                  batch.theta_min, batch.theta_max, p.range_min_m, p.range_max_m,
                                  owner="training_window"))
    synth = torch.as_tensor(window_synthesis(basis.v, peak.j_hat, p.window_half_range), device=dev)  # (B, r, C)
    echo = torch.as_tensor(frames.echo(), device=dev)
    return echo, (delay[:, None, :] @ synth)[:, 0], batch.device_noise @ synth, peak


def projected_peak(projected: np.ndarray, sectors: np.ndarray, search: AngleDelaySearch) -> MapPeak:
    """The sector arg-max (eq. 16) of range-projected frames `projected` (B, K, r) with sectors
    (B, 4) ``(theta_min, theta_max, r_min, r_max)``, searched with `search`."""
    return MapPeak.of(sector_peak(search, RangeProjectedFrames(projected), sectors[:, 0], sectors[:, 1], sectors[:, 2],
                                  sectors[:, 3], owner="projected_window"))


def projected_window(projected: np.ndarray, sectors: np.ndarray, search: AngleDelaySearch, grid_a: torch.Tensor,
                     basis: ProjectedBasis, params: SystemParams) -> Window:
    """The window of range-projected frames `projected` ``Y~ G`` (B, K, r) with sectors (B, 4)
    ``(theta_min, theta_max, r_min, r_max)``; the peak searched with `search` (recreated for the
    learner's ``d``, on the cpu), the window formed from `grid_a` (`differentiable.grid_steering`
    of the same ``d``), on the CPU."""
    peak = projected_peak(projected, sectors, search)
    rows, cols, row_valid, col_valid = window_indices(peak.i_hat, peak.j_hat, params)
    valid = torch.as_tensor(row_valid[:, :, None] & col_valid[:, None, :])
    z = projected @ basis.v[:, cols].transpose(1, 0, 2).astype(np.complex64)  # Y~ Phi_d^*[:, cols]
    values = diff.window_map(torch.as_tensor(z), torch.as_tensor(rows), grid_a)
    return Window(values, valid, torch.as_tensor(rows), torch.as_tensor(cols), peak)
