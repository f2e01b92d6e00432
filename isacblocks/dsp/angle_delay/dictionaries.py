"""The two dictionaries of the angle-delay map (eq. 13-15) in the kernels' float32 layout.

`AngleDictionary` is ``Phi_pert(d)^H`` (eq. 13); `RangeDictionary` is ``Phi_d^*`` (eq. 14)
factored as ``G V`` by `delay_factors`.  The delay dictionary over a range grid much shorter
than the unambiguous range has a low numerical rank: for the paper's 256 x 200 grid,
r = 62 singular values exceed 1e-10 of the largest and the dropped ones are far below
float32 resolution, so every map row is ``(a^H (Y~ G)) V`` at about half the work of
``Phi_pert^H (Y~ Phi_d^*)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...errors import ShapeError
from ..blas_threads import one_blas_thread
from ..canonical import canonical_svd


@dataclass(frozen=True)
class AngleDictionary:
    """``Phi_pert(d)^H`` (eq. 13, conjugate-transposed) as float32 parts, each (N_theta, K)."""

    re: np.ndarray
    im: np.ndarray

    def __post_init__(self) -> None:
        _freeze_fields(self, ("re", "im"))
        if self.re.ndim != 2 or self.re.shape != self.im.shape:
            raise ShapeError(f"AngleDictionary: re and im must be (N_theta, K) alike, got {self.re.shape} "
                             f"and {self.im.shape}")

    @classmethod
    def from_steering(cls, phi) -> AngleDictionary:
        """From the steering dictionary ``Phi_pert = [a(theta_1) ... a(theta_N)]``, shape (K, N_theta)."""
        phi = np.asarray(phi)
        if phi.ndim != 2:
            raise ShapeError(f"angle dictionary: expected shape (K, N_theta), got {phi.shape}")
        herm = phi.conj().T
        return cls(herm.real, herm.imag)

    @property
    def n_angles(self) -> int:
        return self.re.shape[0]

    @property
    def n_antennas(self) -> int:
        return self.re.shape[1]

    def herm(self) -> np.ndarray:
        """``Phi_pert^H`` (N_theta, K) complex64."""
        return (self.re + 1j * self.im).astype(np.complex64)


def delay_factors(phi_d, rtol: float = 1e-10):
    """Truncated SVD ``Phi_d^* = G V`` in float64: ``G = U Sigma`` (S, r), ``Sigma`` (r,), ``V`` (r, N_tau),
    keeping the singular values above ``rtol`` times the largest.

    The singular vectors are canonical (`canonical.canonical_svd`): LAPACK's phases and
    rotations within the spectrum's plateau, which differ from one CPU (and BLAS thread
    count) to the next, do not reach G, so frames drawn in G's coordinates are the same on
    every CPU to rounding.  Frames projected on G and a receiver synthesising with V must
    share one factorisation: `grid.AngleDelayGrid.factors`.
    """
    with one_blas_thread():
        u, sigma, vh = np.linalg.svd(np.conj(np.asarray(phi_d)).astype(np.complex128), full_matrices=False)
    rank = max(1, int(np.count_nonzero(sigma > rtol * sigma[0])))
    u, vh = canonical_svd(u[:, :rank], sigma[:rank], vh[:rank])
    return u * sigma[:rank], sigma[:rank], vh


@dataclass(frozen=True)
class RangeDictionary:
    """``Phi_d^*`` (eq. 14, conjugated) factored as ``G V``, exact to float32 precision.

    G (S, r) is stored in real form as `project`, shape (2r', 2S): a frame row seen as
    float32 pairs ``(Re y_s, Im y_s)`` dotted with row 2q (row 2q+1) gives the real
    (imaginary) part of ``(y G)_q``.  V (r, N_tau) is stored transposed as `synth_re`,
    `synth_im`, each (N_tau, r').  ``r' >= r`` pads the rank with zeros to a multiple of 8
    so that every dot product fills the vector units; `rank` is r.
    """

    project: np.ndarray
    synth_re: np.ndarray
    synth_im: np.ndarray
    rank: int

    def __post_init__(self) -> None:
        _freeze_fields(self, ("project", "synth_re", "synth_im"))
        padded = self.synth_re.shape[1] if self.synth_re.ndim == 2 else -1
        if (self.project.ndim != 2 or self.project.shape[0] != 2 * padded or self.project.shape[1] % 2
                or self.synth_im.shape != self.synth_re.shape or not 0 < self.rank <= padded):
            raise ShapeError(f"RangeDictionary: expected project (2r', 2S), synth_re, synth_im (N_tau, r') and "
                             f"0 < rank <= r', got {self.project.shape}, {self.synth_re.shape}, "
                             f"{self.synth_im.shape}, rank {self.rank}")

    @classmethod
    def from_steering(cls, phi_d, rtol: float = 1e-10) -> RangeDictionary:
        """From ``Phi_d = [rho(tau_1) ... rho(tau_N)]``, shape (S, N_tau), through `delay_factors`
        (the dropped part is below float32 rounding)."""
        phi_d = np.asarray(phi_d)
        if phi_d.ndim != 2:
            raise ShapeError(f"range dictionary: expected shape (S, N_tau), got {phi_d.shape}")
        g, _, v = delay_factors(phi_d, rtol)
        return cls.from_factors(g, v)

    @classmethod
    def from_factors(cls, g, v) -> RangeDictionary:
        """From the factors ``Phi_d^* = G V``, G (S, r) and V (r, N_tau) (see `delay_factors`)."""
        rank = g.shape[1]
        padded = -(-rank // 8) * 8
        g = g.T  # (r, S)
        project = np.zeros((2 * padded, 2 * g.shape[1]))
        project[0:2 * rank:2, 0::2], project[0:2 * rank:2, 1::2] = g.real, -g.imag
        project[1:2 * rank:2, 0::2], project[1:2 * rank:2, 1::2] = g.imag, g.real
        synth = np.zeros((v.shape[1], padded), dtype=np.complex128)
        synth[:, :rank] = v.T
        return cls(project, synth.real, synth.imag, rank)

    @property
    def n_subcarriers(self) -> int:
        return self.project.shape[1] // 2

    @property
    def n_ranges(self) -> int:
        return self.synth_re.shape[0]

    def synthesis(self) -> np.ndarray:
        """V (r, N_tau) complex64."""
        rank = self.rank
        return np.ascontiguousarray((self.synth_re[:, :rank] + 1j * self.synth_im[:, :rank]).T, dtype=np.complex64)

    def projection(self) -> np.ndarray:
        """G (S, r) complex64, from the real form."""
        rank = self.rank
        g = (self.project[0:2 * rank:2, 0::2] - 1j * self.project[0:2 * rank:2, 1::2]).T
        return np.ascontiguousarray(g, dtype=np.complex64)


def _freeze_fields(obj, names) -> None:
    """Store the fields as read-only C-contiguous float32 arrays (one kernel type for all)."""
    for name in names:
        array = np.array(getattr(obj, name), dtype=np.float32, order="C")
        array.setflags(write=False)
        object.__setattr__(obj, name, array)
