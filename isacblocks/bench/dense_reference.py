"""Dense reference-style implementations of Algorithm 1, in numpy and in torch.

REFERENCE CODE, NOT LIBRARY CODE: these are the baselines `isac bench` measures the library
against (receivers, training step, memory).  They ship inside `isacblocks.bench` only so that
an installed package can run the benchmark; nothing outside `isacblocks.bench` may import them
(`tests/test_layers.py`), and they are not part of the library's API.

This is how the reference code (and a PyTorch user) computes the MB-ML receiver: the
full ``N_theta x N_tau`` map ``L = |Phi_pert(d)^H Y~ Phi_d^*|`` (eq. 15) of every frame by
matrix products over the whole angle grid, masked to the prior sector, arg-max (eq.
16), the ``(2 delta_theta + 1) x (2 delta_R + 1)`` window (eq. 12, 17), soft-max and
the weighted means (eq. 18-19).  Products are taken in the cheaper order
``Phi^H (Y~ Phi_d^*)`` in complex64, so the baseline is a fair one.

`DenseTrainer` is the training step a PyTorch user would write: the LS precoder, the
full frames and the full map in torch with autograd through ``d``, then Adam.

Nothing here imports from `isacblocks.learning` or the Numba kernels: the dense code
is an independent implementation, used to cross-check the library in the same run.  It
deliberately writes its own steering vectors, LS precoder and map instead of calling the
library's single definitions (`isacblocks.dsp.steering`, `isacblocks.dsp.precoder`): a
shared formula would cross-check nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from isacblocks.dsp.steering import range_steering, ula_steering


@dataclass
class DenseEstimate:
    """Outputs of the dense receivers, each (B,): statistic, soft estimates, arg-max."""

    statistic: np.ndarray
    theta_hat: np.ndarray
    range_hat: np.ndarray
    i_hat: np.ndarray
    j_hat: np.ndarray

    @classmethod
    def concatenate(cls, parts: list[DenseEstimate]) -> DenseEstimate:
        return cls(*(np.concatenate([getattr(p, name) for p in parts])
                     for name in ("statistic", "theta_hat", "range_hat", "i_hat", "j_hat")))


def _sector_masks(grid, lo, hi):
    """Grid points inside ``[lo, hi]`` per frame: (B, N) bool (numpy or torch alike)."""
    return (grid[None, :] >= lo[:, None]) & (grid[None, :] <= hi[:, None])


class DenseReceiverNumpy:
    """Algorithm 1 on the full map with numpy (complex64 BLAS products), `chunk` frames at a time."""

    name = "dense numpy"

    def __init__(self, params, spacing, chunk: int = 64):
        self.params = params
        self.chunk = int(chunk)
        self.angle_h = np.ascontiguousarray(
            ula_steering(params.angle_grid, spacing, params.wavelength).conj().T.astype(np.complex64))  # (N_t, K)
        self.range_c = np.ascontiguousarray(range_steering(params.range_grid, params).conj().astype(np.complex64))
        self.angles = np.asarray(params.angle_grid)
        self.ranges = np.asarray(params.range_grid)
        self.offsets_a = np.arange(-params.window_half_angle, params.window_half_angle + 1)
        self.offsets_r = np.arange(-params.window_half_range, params.window_half_range + 1)

    def full_map(self, Y) -> np.ndarray:
        """``L`` (B, N_theta, N_tau) float32."""
        return np.abs(self.angle_h @ (np.asarray(Y, dtype=np.complex64) @ self.range_c))

    def __call__(self, Y, theta_min, theta_max, r_min, r_max) -> DenseEstimate:
        n = len(Y)
        bounds = [np.broadcast_to(np.asarray(v, dtype=np.float64), (n,)) for v in (theta_min, theta_max, r_min, r_max)]
        parts = []
        for start in range(0, n, self.chunk):
            sl = slice(start, start + self.chunk)
            parts.append(self._estimate(Y[sl], *(b[sl] for b in bounds)))
        return DenseEstimate.concatenate(parts)

    def _estimate(self, Y, t0, t1, r0, r1) -> DenseEstimate:
        L = self.full_map(Y)
        b = len(L)
        inside = _sector_masks(self.angles, t0, t1)[:, :, None] & _sector_masks(self.ranges, r0, r1)[:, None, :]
        masked = np.where(inside, L, -np.inf)
        flat = masked.reshape(b, -1).argmax(axis=1)
        i_hat, j_hat = np.unravel_index(flat, L.shape[1:])
        statistic = L.reshape(b, -1)[np.arange(b), flat].astype(np.float64)
        rows, cols = i_hat[:, None] + self.offsets_a, j_hat[:, None] + self.offsets_r
        valid = (((rows >= 0) & (rows < L.shape[1]))[:, :, None] & ((cols >= 0) & (cols < L.shape[2]))[:, None, :])
        rows, cols = np.clip(rows, 0, L.shape[1] - 1), np.clip(cols, 0, L.shape[2] - 1)
        window = L[np.arange(b)[:, None, None], rows[:, :, None], cols[:, None, :]].astype(np.float64)
        logits = np.where(valid, window, -np.inf)
        soft = np.exp(logits - logits.max(axis=(1, 2), keepdims=True))
        soft /= soft.sum(axis=(1, 2), keepdims=True)
        theta_hat = np.sum(self.angles[rows] * soft.sum(axis=2), axis=1)
        range_hat = np.sum(self.ranges[cols] * soft.sum(axis=1), axis=1)
        return DenseEstimate(statistic, theta_hat, range_hat, i_hat.astype(np.int64), j_hat.astype(np.int64))


class DenseReceiverTorch:
    """Algorithm 1 on the full map with torch (complex64 products), `chunk` frames at a time."""

    name = "dense torch"

    def __init__(self, params, spacing, chunk: int = 64):
        self.params = params
        self.chunk = int(chunk)
        self.angle_h = torch.from_numpy(np.ascontiguousarray(
            ula_steering(params.angle_grid, spacing, params.wavelength).conj().T.astype(np.complex64)))
        self.range_c = torch.from_numpy(np.ascontiguousarray(
            range_steering(params.range_grid, params).conj().astype(np.complex64)))
        self.angles = torch.tensor(np.asarray(params.angle_grid))
        self.ranges = torch.tensor(np.asarray(params.range_grid))
        self.offsets_a = torch.arange(-params.window_half_angle, params.window_half_angle + 1)
        self.offsets_r = torch.arange(-params.window_half_range, params.window_half_range + 1)

    @torch.inference_mode()
    def __call__(self, Y, theta_min, theta_max, r_min, r_max) -> DenseEstimate:
        n = len(Y)
        Y = torch.from_numpy(np.asarray(Y, dtype=np.complex64))
        bounds = [torch.tensor(np.broadcast_to(np.asarray(v, dtype=np.float64), (n,)))
                  for v in (theta_min, theta_max, r_min, r_max)]
        parts = []
        for start in range(0, n, self.chunk):
            sl = slice(start, start + self.chunk)
            parts.append(self._estimate(Y[sl], *(b[sl] for b in bounds)))
        return DenseEstimate.concatenate(parts)

    def _estimate(self, Y, t0, t1, r0, r1) -> DenseEstimate:
        L = torch.abs(self.angle_h @ (Y @ self.range_c))  # (b, N_theta, N_tau) float32
        b, n_theta, n_tau = L.shape
        inside = _sector_masks(self.angles, t0, t1)[:, :, None] & _sector_masks(self.ranges, r0, r1)[:, None, :]
        masked = torch.where(inside, L, torch.tensor(-math.inf, dtype=L.dtype))
        flat = masked.reshape(b, -1).argmax(dim=1)
        i_hat, j_hat = flat // n_tau, flat % n_tau
        frames = torch.arange(b)
        statistic = L.reshape(b, -1)[frames, flat].double()
        rows, cols = i_hat[:, None] + self.offsets_a, j_hat[:, None] + self.offsets_r
        valid = (((rows >= 0) & (rows < n_theta))[:, :, None] & ((cols >= 0) & (cols < n_tau))[:, None, :])
        rows, cols = rows.clamp(0, n_theta - 1), cols.clamp(0, n_tau - 1)
        window = L[frames[:, None, None], rows[:, :, None], cols[:, None, :]].double()
        soft = torch.softmax(torch.where(valid, window, -math.inf).reshape(b, -1), dim=1).reshape(window.shape)
        theta_hat = (self.angles[rows] * soft.sum(dim=2)).sum(dim=1)
        range_hat = (self.ranges[cols] * soft.sum(dim=1)).sum(dim=1)
        return DenseEstimate(statistic.numpy(), theta_hat.numpy(), range_hat.numpy(), i_hat.numpy(), j_hat.numpy())


# ----------------------------------------------------------------------------------- training
def steering_torch(theta: torch.Tensor, spacing: torch.Tensor, wavelength: float) -> torch.Tensor:
    """``a(theta)^T`` rows ``exp(-j 2 pi (k-(K-1)/2) d_k sin(theta) / lambda)``: (N,) -> (N, K) complex128."""
    k = torch.arange(spacing.shape[0], dtype=torch.float64)
    positions = (k - (spacing.shape[0] - 1) / 2) * spacing
    phase = (-2 * math.pi / wavelength) * torch.sin(theta)[:, None] * positions[None, :]
    return torch.polar(torch.ones_like(phase), phase)


class DenseTrainer:
    """A training step of ``d`` written the plain PyTorch way (forward and backward through d).

    Per step: the LS precoder of every frame's sector (eq. 5-6) with ``d``; the full
    frames ``Y~ = (psi g(d)/sqrt(S)) a(theta) rho^T + W``; the full map with autograd
    (eq. 15); sector mask, arg-max, window (eq. 16-17); the UL loss ``-max L`` (eq. 21) or
    the SL position loss (eq. 18-20); backward; Adam.  ``d = (lambda/2)(1 + u)`` with
    ``u`` trainable, as in `isacblocks.learning.model.SpacingModel`, so that gradients
    can be compared with the library's.  `dtype` is the precision of the frames and the
    map: complex64 (what a user would pick for speed; timed) or complex128 (the
    cross-check's reference: the SL loss is a soft-max over map magnitudes in the
    hundreds, so float32 rounding of the map moves its gradient by up to a few percent).
    """

    def __init__(self, params, lr: float = 6.25e-6, init_spacing=None, dtype=torch.complex64):
        self.params = params
        self.dtype = dtype
        self.scale = params.wavelength / 2
        init = params.nominal_spacing if init_spacing is None else np.asarray(init_spacing, dtype=np.float64)
        self.u = torch.nn.Parameter(torch.as_tensor(init / self.scale - 1.0, dtype=torch.float64))
        self.optimizer = torch.optim.Adam([self.u], lr=lr / self.scale)
        self.angles = torch.tensor(np.asarray(params.angle_grid))
        self.ranges = torch.tensor(np.asarray(params.range_grid))
        self.range_c = torch.from_numpy(range_steering(params.range_grid, params).conj()).to(dtype)
        self.offsets_a = torch.arange(-params.window_half_angle, params.window_half_angle + 1)
        self.offsets_r = torch.arange(-params.window_half_range, params.window_half_range + 1)

    def spacing(self) -> torch.Tensor:
        return self.scale * (1.0 + self.u)

    def loss(self, draw, kind: str = "ul") -> torch.Tensor:
        """The UL (eq. 21) or SL (eq. 20) loss of one `isacblocks.bench.workload.TrainingDraw`."""
        p = self.params
        K, S = p.n_antennas, p.n_subcarriers
        A = steering_torch(self.angles, self.spacing(), p.wavelength)  # (N_theta, K), row n = a(theta_n)^T
        # LS precoder f = (A* A^T)^-1 A* b per sector, b = K inside the sector (eq. 5-6).
        b_sector = K * _sector_masks(self.angles, torch.as_tensor(draw.theta_min),
                                     torch.as_tensor(draw.theta_max)).to(A.dtype)  # (B, N_theta)
        gram = A.conj().T @ A
        f = torch.linalg.solve(gram, (b_sector @ A.conj()).T).T
        f = f / torch.linalg.vector_norm(f, dim=1, keepdim=True)
        a_true = torch.from_numpy(draw.steering)  # (B, K) complex128, the true array
        gain = torch.sum(a_true * f, dim=1)
        amplitude = torch.from_numpy(draw.psi) * gain / math.sqrt(S)
        echo = (amplitude[:, None] * a_true)[:, :, None] * torch.from_numpy(draw.delay)[:, None, :]
        Y = echo.to(self.dtype) + torch.from_numpy(draw.noise).to(self.dtype)  # (B, K, S)
        L = torch.abs(A.conj().to(self.dtype) @ (Y @ self.range_c))  # (B, N_theta, N_tau), with grad
        batch, n_theta, n_tau = L.shape
        with torch.no_grad():
            inside = _sector_masks(self.angles, torch.as_tensor(draw.theta_min),
                                   torch.as_tensor(draw.theta_max))[:, :, None]  # every range is in the sector
            flat = torch.where(inside, L, -math.inf).reshape(batch, -1).argmax(dim=1)
        i_hat, j_hat = flat // n_tau, flat % n_tau
        rows, cols = i_hat[:, None] + self.offsets_a, j_hat[:, None] + self.offsets_r
        valid = (((rows >= 0) & (rows < n_theta))[:, :, None] & ((cols >= 0) & (cols < n_tau))[:, None, :])
        rows, cols = rows.clamp(0, n_theta - 1), cols.clamp(0, n_tau - 1)
        window = L[torch.arange(batch)[:, None, None], rows[:, :, None], cols[:, None, :]]
        masked = torch.where(valid, window, -math.inf)
        if kind == "ul":
            return -torch.mean(masked.reshape(batch, -1).max(dim=1).values)
        soft = torch.softmax(masked.reshape(batch, -1), dim=1).reshape(masked.shape)
        theta_hat = (self.angles[rows].to(soft.dtype) * soft.sum(dim=2)).sum(dim=1)
        range_hat = (self.ranges[cols].to(soft.dtype) * soft.sum(dim=1)).sum(dim=1)
        theta, ranges = torch.as_tensor(draw.theta), torch.as_tensor(draw.ranges)
        dx = ranges * torch.cos(theta) - range_hat * torch.cos(theta_hat)
        dy = ranges * torch.sin(theta) - range_hat * torch.sin(theta_hat)
        return torch.mean(dx * dx + dy * dy)

    def step(self, draw, kind: str = "ul") -> float:
        """One Adam step on ``u``; returns the loss."""
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss(draw, kind)
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())


def dense_training_peak_bytes(params, batch_size: int) -> dict:
    """Tensor-size estimate of a dense training step's peak memory at `batch_size`.

    Per map cell: the complex map ``z = A^H (Y Phi_d^*)`` that autograd keeps for abs'
    backward (8 bytes); at the backward peak, beside it, the gradient of ``L = |z|`` (4),
    ``sgn(z)`` (8) and the gradient of ``z`` (8): 28 bytes.  (The forward pass holds less:
    z, L and the masked copy of L, 16 bytes.)  Per frame besides: the noise, the echo and
    ``Y`` (``3 x 8 K S``), ``Y Phi_d^*`` and its gradient (``2 x 8 K N_tau``).
    """
    K, S = params.n_antennas, params.n_subcarriers
    cells = params.n_angle_grid * params.n_range_grid
    per_frame = {"complex map z (saved)": 8 * cells, "grad of L": 4 * cells, "sgn(z)": 8 * cells,
                 "grad of z": 8 * cells, "frames Y, noise, echo": 3 * 8 * K * S,
                 "Y Phi_d^* and its grad": 2 * 8 * K * params.n_range_grid}
    total = sum(per_frame.values())
    return {"per_frame_bytes": per_frame, "per_frame_total_bytes": total, "batch": batch_size,
            "estimated_peak_bytes": total * batch_size}
