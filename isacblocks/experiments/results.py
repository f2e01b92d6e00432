"""Typed results of ``isac reproduce``: what the studies return, what the claims, figures and
tables read, and what ``results.json`` holds.

Every collection is keyed by a label (never by position).  `to_json` writes a `Reproduction`
as strict JSON (NaN as null); `from_json` reads such a file back into the same dataclasses, so
claims, figures and tables can be regenerated from a saved ``results.json`` without rerunning.
Every Pmd carries its 95 % Clopper-Pearson interval and the frames per hypothesis behind it.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError
from ..safeio import read_json, write_json

#: Version of the layout of ``results.json``; `from_json` refuses another.
SCHEMA_VERSION = 2


@dataclass(frozen=True)
class Estimate:
    """A Pmd with its 95 % interval from `frames` frames per hypothesis."""

    pmd: float
    pmd_ci: tuple[float, float]
    frames: int

    @property
    def half_width(self) -> float:
        return (self.pmd_ci[1] - self.pmd_ci[0]) / 2

    def text(self, name: str = "") -> str:
        head = f"{name} " if name else ""
        return f"{head}{self.pmd:.4f} [{self.pmd_ci[0]:.4f}, {self.pmd_ci[1]:.4f}]"


@dataclass(frozen=True)
class SpacingErrors:
    """How far an assumed spacing is from the truth (mm), see `dsp.spacing.spacing_errors`."""

    spacing_error_mm: float
    position_error_mm: float
    position_error_rms_mm: float
    position_error_max_mm: float


@dataclass(frozen=True)
class Evaluation:
    """The MB-ML receiver assuming one spacing, on the test sector."""

    estimate: Estimate
    rmse_position: float  # m, on detected target frames
    threshold: float
    pfa_check: float
    pfa_check_ci: tuple[float, float]
    errors: SpacingErrors


@dataclass(frozen=True)
class CurvePoint:
    """One evaluation along a learning curve."""

    iteration: int
    labeled_frames: int
    estimate: Estimate
    rmse_position: float
    errors: SpacingErrors


@dataclass(frozen=True)
class Run:
    """One learning curve (schedule, configuration, evaluations along it) and its final evaluation."""

    label: str
    schedule: str
    labeled_ratio: float
    curriculum: bool
    iterations: int
    batch_size: int
    lr_m: float
    curve: tuple[CurvePoint, ...]
    final: Evaluation
    spacing_m: tuple[float, ...]
    labeled_frames: int
    wall_s: float

    @property
    def frames_seen(self) -> int:
        """Training frames drawn over the whole run (labelled or not)."""
        return self.iterations * self.batch_size


@dataclass(frozen=True)
class CalibrationPoint:
    """Classical least-squares calibration from `labeled_frames` labelled frames."""

    labeled_frames: int
    status: str
    wall_s: float
    evaluation: Evaluation


@dataclass(frozen=True)
class Fig3:
    """Pmd vs training iterations: the baselines and the learning curves, keyed by label."""

    baselines: dict[str, Evaluation]
    runs: dict[str, Run]


@dataclass(frozen=True)
class Fig4:
    """Pmd vs labelled-data ratio: SSL runs keyed by label, SL at ratio 1, curriculum UL at ratio 0,
    and the classical calibration vs labelled frames."""

    ssl: dict[str, Run]
    sl: Run
    ul_curriculum: Run
    calibration: tuple[CalibrationPoint, ...]
    baselines: dict[str, Evaluation]


@dataclass(frozen=True)
class IsacPoint:
    """One ``(eta, phi)`` point of the ISAC trade-off (eq. 4)."""

    eta: float
    phi: float
    estimate: Estimate
    rmse_position: float
    ser: float
    threshold: float
    pareto_pmd_ser: bool
    pareto_rmse_ser: bool


@dataclass(frozen=True)
class IsacCurve:
    """The trade-off sweep of one assumed spacing."""

    label: str
    points: tuple[IsacPoint, ...]
    errors: SpacingErrors

    def at_eta(self, eta: float) -> IsacPoint:
        """The point at `eta` (0: communication only, 1: sensing only)."""
        for p in self.points:
            if abs(p.eta - eta) < 1e-9:
                return p
        raise KeyError(f"{self.label}: no point at eta {eta}")


@dataclass(frozen=True)
class Fig5:
    """ISAC trade-off, one named field per role (the claims compare the roles, not list positions)."""

    known: IsacCurve
    sl_full: IsacCurve
    sl_limited: IsacCurve
    ssl_from_limited: IsacCurve

    def curves(self) -> dict[str, IsacCurve]:
        return {c.label: c for c in (self.known, self.sl_full, self.sl_limited, self.ssl_from_limited)}


@dataclass(frozen=True)
class ScalingPoint:
    """One evaluation of a scaling run: Pmd and position error after `frames_seen` training frames."""

    iteration: int
    frames_seen: int
    labeled_frames: int
    estimate: Estimate
    errors: SpacingErrors


@dataclass(frozen=True)
class PowerLawFit:
    """``y - floor = c * frames^(-exponent)`` fitted in log-log to the points above the floor,
    extrapolated to `target_frames`; the interval is the 2.5-97.5 % range over a bootstrap of the points."""

    quantity: str
    floor: float
    exponent: float
    exponent_ci: tuple[float, float]
    coefficient: float
    points_used: int
    target_frames: int
    extrapolated: float
    extrapolated_ci: tuple[float, float]
    note: str


@dataclass(frozen=True)
class ScalingSeries:
    """One schedule at one batch size: its points and its fits (Pmd and position error)."""

    label: str
    schedule: str
    batch_size: int
    iterations: int
    points: tuple[ScalingPoint, ...]
    pmd_fit: PowerLawFit
    position_fit: PowerLawFit
    wall_s: float


@dataclass(frozen=True)
class Scaling:
    """Pmd and element-position error vs training frames seen, per schedule and batch size, with
    the fits extrapolated to the paper's budget (85 000 iterations x batch 3 000)."""

    series: dict[str, ScalingSeries]
    baselines: dict[str, Evaluation]
    fits: dict[str, PowerLawFit]  # per schedule, all batch sizes together


