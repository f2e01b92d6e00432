"""Block shells around `isacblocks.dsp`: ports, tags and parameters of the ISAC signal chain."""

from .beamforming import ISACCombiner, SectorBeamformer
from .channels import TargetChannel, UEChannel
from .multitarget import MultiTargetChannel, MultiTargetMetricsSink, SuccessiveDetector  # noqa: F401
from .ofdm import OFDMDemodulator, OFDMModulator
from .receivers import MAPRTDetector, MBMLEstimator, MLDemapper, ReciprocalFilter, SensingEstimator
from .sinks import DetectionMetricsSink, SERSink
from .sources import ScenarioSource, SymbolSource
from .ula import ImpairedULA, true_array  # noqa: F401 - a run's true array (not a block)

__all__ = ["ScenarioSource", "SymbolSource", "OFDMModulator", "OFDMDemodulator", "SectorBeamformer",
           "ISACCombiner", "ImpairedULA", "TargetChannel", "UEChannel", "ReciprocalFilter",
           "SensingEstimator", "MAPRTDetector", "MBMLEstimator", "MLDemapper", "DetectionMetricsSink", "SERSink"]
