"""The drifting array as a block: a target channel (eq. 1) whose impaired ULA follows `dsp.drift`."""

from __future__ import annotations

import numpy as np

from ..dsp.channels import add_target_echo, complex_normal, frame_noise
from ..dsp.drift import ArrayDrift, DriftParams
from ..dsp.impairments import check_array
from ..dsp.steering import array_gain, range_steering
from ..errors import ConfigError
from ..params import SystemParams
from .channels import TargetChannel
from .items import required_tags
from .ula import ImpairedULA

#: The tag carrying the true array (an `ArrayImpairments`) of each output frame.
TRUE_ARRAY_TAG = "true_array"


class DriftingTargetChannel(TargetChannel):
    """`TargetChannel` through an array that drifts from frame to frame (`dsp.drift.ArrayDrift`).

    Frame ``n`` of the stream (counted from `start()`) sees the array ``a_pert`` of the drift
    process at frame ``n``, seeded by `drift_seed`; each output item carries it in a
    ``true_array`` tag (an `ArrayImpairments`), and ``temperature`` (K, the offset ``dT(n)``),
    so that a metrics sink can score a receiver against the truth of that time.  `base` is the
    array at frame 0 (a spacing vector or an `ArrayImpairments`); the noise and target gains are
    the `TargetChannel`'s, from `seed`.  The output does not depend on how the stream is chunked.

    Input
    -----
    precoder : [n, K], complex64
        The transmitted precoder per frame, with the truth tags.
    symbols : [n, S], complex64
        The OFDM symbols per frame.

    Output
    ------
    Y_r : [n, K, S], complex64
        The received sensing frame (eq. 1) through frame n's array, tagged ``true_array`` and
        ``temperature``.
    """

    def __init__(self, params: SystemParams, base, drift: DriftParams, seed=0, drift_seed=0, name=None):
        if not isinstance(drift, DriftParams):
            raise ConfigError(f"DriftingTargetChannel: drift = {drift!r}: expected a DriftParams")
        base = check_array(base, params.n_antennas, "DriftingTargetChannel.base", ordered=True)
        self.base, self.drift, self.drift_seed = base, drift, drift_seed
        super().__init__(params, ImpairedULA(params, base), seed=seed, name=name)

    def _reset(self) -> None:
        super()._reset()
        self.process = ArrayDrift(self.params, self.base, self.drift, self.drift_seed)

    def work(self, inputs, outputs):
        precoders, symbols = inputs
        out = outputs[0]
        n = len(precoders)
        p = self.params
        present = np.array(required_tags(self, 0, n, "target_present"), dtype=bool)
        psi = complex_normal(self._gain_rng, n, p.target_gain_variance, dtype=np.complex128)
        frame_noise(self._noise_seed, self.nitems_read(0), out[:n], p.noise_power)
        states = self.process.advance(n)
        frames = np.flatnonzero(present)
        if frames.size:
            theta = np.zeros(n)
            theta[frames] = np.array(self._truth(0, n, "theta"), dtype=object)[frames].astype(float)
            ranges = np.array(self._truth(0, n, "range"), dtype=object)[frames].astype(float)
            steering = states.rows(theta, p.wavelength)[frames]  # (B1, K): each frame's own array
            gain = psi[frames] * array_gain(steering, precoders[frames])
            delay = range_steering(ranges, p).T  # (B1, S)
            add_target_echo(out, frames, gain, steering, symbols[frames], delay, p.n_subcarriers)
        base = self.nitems_written(0)
        for i in range(n):
            self.add_tag(0, base + i, TRUE_ARRAY_TAG, states.array(i))
            self.add_tag(0, base + i, "temperature", float(states.temperature[i]))
        return n

