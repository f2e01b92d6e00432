"""Every block's docstring lists its ports (name, dtype), its settings and its message ports
in Input / Output / Settings / Messages sections (Sionna's layout), read from the block itself.

Every public concrete block class of the library is found by walking its block modules, and
each must have a maker here: a new block without one fails the test with its name."""

import importlib
import inspect
import pkgutil
import re

import numpy as np

import isacblocks.blocks
import isacblocks.learning
import isacblocks.zeromq
from isacblocks import SystemParams
from isacblocks.blocks import (
    DetectionMetricsSink,
    ImpairedULA,
    ISACCombiner,
    MAPRTDetector,
    MBMLEstimator,
    MLDemapper,
    OFDMDemodulator,
    OFDMModulator,
    ReciprocalFilter,
    ScenarioSource,
    SectorBeamformer,
    SensingEstimator,
    SERSink,
    SymbolSource,
    TargetChannel,
    UEChannel,
)
from isacblocks.blocks.chains import IsacReceiver, IsacTransmitter
from isacblocks.blocks.drift import DriftingTargetChannel
from isacblocks.blocks.link import LinkMonitor
from isacblocks.blocks.multitarget import MultiTargetChannel, MultiTargetMetricsSink, SuccessiveDetector
from isacblocks.core import (
    Block,
    FileSink,
    FileSource,
    Head,
    HierBlock,
    MessageCollector,
    NullSink,
    TagDebug,
    TagFilter,
    Throttle,
    VectorSink,
    VectorSource,
)
from isacblocks.dsp.drift import DriftParams
from isacblocks.learning.online import OnlineSpacingTrainer
from isacblocks.learning.tracker import ArrayTracker
from isacblocks.zeromq import PairedPullSource, PubSink, PullSource, PushSink, SubSource

P = SystemParams(n_antennas=8, n_subcarriers=16)

#: The abstract bases: a block class derives from one of them.
ABSTRACT = {"Block", "SyncBlock", "SourceBlock", "SinkBlock", "DecimBlock", "InterpBlock", "GeneralBlock",
            "HierBlock", "ZmqSinkBase"}
#: A script run by GNU Radio's interpreter (it imports gnuradio), not a module of the library.
NOT_LIBRARY = {"isacblocks.zeromq.gr_peer"}
#: The modules whose blocks take their dtype from the user: a port's dtype reads ``dtype``.
GENERIC = ("isacblocks.core", "isacblocks.zeromq")


def _block_modules() -> list[str]:
    names = ["isacblocks.core.basic", "isacblocks.core.file"]
    for package in (isacblocks.blocks, isacblocks.learning, isacblocks.zeromq):
        names += [info.name for info in pkgutil.walk_packages(package.__path__, package.__name__ + ".")]
    return [name for name in names if name not in NOT_LIBRARY]


def block_classes() -> list[type]:
    """Every public concrete block class defined in a block module of the library."""
    found = []
    for name in _block_modules():
        for cls_name, cls in vars(importlib.import_module(name)).items():
            if (inspect.isclass(cls) and issubclass(cls, (Block, HierBlock)) and cls.__module__ == name
                    and not cls_name.startswith("_") and cls_name not in ABSTRACT):
                found.append(cls)
    return found


