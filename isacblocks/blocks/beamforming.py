"""Transmit beamforming blocks: LS sector precoder (eq. 5-6) and ISAC combiner (eq. 4)."""

from __future__ import annotations

import numpy as np

from ..core import SyncBlock
from ..dsp.cache import LRUCache
from ..dsp.impairments import check_array
from ..dsp.precoder import beampattern_precoder, isac_precoder
from ..errors import ConfigError
from ..params import SystemParams
from ..validation import check_int, check_real, check_sector
from .items import SECTOR_ITEM


class SectorBeamformer(SyncBlock):
    """The LS beampattern precoder for each frame's prior sector (eq. 5-6).

    Input ``sector`` items ``[theta_min, theta_max, r_min, r_max]``; output a unit-norm
    precoder (K,) complex64 per frame.  With a `fixed_sector` ``(min, max)`` (rad), the
    input only paces the block (one precoder per frame) and its values are ignored:
    that is the communication precoder ``f_c`` for the UE sector.

    `spacing` is the array the precoder assumes: a spacing vector (the known impairment,
    lambda/2, or a learned one) or an `ArrayImpairments` with gains and coupling too; a new
    one arrives on message port ``spacing``.
    """

    def __init__(self, params: SystemParams, spacing=None, fixed_sector=None, cache_size: int = 256, name=None):
        super().__init__(in_sig=[("sector", np.float64, SECTOR_ITEM)],
                         out_sig=[("precoder", np.complex64, params.n_antennas)], name=name)
        self.params = params
        if fixed_sector is not None:
            fixed_sector = check_sector(self.name, "fixed_sector", fixed_sector)
        self.fixed_sector = fixed_sector
        self._cache = LRUCache(check_int(self.name, "cache_size", cache_size, 1))
        self.set_spacing(params.nominal_spacing if spacing is None else spacing)
        self.message_port_register_in("spacing", self.set_spacing)

    def set_spacing(self, spacing) -> None:
        self.spacing = check_array(spacing, self.params.n_antennas, f"{self.name}.spacing")
        self._cache.clear()

    def precoder(self, theta_min: float, theta_max: float) -> np.ndarray:
        key = (float(theta_min), float(theta_max))
        return self._cache.get(key, lambda: beampattern_precoder(*key, self.spacing, self.params))

    def work(self, inputs, outputs):
        sectors, out = inputs[0], outputs[0]
        for i in range(len(sectors)):
            lo, hi = self.fixed_sector or (sectors[i, 0], sectors[i, 1])
            out[i] = self.precoder(lo, hi)
        return len(sectors)


class ISACCombiner(SyncBlock):
    """``f = (sqrt(eta) f_r + sqrt(1-eta) e^{j phi} f_c) / ||.||`` (eq. 4) per frame.

    Inputs ``f_sensing`` and ``f_comm`` (K,), output ``precoder`` (K,).  `eta` and `phi`
    can be changed while running through message port ``tradeoff`` (a dict with keys
    ``eta`` and/or ``phi``).
    """

    def __init__(self, params: SystemParams, eta: float = 1.0, phi: float = 0.0, name=None):
        k = params.n_antennas
        self.params = params
        super().__init__(in_sig=[("f_sensing", np.complex64, k), ("f_comm", np.complex64, k)],
                         out_sig=[("precoder", np.complex64, k)], name=name)
        self.set_tradeoff({"eta": eta, "phi": phi})
        self.message_port_register_in("tradeoff", self.set_tradeoff)

    def set_tradeoff(self, msg: dict) -> None:
        if not isinstance(msg, dict):
            raise ConfigError(f"{self.name}: tradeoff message {msg!r}: expected a dict with 'eta' and/or 'phi'")
        eta = check_real(self.name, "eta", msg.get("eta", getattr(self, "eta", 1.0)), 0.0, 1.0)
        self.phi = check_real(self.name, "phi", msg.get("phi", getattr(self, "phi", 0.0)))
        self.eta = eta

    def work(self, inputs, outputs):
        f_r, f_c = inputs
        out = outputs[0]
        for i in range(len(f_r)):
            out[i] = isac_precoder(f_r[i], f_c[i], self.eta, self.phi)
        return len(f_r)
