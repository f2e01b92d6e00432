"""The ISAC chain of Fig. 2 split over two processes linked by ZeroMQ (``isac tx`` / ``isac rx``).

::

    tx:  ScenarioSource ─► SectorBeamformer(s) ─► [ISACCombiner] ─► TargetChannel ─► PushSink  Y_r (K, S)
         SymbolSource ─► OFDMModulator ─────────────────────────────┴──────────────► PushSink  symbols (S,)
                      └─ messages ──────────────────────────────────────────────────► PushSink  messages (S,)
                                                      UEChannel ─► PushSink y_c (S,), PushSink csi (S,)

    rx:  PullSource Y_r ──► ReciprocalFilter ◄── PullSource symbols
                   └─► LinkMonitor        └─► MAPRT / MB-ML ─► DetectionMetricsSink
         PullSource y_c, csi ─► MLDemapper ─► SERSink ◄── PullSource messages

The two flowgraphs are built by `isacblocks.blocks.chains.tx_flowgraph` and `rx_flowgraph`:
the transmitter is `isac_flowgraph`'s wiring with the same blocks and the same
`block_seeds(seed)`; the receiver is its second half.  This module holds what both ends
agree on: the streams, their addresses, the ``link_config`` and its checks, the receiver's
frame check and monitor, and the verdict on a received run.  Every stream is a PUSH/PULL pair
with ``pass_tags``: the ground truth (``seq``, ``sector``, ``target_present``, ``theta``,
``range``, ``ue_angle``) travels as stream tags, the transmitter's configuration as a
``link_config`` tag on the first Y_r frame.

Link integrity: each transmitter run draws a run id; every frame of every stream
carries the tag ``stream_seq = (run id, frame index)`` and the last frame the ``eos``
tag (which survives a GNU Radio relay; the zero-item end-of-stream message does not).
The receiver pairs frames only by matching (run id, index) across its streams
(`PairedPullSource`) and counts what it cannot pair; `link_verdict` turns the counts
into complete / incomplete with an exit code and a one-line reason.  A complete run
computes exactly what the one-process flowgraph computes.

Nothing received is trusted: the ``link_config`` values are checked with the command
line's rules (`check_link_config`; a refusal names the field, value and rule), every Y_r
frame's ground truth before it is paired (`FrameCheck`: a frame that fails is counted and
left out), and every index of the run must come exactly once (duplicates and gaps are
counted, and either makes the run incomplete).

Addresses: from one ``address`` each stream gets its own endpoint, in the order of
`LINK_STREAMS` -- consecutive ports for ``tcp://host:port``, suffixes for
``ipc://path`` and ``inproc://name`` (see `stream_addresses`).
"""

from __future__ import annotations

import ast
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..core import SinkBlock
from ..dsp.impairments import check_array
from ..dsp.mbml import sector_cols, sector_rows
from ..errors import BlockError, ConfigError, IsacError
from ..params import SystemParams
from ..seeding import seed_sequence
from ..validation import check_int, check_real, is_integer
from .items import INVALID_FRAME_KEY
from .sinks import TruthCheck
from .ula import ImpairedULA

if TYPE_CHECKING:
    from ..core import Flowgraph
    from ..zeromq.pairing import PairedPullSource
    from .sinks import DetectionMetricsSink, SERSink


#: Every stream of the link, in address order.
LINK_STREAMS = ("Y_r", "symbols", "messages", "y_c", "csi")

#: Default high-water mark of the link sockets, in messages (one message = one batch of
#: frames): small, so that the transmitter runs at most a few batches ahead of the receiver.
LINK_HWM = 4

#: Version of the ``link_config`` tag's layout (2: with the run id; 3: with the system parameters).
LINK_VERSION = 3

#: The `SystemParams` fields only the receiver uses (the others must be the transmitter's).
RECEIVER_FIELDS = ("n_angle_grid", "n_range_grid", "pfa")

#: Seconds without data after which either end gives up (``--idle-timeout``).
LINK_IDLE_TIMEOUT = 30.0

