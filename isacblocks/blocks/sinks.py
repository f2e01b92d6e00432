"""Metric sinks: detection / positioning (Pmd at a fixed Pfa, RMSE) and symbol error rate."""

from __future__ import annotations

import numpy as np

from ..core import SinkBlock
from ..dsp.detection import proportion_interval
from ..dsp.maprt import _SECTOR_SLACK, check_sectors
from ..dsp.metrics import DetectionReport, detection_report
from ..errors import ConfigError
from ..params import SystemParams
from ..validation import is_integer, is_real
from .items import ESTIMATE_ITEM, INVALID_FRAME_KEY


def _finite(value) -> float | None:
    """`value` as a finite float, or None (not a real number, NaN, infinite, or beyond float)."""
    if not is_real(value):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if np.isfinite(number) else None


class TruthCheck:
    """The rule a frame's ground truth must follow to be scored; ``check(present, theta, range,
    sector)`` (the values of the tags ``target_present``, ``theta``, ``range``, ``sector``; None
    where a tag is missing) returns None, or why not (naming the tag, its value and the rule).

    ``target_present`` is 0, 1, True or False.  A ``sector`` is four finite numbers
    ``(theta_min, theta_max, r_min, r_max)`` inside ``[-pi/2, pi/2]`` rad and the system's
    range interval, min < max (the estimators' rule, `check_sectors`).  ``theta`` and
    ``range`` are finite and inside the frame's sector (without one: inside ``[-pi/2, pi/2]``
    and the range interval).  With `complete` (frames that crossed a link, which nothing
    upstream checked) the sector must be there, and theta and range on a target frame.
    """

    def __init__(self, params: SystemParams, complete: bool = False):
        self.params = params
        self.complete = complete
        self._valid_sector: tuple | None = None  # the last sector found valid (they repeat)

    def __call__(self, present, theta, range_, sector) -> str | None:
        if not ((is_integer(present) or isinstance(present, (bool, np.bool_))) and present in (0, 1)):
            return f"target_present = {present!r}: must be 0, 1, True or False"
        p = self.params
        bounds = (-np.pi / 2, np.pi / 2, p.range_min_m, p.range_max_m)
        if sector is not None or self.complete:
            why = self._sector_problem(sector)
            if why:
                return why
            bounds = sector
        for key, value, (lo, hi), unit in (("theta", theta, bounds[:2], "rad"), ("range", range_, bounds[2:], "m")):
            if value is None:
                if self.complete and present:
                    return f"a target frame without its {key!r} tag"
                continue
            slack = _SECTOR_SLACK * max(1.0, abs(hi))
            number = _finite(value)
            if number is None or not lo - slack <= number <= hi + slack:
                return f"{key} = {value!r}: must be a finite number in [{lo:g}, {hi:g}] {unit} (the frame's sector)"
        return None

    def _sector_problem(self, sector) -> str | None:
        if sector is None:
            return "no 'sector' tag"
        sequence = isinstance(sector, (tuple, list)) or (isinstance(sector, np.ndarray) and sector.ndim == 1)
        if not (sequence and len(sector) == 4 and all(is_real(v) for v in sector)):
            return f"sector = {sector!r}: must be four numbers (theta_min, theta_max, r_min, r_max)"
        if tuple(sector) == self._valid_sector:
            return None
        try:
            values = [_finite(v) for v in sector]
            check_sectors(*(np.array([np.nan if v is None else v]) for v in values), self.params, "sector")
        except ConfigError as exc:
            return f"sector = {tuple(sector)!r}: " + str(exc).split(": ", 3)[-1]
        self._valid_sector = tuple(sector)
        return None


