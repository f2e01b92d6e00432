"""Channels: Swerling-1 target echo (eq. 1), multipath UE channel (eq. 3), receiver noise.

Every function is batch first and draws from a `numpy.random.Generator`.
"""

from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from ..errors import ConfigError, ShapeError


def complex_normal(rng: np.random.Generator, shape, variance: float = 1.0,
                   dtype=np.complex64) -> np.ndarray:
    """Samples of CN(0, variance): independent real and imaginary parts of variance/2 each."""
    shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(shape)
    if not variance >= 0:
        raise ConfigError(f"complex_normal: variance = {variance!r}: must be >= 0")
    real_dtype = np.float32 if np.dtype(dtype) == np.complex64 else np.float64
    pair = rng.standard_normal((*shape, 2), dtype=real_dtype)
    out = pair.view(np.dtype(dtype))[..., 0]
    out *= np.sqrt(variance / 2)
    return out


def frame_noise(seed: np.random.SeedSequence, first_frame: int, out: np.ndarray, noise_power: float,
                frames_per_stream: int = 1) -> None:
    """Fill complex64 `out` (one frame per row) with CN(0, noise_power) noise, in place.

    Frames ``[s F, (s+1) F)`` (absolute indices from `first_frame`, F = `frames_per_stream`)
    draw from their own generator, spawned from `seed` by the stream index ``s``: the noise
    depends neither on how many threads fill it nor, for F = 1, on how the frames are
    batched (with F > 1 a batch must start on a stream boundary).  Large batches are split
    over a thread pool of at most `numba.get_num_threads()` threads (the thread budget
    `executor.thread_limits` sets).
    """
    if out.dtype != np.complex64 or out.ndim < 2 or not out.flags.c_contiguous:
        raise ShapeError(f"frame_noise: out: expected contiguous complex64 frames (B, ...), got "
                         f"{out.dtype.name}{list(out.shape)}")
    first_frame, per = int(first_frame), int(frames_per_stream)
    if per < 1 or first_frame % per:
        raise ConfigError(f"frame_noise: first_frame = {first_frame} must be a multiple of frames_per_stream = {per}")
    chunks = _frame_chunks(-(-len(out) // per), out.size, min(_NOISE_THREADS, numba.get_num_threads()))

    def fill(chunk: range) -> None:
        for s in chunk:
            fill_noise(_frame_generator(seed, first_frame // per + s), out[s * per:(s + 1) * per], noise_power)

    if len(chunks) == 1:
        fill(chunks[0])
    else:
        list(_noise_pool(os.getpid()).map(fill, chunks))


def fill_noise(rng: np.random.Generator, out: np.ndarray, noise_power: float) -> None:
    """Fill complex64 `out` with CN(0, noise_power) noise, in place (no temporary copies): standard
    normals into the real and imaginary parts, scaled by ``sqrt(noise_power / 2)``."""
    parts = out.view(np.float32)
    rng.standard_normal(out=parts, dtype=np.float32)
    parts *= np.float32(np.sqrt(noise_power / 2))


def _frame_generator(seed: np.random.SeedSequence, stream: int) -> np.random.Generator:
    child = np.random.SeedSequence(seed.entropy, spawn_key=(*seed.spawn_key, stream), pool_size=seed.pool_size)
    return np.random.Generator(np.random.SFC64(child))


#: Complex samples below which a batch's noise is drawn in the calling thread.
PARALLEL_NOISE_SAMPLES = 1 << 16
_NOISE_THREADS = numba.config.NUMBA_NUM_THREADS  # the pool; a call uses numba.get_num_threads() of them


def _frame_chunks(n_streams: int, n_samples: int, threads: int) -> list[range]:
    """Contiguous runs of streams, one per thread, or a single run for a small batch."""
    n = max(1, min(threads, n_streams, n_samples // PARALLEL_NOISE_SAMPLES))
    bounds = [n_streams * j // n for j in range(n + 1)]
    return [range(lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:])]


@functools.cache
def _noise_pool(pid: int) -> ThreadPoolExecutor:
    """The noise threads of process `pid` (a forked child gets its own)."""
    return ThreadPoolExecutor(_NOISE_THREADS, thread_name_prefix="isacblocks-noise")


def target_echo(gain, steering, symbols, delay_phases, n_subcarriers: int) -> np.ndarray:
    """Noise-free echo ``1/sqrt(S) psi a_rx(theta) a_tx^T(theta) f [x(m) * rho(tau)]^T`` (eq. 1).

    `gain` is ``psi * a_tx^T(theta) f`` per frame, shape (B,); `steering` is
    ``a_rx(theta)``, shape (B, K); `symbols` is ``x(m)``, (B, S); `delay_phases` is
    ``rho(tau)``, (B, S).  Returns (B, K, S).
    """
    gain, steering = np.asarray(gain), np.asarray(steering)
    symbols, delay_phases = np.asarray(symbols), np.asarray(delay_phases)
    b = gain.shape[0] if gain.ndim == 1 else -1
    if (gain.ndim != 1 or steering.ndim != 2 or steering.shape[0] != b
            or symbols.shape != (b, n_subcarriers) or delay_phases.shape != (b, n_subcarriers)):
        raise ShapeError(f"target_echo: expected gain (B,), steering (B, K), symbols and delay_phases "
                         f"(B, {n_subcarriers}); got gain {gain.shape}, steering {steering.shape}, "
                         f"symbols {symbols.shape}, delay_phases {delay_phases.shape}")
    return steering[:, :, None] * _echo_rows(gain, symbols, delay_phases, n_subcarriers)[:, None, :]


def _echo_rows(gain, symbols, delay_phases, n_subcarriers: int) -> np.ndarray:
    """The subcarrier factor of eq. 1 per frame: ``psi a_tx^T f x(m) * rho(tau) / sqrt(S)``, (B, S)."""
    return (symbols * delay_phases) * (gain / np.sqrt(n_subcarriers))[:, None]


def add_target_echo(out: np.ndarray, frames: np.ndarray, gain, steering, symbols, delay_phases,
                    n_subcarriers: int) -> None:
    """``out[frames] += target_echo(...).astype(complex64)`` in place, bit for bit, without forming
    the (B, K, S) complex128 echo: one Numba pass over the frames (`out` complex64 (N, K, S),
    `frames` the rows of `out` that hold a target, the other arguments as `target_echo`'s)."""
    frames = np.asarray(frames, dtype=np.int64)
    steering = np.ascontiguousarray(steering, dtype=np.complex128)
    rows = np.ascontiguousarray(_echo_rows(np.asarray(gain), np.asarray(symbols), np.asarray(delay_phases),
                                           n_subcarriers), dtype=np.complex128)
    if (out.dtype != np.complex64 or out.ndim != 3 or steering.shape != (frames.size, out.shape[1])
            or rows.shape != (frames.size, out.shape[2])):
        raise ShapeError(f"add_target_echo: expected out complex64 (N, K, S), steering (B, K), rows (B, S) for "
                         f"B = {frames.size} frames; got out {out.dtype.name}{list(out.shape)}, steering "
                         f"{list(steering.shape)}, rows {list(rows.shape)}")
    _add_outer(out, frames, steering, rows)


@numba.njit(parallel=True, nogil=True, cache=True)
def _add_outer(out, frames, steering, rows):  # pragma: no cover - compiled
    for j in numba.prange(frames.size):
        f = frames[j]
        for k in range(steering.shape[1]):
            a = steering[j, k]
            for s in range(rows.shape[1]):
                out[f, k, s] += np.complex64(a * rows[j, s])


def ue_channel_frequency_response(rng: np.random.Generator, tap_powers, n_subcarriers: int,
                                  n_frames: int) -> np.ndarray:
    """``beta = F [beta_0 .. beta_{L-1}, 0 ..]`` with ``beta_l ~ CN(0, sigma_l^2)`` and F the
    unitary DFT (eq. 3).  Returns complex128 of shape (n_frames, S)."""
    tap_powers = np.asarray(tap_powers, dtype=np.float64)
    if tap_powers.ndim != 1 or not 1 <= tap_powers.size <= n_subcarriers:
        raise ShapeError(f"ue_channel_frequency_response: tap_powers must be a vector of 1..{n_subcarriers} "
                         f"(n_subcarriers) tap powers, got shape {tap_powers.shape}")
    taps = complex_normal(rng, (n_frames, tap_powers.size), dtype=np.complex128) * np.sqrt(tap_powers)
    return np.fft.fft(taps, n=n_subcarriers, axis=-1, norm="ortho")


def ue_received(symbols, csi, noise) -> np.ndarray:
    """``y_c = x(m) * kappa + n`` with CSI ``kappa = beta f^T a_tx(phi)`` (eq. 3)."""
    symbols, csi = np.asarray(symbols), np.asarray(csi)
    if symbols.shape != csi.shape:
        raise ShapeError(f"ue_received: symbols {symbols.shape} and csi {csi.shape} must match")
    return symbols * csi + noise
