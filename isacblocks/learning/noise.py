"""Receiver noise for training batches from torch's generator.

Training draws about a million complex normals per iteration (batch 256 x K 64 x rank 62
of the range-projected frames); numpy's ziggurat sampler takes three times as long as
torch's vectorised one on the same core.  The batch is cut into `NOISE_STREAMS` fixed
pieces, each with its own generator seeded from the batch seed and its piece index, so the
noise does not depend on how many threads fill it.
"""

from __future__ import annotations

import functools
import math
import os
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import torch

#: Fixed pieces per batch, each with its own generator (so thread count never changes the draw).
NOISE_STREAMS = 4


def torch_noise(seed: int, out: np.ndarray, noise_power: float) -> None:
    """Fill the complex64 array `out` with CN(0, noise_power) samples drawn from `seed`
    (the `noise_source` of `isacblocks.sim.montecarlo.draw_projected_frames`)."""
    flat = torch.from_numpy(out.reshape(-1).view(np.float32))  # shares `out`'s memory
    std = math.sqrt(noise_power / 2)
    bounds = np.linspace(0, flat.numel() // 2, NOISE_STREAMS + 1).astype(np.int64) * 2  # whole complex samples

    def fill(piece: int) -> None:
        generator = torch.Generator().manual_seed((int(seed) * NOISE_STREAMS + piece) % 2**63)
        flat[bounds[piece]:bounds[piece + 1]].normal_(0.0, std, generator=generator)

    threads = min(NOISE_STREAMS, numba.get_num_threads())
    if threads == 1:
        for piece in range(NOISE_STREAMS):
            fill(piece)
    else:
        list(_pool(os.getpid(), threads).map(fill, range(NOISE_STREAMS)))


@functools.cache
def _pool(pid: int, threads: int) -> ThreadPoolExecutor:
    """One pool per process (`pid`: a forked child must not reuse its parent's threads)."""
    return ThreadPoolExecutor(threads, thread_name_prefix="isac-train-noise")


def device_noise(seed: int, shape: tuple[int, ...], noise_power: float, scale, device) -> torch.Tensor:
    """CN(0, noise_power) complex64 samples of `shape`, drawn on the torch `device` by a generator
    there seeded with `seed`, times `scale` (float, broadcast over the last axis: the range
    factor's ``sigma`` of projected frames).  The training noise when frames are made on the
    device (`TrainConfig.frames`): nothing of the size of a batch crosses to it."""
    generator = torch.Generator(device=device).manual_seed(int(seed) % 2**63)
    parts = torch.randn((*shape, 2), generator=generator, device=device, dtype=torch.float32)
    parts *= math.sqrt(noise_power / 2)
    return torch.view_as_complex(parts) * torch.as_tensor(np.asarray(scale, dtype=np.float32), device=device)
