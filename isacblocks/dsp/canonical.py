"""Truncated SVD factors with canonical singular vectors: the same on every CPU.

A singular vector is defined only up to a phase, and the singular vectors of equal (or
nearly equal) singular values only up to a rotation among themselves.  LAPACK fixes these
choices by its arithmetic, so another BLAS kernel (another CPU, another OpenBLAS core type)
picks another basis.  The delay dictionary's spectrum has a plateau of 36 singular values
equal to 1e-15 (`mbml.range_factors`): its LAPACK basis differs completely from one CPU to
the next, and frames drawn in that basis (`sim.montecarlo`) would differ with it.

`canonical_svd` replaces each group of close singular values' vectors by the orthonormal
basis of the same subspace nearest a fixed reference matrix (the unitary polar factor of
``U_c^H Z_c``, unique whatever basis LAPACK returned), and a lone vector's phase by the one
that makes ``u^H z`` real and positive.  The product ``U Sigma V^H`` is unchanged; only the
arbitrary choices are removed, so results differ between CPUs by rounding only.
"""

from __future__ import annotations

import numpy as np

#: Neighbouring singular values closer than this share of the largest are one group (their
#: vectors are known only as a subspace: the error of a vector is about eps / gap).
CLUSTER_RTOL = 1e-6
#: Seed of the reference matrix the canonical bases are nearest to.
REFERENCE_SEED = 0x15AC


def reference_matrix(n: int, r: int) -> np.ndarray:
    """The fixed complex (n, r) reference: numpy's PCG64 and normal sampler are the same on every CPU."""
    rng = np.random.default_rng(REFERENCE_SEED)
    return rng.standard_normal((n, r)) + 1j * rng.standard_normal((n, r))


def singular_groups(sigma: np.ndarray, rtol: float = CLUSTER_RTOL) -> list[tuple[int, int]]:
    """``[lo, hi)`` ranges of consecutive singular values (descending) closer than `rtol` of the largest."""
    sigma = np.asarray(sigma, dtype=np.float64)
    breaks = np.flatnonzero(np.abs(np.diff(sigma)) >= rtol * sigma[0]) + 1
    edges = [0, *breaks.tolist(), sigma.size]
    return list(zip(edges[:-1], edges[1:]))


def canonical_svd(u: np.ndarray, sigma: np.ndarray, vh: np.ndarray,
                  rtol: float = CLUSTER_RTOL) -> tuple[np.ndarray, np.ndarray]:
    """``(u W, W' vh)`` with ``u W Sigma W' vh = u Sigma vh``: `u` (n, r) orthonormal columns, `sigma`
    (r,) descending, `vh` (r, m); W is block-diagonal unitary over `singular_groups`, chosen
    from the subspaces alone (see the module), and ``W' = Sigma^-1 W^H Sigma``."""
    u = np.asarray(u)
    sigma = np.asarray(sigma, dtype=np.float64)
    z = reference_matrix(u.shape[0], u.shape[1])
    w = np.zeros((sigma.size, sigma.size), dtype=np.complex128)
    for lo, hi in singular_groups(sigma, rtol):
        m = u[:, lo:hi].conj().T @ z[:, lo:hi]
        left, _, right = np.linalg.svd(m)
        w[lo:hi, lo:hi] = left @ right  # the unitary polar factor of m: independent of this SVD's choices
    scale = np.where(sigma > 0, sigma, 1.0)  # a zero singular value's row of vh carries nothing
    back = (w.conj().T * scale[None, :]) / scale[:, None]
    return (u @ w).astype(u.dtype, copy=False), (back @ vh).astype(vh.dtype, copy=False)
