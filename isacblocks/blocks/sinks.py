"""Metric sinks: detection / positioning (Pmd at a fixed Pfa, RMSE) and symbol error rate."""

from __future__ import annotations

import numpy as np

from ..core import SinkBlock
from ..dsp.detection import proportion_interval
from ..dsp.metrics import DetectionReport, detection_report
from ..errors import ConfigError
from ..params import SystemParams
from .items import ESTIMATE_ITEM, INVALID_FRAME_KEY


class DetectionMetricsSink(SinkBlock):
    """Collects ``[statistic, theta_hat, range_hat]`` items with the truth tags
    (``target_present``, ``theta``, ``range``) and reports Pmd at `pfa` (threshold from
    the H0 frames, or a given `threshold`), a Pfa check and the RMSEs.

    Frames whose estimate holds NaN or Inf, or that carry an ``invalid_frame`` tag (put
    there by a receiver that saw NaN or Inf in the frame), are counted in `invalid_frames`
    and left out of every metric.
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
        self.reset()

    def reset(self) -> None:
        self._chunks: list[np.ndarray] = []
        self.invalid_frames = 0

    def work(self, inputs, outputs):
        est = inputs[0]
        n = len(est)
        present = self.frame_tags(0, n, "target_present")
        theta = self.frame_tags(0, n, "theta")
        ranges = self.frame_tags(0, n, "range")
        rows = np.empty((n, 6))
        rows[:, :3] = est
        rows[:, 3] = [np.nan if p is None else float(p) for p in present]
        rows[:, 4] = [np.nan if t is None else t for t in theta]
        rows[:, 5] = [np.nan if r is None else r for r in ranges]
        finite = np.all(np.isfinite(est), axis=1)
        finite &= np.array([not flag for flag in self.frame_tags(0, n, INVALID_FRAME_KEY)], dtype=bool)
        self.invalid_frames += int(np.count_nonzero(~finite))
        self._chunks.append(rows[finite])
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
    """Symbol error rate: inputs ``decided`` and ``sent`` message indices (S,) int32."""

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
