"""Learning the antenna spacing ``d`` end to end (Sec. IV): SL, UL and their sequences.

One training iteration (batch B, one random sector per frame, Sec. V-A):

1. precoders ``f(d)`` for every frame's sector, in torch (eq. 5-6);
2. frames with a target through the TRUE array; only the scalar gain
   ``g = a_tx(theta)^T f(d)`` carries the gradient into the transmitter (DESIGN §5);
3. the arg-max of the sector map with the current ``d`` from the Numba kernel (eq. 16);
4. the window around it recomputed in torch with gradient through ``d`` (eq. 15, 17);
5. the supervised loss (eq. 20, needs label tags) or the unsupervised one (eq. 21);
6. an Adam step on ``d``.

The next iteration's batch (step 2's frames, which do not depend on ``d``) is drawn on a
background thread while the current step runs (`Trainer._step_batch`); the numbers are
those of drawing in order.

Schedules: ``sl``, ``ul``, ``sl+ul`` and ``ul+sl`` with a labelled-data ratio (SL
iterations / total iterations).  A sector curriculum (beyond the paper) widens the
training sectors' centres from broadside to ``train_center_deg`` over the run.
"""

from __future__ import annotations

import copy
import functools
import math
import os
import pickle
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch

from ..dsp.angle_delay import synthesise_columns, window_synthesis
from ..dsp.blas_threads import one_blas_thread
from ..dsp.impairments import ArrayImpairments, check_array, impairment_errors, parse_kinds, spacing_of
from ..dsp.mbml import mbml_peak_factored, mbml_peak_projected, window_indices
from ..dsp.scenario import training_sectors
from ..dsp.steering import array_gain
from ..errors import ConfigError, TrainingError
from ..params import SystemParams
from ..safeio import InputFileError, atomic_write, check_zip
from ..sim.evaluation import evaluate_spacing
from ..sim.montecarlo import ProjectedBasis, ProjectedFrames, draw_frame_factors, draw_projected_frames
from ..validation import is_integer, is_real
from . import differentiable as diff
from .model import SpacingModel
from .noise import device_noise

SCHEDULES = ("sl", "ul", "sl+ul", "ul+sl")


