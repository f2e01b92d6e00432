"""Training step: `isacblocks.learning.trainer.Trainer.step()` vs a dense torch autograd step.

Both do one UL iteration (the schedule that learns best at CPU scale) at the same batch
size: draw a batch with a random training sector per frame, the forward pass through
the precoder and the receiver with gradient w.r.t. ``d``, backward, Adam.  Each step
draws its own data, as in training.  The library's step works on range-projected frames
and recomputes only the eq.-17 window in torch (DESIGN.md §5); the dense step builds the
full frames and the full 720 x 200 map with autograd (`isacblocks.bench.dense_reference`).

Cross-check: on one shared draw, at the same spacing, both losses (UL and SL) and their
gradients w.r.t. ``u`` (``d = (lambda/2)(1 + u)``) must agree.

Thread-pool sensitivity (`environment_sensitivity`): the step mixes a Numba parallel
kernel (OpenMP threading layer), torch (its own OpenMP pool) and numpy's BLAS threads on
the same cores.  OpenMP threads busy-wait after a parallel region by default, which on a
2-core machine steals the cores from the next library's work.  The same step is timed in
child processes (``python -m isacblocks.bench.training``) with the default environment and with
``OMP_WAIT_POLICY=PASSIVE`` (idle threads sleep), to show how much of the step that costs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from isacblocks.learning.batches import TrainingBatch
from isacblocks.learning.trainer import TrainConfig, Trainer

from .dense_reference import DenseTrainer
from .timing import Timing, child_env, measure, time_call
from .workload import training_draw

LOSS_RTOL = 1e-6
GRAD_MIN_COSINE = 0.99999
GRAD_RTOL = 1e-3


def make_trainer(params, true_spacing, batch_size: int, seed: int) -> Trainer:
    config = TrainConfig(schedule="ul", iterations=10**9, batch_size=batch_size, seed=seed, progress=False)
    return Trainer(params, true_spacing, config)


def run(params, ula, batch_size: int, warmup: int, reps: int, seed: int, check_batch: int,
        library_per_dense: int = 5) -> dict:
    """Frames/s of both steps; the library's step is repeated `library_per_dense` times per dense
    step (it is much cheaper), interleaved."""
    check = cross_check(params, ula.spacing, check_batch, seed)
    trainer = make_trainer(params, ula.spacing, batch_size, seed)
    dense = DenseTrainer(params, lr=trainer.config.lr)
    rng = np.random.default_rng(seed + 1)
    draws = Timing()

    def dense_step():
        start = time.perf_counter()
        draw = training_draw(rng, params, ula.spacing, batch_size)
        draws.samples.append(time.perf_counter() - start)
        dense.step(draw, "ul")

    for _ in range(warmup):
        trainer.step()
        dense_step()
    draws.samples.clear()
    lib, den = Timing(), Timing()
    for _ in range(reps):
        den.samples.append(time_call(dense_step))
        lib.samples.extend(measure(trainer.step, 0, library_per_dense).samples)
    result = {
        "batch": batch_size, "loss": "ul",
        "isacblocks": {"frames_per_s": lib.rate(batch_size), "step": lib.to_dict(1e3, "ms")},
        "dense_torch": {"frames_per_s": den.rate(batch_size), "step": den.to_dict(1e3, "ms"),
                        "data_generation_ms_median": draws.median * 1e3},
        "ratio": den.median / lib.median,
        "ratio_excluding_dense_data_generation": (den.median - draws.median) / lib.median,
        "cross_check": check,
    }
    return result


def environment_sensitivity(batch_size: int, steps: int, seed: int, config: str | None = None,
                            timeout_s: float = 600.0) -> dict:
    """Median `Trainer.step()` time in fresh child processes, default environment vs passive OpenMP waits."""
    variants = {"default": {}, "OMP_WAIT_POLICY=PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE"}}
    out = {"batch": batch_size, "steps": steps}
    for label, extra in variants.items():
        env = child_env({k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"})
        env.update(extra)
        cmd = [sys.executable, "-m", "isacblocks.bench.training", "--batch", str(batch_size), "--steps", str(steps),
               "--seed", str(seed), *(["--config", str(Path(config).resolve())] if config else [])]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout_s)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
        samples = json.loads(proc.stdout.strip().splitlines()[-1])["step_s"]
        timing = Timing(samples)
        out[label] = {"step": timing.to_dict(1e3, "ms"), "frames_per_s": timing.rate(batch_size)}
    out["speedup_passive"] = out["default"]["step"]["median_ms"] / out["OMP_WAIT_POLICY=PASSIVE"]["step"]["median_ms"]
    return out


def cross_check(params, true_spacing, batch_size: int, seed: int) -> dict:
    """Losses and gradients on one draw at the nominal spacing: the library's against the dense
    step in complex128 (the pass/fail reference) and, for information, in complex64 (the timed one)."""
    trainer = make_trainer(params, true_spacing, batch_size, seed)
    references = {"complex128": DenseTrainer(params, dtype=torch.complex128),
                  "complex64": DenseTrainer(params, dtype=torch.complex64)}
    draw = training_draw(np.random.default_rng(seed + 2), params, true_spacing, batch_size)
    batch = TrainingBatch(draw.projected(trainer.basis), draw.theta_min, draw.theta_max,
                          {"theta": draw.theta, "range": draw.ranges})
    out = {"batch": batch_size, "reference": "dense torch step in complex128",
           "criterion": f"loss within {LOSS_RTOL:g}, gradient cosine >= {GRAD_MIN_COSINE}, "
                        f"gradient difference <= {GRAD_RTOL:g} of its norm, against the complex128 dense step"}
    ok = True
    for kind in ("ul", "sl"):
        lib_loss = trainer.loss(batch, kind)
        (lib_grad,) = torch.autograd.grad(lib_loss, trainer.model.u)
        lib_value = float(lib_loss.detach())
        entry = {"isacblocks_loss": lib_value}
        for precision, dense in references.items():
            dense_loss = dense.loss(draw, kind)
            (dense_grad,) = torch.autograd.grad(dense_loss, dense.u)
            dense_value = float(dense_loss.detach())
            entry[precision] = {
                "dense_loss": dense_value, "loss_rel_diff": abs(lib_value / dense_value - 1),
                "grad_cosine": float(torch.dot(lib_grad, dense_grad) / (lib_grad.norm() * dense_grad.norm())),
                "grad_rel_diff": float((lib_grad - dense_grad).norm() / lib_grad.norm())}
        ref = entry["complex128"]
        entry["ok"] = (ref["loss_rel_diff"] <= LOSS_RTOL and ref["grad_cosine"] >= GRAD_MIN_COSINE
                       and ref["grad_rel_diff"] <= GRAD_RTOL)
        ok &= entry["ok"]
        out[kind] = entry
    out["ok"] = bool(ok)
    return out

def main(argv=None) -> int:
    """Child of `environment_sensitivity`: time `--steps` library steps after two warm-up steps."""
    from isacblocks import SystemParams
    from isacblocks.blocks import true_array

    parser = argparse.ArgumentParser(description="time Trainer.step() (child of isacblocks.bench.training)")
    parser.add_argument("--batch", type=int, required=True)
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--config", default=None)
    args = parser.parse_args(argv)
    params = SystemParams.from_toml(args.config) if args.config else SystemParams()
    trainer = make_trainer(params, true_array(params, args.seed, None).spacing, args.batch, args.seed)
    timing = measure(trainer.step, 2, args.steps)
    print(json.dumps({"step_s": timing.samples}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
