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
``link_config`` tag on the first Y_r frame, and each stream ends with an end-of-stream
tag.  PUSH/PULL never drops and keeps every stream in order, so item k of each stream is
frame k and the receiver computes exactly what the one-process flowgraph computes.

Addresses: from one ``address`` each stream gets its own endpoint, in the order of
`LINK_STREAMS` -- consecutive ports for ``tcp://host:port``, suffixes for
``ipc://path`` and ``inproc://name`` (see `stream_addresses`).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import numpy as np

from ..blocks import (DetectionMetricsSink, ImpairedULA, MAPRTDetector, MBMLEstimator, MLDemapper, ReciprocalFilter,
                      SERSink)
from ..core import Flowgraph, NullSink, SinkBlock
from ..errors import BlockError, ConfigError
from ..zmq import PullSource, PushSink
from .baseline import transmitter

#: Every stream of the link, in address order.
LINK_STREAMS = ("Y_r", "symbols", "messages", "y_c", "csi")

#: Default high-water mark of the link sockets, in messages (one message = one batch of
#: frames): small, so that the transmitter runs at most a few batches ahead of the receiver.
LINK_HWM = 4

#: Version of the ``link_config`` tag's layout.
LINK_VERSION = 1


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


def link_config(params, ula: ImpairedULA, seed, n_frames: int | None, with_comm: bool, eta: float,
                phi: float) -> dict:
    """What the transmitter tells the receiver on the first Y_r frame (tag ``link_config``)."""
    return {"version": LINK_VERSION, "n_antennas": params.n_antennas, "n_subcarriers": params.n_subcarriers,
            "with_comm": bool(with_comm), "seed": repr(seed), "frames": -1 if n_frames is None else int(n_frames),
            "eta": float(eta), "phi": float(phi), "true_spacing": np.asarray(ula.spacing, dtype=np.float64)}


@dataclass
class TxLink:
    """The transmitter flowgraph and its ZeroMQ sinks (by stream name)."""

    flowgraph: Flowgraph
    sinks: dict[str, PushSink]

    @property
    def endpoints(self) -> dict[str, str]:
        return {name: sink.endpoint for name, sink in self.sinks.items()}


def tx_flowgraph(params, ula: ImpairedULA, spacing, n_frames: int | None, address: str, seed=0, eta: float = 1.0,
                 phi: float = 0.0, with_comm: bool = True, sector="test", presence_probability: float = 0.5,
                 alternate: bool = False, max_items: int = 64, hwm: int = LINK_HWM, timeout: int = 100,
                 linger: int = -1, context=None) -> TxLink:
    """Scenario, symbols, OFDM, beamformer and channels of `isac_flowgraph` (same blocks, same
    seeds), streaming Y_r, symbols and -- with comm -- messages, y_c and csi over PUSH sinks
    bound to `stream_addresses(address)`.  `n_frames` None streams until stopped.

    `linger` (ms, -1: until delivered) bounds how long the sinks' stop() waits for the
    receiver to take what is queued; `abort()` on the sinks gives up at once.
    """
    specs = stream_specs(params)
    addresses = stream_addresses(address, link_streams(with_comm))
    config = link_config(params, ula, seed, n_frames, with_comm, eta, phi)
    sinks = {name: PushSink(*specs[name], addresses[name], timeout=timeout, pass_tags=True, hwm=hwm,
                            linger=linger, start_tags={"link_config": config} if name == "Y_r" else None,
                            context=context, name=f"tx_{name}")
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
    return TxLink(fg, sinks)


class LinkMonitor(SinkBlock):
    """Watches the received Y_r stream through its tags only (the frames are not touched).

    Counts `frames` (and notes when the first and the latest arrived, for rates), checks
    the transmitter's ``link_config`` against `expect` (a dict with any of ``n_antennas``,
    ``n_subcarriers``, ``with_comm``, ``true_spacing``) and raises naming the difference,
    and counts frames missing from the ``seq`` numbering.
    """

    def __init__(self, params, expect: dict | None = None, name: str = "link_monitor"):
        super().__init__(in_sig=[("Y_r", np.complex64, (params.n_antennas, params.n_subcarriers))], name=name)
        self.expect = dict(expect or {})
        self.frames = 0
        self.missing = 0
        self.first_seq: int | None = None
        self.last_seq: int | None = None
        self.config: dict | None = None
        self.first_time: float | None = None
        self.last_time: float | None = None

    def start(self) -> None:
        self.frames = self.missing = 0
        self.first_seq = self.last_seq = self.config = None
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
        for seq in self.frame_tags(0, n, "seq"):
            if seq is None:
                continue
            if self.first_seq is None:
                self.first_seq = seq
            elif seq > self.last_seq + 1:
                self.missing += seq - self.last_seq - 1
            self.last_seq = seq
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
                 "true_spacing": "--seed / --spacing"}
        for key, hint in hints.items():
            if key not in self.expect:
                continue
            mine, theirs = self.expect[key], config.get(key)
            same = np.array_equal(np.asarray(mine), np.asarray(theirs)) if key == "true_spacing" else mine == theirs
            if not same:
                shown = (lambda v: "differs" if key == "true_spacing" else repr(v))
                raise BlockError(f"block {self.name!r}: the transmitter runs with {key} = {shown(theirs)}, this "
                                 f"receiver with {shown(mine)}: give both the same {hint}")


