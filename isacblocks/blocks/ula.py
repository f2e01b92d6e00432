"""The impaired uniform linear array: hardware shared by the transmit and receive paths."""

from __future__ import annotations

import numpy as np

from ..dsp.spacing import check_spacing, draw_spacing, load_spacing
from ..dsp.steering import element_positions, ula_steering
from ..params import SystemParams


class ImpairedULA:
    """A ULA with spacing vector ``d`` (Sec. II-D, V-A), used by both channels.

    It is hardware, not a stream: the target channel and the UE channel hold the same
    `ImpairedULA`, so transmit and receive steering vectors always agree (monostatic).
    """

    def __init__(self, params: SystemParams, spacing=None):
        self.params = params
        self.spacing = check_spacing(params.nominal_spacing if spacing is None else spacing,
                                     params.n_antennas, "ImpairedULA.spacing", ordered=True)
        self.spacing.setflags(write=False)

    @classmethod
    def drawn(cls, params: SystemParams, seed) -> ImpairedULA:
        """An array with spacings drawn from the impairment model."""
        return cls(params, draw_spacing(np.random.default_rng(seed), params))

    @classmethod
    def from_file(cls, params: SystemParams, path) -> ImpairedULA:
        """An array with spacings read from ``.npy`` or text (metres, one per antenna)."""
        return cls(params, load_spacing(path, params.n_antennas, params.wavelength))

    @property
    def positions(self) -> np.ndarray:
        return element_positions(self.spacing)

    def steering(self, theta) -> np.ndarray:
        """``a(theta)``, shape (K, N) (eq. 1 with the true spacing)."""
        return ula_steering(theta, self.spacing, self.params.wavelength)
