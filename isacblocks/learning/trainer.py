"""Learning the antenna spacing ``d`` end to end (Sec. IV): SL, UL and their sequences.

One training iteration (batch B, one random sector per frame, Sec. V-A):

1. precoders ``f(d)`` for every frame's sector, in torch (eq. 5-6);
2. frames with a target through the TRUE array (`batches`); only the scalar gain
   ``g = a_tx(theta)^T f(d)`` carries the gradient into the transmitter (DESIGN §5);
3. the arg-max of the sector map with the current ``d`` from the Numba kernel (eq. 16);
4. the window around it recomputed in torch with gradient through ``d`` (eq. 15, 17; `window`);
5. the supervised loss (eq. 20, needs label tags) or the unsupervised one (eq. 21);
6. an Adam step on ``d``.

The next iteration's batch (step 2's frames, which do not depend on ``d``) is drawn on a
background thread while the current step runs (`batches.BatchSource.next_batch`); the
numbers are those of drawing in order.

Schedules: ``sl``, ``ul``, ``sl+ul`` and ``ul+sl`` with a labelled-data ratio (SL
iterations / total iterations; `config.TrainConfig`).  A sector curriculum (beyond the
paper) widens the training sectors' centres from broadside to ``train_center_deg`` over
the run.  Checkpoints: `checkpoint`.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from ..dsp.blas_threads import one_blas_thread
from ..dsp.impairments import check_array, impairment_errors, spacing_of
from ..dsp.steering import array_gain
from ..errors import ConfigError, TrainingError
from ..params import SystemParams
from ..sim.evaluation import evaluate_spacing
from ..sim.montecarlo import ProjectedBasis
from . import checkpoint
from . import differentiable as diff
from .batches import BatchSource, TrainingBatch
from .config import TrainConfig
from .model import SpacingModel
from .progress import end_progress, show_progress
from .window import learner_search, training_window


@dataclass
class TrainResult:
    """What `Trainer.run` returns: the learned spacing (and `array`), the loss history, the
    evaluations along the run, the training time and the labelled frames used."""

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
        self.search = learner_search(self.model.array_numpy(), params, self.device.type, "Trainer")
        self.batches = BatchSource(params, self.true_array, config, self.basis, self.device)
        self.iteration = 0
        self.history: list[dict] = []
        self.evaluations: list[dict] = []
        self._first_loss: float | None = None
        self._labeled_frames = 0
        self._wall_s = 0.0

    # ------------------------------------------------------------------ step
    def draw_batch(self, labelled: bool) -> TrainingBatch:
        """This iteration's batch, drawn now (for this iteration's curriculum)."""
        return self.batches.draw_batch(self.iteration, labelled)

    def loss(self, batch: TrainingBatch, kind: str) -> torch.Tensor:
        """The eq.-20 (``kind="sl"``) or eq.-21 (``"ul"``) loss of one batch, differentiable in ``d``."""
        p = self.params
        grid_tx = self.model.grid_rows()  # a_pert(theta_n; model)^T on the grid
        grid_a = self.model.receiver_rows(grid_tx)
        precoders = diff.ls_precoder(grid_tx, batch.theta_min, batch.theta_max, p)
        true_tx = torch.as_tensor(batch.frames.steering).to(self.device, torch.complex128)  # a_tx = a_rx (monostatic)
        gain = array_gain(true_tx, precoders)  # a_tx(theta)^T f(d)
        self.search.recreate(self.model.array_numpy())
        window = training_window(batch, gain, grid_a, self.search, self.basis, p)
        if kind == "ul":
            return window.unsupervised_loss()
        if batch.labels is None:
            raise TrainingError("the supervised loss needs labelled frames (theta and range tags); this batch has none")
        return window.supervised_loss(batch.labels["theta"], batch.labels["range"], p)

    def step(self) -> dict:
        kind = self.config.loss_at(self.iteration)
        # numpy's products here are small; on more BLAS threads they would leave those threads
        # spinning on the cores the map kernel is about to use (`blas_threads.one_blas_thread`)
        with one_blas_thread():
            batch = self.batches.next_batch(self.iteration, labelled=(kind == "sl"))
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
                show_progress(self.iteration, cfg.iterations, self.history[-1], start)
        if cfg.progress and cfg.iterations:
            end_progress()
        self._wall_s += time.perf_counter() - start
        return TrainResult(self.model.spacing_numpy(), list(self.history), list(self.evaluations), self._wall_s,
                           self._labeled_frames, asdict(cfg), self.model.array_numpy())

    # ------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict:
        """Everything a resumed run needs to continue exactly: d, Adam, the data RNG, history
        (`checkpoint.CHECKPOINT_KEYS`)."""
        return {"iteration": self.iteration, "model": {k: v.clone() for k, v in self.model.state_dict().items()},
                "optimizer": copy.deepcopy(self.optimizer.state_dict()), "rng": self.batches.rng_state(),
                "history": list(self.history), "evaluations": list(self.evaluations),
                "labeled_frames": self._labeled_frames, "first_loss": self._first_loss, "wall_s": self._wall_s,
                "config": asdict(self.config), "params": self.params.to_dict(),
                "true_spacing": torch.from_numpy(self.true_spacing.copy()),
                **checkpoint.true_impairments(self.true_array)}

    def check_state(self, state, source: str = "checkpoint") -> None:
        """Refuse a state that is not a checkpoint of this run (`checkpoint.check_state`)."""
        checkpoint.check_state(state, self.params, self.config, self.true_spacing, self.true_array, source)

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        for group in self.optimizer.param_groups:  # the schedule in force comes from this run's config
            group["lr"] = self._lr_at(state["iteration"])
        self.batches.restore(state["rng"])
        self.iteration = state["iteration"]
        self.history = list(state["history"])
        self.evaluations = list(state["evaluations"])
        self._labeled_frames = state["labeled_frames"]
        self._first_loss = state["first_loss"]
        self._wall_s = state.get("wall_s", 0.0)

    def save_checkpoint(self, path) -> None:
        """Write the state atomically (a run killed while writing keeps the last good checkpoint)."""
        checkpoint.write_checkpoint(path, self.state_dict())

    def load_checkpoint(self, path) -> None:
        """Resume from a checkpoint written by `save_checkpoint`."""
        state = checkpoint.read_checkpoint(path, self.device)
        self.check_state(state, f"checkpoint {path}")
        self.load_state_dict(state)


def _torch_device(device: str) -> torch.device:
    """The torch device of `TrainConfig.device`; "cuda" needs CUDA in torch and in Numba (the map kernel)."""
    if device == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("TrainConfig.device = 'cuda': no CUDA device: torch.cuda.is_available() is False "
                              "(a CPU build of torch, or no GPU)")
        from ..dsp.angle_delay import resolve_device

        resolve_device(device, "TrainConfig")
    return torch.device(device)