@dataclass
class TrainConfig:
    """Hyper-parameters of a training run.

    `lr` is Adam's step in metres of spacing (the paper's unit: 4e-7 for SL, 5e-7 for
    UL at batch 3000); the model is parametrised relative to lambda/2, which is
    equivalent for Adam and better conditioned.
    """

    schedule: str = "ul"
    iterations: int = 1000
    labeled_ratio: float | None = None  # SL share of the iterations for sl+ul / ul+sl
    batch_size: int = 256
    lr: float = 6.25e-6
    lr_decay: float = 1.0  # multiply the learning rate by this ...
    lr_decay_at: float = 1.0  # ... after this fraction of the iterations (paper SL: 0.1 after 50k of 85k)
    curriculum: bool = False
    curriculum_start_deg: float = 0.0  # centre range at the first iteration (U[-m, m])
    eval_at: tuple[int, ...] = ()
    eval_frames: int = 10000  # per hypothesis
    eval_seed: int = 12345
    seed: int = 0
    checkpoint: str | None = None
    checkpoint_every: int = 100
    max_loss_growth: float = 1e6  # stop when |loss| exceeds this multiple of the first loss
    progress: bool = True
    # "cpu", or "cuda": the torch parts (d, precoders, window, loss, Adam) and the map kernel's
    # arg-max run on the CUDA device.
    device: str = "cpu"
    # Where the frames' noise is drawn and the frames formed: "host" (numpy, the fused CPU kernel
    # forms them), "device" (torch on `device`; only the targets' small factors cross to it), or
    # "auto": "device" on cuda, "host" on cpu.
    frames: str = "auto"
    # What the model learns (dsp.impairments): the spacing always; "gain" and "coupling" add the
    # per-element complex gains and coupling_band coupling coefficients.
    impairments: tuple[str, ...] = ("spacing",)
    coupling_band: int = 2

    def __post_init__(self) -> None:
        def rule(ok: bool, name: str, text: str) -> None:
            if not ok:
                raise ConfigError(f"TrainConfig.{name} = {getattr(self, name)!r}: {text}")

        rule(self.schedule in SCHEDULES, "schedule", f"must be one of {SCHEDULES}")
        rule(is_integer(self.iterations) and self.iterations >= 0, "iterations", "must be an integer >= 0")
        rule(is_integer(self.batch_size) and self.batch_size >= 1, "batch_size", "must be an integer >= 1")
        if self.schedule in ("sl+ul", "ul+sl"):
            rule(is_real(self.labeled_ratio) and 0.0 <= self.labeled_ratio <= 1.0, "labeled_ratio",
                 f"schedule {self.schedule!r} needs a ratio in [0, 1]")
        rule(is_real(self.lr) and 0 < self.lr < math.inf, "lr", "must be > 0 and finite (metres per Adam step)")
        rule(is_real(self.lr_decay) and 0 < self.lr_decay < math.inf, "lr_decay", "must be > 0 and finite")
        rule(is_real(self.lr_decay_at) and 0.0 <= self.lr_decay_at <= 1.0, "lr_decay_at",
             "must lie in [0, 1] (a fraction of the iterations)")
        rule(is_real(self.curriculum_start_deg) and 0.0 <= self.curriculum_start_deg <= 90.0, "curriculum_start_deg",
             "must lie in [0, 90] degrees")
        rule(all(is_integer(i) and 0 <= i <= self.iterations for i in self.eval_at), "eval_at",
             f"needs integer iterations in [0, iterations = {self.iterations}]")
        rule(is_integer(self.eval_frames) and self.eval_frames >= 1, "eval_frames", "must be an integer >= 1")
        rule(is_integer(self.checkpoint_every) and self.checkpoint_every >= 1, "checkpoint_every",
             "must be an integer >= 1")
        rule(is_real(self.max_loss_growth) and self.max_loss_growth > 0, "max_loss_growth", "must be > 0")
        rule(is_integer(self.seed) and self.seed >= 0, "seed", "must be an integer >= 0")
        rule(is_integer(self.eval_seed) and self.eval_seed >= 0, "eval_seed", "must be an integer >= 0")
        rule(self.device in ("cpu", "cuda"), "device", "must be 'cpu' or 'cuda'")
        rule(self.frames in ("auto", "host", "device"), "frames", "must be 'auto', 'host' or 'device'")
        try:
            self.impairments = parse_kinds(self.impairments)
        except ConfigError as exc:
            raise ConfigError(f"TrainConfig.impairments = {self.impairments!r}: {exc}") from None
        rule(is_integer(self.coupling_band) and self.coupling_band >= 1, "coupling_band", "must be an integer >= 1")

    @property
    def frames_on_device(self) -> bool:
        """True when training frames are drawn and formed by torch on `device` (see `frames`)."""
        return self.frames == "device" or (self.frames == "auto" and self.device == "cuda")

    @property
    def sl_iterations(self) -> int:
        """Iterations with the supervised loss (the labelled data)."""
        if self.schedule == "sl":
            return self.iterations
        if self.schedule == "ul":
            return 0
        return int(round(self.labeled_ratio * self.iterations))

    def loss_at(self, iteration: int) -> str:
        """``"sl"`` or ``"ul"`` for 0-based `iteration`."""
        n_sl = self.sl_iterations
        if self.schedule == "ul+sl":
            return "ul" if iteration < self.iterations - n_sl else "sl"
        return "sl" if iteration < n_sl else "ul"


@dataclass
class TrainingBatch:
    """Projected frames of one iteration; `labels` (theta, range) exist only for labelled data."""

    frames: ProjectedFrames
    theta_min: np.ndarray
    theta_max: np.ndarray
    labels: dict | None
    device_noise: torch.Tensor | None = None  # (B, K, r) on the training device when frames are made there


@dataclass
class _DrawAhead:
    """A batch drawn ahead for `iteration`, and the generator's state before it."""

    iteration: int
    rng_state: dict
    future: Future


