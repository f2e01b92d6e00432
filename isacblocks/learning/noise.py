"""Receiver noise for training batches made on a torch device (`TrainConfig.frames`).

Frames made on the host draw their noise from numpy's generators
(`sim.montecarlo.draw_projected_frames`): numpy's PCG64 and normal sampler give the same
numbers on every CPU, where torch's CPU sampler takes another code path (another last bit)
on a CPU with AVX2 than on one without (or with AVX-512).  Noise drawn on a device is that
device's generator's: reproducible on one device, not across devices.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def device_noise(seed: int, shape: tuple[int, ...], noise_power: float, scale, device) -> torch.Tensor:
    """CN(0, noise_power) complex64 samples of `shape`, drawn on the torch `device` by a generator
    there seeded with `seed`, times `scale` (float, broadcast over the last axis: the range
    factor's ``sigma`` of projected frames).  The training noise when frames are made on the
    device (`TrainConfig.frames`): nothing of the size of a batch crosses to it."""
    generator = torch.Generator(device=device).manual_seed(int(seed) % 2**63)
    parts = torch.randn((*shape, 2), generator=generator, device=device, dtype=torch.float32)
    parts *= math.sqrt(noise_power / 2)
    return torch.view_as_complex(parts) * torch.as_tensor(np.asarray(scale, dtype=np.float32), device=device)
