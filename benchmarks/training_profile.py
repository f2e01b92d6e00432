"""Where a training step's work goes: each part of `Trainer.step()` timed on one thread, in order.

``python -m benchmarks.training_profile [--batch 256] [--steps 15]`` runs UL steps with torch,
Numba and BLAS held to one thread and the next batch drawn in the step (not ahead), so the
parts add up to the step and no part waits for another thread.  It prints, per step, the
data draw (its noise apart), the precoders, the map kernel (frames formed, BLAS search, pin,
window columns), the window's forward pass and the backward pass; "rest" is what the step
spends elsewhere (steering rows, loss, Adam, Python).  On two cores the step runs these
parts on two threads at once (`BatchSource.next_batch`, `blas_threads.map_blocks`), so its wall
time (`isac bench --only training`) lies between half of this sum and the sum.
"""

from __future__ import annotations

import argparse
import collections
import time
from concurrent.futures import Future

import numba
import torch

import isacblocks.dsp.angle_delay.gemm as angle_delay_gemm
import isacblocks.dsp.angle_delay.search as angle_delay
import isacblocks.learning.batches as batches
import isacblocks.learning.differentiable as differentiable
import isacblocks.learning.window as window
import isacblocks.sim.montecarlo as montecarlo
from isacblocks.bench.training import make_trainer
from isacblocks.blocks.ula import ImpairedULA
from isacblocks.dsp.blas_threads import one_blas_thread
from isacblocks.params import SystemParams

#: (module or class, attribute, label): the parts timed; an indented label is inside the one above.
PARTS = ((batches.BatchSource, "draw", "draw"),
         (montecarlo, "_numpy_noise", "  noise"),
         (differentiable, "ls_precoder", "precoders"),
         (window, "factored_sector_peak", "map kernel"),
         (angle_delay_gemm, "_factored_frames", "  frames"),
         (angle_delay_gemm, "search_blocks", "  BLAS search"),
         (angle_delay_gemm, "_pin_projected", "  pin"),
         (angle_delay, "synthesise_columns", "  window columns"),
         (differentiable, "factored_window_map", "window forward"))


class _Inline:
    """An executor that runs the batch drawn ahead at once, on the calling thread."""

    def submit(self, fn, *args):
        future = Future()
        future.set_result(fn(*args))
        return future


def profile(batch_size: int = 256, steps: int = 15, seed: int = 0) -> tuple[float, dict[str, float]]:
    """Seconds per step and per part (label -> seconds per step), on one thread."""
    totals = collections.defaultdict(float)
    saved = []

    def timed(owner, name, label):
        inner = getattr(owner, name)

        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                totals[label] += time.perf_counter() - start

        saved.append((owner, name, inner))
        setattr(owner, name, wrapper)

    torch_threads, numba_threads = torch.get_num_threads(), numba.get_num_threads()
    saved.append((batches, "_draw_pool", batches._draw_pool))
    batches._draw_pool = lambda pid: _Inline()
    for owner, name, label in PARTS:
        timed(owner, name, label)
    timed(torch.Tensor, "backward", "backward")
    try:
        torch.set_num_threads(1)
        numba.set_num_threads(1)
        params = SystemParams()
        trainer = make_trainer(params, ImpairedULA.drawn(params, seed=seed).spacing, batch_size, seed)
        with one_blas_thread():
            for _ in range(3):  # compile and warm the caches
                trainer.step()
            totals.clear()
            start = time.perf_counter()
            for _ in range(steps):
                trainer.step()
            per_step = (time.perf_counter() - start) / steps
    finally:
        for owner, name, inner in reversed(saved):
            setattr(owner, name, inner)
        torch.set_num_threads(torch_threads)
        numba.set_num_threads(numba_threads)
    return per_step, {label: value / steps for label, value in totals.items()}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256, help="frames per step (default 256)")
    parser.add_argument("--steps", type=int, default=15, help="steps timed after 3 warm-up steps (default 15)")
    args = parser.parse_args(argv)
    per_step, parts = profile(args.batch, args.steps)
    print(f"Trainer.step() on one thread, UL, batch {args.batch}: {per_step * 1e3:.1f} ms")
    top_level = 0.0
    for _, _, label in (*PARTS, (None, None, "backward")):
        value = parts.get(label, 0.0)
        top_level += 0.0 if label.startswith(" ") else value
        print(f"  {label:18s} {value * 1e3:6.1f} ms")
    print(f"  {'rest':18s} {(per_step - top_level) * 1e3:6.1f} ms")


if __name__ == "__main__":
    main()