def _makers(tmp_path):
    ula = ImpairedULA.drawn(P, 1)
    path = tmp_path / "items.bin"
    np.zeros(3, np.float32).tofile(path)
    return {
        SectorBeamformer: lambda: SectorBeamformer(P), ISACCombiner: lambda: ISACCombiner(P),
        TargetChannel: lambda: TargetChannel(P, ula), UEChannel: lambda: UEChannel(P, ula),
        MultiTargetChannel: lambda: MultiTargetChannel(P, ula), SuccessiveDetector: lambda: SuccessiveDetector(P, 1.0),
        MultiTargetMetricsSink: lambda: MultiTargetMetricsSink(P), OFDMModulator: lambda: OFDMModulator(P),
        OFDMDemodulator: lambda: OFDMDemodulator(P), ReciprocalFilter: lambda: ReciprocalFilter(P),
        SensingEstimator: lambda: SensingEstimator(P), MAPRTDetector: lambda: MAPRTDetector(P),
        MBMLEstimator: lambda: MBMLEstimator(P), MLDemapper: lambda: MLDemapper(P),
        DetectionMetricsSink: lambda: DetectionMetricsSink(P), SERSink: lambda: SERSink(P),
        ScenarioSource: lambda: ScenarioSource(P), SymbolSource: lambda: SymbolSource(P),
        IsacTransmitter: lambda: IsacTransmitter(P, ula, ula.spacing, 4),
        IsacReceiver: lambda: IsacReceiver(P, MAPRTDetector(P)),
        DriftingTargetChannel: lambda: DriftingTargetChannel(P, ula.spacing, DriftParams()),
        LinkMonitor: lambda: LinkMonitor(P),
        OnlineSpacingTrainer: lambda: OnlineSpacingTrainer(P, threshold=1.0),
        ArrayTracker: lambda: ArrayTracker(P, ula.spacing, threshold=1.0),
        VectorSource: lambda: VectorSource(np.zeros(3, np.float32)), VectorSink: lambda: VectorSink(np.float32),
        NullSink: lambda: NullSink(np.float32), MessageCollector: MessageCollector,
        TagFilter: lambda: TagFilter(np.float32), Head: lambda: Head(np.float32, n=3),
        Throttle: lambda: Throttle(np.float32), TagDebug: lambda: TagDebug(np.float32),
        FileSource: lambda: FileSource(path, np.float32), FileSink: lambda: FileSink(tmp_path / "out.bin", np.float32),
        PushSink: lambda: PushSink(np.float32), PubSink: lambda: PubSink(np.float32),
        PullSource: lambda: PullSource(np.float32, address="inproc://block-docs-pull"),
        SubSource: lambda: SubSource(np.float32, address="inproc://block-docs-sub"),
        PairedPullSource: lambda: PairedPullSource({"Y_r": (np.complex64, (8, 16), "inproc://block-docs-paired")}),
    }


def _section(doc: str, title: str) -> str | None:
    match = re.search(rf"^{title}\n-{{{len(title)}}}\n(.*?)(?=^\S[^\n]*\n-{{3,}}\n|\Z)", doc, flags=re.S | re.M)
    return match.group(1) if match else None


def test_every_block_class_has_a_maker(tmp_path):
    classes = block_classes()
    names = {cls.__name__ for cls in classes}
    assert {"MBMLEstimator", "IsacTransmitter", "PushSink", "ArrayTracker", "FileSink"} <= names  # the walk works
    missing = [f"{cls.__module__}.{cls.__name__}" for cls in classes if cls not in _makers(tmp_path)]
    assert not missing, f"blocks without a maker in _makers (add one, and its docstring sections): {missing}"


def _port_problems(cls, doc: str, block) -> list[str]:
    problems = []
    generic = cls.__module__.startswith(GENERIC)
    for title, sig in (("Input", block.in_sig), ("Output", block.out_sig)):
        section = _section(doc, title)
        if not sig:
            if section is not None:
                problems.append(f"{cls.__name__}: an {title} section, but no {title.lower()} port")
            continue
        if section is None:
            problems.append(f"{cls.__name__}: no {title} section")
            continue
        for spec in sig:
            dtype = "dtype" if generic else np.dtype(spec.dtype).name
            name = rf"(?:{re.escape(spec.name)}|<name>)"  # <name>: ports the user names
            if not re.search(rf"^{name} : \[n[^\n]*\], {dtype}$", section, flags=re.M):
                problems.append(f"{cls.__name__}: {title} does not list '{spec.name} : [n, ...], {dtype}'")
    return problems


def test_every_block_docstring_names_its_ports_settings_and_messages(tmp_path):
    problems = []
    for cls, make in _makers(tmp_path).items():
        block = make()
        try:
            doc = inspect.cleandoc(cls.__doc__ or "")
            problems += _port_problems(cls, doc, block)
            settings = _section(doc, "Settings") or ""
            for name in block.settings:
                if not re.search(rf"^{name}$", settings, flags=re.M):
                    problems.append(f"{cls.__name__}: Settings does not list {name!r}")
            messages = _section(doc, "Messages") or ""
            ports = [(p, "in") for p in block.message_ports_in if p != "settings"] + \
                    [(p, "out") for p in block.message_ports_out]
            for port, direction in ports:
                if not re.search(rf"^{port} \({direction}\)$", messages, flags=re.M):
                    problems.append(f"{cls.__name__}: Messages does not list '{port} ({direction})'")
        finally:
            if hasattr(block, "close"):  # the ZeroMQ blocks' sockets, the file blocks' files
                block.close()
    assert not problems, "\n".join(problems)
