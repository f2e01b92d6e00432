"""The ISAC transceiver of Fig. 2 as reusable wiring: the transmitter (scenario, symbols, OFDM,
beamformers, ISAC combiner, both channels), the receivers (reciprocal filter, sensing estimator,
ML demapper, metric sinks), the whole chain in one `Flowgraph` (`isac_flowgraph`), and the
same chain split over two processes linked by ZeroMQ (`tx_flowgraph`, `rx_flowgraph`: ``isac
tx`` / ``isac rx``; the link's streams and checks are `isacblocks.blocks.link`).

Every random block draws from its own child of the run's seed (`block_seeds`), so the same
seed gives the same frames however the chain is split (one process, or ``isac tx`` / ``isac rx``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core import Flowgraph, HierBlock, NullSink
from ..dsp.mbml import mbml_estimate
from ..errors import ConfigError
from ..params import SystemParams
from ..seeding import seed_sequence
from ..zeromq import PairedPullSource, PushSink
from .beamforming import ISACCombiner, SectorBeamformer
from .channels import TargetChannel, UEChannel
from .link import (
    LINK_HWM,
    LINK_IDLE_TIMEOUT,
    FrameCheck,
    LinkMonitor,
    RxLink,
    link_config,
    link_streams,
    new_run_id,
    stream_addresses,
    stream_specs,
)
from .ofdm import OFDMModulator
from .receivers import MBML_METHODS, MAPRTDetector, MBMLEstimator, MLDemapper, ReciprocalFilter
from .sinks import DetectionMetricsSink, SERSink
from .sources import ScenarioSource, SymbolSource
from .ula import ImpairedULA

BLOCK_SEEDS = ("scenario", "symbols", "target", "ue")


def block_seeds(seed) -> dict[str, np.random.SeedSequence]:
    """One independent seed per random block, derived from the run's seed."""
    return dict(zip(BLOCK_SEEDS, seed_sequence(seed).spawn(len(BLOCK_SEEDS))))


@dataclass
class ChainBlocks:
    """The blocks of one ISAC chain, for reading results after a run."""

    flowgraph: Flowgraph
    detection: DetectionMetricsSink
    ser: SERSink | None
    estimator: object
    beamformer: SectorBeamformer


class IsacTransmitter(HierBlock):
    """The transmit side of Fig. 2 and both channels, as one block (Fig. 2, left half)::

        ScenarioSource ─► SectorBeamformer(f_r) ─┐
                      └─► SectorBeamformer(f_c) ─┴► ISACCombiner ─► TargetChannel ─► Y_r
        SymbolSource ─► OFDMModulator ───────────────────────────┘   └► UEChannel ─► y_c, csi
                    └─► messages            OFDMModulator ─► symbols

    Outputs: ``Y_r`` (the sensing frames, (K, S)), ``symbols`` (the OFDM symbols the reciprocal
    filter divides by, eq. 7), ``messages`` (the sent indices) and, with comm, ``y_c`` and ``csi``
    (the UE's received signal and channel, eq. 3).  Without comm the sensing precoder drives the
    target channel alone.  `spacing` is what the transmitter assumes; `ula` is the true array.
    The beamformer (`beamformer`, f_r) takes a new spacing on its message port ``spacing``.

    Output
    ------
    Y_r : [n, K, S], complex64
        The received sensing frames (eq. 1), tagged with the truth of each frame.
    symbols : [n, S], complex64
        The OFDM symbols sent (the reciprocal filter's divisor, eq. 7).
    messages : [n, S], int32
        The sent constellation indices.
    y_c : [n, S], complex64
        The UE's received subcarriers (eq. 3); with comm only.
    csi : [n, S], complex64
        The UE's channel ``kappa`` per subcarrier; with comm only.
    """

    def __init__(self, params, ula: ImpairedULA, spacing, n_frames: int | None, seed=0, eta: float = 1.0,
                 phi: float = 0.0, with_comm: bool = True, sector="test", presence_probability: float = 0.5,
                 alternate: bool = False, name: str = "isac_tx"):
        seeds = block_seeds(seed)
        scenario = ScenarioSource(params, n_frames, sector=sector, presence_probability=presence_probability,
                                  alternate=alternate, seed=seeds["scenario"])
        symbols = SymbolSource(params, n_frames, seed=seeds["symbols"])
        ofdm = OFDMModulator(params)
        f_sensing = SectorBeamformer(params, spacing, name="f_sensing")
        target = TargetChannel(params, ula, seed=seeds["target"])
        outputs = {"Y_r": (target, 0), "symbols": (ofdm, 0), "messages": (symbols, "messages")}
        if with_comm:
            ue = UEChannel(params, ula, seed=seeds["ue"])
            outputs.update(y_c=(ue, "y_c"), csi=(ue, "csi"))
        super().__init__(out_sig=[_spec(*inner, stream) for stream, inner in outputs.items()], name=name)
        self.beamformer = f_sensing
        self.connect((symbols, "symbols"), ofdm, (target, "symbols"))
        self.connect(scenario, f_sensing)
        if with_comm:
            f_comm = SectorBeamformer(params, spacing, fixed_sector=params.ue_sector, name="f_comm")
            combiner = ISACCombiner(params, eta, phi)
            self.connect(scenario, f_comm)
            self.connect(f_sensing, (combiner, "f_sensing"))
            self.connect(f_comm, (combiner, "f_comm"))
            self.connect(combiner, (target, "precoder"))
            self.connect(combiner, (ue, "precoder"))
            self.connect(ofdm, (ue, "symbols"))
        else:
            self.connect(f_sensing, (target, "precoder"))
        for index, inner in enumerate(outputs.values()):
            self.connect(inner, (self, index))


