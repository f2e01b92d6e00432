"""How big each study runs: ``quick`` (smoke), ``default`` (the main job), ``long``, ``paper``.

The paper trains for 85 000 iterations at batch 3 000 and tests on 1.2 million frames
(GPU-scale).  On 2 CPU cores the learning curves are shortened; what is known about
learning ``d`` at this scale (and why a sector curriculum matters) is in the README.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError


@dataclass(frozen=True)
class ScalingPlan:
    """The scaling study (``--fig scaling``): SL, UL and SL→UL at each batch size for `iterations`
    iterations, evaluated with `eval_frames` frames per hypothesis at `eval_points` iterations
    spaced logarithmically from 1 to `iterations`."""

    batch_sizes: tuple[int, ...]
    iterations: int
    eval_points: int
    eval_frames: int

    def eval_iterations(self) -> tuple[int, ...]:
        return tuple(sorted({0, *(int(i) for i in np.unique(np.round(
            np.geomspace(1, self.iterations, self.eval_points))))}))


#: The default scale's scaling study: batch 256 to 3 000 for 200 iterations (256 to 600 000 frames).
MODERATE_SCALING = ScalingPlan(batch_sizes=(256, 1024, 3000), iterations=200, eval_points=8, eval_frames=2000)


@dataclass(frozen=True)
class Scale:
    name: str
    iterations: int  # training iterations of each learning curve
    batch_size: int
    lr_sl: float  # Adam step in metres
    lr_ul: float
    lr_decay_sl: float  # SL: x lr_decay_sl after lr_decay_at of the run (the paper's x0.1 after 50k of 85k)
    lr_decay_at: float
    eval_points: int  # evaluations along each learning curve (plus iteration 0)
    eval_frames: int  # frames per hypothesis of each evaluation
    final_eval_frames: int  # frames per hypothesis of the final evaluations and the baselines
    labeled_ratios: tuple[float, ...]  # Fig. 4
    limited_ratio: float  # Fig. 5 "SL with limited labels": SL iterations of the SSL run
    calibration_frames: tuple[int, ...]  # labelled frames of the classical calibration
    isac_frames: int  # target frames per (eta, phi) point in Fig. 5
    isac_grid: int
    curriculum_ssl: bool = True  # also run SL→UL with the sector curriculum in Fig. 3
    scaling: ScalingPlan = MODERATE_SCALING  # the scaling study (``--fig scaling``)


SCALES = {
    "quick": Scale("quick", iterations=40, batch_size=64, lr_sl=6.25e-6, lr_ul=6.25e-6, lr_decay_sl=1.0,
                   lr_decay_at=1.0, eval_points=2, eval_frames=1000, final_eval_frames=1000,
                   labeled_ratios=(0.05, 0.25), limited_ratio=0.1, calibration_frames=(8, 32), isac_frames=200,
                   isac_grid=4, curriculum_ssl=False,
                   scaling=ScalingPlan(batch_sizes=(8, 64), iterations=16, eval_points=5, eval_frames=300)),
    "default": Scale("default", iterations=400, batch_size=256, lr_sl=6.25e-6, lr_ul=6.25e-6, lr_decay_sl=0.1,
                     lr_decay_at=0.6, eval_points=4, eval_frames=2000, final_eval_frames=10000,
                     labeled_ratios=(0.0125, 0.05, 0.2, 0.5), limited_ratio=0.0125,
                     calibration_frames=(4, 8, 16, 32, 64), isac_frames=1000, isac_grid=8,
                     curriculum_ssl=False,
                     scaling=MODERATE_SCALING),
    "long": Scale("long", iterations=2000, batch_size=256, lr_sl=6.25e-6, lr_ul=6.25e-6, lr_decay_sl=0.1,
                  lr_decay_at=0.6, eval_points=10, eval_frames=10000, final_eval_frames=20000,
                  labeled_ratios=(0.005, 0.012, 0.05, 0.1, 0.2, 0.5), limited_ratio=0.012,
                  calibration_frames=(4, 8, 16, 32, 64, 128), isac_frames=2000, isac_grid=8,
                  scaling=ScalingPlan(batch_sizes=(256, 1024, 3000), iterations=2000, eval_points=12,
                                      eval_frames=10000)),
    "paper": Scale("paper", iterations=85000, batch_size=3000, lr_sl=4e-7, lr_ul=5e-7, lr_decay_sl=0.1,
                   lr_decay_at=50000 / 85000, eval_points=30, eval_frames=100000, final_eval_frames=600000,
                   labeled_ratios=(0.005, 0.008, 0.012, 0.05, 0.1, 0.2, 0.5, 0.8), limited_ratio=1000 / 85000,
                   calibration_frames=(4, 8, 16, 32, 64, 128), isac_frames=20000, isac_grid=8,
                   scaling=ScalingPlan(batch_sizes=(256, 1024, 3000), iterations=85000, eval_points=20,
                                       eval_frames=100000)),
}


def get_scale(name: str) -> Scale:
    try:
        return SCALES[name]
    except KeyError:
        raise ConfigError(f"scale {name!r}: unknown; choose one of {sorted(SCALES)}") from None
