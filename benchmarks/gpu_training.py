"""Training on a CUDA device: the step's frames/s at the paper's batch, and a paper-scale SL curve.

    python -m benchmarks.gpu_training --out out/gpu/training.json [--batch 3000] [--seconds 480]

* step: UL training steps at batch `--batch` (the paper's 3 000), frames made on the device
  (`TrainConfig.frames`), median of `--steps` timed steps after two warm-up steps;
* curve: SL with the paper's lr 4e-7 m at batch `--batch` for as many iterations as fit in
  `--seconds`, then Pmd on the test sector (`--eval-frames` per hypothesis) and the
  element-position error, with lambda/2 and the known spacing on the same frames.

`--device cpu` with small sizes is a smoke run (tests/bench/test_bench_smoke.py).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np


def run(device: str, batch: int, steps: int, seconds: float, eval_frames: int, seed: int) -> dict:
    import torch

    from isacblocks.blocks import true_array
    from isacblocks.dsp.spacing import spacing_errors
    from isacblocks.learning.trainer import TrainConfig, Trainer
    from isacblocks.params import SystemParams
    from isacblocks.sim.evaluation import evaluate_spacing

    params = SystemParams()
    ula = true_array(params, seed, None)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    record = {"device": torch.cuda.get_device_name() if device == "cuda" else platform.processor() or "cpu",
              "batch": batch}

    trainer = Trainer(params, ula.spacing, TrainConfig(schedule="ul", iterations=steps + 2, batch_size=batch,
                                                       device=device, progress=False, seed=seed))
    samples = []
    for i in range(steps + 2):
        sync()
        start = time.perf_counter()
        trainer.step()
        sync()
        if i >= 2:
            samples.append(time.perf_counter() - start)
    step_s = float(np.median(samples))
    record["step"] = {"samples_s": samples, "median_ms": step_s * 1e3, "frames_per_s": batch / step_s,
                      "frames_on_device": trainer.config.frames_on_device}

    config = TrainConfig(schedule="sl", iterations=10**9, batch_size=batch, lr=4e-7, device=device, progress=False,
                         seed=seed)
    trainer = Trainer(params, ula.spacing, config)
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        trainer.step()
    sync()
    wall = time.perf_counter() - start
    learned = trainer.model.spacing_numpy()
    reports = {label: evaluate_spacing(params, ula.spacing, d, eval_frames, seed=12345, device=device)
               for label, d in (("learned", learned), ("lambda/2", params.nominal_spacing), ("known", ula.spacing))}
    record["sl_curve"] = {"lr": 4e-7, "iterations": trainer.iteration, "labelled_frames": trainer.iteration * batch,
                          "wall_s": wall, "eval_frames": eval_frames,
                          "pmd": {k: [r.pmd, list(r.pmd_ci)] for k, r in reports.items()},
                          **spacing_errors(learned, ula.spacing)}
    return record


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", choices=("cpu", "cuda"))
    parser.add_argument("--batch", type=int, default=3000)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=480.0)
    parser.add_argument("--eval-frames", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="out/gpu/training.json")
    args = parser.parse_args(argv)
    from isacblocks.bench.gpu import run_and_record

    record = {"python": sys.version, "machine": platform.platform(), "cpu_count": os.cpu_count()}
    return run_and_record(record, lambda: run(args.device, args.batch, args.steps, args.seconds, args.eval_frames,
                                              args.seed), args.out, ("device", "step", "sl_curve"))

if __name__ == "__main__":
    sys.exit(main())
