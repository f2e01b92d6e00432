"""The configuration of a training run (`TrainConfig`): hyper-parameters, schedules, devices,
what the model learns; every field checked when the configuration is made."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..dsp.angle_delay import DEVICES
from ..dsp.impairments import parse_kinds
from ..errors import ConfigError
from ..validation import is_integer, is_real

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
        rule(self.device in DEVICES, "device", f"must be one of {', '.join(map(repr, DEVICES))}")
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
