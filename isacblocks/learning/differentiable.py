"""Differentiable (torch) versions of exactly the formulas that need a gradient w.r.t. ``d``.

Each mirrors a numpy function of `isacblocks.dsp` (tests check they agree):

* `steering`         <-> `dsp.ula_steering` (eq. 13)
* `grid_steering`    <-> `dsp.mbml.steering_dictionary` (eq. 13)
* `ls_precoder`      <-> `dsp.beampattern_precoder` (eq. 5-6), many sectors at once
* `window_map`       <-> the window of `dsp.mbml_estimate` (eq. 15, 17), on projected frames
  (`factored_window_map`: the same on frames given as rank-one echo plus noise)
* `soft_estimate`    <-> eq. 18-19 (soft-max and weighted means)

The arg-max (eq. 16) needs no gradient; it comes from the Numba kernel.
"""

from __future__ import annotations

import numpy as np
import torch

from ..dsp.mbml import sector_rows
from ..dsp.steering import steering_rows
from ..errors import TrainingError
from ..params import SystemParams


def steering(theta: torch.Tensor, spacing: torch.Tensor, wavelength: float) -> torch.Tensor:
    """``[a(theta)]_k = exp(-j 2 pi (k-(K-1)/2) d_k sin(theta) / lambda)``; theta (...,) -> (..., K):
    `dsp.steering.steering_rows` on torch tensors."""
    return steering_rows(theta, spacing, wavelength, xp=torch)


def grid_steering(spacing: torch.Tensor, params: SystemParams) -> torch.Tensor:
    """``Phi_pert(d)^T``: the steering vectors on the N_theta-point angle grid, (N_theta, K) (eq. 13)."""
    return steering(torch.tensor(np.array(params.angle_grid), dtype=spacing.dtype, device=spacing.device), spacing,
                    params.wavelength)


def ls_precoder(grid_a: torch.Tensor, theta_min, theta_max, params: SystemParams) -> torch.Tensor:
    """Unit-norm LS beampattern precoders (eq. 5-6), one per sector ``[theta_min, theta_max]`` (B,); (B, K).

    `grid_a` is `grid_steering`, ``A^T`` (row n is ``a(theta_n)^T``).  The minimiser of
    ``||b - A^T f||`` that `dsp.precoder.ls_solution` finds by SVD, through the normal
    equations ``(A^* A^T) f = A^* b``: ``A^T`` has full column rank and a condition number
    of about 4 on the paper's grid, so they lose nothing at float64.  The desired pattern
    `dsp.precoder.sector_beampattern` is K on the sector's grid rows ``[first, end)``
    (`dsp.mbml.sector_rows`), so ``A^* b`` is K times a difference of prefix sums of
    the rows: one Cholesky factor of the K x K Gram matrix serves every sector.
    """
    first, end = sector_rows(theta_min, theta_max, params)
    rows_conj = grid_a.conj()
    prefix = torch.cat([torch.zeros_like(rows_conj[:1]), torch.cumsum(rows_conj, dim=0)])
    device = grid_a.device
    rhs = (prefix[torch.as_tensor(end, device=device)] - prefix[torch.as_tensor(first, device=device)])
    rhs = rhs.T * float(params.n_antennas)  # A^* b, (K, B)
    try:
        factor = torch.linalg.cholesky(rows_conj.T @ grid_a)  # A^* A^T = L L^H
    except torch.linalg.LinAlgError as exc:
        raise TrainingError(
            f"the learner's LS precoder: the Gram matrix of the angle grid's steering vectors "
            f"({grid_a.shape[0]} x {grid_a.shape[1]}) is singular ({str(exc).splitlines()[0]}); it needs "
            f"n_angle_grid >= n_antennas (here {params.n_angle_grid} and {params.n_antennas}) and a spacing "
            "that keeps the grid's steering vectors independent") from None
    f = torch.cholesky_solve(rhs, factor)
    return (f / torch.linalg.vector_norm(f, dim=0, keepdim=True)).T


def window_map(z: torch.Tensor, rows: torch.Tensor, grid_a: torch.Tensor) -> torch.Tensor:
    """The eq.-17 window ``|Phi_pert(d)[:, rows]^H (Y~ Phi_d^*)[:, cols]|`` per frame, (B, R, C).

    `z` is the range-projected data on the window's columns, ``Y~ Phi_d^*[:, cols]``
    (B, K, C); `rows` (B, R) index the angle grid of `grid_a` (`grid_steering`).
    """
    return torch.abs(grid_a.conj().to(z.dtype)[rows] @ z)


def factored_window_map(gain: torch.Tensor, echo: torch.Tensor, delay_cols: torch.Tensor, noise_cols: torch.Tensor,
                        rows: torch.Tensor, grid_a: torch.Tensor) -> torch.Tensor:
    """`window_map` of ``z = gain echo delay_cols^T + noise_cols`` without forming ``z``, (B, R, C).

    The echo of projected frames is rank one (`sim.montecarlo.ProjectedFrames`): `gain` (B,),
    `echo` (B, K), `delay_cols` (B, C), `noise_cols` (B, K, C).  By linearity
    ``Phi[:, rows]^H z = gain (Phi[:, rows]^H echo) delay_cols^T + Phi[:, rows]^H noise_cols``:
    the gradient reaches `gain` through a (B, R) product instead of the (B, K, C) frames.
    """
    rows_h = grid_a.conj()[rows]  # (B, R, K)
    dtype = rows_h.dtype
    # one product for both terms: Phi[:, rows]^H [echo, noise_cols], (B, R, 1 + C)
    mapped = rows_h @ torch.cat([echo.to(dtype)[:, :, None], noise_cols.to(dtype)], dim=2)
    echo_cols = gain.to(dtype)[:, None, None] * delay_cols.to(dtype)[:, None, :]
    return torch.abs(mapped[:, :, :1] * echo_cols + mapped[:, :, 1:])


def soft_estimate(window: torch.Tensor, valid: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor,
                  params: SystemParams) -> tuple[torch.Tensor, torch.Tensor]:
    """Soft-max over the valid window entries and the weighted means (eq. 18-19): (theta_hat, range_hat)."""
    logits = torch.where(valid, window, torch.full_like(window, -torch.inf))
    soft = torch.softmax(logits.flatten(1), dim=1).view_as(window)
    angles = torch.tensor(np.array(params.angle_grid), dtype=window.dtype, device=window.device)[rows]
    ranges = torch.tensor(np.array(params.range_grid), dtype=window.dtype, device=window.device)[cols]
    return (angles * soft.sum(dim=2)).sum(dim=1), (ranges * soft.sum(dim=1)).sum(dim=1)


def supervised_loss(theta_hat, range_hat, theta, ranges) -> torch.Tensor:
    """``J_SL = E ||p - p^||^2`` with ``p = [R cos(theta), R sin(theta)]`` (eq. 2, 20)."""
    dx = ranges * torch.cos(theta) - range_hat * torch.cos(theta_hat)
    dy = ranges * torch.sin(theta) - range_hat * torch.sin(theta_hat)
    return torch.mean(dx * dx + dy * dy)


def unsupervised_loss(window: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """``J_UL = -max_ij L`` (eq. 21), averaged over the batch; the window holds the map's maximum."""
    masked = torch.where(valid, window, torch.full_like(window, -torch.inf))
    return -torch.mean(masked.flatten(1).max(dim=1).values)
