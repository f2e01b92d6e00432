"""Multi-target sensing blocks: target channel with up to T targets, successive-detection
receiver, GOSPA metrics sink (`isacblocks.dsp.multitarget`, `isacblocks.dsp.gospa`)."""

from __future__ import annotations

import numpy as np

from ..core import SinkBlock, SyncBlock
from ..dsp.angle_delay import AngleDelayGrid, AngleDelaySearch, resolve_device
from ..dsp.channels import frame_noise
from ..dsp.gospa import MultiTargetReport, check_gospa_parameters, multitarget_report
from ..dsp.metrics import position
from ..dsp.multitarget import COUNT_DISTRIBUTIONS, check_max_targets, draw_scenes, scene_echo, successive_detection
from ..errors import BlockError, ConfigError
from ..seeding import seed_sequence
from ..validation import check_real, check_sector
from .channels import check_ula
from .items import SPACING_SETTING, required_tags
from .ula import ImpairedULA

#: Tag keys of the multi-target truth: the count on every frame, tuples of angles (rad) and ranges (m)
#: on frames with at least one target.
N_TARGETS_KEY, THETAS_KEY, RANGES_KEY = "n_targets", "target_thetas", "target_ranges"

#: Single-target truth keys a multi-target channel replaces by its own truth.
SINGLE_TARGET_KEYS = ("target_present", "theta", "range")

#: Columns of a `SuccessiveDetector` output row: one row per target slot.
DETECTION_COLUMNS = ("statistic", "theta_hat", "range_hat", "gain_re", "gain_im", "detected")


def copy_tags(block, ports, n: int, drop=()) -> None:
    """Copy the tags of the `n` items of input `ports` to output 0 of a sync block whose
    ``tag_propagation`` is "none", leaving out the keys in `drop`."""
    base = block.nitems_read(0)
    for port in ports:
        for tag in block.get_tags_in_range(port, base, base + n):
            if tag.key not in drop:
                block.add_tag(0, tag.offset, tag.key, tag.value, tag.srcid)


class MultiTargetChannel(SyncBlock):
    """Sensing channel with a random number of Swerling-1 targets (eq. 1 summed over targets).

    Inputs ``precoder`` f (K,) and ``symbols`` x(m) (S,), output ``Y_r`` (K, S), like
    `TargetChannel`.  Per frame: ``n`` targets, ``n`` uniform on 0..`max_targets` or
    Binomial(`max_targets`, `probability`); angles and ranges i.i.d. uniform in the frame's
    prior sector (its ``sector`` tag), redrawn until any two differ by >= delta_theta angle-grid
    steps in angle or >= delta_R range-grid steps in range (`dsp.multitarget.minimum_separation`);
    gains ``psi_t ~ CN(0, sigma_r^2)`` independent.  Each frame draws its scene from its own
    generator (spawned from `seed` by the frame's offset) and its noise as `TargetChannel`
    does, so the output does not depend on batching.

    Tags: ``n_targets`` on every frame; ``target_thetas`` and ``target_ranges`` (tuples) on
    frames with targets.  Input tags pass through, except the single-target truth
    (``target_present``, ``theta``, ``range``), which this block's truth replaces.

    Input
    -----
    precoder : [n, K], complex64
        The transmitted precoder per frame.
    symbols : [n, S], complex64
        The OFDM symbols per frame.

    Output
    ------
    Y_r : [n, K, S], complex64
        The received frame: the echoes of every target (eq. 1) plus noise.
    """

    tag_propagation = "none"

    def __init__(self, params, ula: ImpairedULA, max_targets: int = 3, distribution: str = "uniform",
                 probability: float = 0.5, seed=0, name=None):
        k, s = params.n_antennas, params.n_subcarriers
        super().__init__(in_sig=[("precoder", np.complex64, k), ("symbols", np.complex64, s)],
                         out_sig=[("Y_r", np.complex64, (k, s))], name=name)
        self.params = params
        self.ula = check_ula(self.name, ula, params)
        self.max_targets = check_max_targets(self.name, max_targets)
        if distribution not in COUNT_DISTRIBUTIONS:
            raise ConfigError(f"{self.name}: distribution = {distribution!r}: expected one of {COUNT_DISTRIBUTIONS}")
        self.distribution = distribution
        self.probability = check_real(self.name, "probability", probability, 0.0, 1.0)
        self.seed = seed
        self._scene_seed, self._noise_seed = seed_sequence(seed).spawn(2)

    def _frame_rng(self, offset: int) -> np.random.Generator:
        s = self._scene_seed
        return np.random.default_rng(np.random.SeedSequence(s.entropy, spawn_key=(*s.spawn_key, offset)))

    def work(self, inputs, outputs):
        precoders, symbols = inputs
        out = outputs[0]
        n, p, base = len(precoders), self.params, self.nitems_read(0)
        sectors = np.array(required_tags(self, 0, n, "sector"), dtype=np.float64).reshape(n, 4)
        scenes = draw_scenes([self._frame_rng(base + i) for i in range(n)], p, sectors, self.max_targets,
                             self.distribution, self.probability)
        frame_noise(self._noise_seed, base, out[:n], p.noise_power)
        out[:n] += scene_echo(p, self.ula.spacing, scenes, precoders, symbols).astype(np.complex64)
        copy_tags(self, range(len(self.in_sig)), n, (*SINGLE_TARGET_KEYS, N_TARGETS_KEY, THETAS_KEY, RANGES_KEY))
        for i in range(n):
            theta, ranges = scenes.frame(i)
            self.add_tag(0, base + i, N_TARGETS_KEY, int(theta.size))
            if theta.size:
                self.add_tag(0, base + i, THETAS_KEY, tuple(float(v) for v in theta))
                self.add_tag(0, base + i, RANGES_KEY, tuple(float(v) for v in ranges))
        return n