@functools.cache
def _draw_pool(pid: int) -> ThreadPoolExecutor:
    """The thread that draws batches ahead, one per process (`pid`: a forked child gets its own)."""
    return ThreadPoolExecutor(1, thread_name_prefix="isac-train-draw")


@dataclass
class TrainResult:
    spacing: np.ndarray
    history: list[dict] = field(default_factory=list)
    evaluations: list[dict] = field(default_factory=list)
    wall_s: float = 0.0
    labeled_frames: int = 0
    config: dict = field(default_factory=dict)
    array: object = None  # the learned array: `spacing`, or an ArrayImpairments with gains / coupling


class Trainer:
    """Trains a `SpacingModel` against a true array (the simulated hardware)."""

    def __init__(self, params: SystemParams, true_spacing, config: TrainConfig, init_spacing=None):
        self.params = params
        # the simulated hardware: a spacing vector, or an ArrayImpairments with gains and coupling
        self.true_array = check_array(true_spacing, params.n_antennas, "true_spacing", ordered=True)
        self.true_spacing = spacing_of(self.true_array)
        if params.n_angle_grid < params.n_antennas:
            raise ConfigError(f"SystemParams.n_angle_grid = {params.n_angle_grid}: the learner's LS precoder "
                              f"solves the normal equations of the angle grid, which needs n_angle_grid >= "
                              f"n_antennas (= {params.n_antennas})")
        self.config = config
        self.device = _torch_device(config.device)
        self.model = SpacingModel(params, init_spacing, kinds=config.impairments,
                                  coupling_band=config.coupling_band).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr / self.model.scale)
        self.basis = ProjectedBasis.for_params(params)
        self.rng = np.random.default_rng(config.seed)
        self.iteration = 0
        self.history: list[dict] = []
        self.evaluations: list[dict] = []
        self._first_loss: float | None = None
        self._labeled_frames = 0
        self._wall_s = 0.0
        self._ahead: _DrawAhead | None = None  # the next iteration's batch, being drawn (`_step_batch`)

    # ------------------------------------------------------------------ data
    def _max_center_deg(self, iteration: int) -> float | None:
        if not self.config.curriculum:
            return None
        hi = max(abs(v) for v in self.params.train_center_deg)
        fraction = iteration / max(self.config.iterations - 1, 1)
        return self.config.curriculum_start_deg + (hi - self.config.curriculum_start_deg) * fraction

    def draw_batch(self, labelled: bool) -> TrainingBatch:
        """The next batch of the data generator (for this iteration's curriculum)."""
        self._cancel_ahead()
        batch = self._draw(self.iteration)
        return batch if labelled else replace(batch, labels=None)

    def _draw(self, iteration: int) -> TrainingBatch:
        """A batch for `iteration` from `self.rng` (labels included), on one BLAS thread: the same
        bits on the step's thread or the background one, whatever the load (`one_blas_thread`)."""
        with one_blas_thread():
            return self._draw_unlimited(iteration)

    def _draw_unlimited(self, iteration: int) -> TrainingBatch:
        p = self.params
        theta_min, theta_max = training_sectors(self.rng, p, self.config.batch_size, self._max_center_deg(iteration))
        noise = None
        if self.config.frames_on_device:
            frames, seed = draw_frame_factors(self.rng, p, self.true_array, self.basis, theta_min, theta_max,
                                              self.config.batch_size)
            noise = device_noise(seed, (self.config.batch_size, p.n_antennas, self.basis.rank), p.noise_power,
                                 self.basis.sigma, self.device)
        else:
            frames = draw_projected_frames(self.rng, p, self.true_array, self.basis, theta_min, theta_max,
                                           self.config.batch_size)
        labels = {"theta": frames.theta, "range": frames.ranges}
        return TrainingBatch(frames, theta_min, theta_max, labels, noise)

    def _step_batch(self, labelled: bool) -> TrainingBatch:
        """This iteration's batch, then the next iteration's drawn ahead on a background thread.

        A batch depends on the data generator and the iteration only, never on ``d``, so
        drawing it while this step's precoders, map and backward run changes no number; the
        draw (about a fifth of a step's host work) runs beside them (on 2 cores the step's
        minimum went from 77 to 71 ms: the cores are mostly busy already).
        Checkpoints keep the generator as it was before the batch drawn ahead.  Frames made on
        a torch device (`TrainConfig.frames`) are drawn in the step: there only small factors
        are drawn on the host.
        """
        ahead = self._ahead
        if ahead is not None and ahead.iteration == self.iteration:
            self._ahead = None
            batch = ahead.future.result()
        else:
            self._cancel_ahead()
            batch = self._draw(self.iteration)
        if not self.config.frames_on_device and self.iteration + 1 < self.config.iterations:
            self._ahead = _DrawAhead(self.iteration + 1, self.rng.bit_generator.state,
                                     _draw_pool(os.getpid()).submit(self._draw, self.iteration + 1))
        return batch if labelled else replace(batch, labels=None)

    def _cancel_ahead(self) -> None:
        """Forget the batch drawn ahead (if any): the generator goes back to where it was before it."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            ahead.future.exception()  # wait for it; its error, if any, is the next draw's too
            self.rng.bit_generator.state = ahead.rng_state

    def _rng_state(self) -> dict:
        """The data generator's state as if nothing had been drawn ahead."""
        return self._ahead.rng_state if self._ahead is not None else self.rng.bit_generator.state

    # ------------------------------------------------------------------ step
    def loss(self, batch: TrainingBatch, kind: str) -> torch.Tensor:
        """The eq.-20 (``kind="sl"``) or eq.-21 (``"ul"``) loss of one batch, differentiable in ``d``."""
        p = self.params
        grid_tx = self.model.grid_rows()  # a_pert(theta_n; model)^T on the grid
        grid_a = self.model.receiver_rows(grid_tx)
        precoders = diff.ls_precoder(grid_tx, batch.theta_min, batch.theta_max, p)
        dev = self.device
        true_tx = torch.as_tensor(batch.frames.steering).to(dev, torch.complex128)  # a_tx = a_rx (monostatic)
        gain = array_gain(true_tx, precoders)  # a_tx(theta)^T f(d)
        frames = batch.frames
        echo, delay_cols, noise_cols, rows, cols, row_valid, col_valid = self._window_data(frames, batch, gain)
        window = diff.factored_window_map(gain, *(torch.as_tensor(x).to(dev) for x in (echo, delay_cols, noise_cols)),
                                          torch.as_tensor(rows).to(dev), grid_a)
        valid = torch.as_tensor(row_valid[:, :, None] & col_valid[:, None, :]).to(dev)
        rows_t, cols_t = torch.as_tensor(rows).to(dev), torch.as_tensor(cols).to(dev)
        if kind == "ul":
            return diff.unsupervised_loss(window, valid)
        if batch.labels is None:
            raise TrainingError("the supervised loss needs labelled frames (theta and range tags); this batch has none")
        theta_hat, range_hat = diff.soft_estimate(window, valid, rows_t, cols_t, p)
        return diff.supervised_loss(theta_hat, range_hat, torch.as_tensor(batch.labels["theta"]).to(dev),
                                    torch.as_tensor(batch.labels["range"]).to(dev))

    def _window_data(self, frames: ProjectedFrames, batch: TrainingBatch, gain: torch.Tensor):
        """The arg-max of the sector map (eq. 16, no gradient) and the window's range-projected
        data ``gain echo delay_cols^T + noise_cols`` as its factors: the echo ``amplitude a_rx``
        (B, K), its range columns (B, C) and the noise's (B, K, C); then the window's indices."""
        p = self.params
        gain_np, spacing_np = gain.detach().cpu().numpy(), self.model.array_numpy()
        if batch.device_noise is not None:
            return self._device_window_data(frames, batch, gain_np, spacing_np)
        if self.config.device == "cpu":  # frames formed inside the map kernel; the window columns after it
            scale = (frames.amplitude * gain_np).astype(np.complex64)
            peak, noise_cols, delay_cols = mbml_peak_factored(
                frames.noise, frames.steering, scale, frames.delay, batch.theta_min, batch.theta_max, p.range_min_m,
                p.range_max_m, spacing_np, p, window_cols=p.window_half_range)
        else:
            peak = mbml_peak_projected(frames.combine(gain_np), batch.theta_min, batch.theta_max, p.range_min_m,
                                       p.range_max_m, spacing_np, p, device=self.config.device)
        rows, cols, row_valid, col_valid = window_indices(peak.i_hat, peak.j_hat, p)
        if self.config.device != "cpu":
            noise_cols, delay_cols = synthesise_columns(frames.noise, frames.delay,
                                                        window_synthesis(self.basis.v, peak.j_hat, p.window_half_range))
        return frames.echo(), delay_cols, noise_cols, rows, cols, row_valid, col_valid

    def _device_window_data(self, frames: ProjectedFrames, batch: TrainingBatch, gain_np, spacing_np):
        """`_window_data` for frames made on the training device: ``C = gain signal + noise`` formed
        there, the map kernel reading it in place (on cuda), the window's columns synthesised there."""
        p, dev = self.params, self.device
        steering = torch.as_tensor(frames.steering, device=dev)
        delay = torch.as_tensor(frames.delay, device=dev)
        scale = torch.as_tensor((frames.amplitude * gain_np).astype(np.complex64), device=dev)
        combined = ((steering * scale[:, None])[:, :, None] * delay[:, None, :] + batch.device_noise).contiguous()
        peak = mbml_peak_projected(combined if self.config.device == "cuda" else combined.numpy(), batch.theta_min,
                                   batch.theta_max, p.range_min_m, p.range_max_m, spacing_np, p,
                                   device=self.config.device)
        rows, cols, row_valid, col_valid = window_indices(peak.i_hat, peak.j_hat, p)
        synth = torch.as_tensor(window_synthesis(self.basis.v, peak.j_hat, p.window_half_range), device=dev)  # (B,r,C)
        echo = torch.as_tensor(frames.echo(), device=dev)
        return (echo, (delay[:, None, :] @ synth)[:, 0], batch.device_noise @ synth, rows, cols, row_valid,
                col_valid)

    def step(self) -> dict:
        kind = self.config.loss_at(self.iteration)
        # numpy's products here are small; on more BLAS threads they would leave those threads
        # spinning on the cores the map kernel is about to use (`blas_threads.one_blas_thread`)
        with one_blas_thread():
            batch = self._step_batch(labelled=(kind == "sl"))
            self.optimizer.zero_grad(set_to_none=True)
            loss = self.loss(batch, kind)
            value = float(loss.detach())
            self._guard(value, kind)
            loss.backward()
            self.optimizer.step()
        self._apply_lr_schedule()
        self._check_spacing()
        if kind == "sl":
            self._labeled_frames += self.config.batch_size
        self.iteration += 1
        record = {"iteration": self.iteration, "loss": value, "kind": kind}
        self.history.append(record)
        return record

    def _guard(self, value: float, kind: str) -> None:
        if not math.isfinite(value):
            raise TrainingError(f"training diverged at iteration {self.iteration}: {kind} loss is {value}; "
                                f"the last good checkpoint is kept ({self.config.checkpoint or 'none written'}); "
                                f"try a smaller lr than {self.config.lr}")
        if self._first_loss is None or self.history and self.history[-1]["kind"] != kind:
            self._first_loss = abs(value) or 1.0
        elif abs(value) > self.config.max_loss_growth * self._first_loss:
            raise TrainingError(f"training diverged at iteration {self.iteration}: |{kind} loss| = {abs(value):.3g} "
                                f"grew beyond {self.config.max_loss_growth:g} x its start; lower lr ({self.config.lr})")

    def _check_spacing(self) -> None:
        spacing = self.model.spacing_numpy()
        if not (np.all(np.isfinite(spacing)) and np.all(spacing > 0)):
            raise TrainingError(f"training diverged at iteration {self.iteration + 1}: the learned spacing has "
                                f"non-positive or non-finite entries; lower lr ({self.config.lr})")

    def _lr_at(self, iteration: int) -> float:
        """Adam's step (in the model's units) after `iteration` completed iterations."""
        cfg = self.config
        lr = cfg.lr / self.model.scale
        return lr * cfg.lr_decay if iteration >= int(round(cfg.lr_decay_at * cfg.iterations)) else lr

    def _apply_lr_schedule(self) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = self._lr_at(self.iteration + 1)

    # ------------------------------------------------------------------ run
    def evaluate(self) -> dict:
        array = self.model.array_numpy()
        report = evaluate_spacing(self.params, self.true_array, array, self.config.eval_frames,
                                  seed=self.config.eval_seed, device=self.config.device)
        record = {"iteration": self.iteration, "pmd": report.pmd, "pmd_ci": report.pmd_ci,
                  "rmse_position": report.rmse_position, "labeled_frames": self._labeled_frames,
                  **impairment_errors(array, self.true_array)}
        self.evaluations.append(record)
        return record

    def run(self, until: int | None = None) -> TrainResult:
        """Train up to iteration `until` (default: the configured number); callable again to go on."""
        cfg = self.config
        stop_at = cfg.iterations if until is None else min(int(until), cfg.iterations)
        start = time.perf_counter()
        eval_at = set(cfg.eval_at)
        if self.iteration in eval_at and not any(e["iteration"] == self.iteration for e in self.evaluations):
            self.evaluate()
        while self.iteration < stop_at:
            self.step()
            if self.iteration in eval_at:
                self.evaluate()
            if cfg.checkpoint and (self.iteration % cfg.checkpoint_every == 0 or self.iteration == cfg.iterations):
                self.save_checkpoint(cfg.checkpoint)
            if cfg.progress:
                _progress_bar(self.iteration, cfg.iterations, self.history[-1], start)
        if cfg.progress and cfg.iterations and sys.stderr.isatty():
            print(file=sys.stderr)
        self._wall_s += time.perf_counter() - start
        return TrainResult(self.model.spacing_numpy(), list(self.history), list(self.evaluations), self._wall_s,
                           self._labeled_frames, asdict(cfg), self.model.array_numpy())

    # ------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict:
        """Everything a resumed run needs to continue exactly: d, Adam, the data RNG, history."""
        return {"iteration": self.iteration, "model": {k: v.clone() for k, v in self.model.state_dict().items()},
                "optimizer": copy.deepcopy(self.optimizer.state_dict()), "rng": self._rng_state(),
                "history": list(self.history), "evaluations": list(self.evaluations),
                "labeled_frames": self._labeled_frames, "first_loss": self._first_loss, "wall_s": self._wall_s,
                "config": asdict(self.config), "params": self.params.to_dict(),
                "true_spacing": torch.from_numpy(self.true_spacing.copy()), **self._true_impairments()}

    def _true_impairments(self) -> dict:
        """The true array's gains and coupling as checkpoint entries (none for a spacing vector)."""
        array = self.true_array
        if not isinstance(array, ArrayImpairments):
            return {}
        return {f"true_{kind}": torch.from_numpy(np.array(getattr(array, kind)))
                for kind in ("gain", "coupling") if getattr(array, kind) is not None}

    def check_state(self, state, source: str = "checkpoint") -> None:
        """Refuse a state that is not a checkpoint of this run: keys missing, or another K,
        system configuration, true array, schedule, seed or training configuration."""
        if not isinstance(state, dict):
            raise TrainingError(f"{source}: not a training checkpoint (holds {type(state).__name__})")
        missing = [key for key in CHECKPOINT_KEYS if key not in state]
        if missing:
            raise TrainingError(f"{source}: not a training checkpoint of this version; keys {missing} are missing")
        saved_params, params = _plain(state["params"]), _plain(self.params.to_dict())
        differ = [k for k in params if saved_params.get(k) != params[k]]
        if differ:
            k = differ[0]
            raise TrainingError(f"{source}: written for another system configuration: {k} = {saved_params.get(k)!r} "
                                f"there, {params[k]!r} in this run (fields that differ: {differ})")
        saved, config = _plain(state["config"]), _plain(asdict(self.config))
        defaults = _plain(asdict(TrainConfig()))  # a field newer than the checkpoint had its default there
        differ = [k for k in RESUME_MUST_MATCH if saved.get(k, defaults[k]) != config[k]]
        if differ:
            raise TrainingError(f"{source}: written by another run: "
                                + ", ".join(f"{k} = {saved.get(k)!r} there, {config[k]!r} here" for k in differ))
        same = np.array_equal(np.asarray(state["true_spacing"]), self.true_spacing)
        here = self._true_impairments()
        there = {k: v for k, v in state.items() if k in ("true_gain", "true_coupling")}
        same = same and here.keys() == there.keys() and all(np.array_equal(np.asarray(there[k]), here[k].numpy())
                                                            for k in here)
        if not same:
            raise TrainingError(f"{source}: written for another true array (--true-spacing / --seed differ)")

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        for group in self.optimizer.param_groups:  # the schedule in force comes from this run's config
            group["lr"] = self._lr_at(state["iteration"])
        self._cancel_ahead()
        self.rng.bit_generator.state = state["rng"]
        self.iteration = state["iteration"]
        self.history = list(state["history"])
        self.evaluations = list(state["evaluations"])
        self._labeled_frames = state["labeled_frames"]
        self._first_loss = state["first_loss"]
        self._wall_s = state.get("wall_s", 0.0)

    def save_checkpoint(self, path) -> None:
        """Write the state atomically (a run killed while writing keeps the last good checkpoint)."""
        state = self.state_dict()
        atomic_write(path, lambda f: torch.save(state, f), "checkpoint")

    def load_checkpoint(self, path) -> None:
        """Resume from a checkpoint written by `save_checkpoint`."""
        try:  # sizes and members checked first; tensors and plain types only: a checkpoint from elsewhere
            check_zip(path, "checkpoint")  # cannot run code on load
            state = torch.load(path, weights_only=True, map_location=self.device)
        except InputFileError as exc:
            raise TrainingError(f"cannot read {exc}") from None
        except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as exc:
            raise TrainingError(f"cannot read checkpoint {path}: {str(exc).splitlines()[0]}") from None
        self.check_state(state, f"checkpoint {path}")
        self.load_state_dict(state)


