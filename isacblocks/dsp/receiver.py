"""Sensing receiver front end: the reciprocal filter (eq. 7)."""

from __future__ import annotations

import numpy as np

from ..errors import ShapeError


def reciprocal_filter(Y, x, out: np.ndarray | None = None) -> np.ndarray:
    """Remove the communication symbols: ``Y~ = Y (/) 1 x^T(m)`` (eq. 7).

    Each row of ``Y`` (B, K, S) is divided element-wise by the frame's symbols
    ``x`` (B, S).  For PSK (|x| = 1) this equals multiplying by conj(x) and leaves
    the noise statistics unchanged.  A zero symbol is rejected.  With `out` (an array of
    the result's shape and dtype) the quotient is written there: the same values, no temporary.
    """
    Y = np.asarray(Y)
    x = np.asarray(x)
    if Y.ndim != 3 or x.ndim != 2 or Y.shape[0] != x.shape[0] or Y.shape[2] != x.shape[1]:
        raise ShapeError(f"reciprocal_filter: expected Y (B, K, S) and x (B, S), got Y {Y.shape} and x {x.shape}")
    if not np.all(x != 0):
        frame, sub = np.argwhere(x == 0)[0]
        raise ShapeError(f"reciprocal_filter: symbol x[{frame}, {sub}] is zero; the reciprocal filter "
                         "needs non-zero constellation points")
    return np.divide(Y, x[:, None, :], out=out)
