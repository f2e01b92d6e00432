"""The impaired uniform linear array: hardware shared by the transmit and receive paths."""

from __future__ import annotations

import numpy as np

from ..dsp.impairments import ArrayImpairments, array_steering, check_array, draw_impairments, load_array
from ..dsp.steering import element_positions
from ..errors import ConfigError, ShapeError
from ..params import SystemParams


class ImpairedULA:
    """A ULA with spacing vector ``d`` (Sec. II-D, V-A) and, optionally, per-element complex
    gains and mutual coupling (`dsp.impairments`: ``a_pert = C diag(g) a(theta; d)``), used by
    both channels.

    It is hardware, not a stream: the target channel and the UE channel hold the same
    `ImpairedULA`, so transmit and receive steering vectors always agree (monostatic).
    `array` is what the rest of the library steers with: the spacing vector, or the
    `ArrayImpairments` when there are gains or coupling.
    """

    def __init__(self, params: SystemParams, spacing=None, gain=None, coupling=None):
        self.params = params
        spacing = params.nominal_spacing if spacing is None else spacing
        if isinstance(spacing, ArrayImpairments):
            if gain is not None or coupling is not None:
                raise ConfigError("ImpairedULA: give gain and coupling inside the ArrayImpairments, not beside it")
            array = spacing
        elif gain is None and coupling is None:
            array = spacing
        else:
            try:
                array = ArrayImpairments(spacing, gain, coupling)
            except (ConfigError, ShapeError) as exc:
                raise type(exc)(f"ImpairedULA: {exc}") from None
        array = check_array(array, params.n_antennas, "ImpairedULA.spacing", ordered=True)
        if isinstance(array, ArrayImpairments) and array.kinds == ("spacing",):
            array = array.spacing
        if not isinstance(array, ArrayImpairments):
            array = array.copy()
            array.setflags(write=False)
        self.array = array
        self.spacing = array.spacing if isinstance(array, ArrayImpairments) else array

    @classmethod
    def drawn(cls, params: SystemParams, seed, kinds=("spacing",), spec=None) -> ImpairedULA:
        """An array drawn from the impairment model (`dsp.impairments.draw_impairments`): spacing
        errors, and gains and coupling where `kinds` names them."""
        return cls(params, draw_impairments(seed, params, kinds, spec))

    @classmethod
    def from_file(cls, params: SystemParams, path) -> ImpairedULA:
        """An array read from ``.npz`` (spacing, gain, coupling) or a spacing vector from ``.npy`` or
        text (metres, one per antenna)."""
        return cls(params, load_array(path, params.n_antennas, params.wavelength))

    @property
    def kinds(self) -> tuple[str, ...]:
        """The impairment types of this array (`ArrayImpairments.kinds`)."""
        return self.array.kinds if isinstance(self.array, ArrayImpairments) else ("spacing",)

    @property
    def positions(self) -> np.ndarray:
        return element_positions(self.spacing)

    def steering(self, theta) -> np.ndarray:
        """``a_pert(theta)``, shape (K, N) (eq. 1 with the true array)."""
        return array_steering(theta, self.array, self.params.wavelength)


#: Spawn key of a run's true array: ``--seed N`` draws the same array in every command and block.
ARRAY_SEED_KEY = 0xA11A


def true_array(params: SystemParams, seed: int, spacing_file=None, kinds=("spacing",)) -> ImpairedULA:
    """The impaired array of a run: read from `spacing_file`, or drawn from `seed` with the
    impairment `kinds` (`dsp.impairments.draw_impairments`; the spacing is the same draw for any kinds)."""
    if spacing_file:
        return ImpairedULA.from_file(params, spacing_file)
    return ImpairedULA.drawn(params, np.random.SeedSequence(seed, spawn_key=(ARRAY_SEED_KEY,)), kinds)
