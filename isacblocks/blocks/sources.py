"""Sources: the scenario (targets and prior sectors, as tags) and the QPSK symbols."""

from __future__ import annotations

import numpy as np

from ..core import WORK_DONE, SourceBlock
from ..dsp.comm import constellation
from ..dsp.scenario import training_sectors
from ..errors import ConfigError
from ..params import SystemParams
from ..seeding import random_streams
from ..validation import check_int, check_real, check_sector
from .items import SECTOR_ITEM


class ScenarioSource(SourceBlock):
    """Per frame: the prior sector as the item ``[theta_min, theta_max, r_min, r_max]`` and the
    ground truth as tags (Sec. II-A).

    Tags on every item: ``seq`` (frame number), ``target_present`` (bool), ``sector``
    (the item as a tuple); on frames with a target also ``theta`` (rad) and ``range`` (m).

    `sector` is ``"test"`` (the test sector), ``"train"`` (a random sector per frame,
    Sec. V-A) or a fixed ``(theta_min, theta_max)`` in radians.  Presence is drawn with
    probability `presence_probability`, or alternates 0, 1, 0, ... with ``alternate=True``.

    Output
    ------
    sector : [n, 4], float64
        ``[theta_min, theta_max, r_min, r_max]`` per frame, with the truth tags.
    """

    def __init__(self, params: SystemParams, n_frames: int | None = None, sector="test",
                 presence_probability: float = 0.5, alternate: bool = False, seed=0, name=None):
        super().__init__(out_sig=[("sector", np.float64, SECTOR_ITEM)], name=name)
        presence_probability = check_real(self.name, "presence_probability", presence_probability, 0.0, 1.0)
        if isinstance(sector, str) and sector not in ("test", "train"):
            raise ConfigError(f"{self.name}: sector = {sector!r}: expected 'test', 'train' or (theta_min, theta_max)")
        if not isinstance(sector, str):
            sector = check_sector(self.name, "sector", sector)
        self.params = params
        self.n_frames = None if n_frames is None else check_int(self.name, "n_frames", n_frames, 0)
        self.sector = params.test_sector if sector == "test" else sector
        self.presence_probability = presence_probability
        self.alternate = alternate
        self.seed = seed
        self._reset()

    def _reset(self) -> None:
        self._rng = random_streams(self.seed, ("presence", "sector", "theta", "range"))
        self._count = 0

    def start(self) -> None:
        self._reset()

    def work(self, inputs, outputs):
        out = outputs[0]
        n = len(out) if self.n_frames is None else min(len(out), self.n_frames - self._count)
        if n <= 0:
            return WORK_DONE
        p = self.params
        if self.sector == "train":
            theta_min, theta_max = training_sectors(self._rng["sector"], p, n)
        else:
            theta_min, theta_max = np.full(n, self.sector[0]), np.full(n, self.sector[1])
        if self.alternate:
            present = (np.arange(self._count, self._count + n) % 2) == 1
        else:
            present = self._rng["presence"].random(n) < self.presence_probability
        theta = theta_min + (theta_max - theta_min) * self._rng["theta"].random(n)
        ranges = p.range_min_m + (p.range_max_m - p.range_min_m) * self._rng["range"].random(n)
        out[:n, 0], out[:n, 1] = theta_min, theta_max
        out[:n, 2], out[:n, 3] = p.range_min_m, p.range_max_m
        base = self.nitems_written(0)
        for i in range(n):
            offset = base + i
            self.add_tag(0, offset, "seq", self._count + i)
            self.add_tag(0, offset, "sector", tuple(float(v) for v in out[i]))
            self.add_tag(0, offset, "target_present", bool(present[i]))
            if present[i]:
                self.add_tag(0, offset, "theta", float(theta[i]))
                self.add_tag(0, offset, "range", float(ranges[i]))
        self._count += n
        return n


class SymbolSource(SourceBlock):
    """Uniform QPSK messages ``m`` and their symbols ``x(m)`` (pi/4-rotated), one (S,) item per frame.

    Outputs: ``symbols`` complex64 (S,), ``messages`` int32 (S,).

    Output
    ------
    symbols : [n, S], complex64
        The constellation points per frame.
    messages : [n, S], int32
        Their indices.
    """

    def __init__(self, params: SystemParams, n_frames: int | None = None, seed=0, name=None):
        s = params.n_subcarriers
        super().__init__(out_sig=[("symbols", np.complex64, s), ("messages", np.int32, s)], name=name)
        self.params = params
        self.points = constellation(params.constellation)
        self.n_frames = None if n_frames is None else check_int(self.name, "n_frames", n_frames, 0)
        self.seed = seed
        self._reset()

    def _reset(self) -> None:
        self._rng = random_streams(self.seed, ("messages",))["messages"]
        self._count = 0

    def start(self) -> None:
        self._reset()

    def work(self, inputs, outputs):
        symbols, messages = outputs
        n = len(symbols) if self.n_frames is None else min(len(symbols), self.n_frames - self._count)
        if n <= 0:
            return WORK_DONE
        messages[:n] = self._rng.integers(0, len(self.points), size=messages[:n].shape, dtype=np.int32)
        symbols[:n] = self.points[messages[:n]]
        self._count += n
        return n
