"""The training data: one batch of range-projected frames per iteration (Sec. V-A), one random
sector per frame, from one seeded generator; the next iteration's batch drawn ahead on a
background thread, with the numbers of drawing in order.

A batch depends on the generator and the iteration only, never on ``d``: drawing it while the
step's precoders, map and backward run changes no number.  A batch drawn ahead and then not
used (a checkpoint, a batch asked for out of turn) rewinds the generator to where it was
before it (`BatchSource.cancel_ahead`).
"""

from __future__ import annotations

import functools
import os
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np
import torch

from ..dsp.blas_threads import one_blas_thread
from ..dsp.scenario import training_sectors
from ..params import SystemParams
from ..sim.montecarlo import ProjectedBasis, ProjectedFrames, draw_frame_factors, draw_projected_frames
from .config import TrainConfig
from .noise import device_noise


@dataclass
class TrainingBatch:
    """Projected frames of one iteration; `labels` (theta, range) exist only for labelled data."""

    frames: ProjectedFrames
    theta_min: np.ndarray
    theta_max: np.ndarray
    labels: dict | None
    device_noise: torch.Tensor | None = None  # (B, K, r) on the training device when frames are made there


@dataclass
class DrawAhead:
    """A batch drawn ahead for `iteration`, and the generator's state before it."""

    iteration: int
    rng_state: dict
    future: Future


@functools.cache
def _draw_pool(pid: int) -> ThreadPoolExecutor:
    """The thread that draws batches ahead, one per process (`pid`: a forked child gets its own)."""
    return ThreadPoolExecutor(1, thread_name_prefix="isac-train-draw")


class BatchSource:
    """The batches of a training run: frames through the true array (the simulated hardware),
    drawn from ``default_rng(config.seed)``; `device`: the torch device frames are made on
    when `TrainConfig.frames_on_device`."""

    def __init__(self, params: SystemParams, true_array, config: TrainConfig, basis: ProjectedBasis,
                 device: torch.device):
        self.params = params
        self.true_array = true_array
        self.config = config
        self.basis = basis
        self.device = device
        self.rng = np.random.default_rng(config.seed)
        self.ahead: DrawAhead | None = None  # the next iteration's batch, being drawn (`next_batch`)

    def max_center_deg(self, iteration: int) -> float | None:
        """The sector curriculum: sector centres are drawn from U[-m, m], m (degrees) growing linearly
        from `curriculum_start_deg` to the widest training centre over the run (None: no curriculum)."""
        if not self.config.curriculum:
            return None
        hi = max(abs(v) for v in self.params.train_center_deg)
        fraction = iteration / max(self.config.iterations - 1, 1)
        return self.config.curriculum_start_deg + (hi - self.config.curriculum_start_deg) * fraction

    def draw(self, iteration: int) -> TrainingBatch:
        """A batch for `iteration` from `rng` (labels included), on one BLAS thread: the same
        bits on the step's thread or the background one, whatever the load (`one_blas_thread`)."""
        with one_blas_thread():
            return self._draw_unlimited(iteration)

    def _draw_unlimited(self, iteration: int) -> TrainingBatch:
        p, cfg = self.params, self.config
        theta_min, theta_max = training_sectors(self.rng, p, cfg.batch_size, self.max_center_deg(iteration))
        noise = None
        if cfg.frames_on_device:
            frames, seed = draw_frame_factors(self.rng, p, self.true_array, self.basis, theta_min, theta_max,
                                              cfg.batch_size)
            noise = device_noise(seed, (cfg.batch_size, p.n_antennas, self.basis.rank), p.noise_power,
                                 self.basis.sigma, self.device)
        else:
            frames = draw_projected_frames(self.rng, p, self.true_array, self.basis, theta_min, theta_max,
                                           cfg.batch_size)
        labels = {"theta": frames.theta, "range": frames.ranges}
        return TrainingBatch(frames, theta_min, theta_max, labels, noise)

    def draw_batch(self, iteration: int, labelled: bool) -> TrainingBatch:
        """The batch of `iteration`, drawn now (a batch drawn ahead is forgotten first)."""
        self.cancel_ahead()
        batch = self.draw(iteration)
        return batch if labelled else replace(batch, labels=None)

    def next_batch(self, iteration: int, labelled: bool) -> TrainingBatch:
        """The batch of `iteration` (the one drawn ahead when it is that one), then the next
        iteration's drawn ahead on the background thread.

        The draw (about a fifth of a step's host work) runs beside the step (on 2 cores the
        step's minimum went from 77 to 71 ms: the cores are mostly busy already).  Frames made
        on a torch device (`TrainConfig.frames`) are drawn in the step: there only small factors
        are drawn on the host.
        """
        ahead = self.ahead
        if ahead is not None and ahead.iteration == iteration:
            self.ahead = None
            batch = ahead.future.result()
        else:
            self.cancel_ahead()
            batch = self.draw(iteration)
        if not self.config.frames_on_device and iteration + 1 < self.config.iterations:
            self.ahead = DrawAhead(iteration + 1, self.rng.bit_generator.state,
                                   _draw_pool(os.getpid()).submit(self.draw, iteration + 1))
        return batch if labelled else replace(batch, labels=None)

    def cancel_ahead(self) -> None:
        """Forget the batch drawn ahead (if any): the generator goes back to where it was before it."""
        ahead, self.ahead = self.ahead, None
        if ahead is not None:
            ahead.future.exception()  # wait for it; its error, if any, is the next draw's too
            self.rng.bit_generator.state = ahead.rng_state

    def rng_state(self) -> dict:
        """The generator's state as if nothing had been drawn ahead (what a checkpoint keeps)."""
        return self.ahead.rng_state if self.ahead is not None else self.rng.bit_generator.state

    def restore(self, rng_state: dict) -> None:
        """Go on from a checkpoint's generator state (`rng_state`)."""
        self.cancel_ahead()
        self.rng.bit_generator.state = rng_state