class IsacReceiver(HierBlock):
    """The receive side of Fig. 2 as one block, with its metric sinks inside::

        Y_r, symbols ─► ReciprocalFilter (eq. 7) ─► estimator ─► DetectionMetricsSink
        y_c, csi ─► MLDemapper ─► SERSink ◄─ messages        (with_comm)

    Inputs: the `IsacTransmitter`'s outputs of the same names (``Y_r``, ``symbols`` and, with
    comm, ``messages``, ``y_c``, ``csi``).  `estimator`: any `SensingEstimator` (the MAPRT
    detector, eqs. 9-10, or the MB-ML estimator, Alg. 1).  The results are read from
    `detection` and `ser` (None without comm) after the run.

    Input
    -----
    Y_r : [n, K, S], complex64
        The received sensing frames (eq. 1), with their truth tags.
    symbols : [n, S], complex64
        The OFDM symbols sent (eq. 7's divisor).
    messages : [n, S], int32
        The sent constellation indices; with comm only.
    y_c : [n, S], complex64
        The UE's received subcarriers (eq. 3); with comm only.
    csi : [n, S], complex64
        The UE's channel ``kappa`` per subcarrier; with comm only.
    """

    def __init__(self, params: SystemParams, estimator, threshold: float | None = None, with_comm: bool = True,
                 name: str = "isac_rx"):
        recip = ReciprocalFilter(params)
        self.estimator = estimator
        self.detection = DetectionMetricsSink(params, threshold=threshold)
        self.ser = SERSink(params) if with_comm else None
        demapper = MLDemapper(params) if with_comm else None
        targets = {"Y_r": [(recip, "Y_r")], "symbols": [(recip, "symbols")], "messages": [(self.ser, "sent")],
                   "y_c": [(demapper, "y_c")], "csi": [(demapper, "csi")]}
        streams = link_streams(with_comm)
        super().__init__(in_sig=[_spec(*targets[stream][0], stream, "in") for stream in streams], name=name)
        for index, stream in enumerate(streams):
            for inner in targets[stream]:
                self.connect((self, index), inner)
        self.connect(recip, estimator, self.detection)
        if with_comm:
            self.connect(demapper, (self.ser, "decided"))