#: Exit codes of ``isac rx`` / ``isac tx`` for a link that did not complete.
EXIT_LOST = 3  # frames lost: not every frame of the run was paired
EXIT_FOREIGN = 4  # frames of another transmitter run arrived
EXIT_CUT_SHORT = 5  # the sender went silent before its end of stream
EXIT_NO_RECEIVER = 6  # (tx) no receiver took data for the idle timeout
EXIT_ERROR = 1  # a block raised: the run was cut off (what was received is still reported)
EXIT_REFUSED = 2  # (rx) the transmitter's configuration or item size refused: a user error


class LinkRefused(BlockError):
    """The receiver refuses the transmitter's ``link_config`` (naming the field, value and rule)."""


def link_streams(with_comm: bool = True) -> tuple[str, ...]:
    """The streams the link carries: Y_r and symbols, plus messages, y_c and csi with comm."""
    return LINK_STREAMS if with_comm else LINK_STREAMS[:2]


def stream_specs(params) -> dict[str, tuple[np.dtype, tuple[int, ...]]]:
    """Item dtype and shape of each stream."""
    k, s = params.n_antennas, params.n_subcarriers
    return {"Y_r": (np.dtype(np.complex64), (k, s)), "symbols": (np.dtype(np.complex64), (s,)),
            "messages": (np.dtype(np.int32), (s,)), "y_c": (np.dtype(np.complex64), (s,)),
            "csi": (np.dtype(np.complex64), (s,))}


def stream_addresses(address: str, streams=LINK_STREAMS) -> dict[str, str]:
    """One endpoint per stream, from a base `address`.

    ``tcp://host:5555`` gives ports 5555, 5556, ... in the order of `LINK_STREAMS`
    (``tcp://host:0``: a free port each, which only a binding side can use);
    ``ipc:///tmp/isac`` gives ``ipc:///tmp/isac.Y_r``, ...; ``inproc://isac`` gives
    ``inproc://isac.Y_r``, ...
    """
    index = {name: LINK_STREAMS.index(name) for name in streams}
    tcp = re.fullmatch(r"tcp://(.+):(\d+)", address)
    if tcp:
        host, base = tcp.group(1), int(tcp.group(2))
        if base and base + len(LINK_STREAMS) - 1 > 65535:
            raise ConfigError(f"link address {address!r}: ports {base}..{base + len(LINK_STREAMS) - 1} "
                              "do not all exist")
        return {name: f"tcp://{host}:{base + index[name] if base else 0}" for name in streams}
    if re.fullmatch(r"(ipc|inproc)://.+", address):
        return {name: f"{address}.{name}" for name in streams}
    raise ConfigError(f"link address {address!r}: expected tcp://host:port, ipc://path or inproc://name")


def new_run_id() -> str:
    """A fresh identity for one transmitter run (not derived from the seed: two runs with the
    same seed must still be told apart)."""
    return uuid.uuid4().hex[:16]


def link_config(params, ula: ImpairedULA, seed, n_frames: int | None, with_comm: bool, eta: float,
                phi: float, run_id: str) -> dict:
    """What the transmitter tells the receiver on the first Y_r frame (tag ``link_config``)."""
    return {"version": LINK_VERSION, "run_id": run_id, "n_antennas": params.n_antennas,
            "n_subcarriers": params.n_subcarriers,
            "with_comm": bool(with_comm), "seed": repr(seed), "frames": -1 if n_frames is None else int(n_frames),
            "eta": float(eta), "phi": float(phi), "true_spacing": np.asarray(ula.spacing, dtype=np.float64),
            "params": params.to_dict()}


#: How the receiver names the option that sets each compared ``link_config`` value.
_HINTS = {"n_antennas": "--config", "n_subcarriers": "--config", "with_comm": "--no-comm",
          "true_spacing": "--seed / --true-spacing", "params": "--config"}


