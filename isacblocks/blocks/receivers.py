"""Receiver blocks: reciprocal filter (eq. 7), MAPRT detector (eq. 9-10), ML demapper."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from ..core import SyncBlock
from ..dsp.angle_delay import PEAK_METHODS, AngleDelayGrid, AngleDelaySearch, resolve_device
from ..dsp.comm import constellation, ml_demap
from ..dsp.maprt import maprt
from ..dsp.mbml import estimate, sector_rows
from ..dsp.receiver import reciprocal_filter
from ..errors import ConfigError
from ..params import SystemParams
from ..validation import check_int, check_sector
from .items import ESTIMATE_ITEM, INVALID_FRAME_KEY, SPACING_SETTING, required_tags


class ReciprocalFilter(SyncBlock):
    """``Y~ = Y (/) 1 x^T(m)`` (eq. 7): inputs ``Y_r`` (K, S) and ``symbols`` (S,), output ``Y_tilde``.

    Input
    -----
    Y_r : [n, K, S], complex64
        The received sensing frames.
    symbols : [n, S], complex64
        The symbols each frame carried.

    Output
    ------
    Y_tilde : [n, K, S], complex64
        The filtered frames (eq. 7).
    """

    def __init__(self, params: SystemParams, name=None):
        k, s = params.n_antennas, params.n_subcarriers
        self.params = params
        super().__init__(in_sig=[("Y_r", np.complex64, (k, s)), ("symbols", np.complex64, s)],
                         out_sig=[("Y_tilde", np.complex64, (k, s))], name=name)

    def work(self, inputs, outputs):
        reciprocal_filter(inputs[0], inputs[1], out=outputs[0])
        return len(inputs[0])


class SensingEstimator(SyncBlock):
    """Base of the sensing receivers: ``Y_tilde`` (K, S) in, ``[statistic, theta_hat, range_hat]`` out.

    The prior sector comes from each frame's ``sector`` tag, or from a fixed `sector`
    ``(theta_min, theta_max)`` (rad) over the system's range interval.  The array the
    receiver assumes (a spacing vector, or an `ArrayImpairments` with gains and coupling)
    can be replaced at run time through message port ``spacing``.
    `device`: "cpu" (Numba kernel on the cores) or "cuda" (the CUDA backend of
    `isacblocks.dsp.angle_delay`); "cuda" without a usable CUDA device raises
    `ConfigError` here, at construction.

    A frame holding NaN or Inf gets a non-finite statistic (each frame is estimated on its
    own, so the other frames of the batch are unaffected): its output item is set to NaN,
    carries the tag ``invalid_frame`` (value True) and is counted in `invalid_frames`.
    `DetectionMetricsSink` leaves such frames out of its metrics.

    Input
    -----
    Y_tilde : [n, K, S], complex64
        The reciprocal-filtered frames (eq. 7).

    Output
    ------
    estimate : [n, 3], float64
        ``[statistic, theta_hat (rad), range_hat (m)]`` per frame.

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

    def __init__(self, params: SystemParams, spacing=None, sector=None, name=None, device="cpu"):
        k, s = params.n_antennas, params.n_subcarriers
        super().__init__(in_sig=[("Y_tilde", np.complex64, (k, s))],
                         out_sig=[("estimate", np.float64, ESTIMATE_ITEM)], name=name)
        self.params = params
        self.device = resolve_device(device, self.name)
        self.sector = None if sector is None else (*check_sector(self.name, "sector", sector),
                                                   params.range_min_m, params.range_max_m)
        self.invalid_frames = 0
        self.apply_settings({"spacing": params.nominal_spacing if spacing is None else spacing})

    def sectors(self, n: int) -> np.ndarray:
        """Per-frame prior sectors of this call, (n, 4)."""
        if self.sector is not None:
            return np.tile(self.sector, (n, 1))
        return np.array(required_tags(self, 0, n, "sector"), dtype=np.float64).reshape(n, 4)

    def estimate(self, Y_tilde, sectors):
        raise TypeError(f"{type(self).__name__} does not define estimate()")

    def work(self, inputs, outputs):
        Y_tilde, out = inputs[0], outputs[0]
        n = len(Y_tilde)
        stat, theta, rng = self.estimate(Y_tilde, self.sectors(n))
        out[:n, 0], out[:n, 1], out[:n, 2] = stat, theta, rng
        # The kernel estimates each frame on its own, and a NaN or Inf anywhere in a frame reaches
        # every entry of its map: the statistic is not finite exactly for such frames.
        invalid = np.flatnonzero(~np.isfinite(stat))
        if invalid.size:
            out[invalid] = np.nan
            base = self.nitems_written(0)
            for index in invalid:
                self.add_tag(0, base + int(index), INVALID_FRAME_KEY, True)
            self.invalid_frames += int(invalid.size)
        return n


