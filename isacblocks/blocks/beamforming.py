"""Transmit beamforming blocks: LS sector precoder (eq. 5-6) and ISAC combiner (eq. 4)."""

from __future__ import annotations

import numpy as np

from ..core import SyncBlock
from ..core.messages import Setting
from ..dsp.cache import LRUCache
from ..dsp.impairments import array_steering
from ..dsp.precoder import beampattern_precoder, isac_precoder, ls_solution, sector_beampattern
from ..errors import ConfigError
from ..params import SystemParams
from ..validation import check_int, check_real, check_sector
from .items import SECTOR_ITEM, SPACING_SETTING


class SectorBeamformer(SyncBlock):
    """The LS beampattern precoder for each frame's prior sector (eq. 5-6).

    Input ``sector`` items ``[theta_min, theta_max, r_min, r_max]``; output a unit-norm
    precoder (K,) complex64 per frame.  With a `fixed_sector` ``(min, max)`` (rad), the
    input only paces the block (one precoder per frame) and its values are ignored:
    that is the communication precoder ``f_c`` for the UE sector.

    `spacing` is the array the precoder assumes: a spacing vector (the known impairment,
    lambda/2, or a learned one) or an `ArrayImpairments` with gains and coupling too; a new
    one arrives on message port ``spacing``.

    `batch_solve`: solve the new sectors of a work() call in one least-squares call (one SVD of
    ``A_tx^T`` for all of them) instead of one per sector: about 40x faster where sectors never
    repeat (random training sectors); the precoders agree to about 1e-15, but a few complex64
    entries differ in their last bit from the per-sector solve, so it is off by default.

    Input
    -----
    sector : [n, 4], float64
        ``[theta_min, theta_max, r_min, r_max]`` (rad, m) per frame.

    Output
    ------
    precoder : [n, K], complex64
        The unit-norm LS precoder of each frame (eq. 5-6).

    Settings
    --------
    spacing
        The array the block assumes: a spacing vector (K,) in m, or an `ArrayImpairments`.

    Messages
    --------
    spacing (in)
        A new ``spacing``, as ``{"spacing": value}`` on port ``settings``.
    """

    settings = {"spacing": SPACING_SETTING}
    setting_ports = {"spacing": "spacing"}

    def __init__(self, params: SystemParams, spacing=None, fixed_sector=None, cache_size: int = 256,
                 batch_solve: bool = False, name=None):
        super().__init__(in_sig=[("sector", np.float64, SECTOR_ITEM)],
                         out_sig=[("precoder", np.complex64, params.n_antennas)], name=name)
        self.params = params
        if fixed_sector is not None:
            fixed_sector = check_sector(self.name, "fixed_sector", fixed_sector)
        self.fixed_sector = fixed_sector
        if not isinstance(batch_solve, bool):
            raise ConfigError(f"{self.name}: batch_solve = {batch_solve!r}: expected True or False")
        self.batch_solve = batch_solve
        self._cache = LRUCache(check_int(self.name, "cache_size", cache_size, 1))
        self.apply_settings({"spacing": params.nominal_spacing if spacing is None else spacing})

    def settings_changed(self, old, new) -> None:
        if "spacing" in new:
            self._cache.clear()
            self._steering = None  # A_tx^T of this spacing on the grid, formed at the next batch

    def precoder(self, theta_min: float, theta_max: float) -> np.ndarray:
        key = (float(theta_min), float(theta_max))
        return self._cache.get(key, lambda: beampattern_precoder(*key, self.spacing, self.params))

    def work(self, inputs, outputs):
        sectors, out = inputs[0], outputs[0]
        if self.fixed_sector is not None:
            out[:] = self.precoder(*self.fixed_sector)
            return len(sectors)
        keys = [(float(lo), float(hi)) for lo, hi in sectors[:, :2]]
        solved = {}
        if self.batch_solve:
            new = [key for key in dict.fromkeys(keys) if key not in self._cache.entries]
            solved = dict(zip(new, self._solve(new))) if len(new) > 1 else {}
        for key, f in solved.items():
            self._cache.get(key, lambda f=f: f)
        for i, key in enumerate(keys):
            out[i] = solved[key] if key in solved else self.precoder(*key)
        return len(sectors)

    def _solve(self, keys: list[tuple[float, float]]) -> np.ndarray:
        """`beampattern_precoder` of several sectors at once, (B, K) complex128."""
        lo, hi = np.array(keys).T
        desired = sector_beampattern(lo, hi, self.params)
        bad = np.flatnonzero(~(lo < hi) | ~desired.any(axis=1))
        if bad.size:  # its error message
            beampattern_precoder(*keys[bad[0]], self.spacing, self.params)
        if self._steering is None:
            self._steering = array_steering(self.params.angle_grid, self.spacing, self.params.wavelength).T
        return ls_solution(self._steering, desired.T).T


class ISACCombiner(SyncBlock):
    """``f = (sqrt(eta) f_r + sqrt(1-eta) e^{j phi} f_c) / ||.||`` (eq. 4) per frame.

    Inputs ``f_sensing`` and ``f_comm`` (K,), output ``precoder`` (K,).  `eta` and `phi`
    can be changed while running through message port ``tradeoff`` (a dict with keys
    ``eta`` and/or ``phi``).

    Input
    -----
    f_sensing : [n, K], complex64
        The sensing precoder ``f_r``.
    f_comm : [n, K], complex64
        The communication precoder ``f_c``.

    Output
    ------
    precoder : [n, K], complex64
        The combined unit-norm precoder (eq. 4).

    Settings
    --------
    eta
        The sensing share, 0..1.
    phi
        The phase of the communication beam (rad).

    Messages
    --------
    tradeoff (in)
        A dict with ``eta`` and/or ``phi``, as on port ``settings``.
    """

    settings = {"eta": Setting(lambda block, value: check_real(block.name, "eta", value, 0.0, 1.0),
                               "the sensing share, 0..1"),
                "phi": Setting(lambda block, value: check_real(block.name, "phi", value),
                               "the phase of the communication beam (rad)")}
    setting_ports = {"tradeoff": ("eta", "phi")}

    def __init__(self, params: SystemParams, eta: float = 1.0, phi: float = 0.0, name=None):
        k = params.n_antennas
        self.params = params
        super().__init__(in_sig=[("f_sensing", np.complex64, k), ("f_comm", np.complex64, k)],
                         out_sig=[("precoder", np.complex64, k)], name=name)
        self.apply_settings({"eta": eta, "phi": phi})

    def work(self, inputs, outputs):
        f_r, f_c = inputs
        out = outputs[0]
        for i in range(len(f_r)):
            out[i] = isac_precoder(f_r[i], f_c[i], self.eta, self.phi)
        return len(f_r)
