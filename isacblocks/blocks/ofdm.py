"""OFDM modulation: frequency-domain symbols (eq. 1) or time-domain waveforms with a cyclic prefix."""

from __future__ import annotations

import numpy as np

from ..core import SyncBlock
from ..errors import ConfigError
from ..params import SystemParams
from ..validation import is_integer


class OFDMModulator(SyncBlock):
    """Map a frame of S subcarrier symbols to the transmitted OFDM symbol.

    With ``time_domain=False`` (the model of eq. 1, the default) the output is the
    frequency-domain symbol vector ``x(m)`` itself (S,).  With ``time_domain=True`` it is
    the unitary IFFT of ``x(m)`` preceded by a cyclic prefix of `cyclic_prefix`
    samples, shape (cyclic_prefix + S,), for users who want waveforms.

    Input
    -----
    symbols : [n, S], complex64
        Frequency-domain symbols.

    Output
    ------
    ofdm : [n, S], complex64
        ``x(m)`` itself; with ``time_domain=True`` [n, cyclic_prefix + S], the time-domain symbols.
    """

    def __init__(self, params: SystemParams, time_domain: bool = False, cyclic_prefix: int = 0, name=None):
        s = params.n_subcarriers
        if not is_integer(cyclic_prefix) or not 0 <= cyclic_prefix <= s:
            raise ConfigError(f"OFDMModulator.cyclic_prefix = {cyclic_prefix!r}: must be an integer in [0, S={s}]")
        if cyclic_prefix and not time_domain:
            raise ConfigError(f"OFDMModulator.cyclic_prefix = {cyclic_prefix!r}: needs time_domain=True")
        out_len = s + cyclic_prefix if time_domain else s
        self.params = params
        super().__init__(in_sig=[("symbols", np.complex64, s)], out_sig=[("ofdm", np.complex64, out_len)],
                         name=name)
        self.time_domain = time_domain
        self.cyclic_prefix = cyclic_prefix

    def work(self, inputs, outputs):
        x, out = inputs[0], outputs[0]
        if not self.time_domain:
            out[:] = x
        else:
            waveform = np.fft.ifft(x, axis=-1, norm="ortho")
            cp = self.cyclic_prefix
            out[:, cp:] = waveform
            if cp:
                out[:, :cp] = waveform[:, -cp:]
        return len(x)


class OFDMDemodulator(SyncBlock):
    """Inverse of the time-domain `OFDMModulator`: drop the cyclic prefix, unitary FFT.

    Input
    -----
    ofdm : [n, cyclic_prefix + S], complex64
        Time-domain OFDM symbols.

    Output
    ------
    symbols : [n, S], complex64
        Frequency-domain symbols.
    """

    def __init__(self, params: SystemParams, cyclic_prefix: int = 0, name=None):
        s = params.n_subcarriers
        if not is_integer(cyclic_prefix) or not 0 <= cyclic_prefix <= s:
            raise ConfigError(f"OFDMDemodulator.cyclic_prefix = {cyclic_prefix!r}: must be an integer in [0, S={s}]")
        self.params = params
        super().__init__(in_sig=[("ofdm", np.complex64, s + cyclic_prefix)],
                         out_sig=[("symbols", np.complex64, s)], name=name)
        self.cyclic_prefix = cyclic_prefix

    def work(self, inputs, outputs):
        outputs[0][:] = np.fft.fft(inputs[0][:, self.cyclic_prefix:], axis=-1, norm="ortho")
        return len(inputs[0])