class MAPRTDetector(SensingEstimator):
    """The model-based baseline: MAPRT statistic and grid estimates (eq. 9-10) on a
    `n_theta` x `n_range` grid spread over each frame's prior sector (default: the sizes of
    the system's grids, ``params.n_angle_grid`` x ``params.n_range_grid``).

    Input
    -----
    Y_tilde : [n, K, S], complex64
        The reciprocal-filtered frames (eq. 7).

    Output
    ------
    estimate : [n, 3], float64
        ``[statistic, theta_hat (rad), range_hat (m)]`` (eq. 9-10).

    Settings
    --------
    spacing
        The array the block assumes: a spacing vector (K,) in m, or an `ArrayImpairments`.

    Messages
    --------
    spacing (in)
        A new ``spacing``, as ``{"spacing": value}`` on port ``settings``.
    """

    def __init__(self, params: SystemParams, spacing=None, sector=None, n_theta: int | None = None,
                 n_range: int | None = None, name: str | None = None, device: str = "cpu"):
        super().__init__(params, spacing, sector, name=name, device=device)
        self.n_theta = check_int(self.name, "n_theta", params.n_angle_grid if n_theta is None else n_theta, 1)
        self.n_range = check_int(self.name, "n_range", params.n_range_grid if n_range is None else n_range, 1)

    def estimate(self, Y_tilde, sectors):
        return maprt(Y_tilde, sectors[:, 0], sectors[:, 1], sectors[:, 2], sectors[:, 3], self.spacing,
                     self.params, self.n_theta, self.n_range, device=self.device)


#: The forms of the MB-ML map an `MBMLEstimator` can use: "auto" picks per sector (the default).
MBML_METHODS = ("auto", *PEAK_METHODS)

#: Frames of one prior sector after which "auto" computes that sector in the low-rank form.
LOWRANK_AFTER = 8

#: Sectors whose frames "auto" counts (the most recent ones; as many as the low-rank factors cached).
LOWRANK_SECTORS = 64