@dataclass
class RxLink:
    """The receiver flowgraph, its sources (by stream name) and the blocks holding results."""

    flowgraph: Flowgraph
    sources: dict[str, PullSource]
    monitor: LinkMonitor
    estimator: object
    detection: DetectionMetricsSink
    ser: SERSink | None


def make_estimator(kind: str, params, spacing):
    """``"maprt"`` (the baseline) or ``"mbml"`` (Algorithm 1) receiver assuming `spacing`."""
    if kind == "maprt":
        return MAPRTDetector(params, spacing)
    if kind == "mbml":
        return MBMLEstimator(params, spacing)
    raise ConfigError(f"estimator = {kind!r}: expected 'maprt' or 'mbml'")


def rx_flowgraph(params, spacing, address: str, with_comm: bool = True, estimator="maprt",
                 threshold: float | None = None, max_items: int = 64, hwm: int = LINK_HWM, timeout: int = 100,
                 expect: dict | None = None, context=None) -> RxLink:
    """Reciprocal filter, sensing estimator and metric sinks fed by PULL sources connected to
    `stream_addresses(address)`; `estimator` is ``"maprt"``, ``"mbml"`` or a `SensingEstimator`.

    `expect` is checked against the transmitter's ``link_config`` (see `LinkMonitor`);
    by default the item shapes and `with_comm`.
    """
    specs = stream_specs(params)
    addresses = stream_addresses(address, link_streams(with_comm))
    sources = {name: PullSource(*specs[name], addresses[name], timeout=timeout, pass_tags=True, hwm=hwm,
                                context=context, name=f"rx_{name}")
               for name in addresses}
    expect = {"n_antennas": params.n_antennas, "n_subcarriers": params.n_subcarriers, "with_comm": bool(with_comm),
              **(expect or {})}
    fg = Flowgraph(max_items=max_items, name="isac-rx")
    monitor = LinkMonitor(params, expect)
    recip = ReciprocalFilter(params)
    estimator = make_estimator(estimator, params, spacing) if isinstance(estimator, str) else estimator
    detection = DetectionMetricsSink(params, threshold=threshold)
    fg.connect(sources["Y_r"], (recip, "Y_r"))
    fg.connect(sources["Y_r"], monitor)
    fg.connect(sources["symbols"], (recip, "symbols"))
    fg.connect(recip, estimator, detection)
    ser = None
    if with_comm:
        demapper = MLDemapper(params)
        ser = SERSink(params)
        fg.connect(sources["y_c"], (demapper, "y_c"))
        fg.connect(sources["csi"], (demapper, "csi"))
        fg.connect(demapper, (ser, "decided"))
        fg.connect(sources["messages"], (ser, "sent"))
    return RxLink(fg, sources, monitor, estimator, detection, ser)
