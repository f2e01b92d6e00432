"""The learnable spacing vector ``d`` (Sec. IV): the model's one trainable parameter."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..dsp.spacing import check_spacing
from ..params import SystemParams


class SpacingModel(nn.Module):
    """``d = (lambda/2) (1 + u)`` with ``u`` (K,) the trainable relative deviation.

    Starting from ``u = 0`` is the paper's initial point ``d = (lambda/2) 1``.  The
    relative parametrisation keeps the parameter O(0.1) instead of O(1e-3 m); for Adam a
    step of ``lr`` metres is a step of ``lr / scale`` in ``u``.
    """

    def __init__(self, params: SystemParams, init_spacing=None):
        super().__init__()
        self.params = params
        self.scale = self.unit(params)
        init = params.nominal_spacing if init_spacing is None else check_spacing(
            init_spacing, params.n_antennas, "init_spacing")
        self.u = nn.Parameter(torch.as_tensor(self.u_from_spacing(init, params), dtype=torch.float64))

    # -------------------------------------------------- the u <-> d mapping
    @staticmethod
    def unit(params: SystemParams) -> float:
        """The spacing ``u`` is relative to: lambda/2 (m)."""
        return params.wavelength / 2

    @classmethod
    def spacing_from_u(cls, u, params: SystemParams):
        """``d = (lambda/2) (1 + u)`` for a numpy array or a torch tensor `u` (K,)."""
        return cls.unit(params) * (1.0 + u)

    @classmethod
    def u_from_spacing(cls, spacing, params: SystemParams) -> np.ndarray:
        """``u = d / (lambda/2) - 1`` (K,) float64."""
        return np.asarray(spacing) / cls.unit(params) - 1.0

    @classmethod
    def spacing_from_state(cls, state: dict, params: SystemParams) -> np.ndarray:
        """``d`` (K,) of a saved model (`state_dict()`, e.g. inside a trainer checkpoint)."""
        return cls.spacing_from_u(np.asarray(state["u"]), params)

    # ------------------------------------------------------------- the model
    def spacing(self) -> torch.Tensor:
        """``d`` (K,) float64, differentiable."""
        return self.spacing_from_u(self.u, self.params)

    def spacing_numpy(self) -> np.ndarray:
        return self.spacing().detach().cpu().numpy().copy()

    @torch.no_grad()
    def set_spacing(self, spacing) -> None:
        self.u.copy_(torch.as_tensor(self.u_from_spacing(spacing, self.params), dtype=torch.float64,
                                     device=self.u.device))