def check_link_config(config, expect: dict | None = None) -> dict:
    """The transmitter's ``link_config``, checked with the command line's rules (`frames` an
    integer >= -1 (-1: endless), `eta` in [0, 1], `phi` finite, `seed` an integer >= 0 as
    text, `params` valid `SystemParams`, `true_spacing` K finite spacings > 0, ...) and against
    `expect` (any of ``n_antennas``, ``n_subcarriers``, ``with_comm``, ``true_spacing``,
    ``params``: the receiver's own); returns it with checked values.  Raises `ConfigError`
    naming the field, the value and the rule (or the difference and the option to fix it).
    """
    owner = "the transmitter's link_config"
    if not isinstance(config, dict):
        raise ConfigError(f"{owner}: {config!r}: must be a dict (version {LINK_VERSION})")
    version = config.get("version")
    if not (is_integer(version) and version == LINK_VERSION):
        raise ConfigError(f"{owner}: version = {version!r}: this receiver reads version {LINK_VERSION} (give both "
                          "ends the same isacblocks)")
    missing = [k for k in ("run_id", "n_antennas", "n_subcarriers", "with_comm", "seed", "frames", "eta", "phi",
                           "true_spacing", "params") if k not in config]
    if missing:
        raise ConfigError(f"{owner}: has no {', '.join(map(repr, missing))}")
    out = dict(config)
    if not isinstance(config["run_id"], str) or not config["run_id"]:
        raise ConfigError(f"{owner}: run_id = {config['run_id']!r}: must be a non-empty str")
    if not isinstance(config["with_comm"], bool):
        raise ConfigError(f"{owner}: with_comm = {config['with_comm']!r}: must be True or False")
    seed = config["seed"]
    try:
        seed_sequence(ast.literal_eval(seed) if isinstance(seed, str) and len(seed) <= 1000 else {})
    except (ConfigError, ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise ConfigError(f"{owner}: seed = {seed!r}: must be the text of a seed (an integer >= 0, or a "
                          "sequence of them)") from None
    out["n_antennas"] = check_int(owner, "n_antennas", config["n_antennas"], 2)
    out["n_subcarriers"] = check_int(owner, "n_subcarriers", config["n_subcarriers"], 1)
    out["frames"] = check_int(owner, "frames", config["frames"], -1)
    out["eta"] = check_real(owner, "eta", config["eta"], 0.0, 1.0)
    out["phi"] = check_real(owner, "phi", config["phi"])
    try:
        out["params"] = SystemParams.from_dict(config["params"])
        try:
            spacing = np.asarray(config["true_spacing"])
        except (TypeError, ValueError):  # ragged sequences
            spacing = np.array(None)
        if spacing.dtype.kind not in "iuf":  # text, complex, objects
            raise ConfigError(f"true_spacing = {config['true_spacing']!r}: must be {out['n_antennas']} finite "
                              "spacings > 0 (m)")
        out["true_spacing"] = check_array(spacing, out["n_antennas"], "true_spacing")
    except IsacError as exc:
        raise ConfigError(f"{owner}: {exc}") from None
    for key, mine in (expect or {}).items():
        theirs = out[key]
        if key == "params":
            diff = [f for f in mine.to_dict() if f not in RECEIVER_FIELDS and getattr(mine, f) != getattr(theirs, f)]
            if diff:
                raise ConfigError(f"the transmitter runs with {diff[0]} = {getattr(theirs, diff[0])!r}, this receiver "
                                  f"with {getattr(mine, diff[0])!r}: give both the same --config")
            continue
        if key == "true_spacing":
            if not np.array_equal(np.asarray(mine), theirs):
                raise ConfigError(f"the transmitter runs with true_spacing = differs, this receiver with differs: "
                                  f"give both the same {_HINTS[key]}")
            continue
        if mine != theirs:
            raise ConfigError(f"the transmitter runs with {key} = {theirs!r}, this receiver with {mine!r}: give both "
                              f"the same {_HINTS[key]}")
    return out


class FrameCheck:
    """What `isac rx` checks on each received Y_r frame, from its tags, before pairing it: its
    ground truth (`TruthCheck`, with the sector, and theta and range on target frames,
    required), a sector that holds points of the receiver's angle and range grids (MB-ML
    searches those), and no ``invalid_frame`` tag (the receiver's own verdict, never the
    sender's).  ``check(tags)`` returns None or why the frame is left out."""

    def __init__(self, params):
        self.params = params
        self.truth = TruthCheck(params, complete=True)
        self._on_grid: tuple | None = None

    def __call__(self, tags: dict) -> str | None:
        if INVALID_FRAME_KEY in tags:
            return f"the sender set the receiver's tag {INVALID_FRAME_KEY!r}"
        sector = tags.get("sector")
        why = self.truth(tags.get("target_present"), tags.get("theta"), tags.get("range"), sector)
        if why is None and tuple(sector) != self._on_grid:
            rows, cols = sector_rows(sector[0], sector[1], self.params), sector_cols(sector[2], sector[3], self.params)
            for (lo, hi), grid in ((rows, "angle"), (cols, "range")):
                if lo >= hi:
                    return f"sector = {tuple(sector)!r}: holds no point of the receiver's {grid} grid"
            self._on_grid = tuple(sector)
        return why


class LinkMonitor(SinkBlock):
    """Watches the received Y_r stream through its tags only (the frames are not touched).

    Counts `frames` (and notes when the first and the latest arrived, for rates), and
    checks the transmitter's ``link_config`` (`check_link_config`, against `expect`: a dict
    with any of ``n_antennas``, ``n_subcarriers``, ``with_comm``, ``true_spacing``,
    ``params``); raises `LinkRefused` naming the field, or the difference.  (Which frames
    were lost is the pairing source's count.)

    Input
    -----
    Y_r : [n, K, S], complex64
        The received sensing frames; only their ``link_config`` tags are read.
    """

    def __init__(self, params, expect: dict | None = None, name: str = "link_monitor"):
        super().__init__(in_sig=[("Y_r", np.complex64, (params.n_antennas, params.n_subcarriers))], name=name)
        self.expect = dict(expect or {})
        self.frames = 0
        self.config: dict | None = None
        self.first_time: float | None = None
        self.last_time: float | None = None

    def start(self) -> None:
        self.frames = 0
        self.config = None
        self.first_time = self.last_time = None

    @property
    def rate(self) -> float:
        """Frames per second between the first and the latest frame (NaN before two calls)."""
        if self.first_time is None or self.last_time == self.first_time:
            return float("nan")
        return self.frames / (self.last_time - self.first_time)

    def work(self, inputs, outputs):
        n = len(inputs[0])
        base = self.nitems_read(0)
        for tag in self.get_tags_in_range(0, base, base + n, "link_config"):
            self._check(tag.value)
        now = time.monotonic()
        if self.first_time is None:
            self.first_time = now
        self.last_time = now
        self.frames += n
        return n

    def _check(self, config) -> None:
        try:
            checked = check_link_config(config, self.expect)
            if self.config is not None:  # a second one (the transmitter sends one) must say the same
                changed = [k for k in checked if not np.array_equal(checked[k], self.config.get(k))]
                if changed:
                    raise ConfigError(f"the transmitter's link_config changed in mid-run: {changed[0]} = "
                                      f"{checked[changed[0]]!r}, before {self.config.get(changed[0])!r}")
            self.config = checked
        except ConfigError as exc:
            raise LinkRefused(f"block {self.name!r}: {exc}") from None


@dataclass
class RxLink:
    """The receiver flowgraph, its sources (by stream name) and the blocks holding results."""

    flowgraph: Flowgraph
    source: PairedPullSource
    monitor: LinkMonitor
    estimator: object
    detection: DetectionMetricsSink
    ser: SERSink | None

    @property
    def sources(self):
        """The PULL source of each stream (endpoints and wire counters)."""
        return self.source.sources


@dataclass
class LinkVerdict:
    """Whether a received run is complete, and if not why: exit code, one-line reason, counts."""

    complete: bool
    exit_code: int
    reason: str
    counts: dict = field(default_factory=dict)


def link_verdict(link: RxLink, ended_by: tuple[int, str] | None = None) -> LinkVerdict:
    """Judge what `link`'s receiver saw: every index of one run's range, each exactly once,
    paired, with valid ground truth, up to its end of stream.

    The range is ``0 .. frames - 1`` of the ``link_config`` (for an endless transmitter: up
    to the largest index of the run received on any stream, paired or not).  Incomplete
    runs, in the order their exit code is chosen: `ended_by` (``(exit code, reason)``: an
    error, Ctrl-C, SIGTERM), frames of another run (`EXIT_FOREIGN`), no end of stream
    (`EXIT_CUT_SHORT`), and `EXIT_LOST`: frames missing (before the first received, in
    gaps, after the last), duplicates, frames left out for bad ground truth or NaN/Inf
    samples, indices outside the range, items unpaired, left over or without a sequence
    tag, malformed messages, or no ``link_config``.  (After `ended_by`, the frames after
    the last received and the missing end of stream are counted but not given as reasons:
    the receiver stopped before them.)
    """
    src = link.source
    stats = src.stats()
    per = stats["streams"].values()
    total = {key: sum(s[key] for s in per) for key in ("foreign", "unpaired", "leftover", "untagged", "malformed",
                                                       "missed_items")}
    kinds = {kind: sum(s["malformed_kinds"][kind] for s in per) for kind in next(iter(per))["malformed_kinds"]}
    config = link.monitor.config
    announced = None if config is None or config["frames"] < 0 else config["frames"]
    ended = any(s["eos_received"] for s in per)
    # frames past the end of another stream: lost in transit unless every stream ended properly
    # (a sender that stops its streams at once, rather than draining them, ends them a few frames apart)
    surplus = total["leftover"] if all(s["eos_received"] for s in per) else 0
    seen, first, last = src.accounted, stats["first_index"], stats["last_index"]
    largest = stats["largest_index"]
    end = announced if announced is not None else (0 if largest is None else max(0, largest + 1))
    inside = seen.count_in(0, end)
    missing_start = end if first is None else min(max(first, 0), end)
    missing_end = 0 if last is None else max(0, end - 1 - max(last, -1))
    missing = end - inside
    bad_truth = stats["rejected"] + link.detection.bad_truth
    counts = {"paired": stats["paired"], "lost": missing, "missed_start": missing_start,
              "gaps": missing - missing_start - missing_end, "missed_end": missing_end,
              "duplicates": stats["duplicates"], "bad_truth": bad_truth, "outside_range": len(seen) - inside,
              "announced": announced, "surplus_after_end": surplus, **total, "leftover": total["leftover"] - surplus,
              "malformed_kinds": kinds, "eos_received": ended, "timed_out": any(s["timed_out"] for s in per),
              "config_seen": config is not None}
    problems = [ended_by] if ended_by else []
    if total["foreign"]:
        problems.append((EXIT_FOREIGN, f"{total['foreign']} frames of another transmitter run (two tx on one "
                                       "address, or one restarted)"))
    if config is not None and stats["stream_id"] is not None and config["run_id"] != stats["stream_id"]:
        problems.append((EXIT_FOREIGN, f"the link_config names run {config['run_id']!r}, the frames run "
                                       f"{stats['stream_id']!r}"))
    if not ended and not ended_by:
        problems.append((EXIT_CUT_SHORT, "no end of stream: the transmitter went silent (idle timeout) after "
                                         f"{stats['paired']} paired frames"))
    if ended_by:
        missing -= missing_end
    lost = [f"{n} {what}" for n, what in ((missing_start, "before the first received" if first is not None
                                                          else "none paired"),
                                          (counts["gaps"], "in gaps"),
                                          (0 if ended_by else missing_end, "after the last received")) if n]
    last_bad = stats["last_rejected"] or link.detection.last_bad_truth
    damaged = [f"{n} {what}" for n, what in (
        (counts["duplicates"], "duplicate frames dropped"),
        (bad_truth, "frames left out for bad ground truth" + (f" (last: {last_bad})" if last_bad else "")),
        (link.detection.invalid_frames, "frames left out for NaN/Inf samples"),
        (counts["outside_range"], f"frames outside the announced range 0..{end - 1}"),
        (total["unpaired"], "items unpaired across streams (another receiver on the address?)"),
        (counts["leftover"], "items left without partners when a stream ended"),
        (total["untagged"], "items without a valid stream_seq tag"),
        (total["malformed"], "malformed messages skipped ("
                             + ", ".join(f"{kind} {n}" for kind, n in kinds.items() if n) + ")")) if n]
    if config is None and (ended_by is None or ended_by[0] != EXIT_REFUSED):
        damaged.append("the transmitter's link_config was never received (configuration not checked)")
    if missing or damaged:
        text = [f"{missing} frames lost: " + ", ".join(lost)] if missing else []
        problems.append((EXIT_LOST, "; ".join(text + damaged)))
    if not problems:
        return LinkVerdict(True, 0, f"complete: {stats['paired']} frames of run {stats['stream_id']}", counts)
    return LinkVerdict(False, problems[0][0], "incomplete: " + "; ".join(text for _, text in problems), counts)
