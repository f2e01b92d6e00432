"""The learnable spacing vector ``d`` (Sec. IV): the model's one trainable parameter."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..dsp.spacing import check_spacing


class SpacingModel(nn.Module):
    """``d = (lambda/2) (1 + u)`` with ``u`` (K,) the trainable relative deviation.

    Starting from ``u = 0`` is the paper's initial point ``d = (lambda/2) 1``.  The
    relative parametrisation keeps the parameter O(0.1) instead of O(1e-3 m); for Adam a
    step of ``lr`` metres is a step of ``lr / scale`` in ``u``.
    """

    def __init__(self, params, init_spacing=None):
        super().__init__()
        self.scale = params.wavelength / 2
        init = params.nominal_spacing if init_spacing is None else check_spacing(
            init_spacing, params.n_antennas, "init_spacing")
        self.u = nn.Parameter(torch.as_tensor(np.asarray(init) / self.scale - 1.0, dtype=torch.float64))

    def spacing(self) -> torch.Tensor:
        """``d`` (K,) float64, differentiable."""
        return self.scale * (1.0 + self.u)

    def spacing_numpy(self) -> np.ndarray:
        return self.spacing().detach().cpu().numpy().copy()

    @torch.no_grad()
    def set_spacing(self, spacing) -> None:
        self.u.copy_(torch.as_tensor(np.asarray(spacing) / self.scale - 1.0, dtype=torch.float64, device=self.u.device))
