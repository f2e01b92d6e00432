"""The learnable array model (Sec. IV): the spacing vector ``d``, and optionally per-element
complex gains and mutual coupling (`dsp.impairments`, beyond the paper)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..dsp.impairments import ArrayImpairments, check_array, parse_kinds, perturb_rows, receive_rows
from ..params import SystemParams
from . import differentiable as diff

#: Coupling coefficients ``c_1 .. c_B`` a model learns when none are given to start from.
DEFAULT_COUPLING_BAND = 2


class SpacingModel(nn.Module):
    """``d = (lambda/2) (1 + u)`` with ``u`` (K,) the trainable relative deviation.

    Starting from ``u = 0`` is the paper's initial point ``d = (lambda/2) 1``.  The
    relative parametrisation keeps the parameter O(0.1) instead of O(1e-3 m); for Adam a
    step of ``lr`` metres is a step of ``lr / scale`` in ``u``.

    `kinds` adds the other impairments of `dsp.impairments` as parameters in the same units
    (one Adam step moves each by about ``lr / scale``): gains ``g_k = exp(log_amplitude_k + j
    phase_k)`` (nepers, radians; start 1) and coupling ``c_b = coupling_re_b + j
    coupling_im_b`` (start 0, `coupling_band` coefficients).  A common factor of all gains
    changes nothing the receiver or the unit-norm precoder sees, so its gradient is zero.
    `init_spacing` is a spacing vector or an `ArrayImpairments` to start from.
    """

    def __init__(self, params: SystemParams, init_spacing=None, kinds=("spacing",),
                 coupling_band: int = DEFAULT_COUPLING_BAND):
        super().__init__()
        self.params = params
        self.scale = self.unit(params)
        self.kinds = parse_kinds(kinds)
        k = params.n_antennas
        init = params.nominal_spacing if init_spacing is None else check_array(init_spacing, k, "init_spacing")
        gain = init.gain if isinstance(init, ArrayImpairments) else None
        coupling = init.coupling if isinstance(init, ArrayImpairments) else None
        spacing = init.spacing if isinstance(init, ArrayImpairments) else init
        self.u = nn.Parameter(torch.as_tensor(self.u_from_spacing(spacing, params), dtype=torch.float64))
        if "gain" in self.kinds:
            gain = np.ones(k, dtype=np.complex128) if gain is None else gain
            self.log_amplitude = nn.Parameter(torch.as_tensor(np.log(np.abs(gain)), dtype=torch.float64))
            self.phase = nn.Parameter(torch.as_tensor(np.angle(gain), dtype=torch.float64))
        if "coupling" in self.kinds:
            coupling = np.zeros(coupling_band, dtype=np.complex128) if coupling is None else coupling
            self.coupling_re = nn.Parameter(torch.as_tensor(coupling.real.copy(), dtype=torch.float64))
            self.coupling_im = nn.Parameter(torch.as_tensor(coupling.imag.copy(), dtype=torch.float64))

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

    def gain(self) -> torch.Tensor | None:
        """``g`` (K,) complex128, differentiable; None when gains are not modelled."""
        if "gain" not in self.kinds:
            return None
        return torch.polar(torch.exp(self.log_amplitude), self.phase)

    def coupling(self) -> torch.Tensor | None:
        """``c_1 .. c_B`` complex128, differentiable; None when coupling is not modelled."""
        if "coupling" not in self.kinds:
            return None
        return torch.complex(self.coupling_re, self.coupling_im)

    @property
    def impaired(self) -> bool:
        """True when the model has gains or coupling (its receiver rows are normalised)."""
        return self.kinds != ("spacing",)

    def grid_rows(self) -> torch.Tensor:
        """``a_pert(theta_n)^T`` on the angle grid (N_theta, K), differentiable: the transmitter's
        steering (`diff.grid_steering` with gains and coupling applied)."""
        return perturb_rows(diff.grid_steering(self.spacing(), self.params), self.gain(), self.coupling(), torch)

    def receiver_rows(self, rows: torch.Tensor) -> torch.Tensor:
        """The receiver's dictionary rows from `grid_rows`: normalised to norm sqrt(K) when impaired
        (`dsp.impairments.receive_rows`), the rows themselves otherwise."""
        return receive_rows(rows, torch) if self.impaired else rows

    def spacing_numpy(self) -> np.ndarray:
        return self.spacing().detach().cpu().numpy().copy()

    def array_numpy(self):
        """The model as the numpy receivers take it: the spacing vector, or an `ArrayImpairments`."""
        if not self.impaired:
            return self.spacing_numpy()
        gain, coupling = self.gain(), self.coupling()
        return ArrayImpairments(self.spacing_numpy(), None if gain is None else gain.detach().cpu().numpy(),
                                None if coupling is None else coupling.detach().cpu().numpy())

    @torch.no_grad()
    def set_spacing(self, spacing) -> None:
        self.u.copy_(torch.as_tensor(self.u_from_spacing(spacing, self.params), dtype=torch.float64,
                                     device=self.u.device))