class SuccessiveDetector(SyncBlock):
    """Greedy successive detection of up to `max_targets` targets (`dsp.multitarget.successive_detection`):
    Algorithm 1 on the frame, declare while the sector maximum exceeds `threshold`, joint LS
    gains of the declared targets, subtract, repeat.

    Inputs ``Y_tilde`` (K, S) and ``precoder`` (K,) (for the gain estimate ``psi``); output
    ``detections`` (T, 6) float64, one row per slot: ``DETECTION_COLUMNS`` = statistic (the
    k-th successive maximum), theta_hat (rad), range_hat (m), Re psi^, Im psi^, detected (1/0).
    Rows past the first maximum below the threshold are NaN (detected 0).  With T = 1 the first
    three columns are `MBMLEstimator`'s output.  Output tags are those of ``Y_tilde`` (the
    precoder's, which may hold a scenario's single-target truth, are not passed).  The prior sector comes from each
    frame's ``sector`` tag or a fixed `sector` (as `SensingEstimator`); a learned spacing
    arrives on message port ``spacing``.  `threshold`: e.g. `threshold_at_pfa` of the
    statistics of target-free frames (the first column with no target).

    Input
    -----
    Y_tilde : [n, K, S], complex64
        The reciprocal-filtered frames (eq. 7).
    precoder : [n, K], complex64
        The precoder each frame was sent with.

    Output
    ------
    detections : [n, max_targets, 6], float64
        Per target: statistic, theta_hat, range_hat, gain re, gain im, detected.

    Settings
    --------
    spacing
        The array the block assumes: a spacing vector (K,) in m, or an `ArrayImpairments`.

    Messages
    --------
    spacing (in)
        A new ``spacing``, as ``{"spacing": value}`` on port ``settings``.
    """

    tag_propagation = "none"
    settings = {"spacing": SPACING_SETTING}
    setting_ports = {"spacing": "spacing"}

    def __init__(self, params, threshold: float, max_targets: int = 3, spacing=None, sector=None, name=None,
                 device="cpu"):
        k, s = params.n_antennas, params.n_subcarriers
        self.max_targets = check_max_targets(name or type(self).__name__, max_targets)
        super().__init__(in_sig=[("Y_tilde", np.complex64, (k, s)), ("precoder", np.complex64, k)],
                         out_sig=[("detections", np.float64, (self.max_targets, len(DETECTION_COLUMNS)))],
                         name=name)
        self.params = params
        self.threshold = check_real(self.name, "threshold", threshold)
        self.device = resolve_device(device, self.name)
        self.search = None
        self.sector = None if sector is None else (*check_sector(self.name, "sector", sector), params.range_min_m,
                                                   params.range_max_m)
        self.apply_settings({"spacing": params.nominal_spacing if spacing is None else spacing})

    def settings_changed(self, old, new) -> None:
        if "spacing" not in new:
            return
        if self.search is None:
            self.search = AngleDelaySearch(AngleDelayGrid.of(self.params), self.spacing, self.device, owner=self.name)
        else:
            self.search.recreate(self.spacing)

    def work(self, inputs, outputs):
        Y_tilde, precoders = inputs
        out = outputs[0]
        n = len(Y_tilde)
        sectors = (np.tile(self.sector, (n, 1)) if self.sector is not None
                   else np.array(required_tags(self, 0, n, "sector"), dtype=np.float64).reshape(n, 4))
        det = successive_detection(Y_tilde, sectors, self.spacing, self.params, self.threshold, self.max_targets,
                                   precoders, search=self.search)
        out[:n, :, 0], out[:n, :, 1], out[:n, :, 2] = det.statistic, det.theta_hat, det.range_hat
        out[:n, :, 3], out[:n, :, 4] = det.gain_hat.real, det.gain_hat.imag
        out[:n, :, 5] = det.detected
        copy_tags(self, (0,), n)
        return n


