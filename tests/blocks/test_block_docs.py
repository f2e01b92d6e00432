"""Every block's docstring lists its ports (name, dtype), its settings and its message ports
in Input / Output / Settings / Messages sections (Sionna's layout), read from the block itself."""

import re

import numpy as np

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
from isacblocks.blocks.multitarget import MultiTargetChannel, MultiTargetMetricsSink, SuccessiveDetector
from isacblocks.core import (
    FileSink,
    FileSource,
    Head,
    MessageCollector,
    NullSink,
    TagDebug,
    TagFilter,
    Throttle,
    VectorSink,
    VectorSource,
)

P = SystemParams(n_antennas=8, n_subcarriers=16)


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
        VectorSource: lambda: VectorSource(np.zeros(3, np.float32)), VectorSink: lambda: VectorSink(np.float32),
        NullSink: lambda: NullSink(np.float32), MessageCollector: MessageCollector,
        TagFilter: lambda: TagFilter(np.float32), Head: lambda: Head(np.float32, n=3),
        Throttle: lambda: Throttle(np.float32), TagDebug: lambda: TagDebug(np.float32),
        FileSource: lambda: FileSource(path, np.float32), FileSink: lambda: FileSink(tmp_path / "out.bin", np.float32),
    }


def _section(doc: str, title: str) -> str | None:
    match = re.search(rf"^{title}\n-{{{len(title)}}}\n(.*?)(?=^\S[^\n]*\n-{{3,}}\n|\Z)", doc, flags=re.S | re.M)
    return match.group(1) if match else None




def test_every_block_docstring_names_its_ports_settings_and_messages(tmp_path):
    problems = []
    for cls, make in _makers(tmp_path).items():
        block = make()
        doc = __import__("inspect").cleandoc(cls.__doc__ or "")
        generic = cls.__module__.startswith("isacblocks.core")
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
                if not re.search(rf"^{re.escape(spec.name)} : \[n[^\n]*\], {dtype}$", section, flags=re.M):
                    problems.append(f"{cls.__name__}: {title} does not list '{spec.name} : [n, ...], {dtype}'")
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
    assert not problems, "\n".join(problems)