#: The field of `Reproduction` (and the `Study` method) of each ``--fig`` choice.
FIGURE_FIELDS = {"3": "fig3", "4": "fig4", "5": "fig5", "scaling": "scaling"}

VERDICTS = ("held", "not held", "not decided at this scale", "not evaluated")


@dataclass(frozen=True)
class Claim:
    """One of the paper's claims decided from the results (see `claims`)."""

    id: str
    claim: str
    verdict: str  # one of VERDICTS
    evidence: str
    trend: str = ""  # which way the numbers point when undecided
    to_decide: str = ""  # roughly what more data would decide it


@dataclass(frozen=True)
class Reproduction:
    """Everything one ``isac reproduce`` run computed, with its configuration."""

    scale: str
    scale_config: dict
    figures: tuple[str, ...]
    executor: str
    baselines: dict[str, Evaluation]
    fig3: Fig3 | None
    fig4: Fig4 | None
    fig5: Fig5 | None
    scaling: Scaling | None
    claims: tuple[Claim, ...]
    wall_s: float
    run: dict = field(default_factory=dict)  # command line, seeds, parameters, machine (`common.run_record`)
    schema: int = SCHEMA_VERSION


# ----------------------------------------------------------------- conversion
def estimate_of(report: dict) -> Estimate:
    """The Estimate of a report dict (``pmd``, ``pmd_ci`` and ``frames`` or ``frames_per_hypothesis``)."""
    frames = report["frames"] if "frames" in report else report["frames_per_hypothesis"]
    return Estimate(float(report["pmd"]), (float(report["pmd_ci"][0]), float(report["pmd_ci"][1])), int(frames))


def errors_of(record: dict) -> SpacingErrors:
    return SpacingErrors(*(float(record[f.name]) for f in dataclasses.fields(SpacingErrors)))


def to_plain(value):
    """A dataclass tree as JSON-ready dicts, lists and numbers."""
    if dataclasses.is_dataclass(value):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    return value


def from_plain(kind, value, where: str = "results"):
    """`value` (parsed JSON) as an instance of the type `kind`; null becomes NaN for a float."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (kind,) = [a for a in args if a is not type(None)]
        return from_plain(kind, value, where)
    if dataclasses.is_dataclass(kind):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected an object for {kind.__name__}, got {type(value).__name__}")
        hints = typing.get_type_hints(kind)
        missing = [f.name for f in dataclasses.fields(kind) if f.name not in value
                   and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        if missing:
            raise ConfigError(f"{where}: {kind.__name__} lacks {', '.join(missing)}")
        return kind(**{f.name: from_plain(hints[f.name], value[f.name], f"{where}.{f.name}")
                       for f in dataclasses.fields(kind) if f.name in value})
    if origin is dict or kind is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected an object, got {type(value).__name__}")
        return {k: from_plain(args[1], v, f"{where}.{k}") for k, v in value.items()} if args else dict(value)
    if origin is tuple:
        if not isinstance(value, list) or (args[-1:] != (Ellipsis,) and len(value) != len(args)):
            raise ConfigError(f"{where}: expected a list" + ("" if args[-1:] == (Ellipsis,) else f" of {len(args)}")
                              + f", got {value!r:.60}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(from_plain(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        return tuple(from_plain(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
    if kind is float and value is None:
        return math.nan
    wrong = not isinstance(value, (int, float) if kind in (float, int) else kind)
    if kind in (float, int, str, bool) and wrong:
        raise ConfigError(f"{where}: expected {'an' if kind is int else 'a'} {kind.__name__}, got {value!r:.60}")
    if kind in (float, int, str, bool):
        return kind(value)
    return value


def to_json(result: Reproduction, path) -> None:
    """Write `result` as ``results.json`` (strict JSON; see `safeio.write_json`)."""
    write_json(path, to_plain(result))


def from_json(path) -> Reproduction:
    """Read a ``results.json`` written by `to_json` back into a `Reproduction`."""
    path = Path(path)
    data = read_json(path, "results file")
    if not isinstance(data, dict) or data.get("schema") != SCHEMA_VERSION:
        got = data.get("schema") if isinstance(data, dict) else type(data).__name__
        raise ConfigError(f"{path}: results schema {got!r}; this version reads schema {SCHEMA_VERSION} "
                          f"(written by `isac reproduce`)")
    data.pop("null_reasons", None)
    return from_plain(Reproduction, data, str(path))
