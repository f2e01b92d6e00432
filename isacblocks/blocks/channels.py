"""Channel blocks: Swerling-1 target channel (eq. 1) and multipath UE channel (eq. 3)."""

from __future__ import annotations

import numpy as np

from ..core import SyncBlock
from ..dsp.channels import (
    add_target_echo,
    complex_normal,
    fill_noise,
    frame_noise,
    ue_channel_frequency_response,
)
from ..dsp.steering import array_gain, range_steering
from ..errors import BlockError, ConfigError
from ..params import SystemParams
from ..seeding import random_streams, seed_sequence
from .items import required_tags
from .ula import ImpairedULA


def check_ula(owner: str, ula: ImpairedULA, params: SystemParams) -> ImpairedULA:
    """The channel's array must be built for the same K and carrier as the flowgraph's `params`."""
    if not isinstance(ula, ImpairedULA):
        raise ConfigError(f"{owner}: ula = {ula!r}: expected an ImpairedULA")
    if ula.spacing.shape != (params.n_antennas,) or ula.params.wavelength != params.wavelength:
        raise ConfigError(f"{owner}: ula has K = {ula.spacing.size} elements at wavelength {ula.params.wavelength!r} "
                          f"m; params need K = {params.n_antennas} at {params.wavelength!r} m (build the "
                          "ImpairedULA from the same SystemParams)")
    return ula


class TargetChannel(SyncBlock):
    """Monostatic sensing channel with a Swerling-1 target (eq. 1).

    Inputs: ``precoder`` f (K,) and ``symbols`` x(m) (S,).  Output ``Y_r`` (K, S):
    ``1/sqrt(S) psi a_rx(theta) a_tx^T(theta) f [x(m) * rho(tau)]^T + W`` on frames whose
    ``target_present`` tag is true, ``W`` otherwise, with ``psi ~ CN(0, sigma_r^2)`` and
    ``vec(W) ~ CN(0, N0 I)``.  The truth (``target_present``, ``theta``, ``range``) is read
    from the tags on the precoder input; the array is the shared `ImpairedULA`.  Each
    frame's noise has its own generator (`frame_noise`), so large batches fill it in parallel.

    Input
    -----
    precoder : [n, K], complex64
        The transmitted precoder per frame.
    symbols : [n, S], complex64
        The OFDM symbols per frame.

    Output
    ------
    Y_r : [n, K, S], complex64
        The received sensing frame (eq. 1).
    """

    def __init__(self, params: SystemParams, ula: ImpairedULA, seed=0, name=None):
        k, s = params.n_antennas, params.n_subcarriers
        super().__init__(in_sig=[("precoder", np.complex64, k), ("symbols", np.complex64, s)],
                         out_sig=[("Y_r", np.complex64, (k, s))], name=name)
        self.params = params
        self.ula = check_ula(self.name, ula, params)
        self.seed = seed
        self._reset()

    def _reset(self) -> None:
        gain, self._noise_seed = seed_sequence(self.seed).spawn(2)
        self._gain_rng = np.random.default_rng(gain)

    def start(self) -> None:
        self._reset()

    def _truth(self, port: int, n: int, key: str) -> list:
        values = self.frame_tags(port, n, key)
        present = self.frame_tags(port, n, "target_present")
        for i, (value, flag) in enumerate(zip(values, present)):
            if flag and value is None:
                raise BlockError(f"block {self.name!r}: item {self.nitems_read(port) + i} has a target but "
                                 f"no {key!r} tag")
        return values

    def work(self, inputs, outputs):
        precoders, symbols = inputs
        out = outputs[0]
        n = len(precoders)
        p = self.params
        present = np.array(required_tags(self, 0, n, "target_present"), dtype=bool)
        psi = complex_normal(self._gain_rng, n, p.target_gain_variance, dtype=np.complex128)
        frame_noise(self._noise_seed, self.nitems_read(0), out[:n], p.noise_power)
        frames = np.flatnonzero(present)
        if frames.size:
            theta = np.array(self._truth(0, n, "theta"), dtype=object)[frames].astype(float)
            ranges = np.array(self._truth(0, n, "range"), dtype=object)[frames].astype(float)
            steering = self.ula.steering(theta).T  # (B1, K)
            gain = psi[frames] * array_gain(steering, precoders[frames])
            delay = range_steering(ranges, p).T  # (B1, S)
            add_target_echo(out, frames, gain, steering, symbols[frames], delay, p.n_subcarriers)
        return n


class UEChannel(SyncBlock):
    """MISO OFDM channel to the single-antenna UE (eq. 3), with the CSI the UE is given.

    Inputs: ``precoder`` f (K,) and ``symbols`` x(m) (S,).  Outputs: ``y_c`` (S,) and
    ``csi`` ``kappa = beta f^T a_tx(phi)`` (S,), with ``phi ~ U[phi_min, phi_max]`` (UE
    sector), L taps ``beta_l ~ CN(0, sigma_l^2)`` (exponential profile scaled so that
    ``sum sigma_l^2 = SNR_c S N0``), ``beta = F [beta_0..beta_{L-1}, 0..]`` and
    ``n ~ CN(0, N0 I)``.  Tags each frame with ``ue_angle``.

    Input
    -----
    precoder : [n, K], complex64
        The transmitted precoder per frame.
    symbols : [n, S], complex64
        The OFDM symbols per frame.

    Output
    ------
    y_c : [n, S], complex64
        The UE's received subcarriers (eq. 3).
    csi : [n, S], complex64
        The channel ``kappa`` per subcarrier.
    """

    def __init__(self, params: SystemParams, ula: ImpairedULA, seed=0, name=None):
        k, s = params.n_antennas, params.n_subcarriers
        super().__init__(in_sig=[("precoder", np.complex64, k), ("symbols", np.complex64, s)],
                         out_sig=[("y_c", np.complex64, s), ("csi", np.complex64, s)], name=name)
        self.params = params
        self.ula = check_ula(self.name, ula, params)
        self.seed = seed
        self._reset()

    def _reset(self) -> None:
        self._rng = random_streams(self.seed, ("angle", "taps", "noise"))

    def start(self) -> None:
        self._reset()

    def work(self, inputs, outputs):
        precoders, symbols = inputs
        y_c, csi = outputs
        n = len(precoders)
        p = self.params
        phi = self._rng["angle"].uniform(*p.ue_sector, n)
        beta = ue_channel_frequency_response(self._rng["taps"], p.tap_powers, p.n_subcarriers, n)
        csi[:n] = beta * array_gain(self.ula.steering(phi).T, precoders)[:, None]  # kappa = beta f^T a_tx(phi)
        fill_noise(self._rng["noise"], y_c[:n], p.noise_power)
        y_c[:n] += symbols * csi[:n]
        base = self.nitems_written(0)
        for i in range(n):
            self.add_tag(0, base + i, "ue_angle", float(phi[i]))
            self.add_tag(1, base + i, "ue_angle", float(phi[i]))
        return n