#: What a checkpoint holds (`Trainer.state_dict`).
CHECKPOINT_KEYS = ("iteration", "model", "optimizer", "rng", "history", "evaluations", "labeled_frames",
                   "first_loss", "config", "params", "true_spacing")
#: The `TrainConfig` fields a resumed run must share with the run that wrote the checkpoint.
RESUME_MUST_MATCH = ("schedule", "iterations", "labeled_ratio", "batch_size", "lr", "lr_decay", "lr_decay_at",
                     "curriculum", "curriculum_start_deg", "eval_at", "eval_frames", "eval_seed", "seed",
                     "max_loss_growth", "impairments", "coupling_band")


def _plain(value):
    """Tuples as lists, recursively (a configuration read back compares equal to the one written)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _torch_device(device: str) -> torch.device:
    """The torch device of `TrainConfig.device`; "cuda" needs CUDA in torch and in Numba (the map kernel)."""
    if device == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("TrainConfig.device = 'cuda': no CUDA device: torch.cuda.is_available() is False "
                              "(a CPU build of torch, or no GPU)")
        from ..dsp.angle_delay_cuda import check_device

        check_device(device, "TrainConfig")
    return torch.device(device)


def _progress_bar(done: int, total: int, record: dict, start: float) -> None:
    """A bar rewritten in place on a terminal; a plain line per 10 % of the run otherwise (a log file)."""
    width = 30
    filled = int(width * done / max(total, 1))
    elapsed = time.perf_counter() - start
    eta = elapsed / max(done, 1) * (total - done)
    text = (f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {record['kind']} loss {record['loss']:.4g} "
            f"{elapsed:.0f}s (eta {eta:.0f}s)")
    if sys.stderr.isatty():
        print(f"\r{text}", end="", file=sys.stderr, flush=True)
    elif done == total or done * 10 // max(total, 1) > (done - 1) * 10 // max(total, 1):
        print(text, file=sys.stderr, flush=True)