class MultiTargetMetricsSink(SinkBlock):
    """Collects `SuccessiveDetector` rows with the truth tags of `MultiTargetChannel` and reports
    GOSPA (cut-off `c` m, order `p`, alpha = 2) with its parts, the per-target detection
    probability, false targets per frame, the target-free frames' false-alarm rate and the
    RMSE of matched targets (`dsp.gospa.multitarget_report`), positions from eq. 2.

    Input
    -----
    detections : [n, max_targets, 6], float64
        `SuccessiveDetector` rows, with the truth tags.
    """

    def __init__(self, params, max_targets: int = 3, c: float = 10.0, p: float = 2.0, name=None):
        self.params = params
        self.max_targets = check_max_targets(name or type(self).__name__, max_targets)
        super().__init__(in_sig=[("detections", np.float64, (self.max_targets, len(DETECTION_COLUMNS)))],
                         name=name)
        try:
            self.c, self.p = check_gospa_parameters(float(c), float(p))
        except ConfigError as exc:
            raise ConfigError(f"{self.name}: {exc}") from None
        except (TypeError, ValueError):
            raise ConfigError(f"{self.name}: c = {c!r}, p = {p!r}: expected numbers") from None
        self.reset()

    def reset(self) -> None:
        self.truth: list[np.ndarray] = []
        self.estimates: list[np.ndarray] = []

    def work(self, inputs, outputs):
        rows = inputs[0]
        n = len(rows)
        counts = required_tags(self, 0, n, N_TARGETS_KEY)
        thetas, ranges = self.frame_tags(0, n, THETAS_KEY), self.frame_tags(0, n, RANGES_KEY)
        for i in range(n):
            if counts[i] and (thetas[i] is None or ranges[i] is None or len(thetas[i]) != counts[i]):
                raise BlockError(f"block {self.name!r}: item {self.nitems_read(0) + i} has n_targets = "
                                 f"{counts[i]} but no matching {THETAS_KEY!r} / {RANGES_KEY!r} tags")
            truth = position(np.asarray(thetas[i] or (), float), np.asarray(ranges[i] or (), float))
            declared = rows[i, :, 5] == 1
            self.truth.append(truth.reshape(-1, 2))
            self.estimates.append(position(rows[i, declared, 1], rows[i, declared, 2]).reshape(-1, 2))
        return n

    def report(self) -> MultiTargetReport:
        return multitarget_report(self.truth, self.estimates, self.c, self.p)
