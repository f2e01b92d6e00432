"""The dense reference of the angle-delay map, for tests and benchmarks."""

from __future__ import annotations

import numpy as np

from ...errors import ShapeError
from ...params import SystemParams
from ..impairments import check_array, receiver_steering
from ..steering import range_steering


def angle_delay_map_dense(Y_tilde, spacing, params: SystemParams) -> np.ndarray:
    """The full map ``|Phi_pert(d)^H Y~ Phi_d^*|`` (eq. 15), (B, N_theta, N_tau) float32.

    Dense numpy reference on the `params` grids (complex64 matrix products): it does all
    N_theta x N_tau entries of every frame.
    """
    Y_tilde = np.asarray(Y_tilde, dtype=np.complex64)
    expected = (params.n_antennas, params.n_subcarriers)
    if Y_tilde.ndim != 3 or Y_tilde.shape[1:] != expected:
        raise ShapeError(f"angle_delay_map_dense: Y_tilde must have shape (B, {expected[0]}, {expected[1]}), "
                         f"got {Y_tilde.shape}")
    spacing = check_array(spacing, params.n_antennas, "angle_delay_map_dense: spacing")
    angle_h = receiver_steering(params.angle_grid, spacing, params.wavelength).conj().T.astype(np.complex64)
    range_c = range_steering(params.range_grid, params).conj().astype(np.complex64)
    return np.abs(angle_h @ (Y_tilde @ range_c))