class DetectionMetricsSink(SinkBlock):
    """Collects ``[statistic, theta_hat, range_hat]`` items with the truth tags
    (``target_present``, ``theta``, ``range``) and reports Pmd at `pfa` (threshold from
    the H0 frames, or a given `threshold`), a Pfa check and the RMSEs.

    Frames whose estimate holds NaN or Inf, or that carry an ``invalid_frame`` tag (put
    there by a receiver that saw NaN or Inf in the frame), are counted in `invalid_frames`
    and left out of every metric.  Frames whose truth tags break `TruthCheck` (e.g.
    ``target_present = 2``, a NaN range) are counted in `bad_truth` (the last reason in
    `last_bad_truth`) and left out too, so every record is an H0 or an H1 frame.

    Input
    -----
    estimate : [n, 3], float64
        Estimator rows, with the truth tags of the scenario source.
    """

    def __init__(self, params: SystemParams, pfa: float | None = None, threshold: float | None = None, name=None):
        self.params = params
        super().__init__(in_sig=[("estimate", np.float64, ESTIMATE_ITEM)], name=name)
        self.pfa = params.pfa if pfa is None else float(pfa)
        if not 0.0 < self.pfa < 1.0:
            raise ConfigError(f"{self.name}: pfa = {pfa!r}: must lie in (0, 1)")
        if threshold is not None:
            try:
                finite = bool(np.isfinite(float(threshold)))
            except (TypeError, ValueError):
                finite = False
            if not finite:
                raise ConfigError(f"{self.name}: threshold = {threshold!r}: must be a finite number or None")
        self.threshold = threshold
        self.truth = TruthCheck(params)
        self.reset()

    def reset(self) -> None:
        self._chunks: list[np.ndarray] = []
        self.invalid_frames = 0
        self.bad_truth = 0
        self.last_bad_truth: str | None = None

    def work(self, inputs, outputs):
        est = inputs[0]
        n = len(est)
        present = self.frame_tags(0, n, "target_present")
        theta = self.frame_tags(0, n, "theta")
        ranges = self.frame_tags(0, n, "range")
        problems = [self.truth(*truth) for truth in zip(present, theta, ranges, self.frame_tags(0, n, "sector"))]
        good = np.array([why is None for why in problems], dtype=bool)
        if not good.all():
            self.bad_truth += int(np.count_nonzero(~good))
            index = int(np.flatnonzero(~good)[-1])
            self.last_bad_truth = f"item {self.nitems_read(0) + index}: {problems[index]}"
        rows = np.full((n, 6), np.nan)
        rows[:, :3] = est
        keep = np.flatnonzero(good)
        for column, values in ((3, present), (4, theta), (5, ranges)):
            rows[keep, column] = [np.nan if values[i] is None else float(values[i]) for i in keep]
        finite = np.all(np.isfinite(est), axis=1)
        finite &= np.array([not flag for flag in self.frame_tags(0, n, INVALID_FRAME_KEY)], dtype=bool)
        self.invalid_frames += int(np.count_nonzero(~finite & good))
        self._chunks.append(rows[finite & good])
        return n

    @property
    def records(self) -> np.ndarray:
        """(n, 6): statistic, theta_hat, range_hat, target_present, theta, range (NaN when unknown)."""
        return np.concatenate(self._chunks) if self._chunks else np.empty((0, 6))

    def h0_statistics(self) -> np.ndarray:
        rec = self.records
        return rec[rec[:, 3] == 0, 0]

    def report(self, threshold: float | None = None) -> DetectionReport:
        return records_report(self.records, self.pfa, threshold if threshold is not None else self.threshold)


def records_report(records: np.ndarray, pfa: float, threshold: float | None = None) -> DetectionReport:
    """`detection_report` of `DetectionMetricsSink.records` (rows of one or several runs)."""
    h0 = records[records[:, 3] == 0]
    h1 = records[records[:, 3] == 1]
    return detection_report(h0[:, 0], h1[:, 0], h1[:, 1], h1[:, 2], h1[:, 4], h1[:, 5], pfa, threshold)


class SERSink(SinkBlock):
    """Symbol error rate: inputs ``decided`` and ``sent`` message indices (S,) int32.

    Input
    -----
    decided : [n, S], int32
        The demapper's decisions.
    sent : [n, S], int32
        The transmitted indices.
    """

    def __init__(self, params: SystemParams, name=None):
        s = params.n_subcarriers
        self.params = params
        super().__init__(in_sig=[("decided", np.int32, s), ("sent", np.int32, s)], name=name)
        self.reset()

    def reset(self) -> None:
        self.errors = 0
        self.symbols = 0

    def work(self, inputs, outputs):
        decided, sent = inputs
        self.errors += int(np.count_nonzero(decided != sent))
        self.symbols += decided.size
        return len(decided)

    @property
    def ser(self) -> float:
        return self.errors / self.symbols if self.symbols else float("nan")

    def report(self) -> dict:
        """SER with a Clopper-Pearson interval (symbols of one frame share a channel, so the
        interval is optimistic when few frames were seen)."""
        return {"ser": self.ser, "ser_ci": proportion_interval(self.errors, self.symbols),
                "errors": self.errors, "symbols": self.symbols}