class MBMLEstimator(SensingEstimator):
    """The model-based learned receiver: Algorithm 1 (eq. 15-19) with spacing ``d``.

    Searches the ``params.angle_grid`` points inside each frame's sector and the
    ``params.range_grid`` (Numba kernel), soft-max over the eq.-17 window.  The block owns its
    `AngleDelaySearch` (`search`); a learned ``d`` arrives on message port ``spacing`` while the
    flowgraph runs and recreates it.

    `method` (the form of the map, cpu only): "fused" (the Numba kernel), "lowrank"
    (`dsp.angle_delay.lowrank`: the low-rank factor of the sector's steering rows, about 60 %
    of the FLOPs once the sector's SVD, about a millisecond, is cached), or "auto" (the
    default): the low-rank form for a frame whose prior sector (its rows of the angle grid) has
    come in at least `lowrank_after` frames so far, the fused kernel before -- so a fixed
    sector (the test sector, a few beams) runs low-rank and a new sector in every frame
    (training sectors) never pays for an SVD it would not reuse.  Both forms give the
    statistic to float32 rounding and the same grid cell up to ties at float32 precision
    (tests/dsp/test_lowrank_receiver.py); frames holding NaN or Inf always take the fused kernel.
    The choice depends only on the frames up to this one, never on how the stream is cut into
    batches, and each form's output for a frame depends on that frame alone: the same stream
    gives bit-identical estimates in any batches, in one process and over a link.
    `lowrank_frames` / `frames` count the frames of the run and the low-rank ones.

    Input
    -----
    Y_tilde : [n, K, S], complex64
        The reciprocal-filtered frames (eq. 7).

    Output
    ------
    estimate : [n, 3], float64
        ``[statistic, theta_hat (rad), range_hat (m)]`` (Alg. 1, eq. 15-19).

    Settings
    --------
    spacing
        The array the block assumes: a spacing vector (K,) in m, or an `ArrayImpairments`.

    Messages
    --------
    spacing (in)
        A new ``spacing``, as ``{"spacing": value}`` on port ``settings``.
    """

    def __init__(self, params: SystemParams, spacing=None, sector=None, name=None, device="cpu", method="auto",
                 lowrank_after: int = LOWRANK_AFTER):
        self.search = None
        super().__init__(params, spacing, sector, name=name, device=device)
        if method not in MBML_METHODS:
            raise ConfigError(f"{self.name}: method = {method!r}: expected one of {', '.join(map(repr, MBML_METHODS))}")
        if method == "lowrank" and self.device != "cpu":
            raise ConfigError(f"{self.name}: method = {method!r} runs on the cpu, not on device = {self.device!r}")
        self.method = method
        self.lowrank_after = check_int(self.name, "lowrank_after", lowrank_after, 1)
        self.reset()

    def settings_changed(self, old, new) -> None:
        if "spacing" not in new:
            return
        if self.search is None:
            self.search = AngleDelaySearch(AngleDelayGrid.of(self.params), self.spacing, self.device, owner=self.name)
        else:
            self.search.recreate(self.spacing)

    def reset(self) -> None:
        self._seen: OrderedDict = OrderedDict()  # sector rows -> frames seen
        self.lowrank_frames = 0
        self.frames = 0

    def estimate(self, Y_tilde, sectors):
        n = len(Y_tilde)
        lowrank = self._lowrank(sectors) if self.method == "auto" else np.full(n, self.method == "lowrank")
        self.frames += n
        self.lowrank_frames += int(lowrank.sum())
        if lowrank.all() or not lowrank.any():
            return estimate(self.search, Y_tilde, sectors[:, 0], sectors[:, 1], sectors[:, 2], sectors[:, 3],
                            method="lowrank" if lowrank.all() else "fused")
        out = [np.empty(n) for _ in range(3)]
        for mask, method in ((lowrank, "lowrank"), (~lowrank, "fused")):
            index = np.flatnonzero(mask)
            part = estimate(self.search, Y_tilde[index], *(sectors[index, k] for k in range(4)), method=method)
            for whole, piece in zip(out, part):
                whole[index] = piece
        return tuple(out)

    def _lowrank(self, sectors) -> np.ndarray:
        """Per frame, in order: whether its sector has now come in `lowrank_after` frames (counted per rows)."""
        if self.device != "cpu":
            return np.zeros(len(sectors), dtype=bool)
        lo, hi = sector_rows(sectors[:, 0], sectors[:, 1], self.params)
        seen = self._seen
        lowrank = np.zeros(len(sectors), dtype=bool)
        for k, key in enumerate(zip(lo.tolist(), hi.tolist())):
            count = seen.pop(key, 0) + 1
            seen[key] = count
            if len(seen) > LOWRANK_SECTORS:
                seen.popitem(last=False)
            lowrank[k] = count >= self.lowrank_after
        return lowrank

    def describe(self) -> str:
        """The form, and for "auto" how many frames took the low-rank one."""
        if self.method != "auto":
            return self.method
        return f"auto: low-rank for {self.lowrank_frames} of {self.frames} frames"


class MLDemapper(SyncBlock):
    """Per-subcarrier ML symbol decisions with CSI: inputs ``y_c`` and ``csi`` (S,), output
    ``messages`` int32 (S,) (Sec. III-C).

    Input
    -----
    y_c : [n, S], complex64
        The UE's received subcarriers.
    csi : [n, S], complex64
        The channel per subcarrier.

    Output
    ------
    messages : [n, S], int32
        The decided constellation indices.
    """

    def __init__(self, params: SystemParams, name=None):
        s = params.n_subcarriers
        self.params = params
        super().__init__(in_sig=[("y_c", np.complex64, s), ("csi", np.complex64, s)],
                         out_sig=[("messages", np.int32, s)], name=name)
        self.points = constellation(params.constellation)

    def work(self, inputs, outputs):
        outputs[0][:] = ml_demap(inputs[0], inputs[1], self.points)
        return len(inputs[0])
