"""The ISAC chain of Fig. 2 split over two processes linked by ZeroMQ (``isac tx`` / ``isac rx``).

::

    tx:  ScenarioSource ─► SectorBeamformer(s) ─► [ISACCombiner] ─► TargetChannel ─► PushSink  Y_r (K, S)
         SymbolSource ─► OFDMModulator ─────────────────────────────┴──────────────► PushSink  symbols (S,)
                      └─ messages ──────────────────────────────────────────────────► PushSink  messages (S,)
                                                      UEChannel ─► PushSink y_c (S,), PushSink csi (S,)

    rx:  PullSource Y_r ──► ReciprocalFilter ◄── PullSource symbols
                   └─► LinkMonitor        └─► MAPRT / MB-ML ─► DetectionMetricsSink
         PullSource y_c, csi ─► MLDemapper ─► SERSink ◄── PullSource messages

The transmitter is `isac_flowgraph`'s wiring with the same blocks and the same
`block_seeds(seed)`; the receiver is its second half.  Every stream is a PUSH/PULL pair
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

Addresses: from one ``address`` each stream gets its own endpoint, in the order of
`LINK_STREAMS` -- consecutive ports for ``tcp://host:port``, suffixes for
``ipc://path`` and ``inproc://name`` (see `stream_addresses`).
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field

import numpy as np

from ..blocks import (
    DetectionMetricsSink,
    ImpairedULA,
    MAPRTDetector,
    MBMLEstimator,
    SERSink,
)
from ..blocks.receivers import MBML_METHODS
from ..core import Flowgraph, NullSink, SinkBlock
from ..dsp.mbml import mbml_estimate
from ..errors import BlockError, ConfigError
from ..zmq import PairedPullSource, PushSink
from .baseline import Transmitter, receivers, transmitter

#: Every stream of the link, in address order.
LINK_STREAMS = ("Y_r", "symbols", "messages", "y_c", "csi")

#: Default high-water mark of the link sockets, in messages (one message = one batch of
#: frames): small, so that the transmitter runs at most a few batches ahead of the receiver.
LINK_HWM = 4

#: Version of the ``link_config`` tag's layout (2: with the run id).
LINK_VERSION = 2

#: Seconds without data after which either end gives up (``--idle-timeout``).
LINK_IDLE_TIMEOUT = 30.0

#: Exit codes of ``isac rx`` / ``isac tx`` for a link that did not complete.
EXIT_LOST = 3  # frames lost: not every frame of the run was paired
EXIT_FOREIGN = 4  # frames of another transmitter run arrived
EXIT_CUT_SHORT = 5  # the sender went silent before its end of stream
EXIT_NO_RECEIVER = 6  # (tx) no receiver took data for the idle timeout


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
            "eta": float(eta), "phi": float(phi), "true_spacing": np.asarray(ula.spacing, dtype=np.float64)}


@dataclass
class TxLink:
    """The transmitter flowgraph and its ZeroMQ sinks (by stream name)."""

    flowgraph: Flowgraph
    sinks: dict[str, PushSink]
    run_id: str

    @property
    def endpoints(self) -> dict[str, str]:
        return {name: sink.endpoint for name, sink in self.sinks.items()}


def tx_flowgraph(params, ula: ImpairedULA, spacing, n_frames: int | None, address: str, seed=0, eta: float = 1.0,
                 phi: float = 0.0, with_comm: bool = True, sector="test", presence_probability: float = 0.5,
                 alternate: bool = False, max_items: int = 64, hwm: int = LINK_HWM, timeout: int = 100,
                 linger: int = -1, idle_timeout: float | None = LINK_IDLE_TIMEOUT, run_id: str | None = None,
                 context=None, curve=None) -> TxLink:
    """Scenario, symbols, OFDM, beamformer and channels of `isac_flowgraph` (same blocks, same
    seeds), streaming Y_r, symbols and -- with comm -- messages, y_c and csi over PUSH sinks
    bound to `stream_addresses(address)`.  `n_frames` None streams until stopped.

    Every frame carries ``stream_seq = (run_id, index)`` (`run_id` default: `new_run_id()`),
    the last one the ``eos`` tag.  `linger` (ms, -1: until delivered) bounds how long the
    sinks' stop() waits for the receiver to take what is queued; `abort()` on the sinks
    gives up at once.  `idle_timeout` (s): a sink that could hand nothing to a receiver for
    that long raises `LinkIdleError`.
    """
    specs = stream_specs(params)
    addresses = stream_addresses(address, link_streams(with_comm))
    run_id = run_id or new_run_id()
    config = link_config(params, ula, seed, n_frames, with_comm, eta, phi, run_id)
    sinks = {name: PushSink(*specs[name], addresses[name], timeout=timeout, pass_tags=True, hwm=hwm,
                            linger=linger, start_tags={"link_config": config} if name == "Y_r" else None,
                            context=context, curve=curve, name=f"tx_{name}", idle_timeout=idle_timeout,
                            stream_id=run_id, stream_length=n_frames)
             for name in addresses}
    fg = Flowgraph(max_items=max_items, name="isac-tx")
    tx = transmitter(fg, params, ula, spacing, n_frames, seed, eta, phi, with_comm, sector, presence_probability,
                     alternate)
    fg.connect(tx.sensing, sinks["Y_r"])
    fg.connect(tx.symbols, sinks["symbols"])
    if with_comm:
        fg.connect(tx.y_c, sinks["y_c"])
        fg.connect(tx.csi, sinks["csi"])
        fg.connect(tx.messages, sinks["messages"])
    else:
        fg.connect(tx.messages, NullSink(np.int32, params.n_subcarriers))
    return TxLink(fg, sinks, run_id)


class LinkMonitor(SinkBlock):
    """Watches the received Y_r stream through its tags only (the frames are not touched).

    Counts `frames` (and notes when the first and the latest arrived, for rates), and
    checks the transmitter's ``link_config`` against `expect` (a dict with any of
    ``n_antennas``, ``n_subcarriers``, ``with_comm``, ``true_spacing``) and raises naming
    the difference.  (Which frames were lost is the pairing source's count.)
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
        if not isinstance(config, dict) or config.get("version") != LINK_VERSION:
            raise BlockError(f"block {self.name!r}: unknown link_config {config!r} (expected version {LINK_VERSION})")
        self.config = config
        hints = {"n_antennas": "--config", "n_subcarriers": "--config", "with_comm": "--no-comm",
                 "true_spacing": "--seed / --true-spacing"}
        for key, hint in hints.items():
            if key not in self.expect:
                continue
            mine, theirs = self.expect[key], config.get(key)
            same = np.array_equal(np.asarray(mine), np.asarray(theirs)) if key == "true_spacing" else mine == theirs
            if not same:
                theirs_shown, mine_shown = (("differs", "differs") if key == "true_spacing"
                                            else (repr(theirs), repr(mine)))
                raise BlockError(f"block {self.name!r}: the transmitter runs with {key} = {theirs_shown}, this "
                                 f"receiver with {mine_shown}: give both the same {hint}")


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


#: The forms of the MB-ML map `isac rx` can use (``--mbml-form``; `MBMLEstimator`'s `method`).
MBML_FORMS = MBML_METHODS


def warm_up(estimator, params) -> None:
    """Run `estimator`'s kernels once on a dummy frame of the test sector, leaving its state as it
    was: the compiled kernel (Numba's cache: 1-2 s in a fresh process) and the test sector's
    low-rank factor are loaded before the stream starts instead of under the first frames."""
    frame = np.ones((1, params.n_antennas, params.n_subcarriers), np.complex64)
    sector = np.array([[*params.test_sector, params.range_min_m, params.range_max_m]])
    if isinstance(estimator, MBMLEstimator):
        for method in ("fused", "lowrank") if estimator.method == "auto" else (estimator.method,):
            mbml_estimate(frame, *sector.T, estimator.spacing, params, method=method)
    elif isinstance(estimator, MAPRTDetector):
        estimator.estimate(frame, sector)


def make_estimator(kind: str, params, spacing, mbml_form: str = "auto"):
    """``"maprt"`` (the baseline) or ``"mbml"`` (Algorithm 1, an `MBMLEstimator` of method
    `mbml_form`) receiver assuming `spacing`."""
    if kind == "maprt":
        return MAPRTDetector(params, spacing)
    if kind == "mbml":
        return MBMLEstimator(params, spacing, method=mbml_form)
    raise ConfigError(f"estimator = {kind!r}: expected 'maprt' or 'mbml'")


def rx_flowgraph(params, spacing, address: str, with_comm: bool = True, estimator="maprt",
                 threshold: float | None = None, max_items: int = 64, hwm: int = LINK_HWM, timeout: int = 100,
                 expect: dict | None = None, idle_timeout: float | None = LINK_IDLE_TIMEOUT,
                 waiting_interval: float = 5.0, context=None, mbml_form: str = "auto", curve=None) -> RxLink:
    """Reciprocal filter, sensing estimator and metric sinks fed by a `PairedPullSource`
    connected to `stream_addresses(address)`; `estimator` is ``"maprt"``, ``"mbml"`` (a
    `MBMLEstimator` of method `mbml_form`) or a `SensingEstimator`.

    `expect` is checked against the transmitter's ``link_config`` (see `LinkMonitor`);
    by default the item shapes and `with_comm`.  `idle_timeout` (s) ends the run when a
    stream goes silent; `waiting_interval` (s) logs a line while no sender has been heard.
    """
    specs = stream_specs(params)
    addresses = stream_addresses(address, link_streams(with_comm))
    source = PairedPullSource({name: (*specs[name], addresses[name]) for name in addresses}, timeout=timeout,
                              hwm=hwm, idle_timeout=idle_timeout, waiting_interval=waiting_interval,
                              max_pending=4 * max_items, context=context, curve=curve, name="rx")
    sources = {name: (source, name) for name in addresses}
    expect = {"n_antennas": params.n_antennas, "n_subcarriers": params.n_subcarriers, "with_comm": bool(with_comm),
              **(expect or {})}
    fg = Flowgraph(max_items=max_items, name="isac-rx")
    monitor = LinkMonitor(params, expect)
    estimator = make_estimator(estimator, params, spacing, mbml_form) if isinstance(estimator, str) else estimator
    ports = Transmitter(sources["Y_r"], sources["symbols"], sources.get("messages"), sources.get("y_c"),
                        sources.get("csi"), None)  # the streams, as the transmitter's ports
    fg.connect(sources["Y_r"], monitor)
    detection, ser = receivers(fg, params, ports, estimator, threshold, with_comm)
    return RxLink(fg, source, monitor, estimator, detection, ser)


@dataclass
class LinkVerdict:
    """Whether a received run is complete, and if not why: exit code, one-line reason, counts."""

    complete: bool
    exit_code: int
    reason: str
    counts: dict = field(default_factory=dict)


def link_verdict(link: RxLink) -> LinkVerdict:
    """Judge what `link`'s receiver saw: every frame of one run, paired, up to its end of stream.

    Incomplete runs, in the order their exit code is chosen: frames of another run
    (`EXIT_FOREIGN`), no end of stream (`EXIT_CUT_SHORT`: the sender went silent for the
    idle timeout), frames lost (`EXIT_LOST`: the start missed, gaps, unpaired, left over,
    untagged or malformed messages, fewer frames than the transmitter announced).
    """
    stats = link.source.stats()
    per = stats["streams"].values()
    total = {key: sum(s[key] for s in per) for key in ("foreign", "unpaired", "leftover", "untagged", "malformed",
                                                       "missed_items")}
    config = link.monitor.config
    announced = None if config is None or config.get("frames", -1) < 0 else int(config["frames"])
    ended = any(s["eos_received"] for s in per)
    # frames past the end of another stream: lost in transit unless every stream ended properly
    # (a sender that stops its streams at once, rather than draining them, ends them a few frames apart)
    surplus = total["leftover"] if all(s["eos_received"] for s in per) else 0
    missed_start = stats["first_index"] or 0
    lost = missed_start + stats["gaps"] + total["unpaired"] + total["leftover"] - surplus + total["untagged"] \
        + total["malformed"]
    if ended and announced is not None and stats["paired"] + lost < announced:
        lost = announced - stats["paired"]
    counts = {"paired": stats["paired"], "lost": lost, "surplus_after_end": surplus, "announced": announced,
              "missed_start": missed_start,
              "gaps": stats["gaps"], **total, "eos_received": ended,
              "timed_out": any(s["timed_out"] for s in per), "config_seen": config is not None}
    problems = []
    if total["foreign"]:
        problems.append((EXIT_FOREIGN, f"{total['foreign']} frames of another transmitter run (two tx on one "
                                       "address, or one restarted)"))
    if not ended:
        problems.append((EXIT_CUT_SHORT, "no end of stream: the transmitter went silent (idle timeout) after "
                                         f"{stats['paired']} paired frames"))
    if lost or config is None:
        why = [f"{n} {what}" for n, what in ((missed_start, "before the first received"),
                                             (stats["gaps"], "in gaps"),
                                             (total["unpaired"], "unpaired across streams (another receiver on "
                                                                 "the address?)"),
                                             (total["leftover"] - surplus, "left without partners when a stream "
                                                                           "ended"),
                                             (total["untagged"], "without a stream_seq tag"),
                                             (total["malformed"], "in malformed messages")) if n]
        if config is None:
            why.append("the transmitter's link_config was never received (configuration not checked)")
        problems.append((EXIT_LOST, f"{lost} frames lost" + (": " + ", ".join(why) if why else "")))
    if not problems:
        return LinkVerdict(True, 0, f"complete: {stats['paired']} frames of run {stats['stream_id']}", counts)
    return LinkVerdict(False, problems[0][0], "incomplete: " + "; ".join(text for _, text in problems), counts)