def connect_transceiver(fg: Flowgraph, tx: IsacTransmitter, rx: IsacReceiver) -> None:
    """Feed each input of `rx` from the output of `tx` of the same name; an output `rx` does not
    take (the sent messages, sensing only) ends in a `NullSink`."""
    taken = [spec.name for spec in rx.in_sig]
    for stream in taken:
        fg.connect((tx, stream), (rx, stream))
    for spec in tx.out_sig:
        if spec.name not in taken:
            fg.connect((tx, spec.name), NullSink(spec.dtype, spec.shape))


def _spec(block, port, name: str, direction: str = "out"):
    """The port spec of `block`'s `port` (an index or a name), renamed `name`: a hier port that
    stands for it."""
    sig = block.out_sig if direction == "out" else block.in_sig
    index = port if isinstance(port, int) else [s.name for s in sig].index(port)
    return sig[index]._replace(name=name)


def isac_flowgraph(params, ula: ImpairedULA, spacing, n_frames: int, seed=0, eta: float = 1.0, phi: float = 0.0,
                   with_comm: bool = True, sector="test", presence_probability: float = 0.5,
                   alternate: bool = False, estimator=None, threshold: float | None = None,
                   max_items: int = 64) -> ChainBlocks:
    """The whole ISAC transceiver of Fig. 2: the `IsacTransmitter` feeding the `IsacReceiver`
    (`connect_transceiver`).

    `spacing` is what the transceiver assumes (precoder and receiver); `ula` is the
    true array.  `estimator` defaults to the MAPRT detector; pass any
    `SensingEstimator` (e.g. the MB-ML estimator) to swap the receiver.
    """
    fg = Flowgraph(max_items=max_items, name="isac")
    tx = IsacTransmitter(params, ula, spacing, n_frames, seed, eta, phi, with_comm, sector, presence_probability,
                         alternate)
    estimator = estimator if estimator is not None else MAPRTDetector(params, spacing)
    rx = IsacReceiver(params, estimator, threshold, with_comm)
    connect_transceiver(fg, tx, rx)
    return ChainBlocks(fg, rx.detection, rx.ser, estimator, tx.beamformer)


# ---------------------------------------------------------------- the chain over two processes
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
    tx = IsacTransmitter(params, ula, spacing, n_frames, seed, eta, phi, with_comm, sector, presence_probability,
                         alternate)
    for stream in link_streams(with_comm):
        fg.connect((tx, stream), sinks[stream])
    if not with_comm:
        fg.connect((tx, "messages"), NullSink(np.int32, params.n_subcarriers))
    return TxLink(fg, sinks, run_id)


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
    by default the item shapes, `with_comm` and the transmitter's `SystemParams` fields.
    Every Y_r frame's tags pass `FrameCheck` before the frame is paired.  `idle_timeout` (s) ends the run when a
    stream goes silent; `waiting_interval` (s) logs a line while no sender has been heard.
    """
    specs = stream_specs(params)
    addresses = stream_addresses(address, link_streams(with_comm))
    source = PairedPullSource({name: (*specs[name], addresses[name]) for name in addresses}, timeout=timeout,
                              hwm=hwm, idle_timeout=idle_timeout, waiting_interval=waiting_interval,
                              max_pending=4 * max_items, context=context, curve=curve, name="rx",
                              check={"Y_r": FrameCheck(params)})
    expect = {"n_antennas": params.n_antennas, "n_subcarriers": params.n_subcarriers, "with_comm": bool(with_comm),
              "params": params, **(expect or {})}
    fg = Flowgraph(max_items=max_items, name="isac-rx")
    monitor = LinkMonitor(params, expect)
    estimator = make_estimator(estimator, params, spacing, mbml_form) if isinstance(estimator, str) else estimator
    rx = IsacReceiver(params, estimator, threshold, with_comm)
    fg.connect((source, "Y_r"), monitor)
    for stream in addresses:
        fg.connect((source, stream), (rx, stream))
    return RxLink(fg, source, monitor, estimator, rx.detection, rx.ser)
