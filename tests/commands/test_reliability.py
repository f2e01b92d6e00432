"""Reliability: bad configuration, bad arrays, NaN/Inf frames, faults while running, training
faults and reproducibility.  `docs/reliability.md` maps every case to its test (here or in
the other test files, which are cited there rather than repeated here).

Every test uses fixed seeds and bounded waits; the slowest one (a real ``isac train``
killed with SIGKILL and resumed) takes about 20 s on 2 cores.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numba
import numpy as np
import pytest
import torch
import zmq

import isacblocks.dsp as dsp_pkg
from isacblocks import SystemParams
from isacblocks import blocks as blocks_pkg
from isacblocks.blocks import (
    DetectionMetricsSink,
    ImpairedULA,
    ISACCombiner,
    MAPRTDetector,
    MBMLEstimator,
    OFDMDemodulator,
    OFDMModulator,
    ScenarioSource,
    SectorBeamformer,
    SymbolSource,
    TargetChannel,
    UEChannel,
)
from isacblocks.blocks.chains import isac_flowgraph
from isacblocks.blocks.items import INVALID_FRAME_KEY
from isacblocks.core import Flowgraph, SourceBlock, Tag, VectorSink, VectorSource, run_block
from isacblocks.dsp import (
    beampattern_precoder,
    check_spacing,
    delay_steering,
    draw_spacing,
    draw_targets,
    element_positions,
    frame_noise,
    isac_precoder,
    maprt,
    ml_demap,
    proportion_interval,
    range_steering,
    reciprocal_filter,
    save_spacing,
    target_echo,
    threshold_at_pfa,
    threshold_interval,
    ue_channel_frequency_response,
    ue_received,
    ula_steering,
)
from isacblocks.dsp.mbml import mbml_estimate, mbml_estimate_projected, mbml_peak_projected, window_indices
from isacblocks.errors import BlockError, ConfigError, IsacError, ShapeError, TrainingError
from isacblocks.learning.trainer import TrainConfig, Trainer
from isacblocks.sim.evaluation import evaluate_spacing
from isacblocks.zeromq import PubSink, PullSource, PushSink, SubSource

REPO = Path(__file__).resolve().parents[2]
P = SystemParams(n_antennas=16, n_subcarriers=64, n_angle_grid=180, n_range_grid=50)
K, S = P.n_antennas, P.n_subcarriers
PAPER = SystemParams()
ULA = ImpairedULA(P)
LOOPBACK = "tcp://127.0.0.1:0"


def noise_frames(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, K, S)) + 1j * rng.standard_normal((n, K, S))).astype(np.complex64)


def shown(value) -> list[str]:
    """How a bad value may appear in a message."""
    return [repr(value), str(value)] + ([repr(tuple(float(v) for v in value))] if isinstance(value, tuple) else [])


def assert_names(exc: BaseException, field: str, value, rule: str) -> None:
    msg = str(exc)
    assert field in msg, f"field {field!r} not named: {msg}"
    assert rule in msg, f"rule {rule!r} not stated: {msg}"
    if value is not None:
        assert any(s in msg for s in shown(value)), f"value {value!r} not shown: {msg}"


# ============================================================================ 1. configuration
#: SystemParams fields whose bad values tests/dsp/test_dsp_physics.py already checks
#: (test_invalid_field_raises_config_error_naming_field_value_rule); cited, not repeated.
PHYSICS_TABLE_FIELDS = {"n_antennas", "n_subcarriers", "pfa", "noise_power", "carrier_hz", "n_taps", "tap_decay",
                        "range_max_m", "spacing_std_wavelengths", "snr_radar_db", "subcarrier_spacing_hz",
                        "constellation", "test_sector_deg", "ue_sector_deg", "train_width_deg"}

SYSTEM_CASES = [
    ("subcarrier_spacing_hz", 0.0, "must be > 0"),
    ("carrier_hz", 0.0, "must be > 0"),
    ("snr_comm_db", float("inf"), "must be finite"),
    ("snr_radar_db", 10 ** 400, "must be finite"),  # an int beyond the float range
    ("noise_power", -1.0, "must be > 0"),
    ("n_taps", 0, "needs 1 <= L <= n_subcarriers"),
    ("n_angle_grid", 1, "needs at least 2 grid points"),
    ("n_range_grid", 1, "needs at least 2 grid points"),
    ("n_range_grid", 50.0, "must be an integer"),
    ("range_min_m", -1.0, "must be >= 0"),
    ("range_max_m", 0.0, "must be > range_min_m"),
    ("test_sector_deg", (10.0, 10.0), "needs -90 <= min < max <= 90"),
    ("test_sector_deg", "12", "expected a pair of numbers"),  # a string is not a pair of numbers
    ("test_sector_deg", (True, 5.0), "expected a pair of numbers"),
    ("test_sector_deg", (1.0, 2.0, 3.0), "expected a pair of numbers"),
    ("ue_sector_deg", (30.0, 95.0), "needs -90 <= min < max <= 90"),
    ("train_center_deg", (-100.0, 0.0), "needs -90 <= min <= max <= 90"),
    ("train_center_deg", (10.0, -10.0), "needs -90 <= min <= max <= 90"),
    ("train_width_deg", (5.0, 200.0), "needs 0 < min <= max <= 180"),
    ("pfa", float("nan"), "must be finite"),
    ("constellation", 4, "must be one of"),
    ("spacing_std_wavelengths", float("-inf"), "must be finite"),
]


@pytest.mark.parametrize("field, value, rule", SYSTEM_CASES, ids=[f"{c[0]}={c[1]!r}"[:40] for c in SYSTEM_CASES])
def test_systemparams_field_errors_name_field_value_and_rule(field, value, rule):
    with pytest.raises(ConfigError) as info:
        SystemParams(**{field: value})
    assert_names(info.value, f"SystemParams.{field}", value, rule)


def test_every_systemparams_field_has_a_validation_case():
    fields = {f.name for f in dataclasses.fields(SystemParams) if f.init}
    assert fields == PHYSICS_TABLE_FIELDS | {c[0] for c in SYSTEM_CASES}
    text = (REPO / "tests" / "dsp" / "test_dsp_physics.py").read_text()
    for field in PHYSICS_TABLE_FIELDS:  # the cited table still holds them
        assert f'("{field}",' in text, field


def test_cross_field_rules_show_the_other_value():
    with pytest.raises(ConfigError, match=r"n_taps = 5: .*n_subcarriers = 3"):
        SystemParams(n_subcarriers=3)
    with pytest.raises(ConfigError, match=r"range_max_m = 200.0: must be > range_min_m \(= 300.0\)"):
        SystemParams(range_min_m=300.0)


def test_toml_files_that_are_not_utf8_or_nest_too_deeply_give_config_error(tmp_path):
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"n_antennas = 32\n\xff\xfe\n")
    with pytest.raises(ConfigError, match="binary.toml.*utf-8"):
        SystemParams.from_toml(binary)
    deep = tmp_path / "deep.toml"
    deep.write_text("n_antennas = " + "[" * 3000 + "]" * 3000 + "\n")
    with pytest.raises(ConfigError, match="deep.toml: arrays or tables nested too deeply"):
        SystemParams.from_toml(deep)
    table = tmp_path / "table.toml"
    table.write_text("[system]\ntest_sector_deg = \"-40,-20\"\n")
    with pytest.raises(ConfigError, match=r"table.toml: SystemParams.test_sector_deg = '-40,-20': expected a pair"):
        SystemParams.from_toml(table)
    with pytest.raises(ConfigError, match="expected a dict"):
        SystemParams.from_dict([("n_antennas", 8)])


# ---------------------------------------------------------------------------- block parameters
def _spacing(n=K, value=None):
    return np.full(n, P.wavelength / 2) if value is None else np.full(n, value)


_crossing = P.nominal_spacing.copy()
_crossing[0] = 0.05 * P.wavelength  # element 0 at -7.5 d_0 lands right of element 1 at -6.5 d_1

#: (block, parameter, constructor taking the bad value, bad value, rule, value shown in the message)
BLOCK_CASES = [
    ("ScenarioSource", "n_frames", lambda v: ScenarioSource(P, n_frames=v), -1, "integer >= 0", True),
    ("ScenarioSource", "n_frames", lambda v: ScenarioSource(P, n_frames=v), 2.5, "integer >= 0", True),
    ("ScenarioSource", "sector", lambda v: ScenarioSource(P, sector=v), "north", "expected 'test', 'train'", True),
    ("ScenarioSource", "sector", lambda v: ScenarioSource(P, sector=v), (0.3, 0.2), "-pi/2 <= min < max <= pi/2",
     True),
    ("ScenarioSource", "sector", lambda v: ScenarioSource(P, sector=v), (-2.0, 0.0), "-pi/2 <= min < max <= pi/2",
     True),
    ("ScenarioSource", "sector", lambda v: ScenarioSource(P, sector=v), 5, "expected a pair", True),
    ("ScenarioSource", "presence_probability", lambda v: ScenarioSource(P, presence_probability=v), 1.5,
     "must lie in [0, 1]", True),
    ("ScenarioSource", "presence_probability", lambda v: ScenarioSource(P, presence_probability=v), float("nan"),
     "must lie in [0, 1]", True),
    ("ScenarioSource", "seed", lambda v: ScenarioSource(P, seed=v), -1, "non-negative integer", True),
    ("SymbolSource", "n_frames", lambda v: SymbolSource(P, n_frames=v), -3, "integer >= 0", True),
    ("SymbolSource", "seed", lambda v: SymbolSource(P, seed=v), "abc", "non-negative integer", True),
    ("OFDMModulator", "cyclic_prefix", lambda v: OFDMModulator(P, time_domain=True, cyclic_prefix=v), S + 1,
     "integer in [0, S=64]", True),
    ("OFDMModulator", "cyclic_prefix", lambda v: OFDMModulator(P, time_domain=True, cyclic_prefix=v), 2.5,
     "integer in [0, S=64]", True),
    ("OFDMModulator", "cyclic_prefix", lambda v: OFDMModulator(P, cyclic_prefix=v), 4, "needs time_domain=True", True),
    ("OFDMDemodulator", "cyclic_prefix", lambda v: OFDMDemodulator(P, cyclic_prefix=v), -1, "integer in [0, S=64]",
     True),
    ("SectorBeamformer", "spacing", lambda v: SectorBeamformer(P, spacing=v), _spacing(K - 1),
     "expected 16 spacings", False),
    ("SectorBeamformer", "spacing", lambda v: SectorBeamformer(P, spacing=v), _spacing(K, -1e-3),
     "finite and > 0", False),
    ("SectorBeamformer", "fixed_sector", lambda v: SectorBeamformer(P, fixed_sector=v), (0.5, 0.1),
     "-pi/2 <= min < max <= pi/2", True),
    ("SectorBeamformer", "fixed_sector", lambda v: SectorBeamformer(P, fixed_sector=v), (-2.0, 0.0),
     "-pi/2 <= min < max <= pi/2", True),
    ("SectorBeamformer", "cache_size", lambda v: SectorBeamformer(P, cache_size=v), 0, "integer >= 1", True),
    ("SectorBeamformer", "batch_solve", lambda v: SectorBeamformer(P, batch_solve=v), 1, "expected True or False",
     True),
    ("ISACCombiner", "eta", lambda v: ISACCombiner(P, eta=v), 1.5, "must lie in [0, 1]", True),
    ("ISACCombiner", "eta", lambda v: ISACCombiner(P, eta=v), float("nan"), "must lie in [0, 1]", True),
    ("ISACCombiner", "phi", lambda v: ISACCombiner(P, phi=v), float("inf"), "finite", True),
    ("ImpairedULA", "spacing", lambda v: ImpairedULA(P, v), _spacing(K + 1), "expected 16 spacings", False),
    ("ImpairedULA", "spacing", lambda v: ImpairedULA(P, v), _spacing(K, np.nan), "finite and > 0", False),
    ("ImpairedULA", "spacing", lambda v: ImpairedULA(P, v), _crossing, "strictly increasing", False),
    ("ImpairedULA", "gain", lambda v: ImpairedULA(P, None, v), np.ones(3), "expected 16 gains", False),
    ("ImpairedULA", "gain", lambda v: ImpairedULA(P, None, v), np.zeros(K), "finite and non-zero", False),
    ("ImpairedULA", "coupling", lambda v: ImpairedULA(P, None, None, v), np.zeros(K), "1 <= B < K", False),
    ("ImpairedULA", "coupling", lambda v: ImpairedULA(P, None, None, v), [np.nan], "must be finite", False),
    ("TargetChannel", "ula", lambda v: TargetChannel(P, v), ImpairedULA(PAPER), "params need K = 16", False),
    ("TargetChannel", "seed", lambda v: TargetChannel(P, ULA, seed=v), -1, "non-negative integer", True),
    ("UEChannel", "ula", lambda v: UEChannel(P, v), ImpairedULA(PAPER), "params need K = 16", False),
    ("UEChannel", "seed", lambda v: UEChannel(P, ULA, seed=v), 2.5, "non-negative integer", True),
    ("MAPRTDetector", "n_theta", lambda v: MAPRTDetector(P, n_theta=v), 0, "integer >= 1", True),
    ("MAPRTDetector", "device", lambda v: MAPRTDetector(P, device=v), "gpu", "expected one of 'cpu', 'cuda'", True),
    ("MBMLEstimator", "device", lambda v: MBMLEstimator(P, device=v), "gpu", "expected one of 'cpu', 'cuda'", True),
    ("MBMLEstimator", "method", lambda v: MBMLEstimator(P, method=v), "svd",
     "expected one of 'auto', 'fused', 'lowrank'", True),
    ("MBMLEstimator", "lowrank_after", lambda v: MBMLEstimator(P, lowrank_after=v), 0, "integer >= 1", True),
    ("MAPRTDetector", "n_range", lambda v: MAPRTDetector(P, n_range=v), 1.5, "integer >= 1", True),
    ("MAPRTDetector", "sector", lambda v: MAPRTDetector(P, sector=v), (0.2, 0.1), "-pi/2 <= min < max <= pi/2",
     True),
    ("MAPRTDetector", "spacing", lambda v: MAPRTDetector(P, spacing=v), _spacing(K - 2), "expected 16 spacings",
     False),
    ("MBMLEstimator", "sector", lambda v: MBMLEstimator(P, sector=v), (-3.0, 0.0), "-pi/2 <= min < max <= pi/2",
     True),
    ("MBMLEstimator", "spacing", lambda v: MBMLEstimator(P, spacing=v), _spacing(K, np.inf), "finite and > 0",
     False),
    ("DetectionMetricsSink", "pfa", lambda v: DetectionMetricsSink(P, pfa=v), 0.0, "must lie in (0, 1)", True),
    ("DetectionMetricsSink", "pfa", lambda v: DetectionMetricsSink(P, pfa=v), 1.0, "must lie in (0, 1)", True),
    ("DetectionMetricsSink", "threshold", lambda v: DetectionMetricsSink(P, threshold=v), float("nan"),
     "finite number or None", True),
]


def _zmq_case(cls, param, value, rule):
    def build(v):
        kwargs = {"dtype": np.float32, "item_shape": (), "address": LOOPBACK, param: v}
        return cls(**kwargs)
    return (cls.__name__, param, build, value, rule, True)


# ZeroMQ blocks (a refused configuration opens no socket)
for _cls in (PushSink, PubSink, PullSource, SubSource):
    BLOCK_CASES += [
        _zmq_case(_cls, "address", "127.0.0.1:5555", "expected 'tcp://host:port'"),
        _zmq_case(_cls, "timeout", -1, "integer >= 0"),
        _zmq_case(_cls, "timeout", True, "integer >= 0"),
        _zmq_case(_cls, "hwm", -2, "integer >= -1"),
        _zmq_case(_cls, "dtype", "no-such-type", "not a numpy dtype"),
        _zmq_case(_cls, "item_shape", (4, 0), "every dimension must be >= 1"),
        _zmq_case(_cls, "item_shape", "ab", "tuple of ints"),
        _zmq_case(_cls, "idle_timeout", -1, "number of seconds >= 0"),
        _zmq_case(_cls, "idle_timeout", "soon", "number of seconds >= 0"),
        _zmq_case(_cls, "hwm", 2**31, "integer in [-1, 2147483647]"),
        _zmq_case(_cls, "curve", 5, "expected CurveKeys(DIR), a key directory or None"),
        _zmq_case(_cls, "curve", "/no/such/keys", "does not exist"),
    ]
for _cls in (PullSource, SubSource):
    BLOCK_CASES += [_zmq_case(_cls, "waiting_interval", -5, "number of seconds >= 0")]
for _cls in (PushSink, PubSink):
    BLOCK_CASES += [
        _zmq_case(_cls, "linger", -2, "integer >= -1"),
        _zmq_case(_cls, "max_items_per_message", 0, "integer >= 1 or None"),
        _zmq_case(_cls, "max_items_per_message", 2.5, "integer >= 1 or None"),
        _zmq_case(_cls, "copy_mode", "zero", "expected 'copy' or 'track'"),
        _zmq_case(_cls, "start_tags", {"k": 1}, "need pass_tags=True"),
        _zmq_case(_cls, "stream_id", "run", "need pass_tags=True"),
        _zmq_case(_cls, "stream_length", 10, "need pass_tags=True"),
    ]
for _cls in (PubSink, SubSource):
    BLOCK_CASES += [_zmq_case(_cls, "key", 5, "must be a str or bytes")]

#: Parameters without a rule to break, and why.
UNCONSTRAINED = {
    "params": "a SystemParams, validated when it was built",
    "name": "any string (two blocks of one flowgraph must differ: test_core_runtime)",
    "alternate": "a flag", "time_domain": "a flag", "pass_tags": "a flag", "bind": "a flag", "eos": "a flag",
    "drop_on_hwm": "a flag",
    "context": "a zmq.Context or None",
}


@pytest.mark.parametrize("case", BLOCK_CASES, ids=[f"{c[0]}.{c[1]}={c[3]!r}"[:50] for c in BLOCK_CASES])
def test_block_parameter_errors_name_parameter_value_and_rule(case):
    _, param, build, value, rule, value_shown = case
    with pytest.raises(IsacError) as info:
        build(value)
    assert isinstance(info.value, (ConfigError, ShapeError))
    assert_names(info.value, param, value if value_shown else None, rule)


def test_every_block_parameter_has_a_validation_case():
    classes = [getattr(blocks_pkg, n) for n in blocks_pkg.__all__ if n != "SensingEstimator"]
    classes += [PushSink, PubSink, PullSource, SubSource]
    covered = {(c[0], c[1]) for c in BLOCK_CASES}
    missing = []
    for cls in classes:
        for name in inspect.signature(cls.__init__).parameters:
            if name in ("self", "kwargs", "args") or name in UNCONSTRAINED:
                continue
            if (cls.__name__, name) not in covered:
                missing.append(f"{cls.__name__}.{name}")
    assert not missing, f"parameters without a validation case: {missing}"


@pytest.mark.parametrize("value", [0, -3, 2.5, "64", True])
def test_flowgraph_batch_size_is_validated(value):
    with pytest.raises(ConfigError) as info:
        Flowgraph(max_items=value)
    assert_names(info.value, "Flowgraph.max_items", value, "integer >= 1")


TRAIN_CASES = [
    ("schedule", "semi", "must be one of"),
    ("iterations", -1, "integer >= 0"),
    ("iterations", 2.5, "integer >= 0"),
    ("batch_size", 0, "integer >= 1"),
    ("labeled_ratio", 1.5, "needs a ratio in [0, 1]"),
    ("lr", 0.0, "must be > 0 and finite"),
    ("lr", float("inf"), "must be > 0 and finite"),
    ("lr_decay", 0.0, "must be > 0 and finite"),
    ("lr_decay_at", 1.5, "must lie in [0, 1]"),
    ("curriculum", None, None),
    ("curriculum_start_deg", -5.0, "must lie in [0, 90]"),
    ("eval_at", (0, 11), "iterations in [0, iterations = 10]"),
    ("eval_frames", 0, "integer >= 1"),
    ("eval_seed", -1, "integer >= 0"),
    ("seed", "x", "integer >= 0"),
    ("checkpoint", None, None),
    ("checkpoint_every", 0, "integer >= 1"),
    ("max_loss_growth", 0.0, "must be > 0"),
    ("progress", None, None),
    ("device", "gpu", "must be one of 'cpu', 'cuda'"),
    ("frames", "gpu", "must be 'auto', 'host' or 'device'"),
    ("impairments", "gain,tilt", "tilt is not an impairment type"),
    ("coupling_band", 0, "integer >= 1"),
]


@pytest.mark.parametrize("field, value, rule", [c for c in TRAIN_CASES if c[2]],
                         ids=[f"{c[0]}={c[1]!r}" for c in TRAIN_CASES if c[2]])
def test_train_config_errors_name_field_value_and_rule(field, value, rule):
    base = {"schedule": "sl+ul", "labeled_ratio": 0.5, "iterations": 10}
    with pytest.raises(ConfigError) as info:
        TrainConfig(**{**base, field: value})
    assert_names(info.value, f"TrainConfig.{field}", value, rule)


def test_every_train_config_field_is_listed():
    # curriculum and progress are flags, checkpoint a path or None: listed without a rule
    assert {f.name for f in dataclasses.fields(TrainConfig)} == {c[0] for c in TRAIN_CASES}
    with pytest.raises(ConfigError, match=r"TrainConfig.labeled_ratio = None: schedule 'ul\+sl' needs a ratio"):
        TrainConfig(schedule="ul+sl")


# ============================================================================ 2. streams
#: (function, call with a wrong shape, the expected form named, the wrong shape named)
SHAPE_CASES = [
    ("ula_steering", lambda: ula_steering(np.zeros((2, 2)), P.nominal_spacing, P.wavelength),
     "expected a scalar or a vector", "(2, 2)"),
    ("ula_steering", lambda: ula_steering(0.1, np.ones((2, 8)), P.wavelength), "vector of K >= 2", "(2, 8)"),
    ("element_positions", lambda: element_positions(np.ones(1)), "vector of K >= 2", "(1,)"),
    ("delay_steering", lambda: delay_steering(np.zeros((3, 1)), S, 1e5), "expected a scalar or a vector", "(3, 1)"),
    ("range_steering", lambda: range_steering(np.zeros((2, 2)), P), "expected a scalar or a vector", "(2, 2)"),
    ("beampattern_precoder", lambda: beampattern_precoder(-0.5, 0.5, np.ones((4, 4)), P),
     "expected 16 spacings", "(4, 4)"),
    ("isac_precoder", lambda: isac_precoder(np.ones(K), np.ones(K - 1), 0.5, 0.0), "same length K", "(15,)"),
    ("target_echo", lambda: target_echo(np.ones(2), np.ones((2, K)), np.ones((2, S - 1)), np.ones((2, S)), S),
     "symbols and delay_phases (B, 64)", "(2, 63)"),
    ("target_echo", lambda: target_echo(np.ones(3), np.ones((2, K)), np.ones((2, S)), np.ones((2, S)), S),
     "gain (B,), steering (B, K)", "steering (2, 16)"),
    ("ue_channel_frequency_response",
     lambda: ue_channel_frequency_response(np.random.default_rng(0), np.ones((2, 3)), S, 4), "1..64", "(2, 3)"),
    ("ue_channel_frequency_response",
     lambda: ue_channel_frequency_response(np.random.default_rng(0), np.ones(S + 1), S, 4), "1..64", "(65,)"),
    ("frame_noise", lambda: frame_noise(np.random.SeedSequence(0), 0, np.ones(S, np.complex64), 1.0),
     "contiguous complex64 frames (B, ...)", "[64]"),
    ("ue_received", lambda: ue_received(np.ones((2, S)), np.ones((2, S - 1)), 0.0), "must match", "(2, 63)"),
    ("reciprocal_filter", lambda: reciprocal_filter(np.ones((2, K, S)), np.ones((2, S - 1))),
     "expected Y (B, K, S) and x (B, S)", "(2, 63)"),
    ("maprt", lambda: maprt(np.ones((2, K, S - 1)), -0.5, 0.0, 0, 200, P.nominal_spacing, P), "(B, 16, 64)",
     "(2, 16, 63)"),
    ("maprt", lambda: maprt(np.ones((2, K, S)), -0.5, 0.0, 0, 200, P.nominal_spacing[:-1], P), "expected 16 spacings",
     "(15,)"),
    ("maprt", lambda: maprt(np.ones((2, K, S)), np.zeros(3), 0.0, 0, 200, P.nominal_spacing, P),
     "maprt: theta_min must be a scalar or shape (2,)", "(3,)"),
    ("ml_demap", lambda: ml_demap(np.ones((2, S)), np.ones((2, S - 1)), np.ones(4)), "same shape", "(2, 63)"),
    ("ml_demap", lambda: ml_demap(np.ones((2, S)), np.ones((2, S)), np.ones((2, 2))), "vector of >= 2 points",
     "(2, 2)"),
    ("threshold_at_pfa", lambda: threshold_at_pfa(np.ones((10, 10)), 0.1), "non-empty vector", "(10, 10)"),
    ("threshold_interval", lambda: threshold_interval(np.ones((3, 3)), 0.1), "non-empty vector", "(3, 3)"),
    ("check_spacing", lambda: check_spacing(np.ones(K - 1), K), "expected 16 spacings", "(15,)"),
    ("save_spacing", lambda: save_spacing("never-written.npy", np.ones((2, K))), "vector of K spacings", "(2, 16)"),
    ("draw_targets", lambda: draw_targets(np.random.default_rng(0), np.zeros(3), 0.1, 0.0, 1.0, 2),
     "theta_min must be a scalar or shape (2,)", "(3,)"),
    ("mbml_estimate_projected",
     lambda: mbml_estimate_projected(np.ones((2, K, 7)), -0.5, 0.0, 0, 200, P.nominal_spacing, P), "(B, 16,",
     "(2, 16, 7)"),
    ("mbml_peak_projected",
     lambda: mbml_peak_projected(np.ones((K, 7)), -0.5, 0.0, 0, 200, P.nominal_spacing, P), "(B, 16,", "(16, 7)"),
    ("window_indices", lambda: window_indices(np.zeros((2, 2), int), np.zeros((2, 2), int), P), "vectors (B,)",
     "(2, 2)"),
]

#: Public dsp functions without an array shape to get wrong, and why.
NO_SHAPE = {
    "complex_normal": "takes the shape to draw",
    "constellation": "takes a name (unknown name: ConfigError, test_value_errors_of_dsp_functions)",
    "symbol_error_rate_qpsk": "element-wise, any shape",
    "proportion_interval": "takes counts (test_value_errors_of_dsp_functions)",
    "draw_spacing": "takes a generator and SystemParams",
    "training_sectors": "takes a generator, SystemParams and a count",
    "load_spacing": "reads a file (test_dsp_physics.py::test_bad_spacing_files_are_rejected)",
}


@pytest.mark.parametrize("case", SHAPE_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(SHAPE_CASES)])
def test_dsp_functions_name_expected_and_got_shapes(case):
    _, call, expected, got = case
    with pytest.raises(ShapeError) as info:
        call()
    msg = str(info.value)
    assert expected in msg and got in msg, msg


def test_every_public_dsp_function_has_a_shape_case():
    covered = {c[0] for c in SHAPE_CASES} | set(NO_SHAPE)
    missing = set(dsp_pkg.__all__) - covered
    # mbml_estimate / mbml_peak: tests/dsp/test_angle_delay.py::test_wrong_shapes_raise_shape_error
    assert not missing, f"public dsp functions without a shape case: {sorted(missing)}"


def test_value_errors_of_dsp_functions():
    with pytest.raises(ConfigError, match="constellation '16qam': unknown"):
        dsp_pkg.constellation("16qam")
    with pytest.raises(ConfigError, match=r"successes = 5 must lie in \[0, trials = 3\]"):
        proportion_interval(5, 3)
    with pytest.raises(ConfigError, match=r"threshold_interval: pfa = 1.5 must lie in \(0, 1\)"):
        threshold_interval(np.arange(100.0), 1.5)
    with pytest.raises(ConfigError, match="variance = -1.0: must be >= 0"):
        dsp_pkg.complex_normal(np.random.default_rng(0), 3, -1.0)


# ---------------------------------------------------------------------------- NaN / Inf frames
def _corrupt(Y: np.ndarray) -> tuple[np.ndarray, list[int]]:
    Y = Y.copy()
    Y[1, 3, 7] = np.nan
    Y[4, 0, 0] = np.inf
    Y[5, 15, 63] = complex(0.0, -np.inf)
    return Y, [1, 4, 5]


@pytest.mark.parametrize("estimator_cls", [MBMLEstimator, MAPRTDetector])
def test_receivers_tag_count_and_isolate_nan_and_inf_frames(estimator_cls):
    Y, bad = _corrupt(noise_frames(8, seed=1))
    good = [i for i in range(8) if i not in bad]
    # one form for every frame ("auto" would switch forms after a count of frames, bad ones included)
    kwargs = {"n_theta": 90, "n_range": 40} if estimator_cls is MAPRTDetector else {"method": "fused"}
    est = estimator_cls(P, sector=P.test_sector, name="rx", **kwargs)
    res = run_block(est, [Y], max_items=3)  # invalid frames in several batches, one batch only invalid
    out = res.outputs[0]
    assert est.invalid_frames == len(bad)
    assert np.all(np.isnan(out[bad])) and np.all(np.isfinite(out[good]))
    tagged = sorted(t.offset for t in res.tags[0] if t.key == INVALID_FRAME_KEY)
    assert tagged == bad and all(t.value is True for t in res.tags[0] if t.key == INVALID_FRAME_KEY)
    clean = run_block(estimator_cls(P, sector=P.test_sector, **kwargs), [Y[good]], max_items=3).outputs[0]
    if estimator_cls is MBMLEstimator:  # the Numba kernel works per frame: bitwise
        np.testing.assert_array_equal(out[good], clean)
    else:  # BLAS batches: the same to float32 rounding
        np.testing.assert_allclose(out[good], clean, rtol=1e-5)


def _truth_tags(n: int) -> list[Tag]:
    rng = np.random.default_rng(3)
    tags = []
    for i in range(n):
        present = i % 2 == 1
        tags.append(Tag(i, "target_present", present))
        if present:
            tags += [Tag(i, "theta", float(rng.uniform(*P.test_sector))), Tag(i, "range", float(rng.uniform(0, 200)))]
    return tags


def _metrics_run(Y, tags):
    src = VectorSource(Y, tags)
    est = MBMLEstimator(P, sector=P.test_sector, method="fused")  # one form for every frame
    sink = DetectionMetricsSink(P, pfa=0.25)
    fg = Flowgraph(max_items=5)
    fg.connect(src, est, sink)
    fg.run()
    return est, sink


def test_metrics_sink_counts_and_excludes_invalid_frames_never_averages_them():
    n = 24
    Y, tags = noise_frames(n, seed=2), _truth_tags(n)
    Y[3, 2, 2] = np.nan  # a target frame
    Y[10, 5, 9] = np.inf  # a target-free frame
    est, sink = _metrics_run(Y, tags)
    keep = [i for i in range(n) if i not in (3, 10)]
    remap = {old: new for new, old in enumerate(keep)}
    clean_tags = [t.moved(remap[t.offset]) for t in tags if t.offset in remap]
    _, clean = _metrics_run(Y[keep], clean_tags)
    assert est.invalid_frames == 2 and sink.invalid_frames == 2 and clean.invalid_frames == 0
    np.testing.assert_array_equal(sink.records, clean.records)  # the invalid frames are simply not there
    report = sink.report()
    assert report.n_h0 + report.n_h1 == n - 2
    np.testing.assert_equal(report.to_dict(), clean.report().to_dict())
    assert np.isfinite(report.threshold)  # not poisoned by the NaN / Inf frames


def test_metrics_sink_excludes_frames_tagged_invalid_even_with_finite_estimates():
    est = np.tile([5.0, -0.5, 50.0], (6, 1))
    tags = [Tag(i, "target_present", False) for i in range(6)] + [Tag(2, INVALID_FRAME_KEY, True)]
    sink = DetectionMetricsSink(P, pfa=0.25)
    run_block(sink, [est], tags=[tags])
    assert sink.invalid_frames == 1 and len(sink.records) == 5


# ============================================================================ 3. faults while running
def _new_threads(before: set) -> list[threading.Thread]:
    """Threads started since `before`, except pyzmq's one process-wide collector of zero-copy
    frames (started once, on first use, by pyzmq itself)."""
    return [t for t in threading.enumerate() if t not in before and t.is_alive()
            and type(t).__name__ != "GarbageCollectorThread"]


def test_stop_on_running_baseline_flowgraph_within_one_second_leaves_no_thread():
    before = set(threading.enumerate())
    chain = isac_flowgraph(P, ULA, ULA.spacing, None, seed=0, max_items=4)  # endless sources
    fg = chain.flowgraph
    fg.start()
    deadline = time.monotonic() + 20
    while len(chain.detection.records) < 8 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert fg.running and len(chain.detection.records) >= 8
    t0 = time.monotonic()
    fg.stop()
    assert time.monotonic() - t0 < 1.0
    assert not fg.running and not _new_threads(before)


class Stuck(SourceBlock):
    """A source whose work() blocks for `seconds` (e.g. a driver call that does not return)."""

    def __init__(self, seconds: float):
        super().__init__(out_sig=[np.int64], name="stuck")
        self.seconds = seconds
        self.entered = threading.Event()

    def work(self, inputs, outputs):
        self.entered.set()
        time.sleep(self.seconds)
        outputs[0][:1] = 0
        return 1


def test_stop_with_a_block_stuck_in_work_reports_it_instead_of_hanging():
    src = Stuck(1.0)
    fg = Flowgraph(name="stuck_graph")
    fg.connect(src, VectorSink(np.int64))
    fg.start()
    assert src.entered.wait(5)
    t0 = time.monotonic()
    with pytest.raises(BlockError, match=r"flowgraph 'stuck_graph' did not stop within 0.2 s \(a block is stuck"):
        fg.stop(timeout=0.2)
    assert time.monotonic() - t0 < 0.6
    fg.wait(timeout=5)  # once work() returns, the scheduler sees the stop request and ends
    assert not fg.running


class EndlessCounter(SourceBlock):
    def __init__(self):
        super().__init__(out_sig=[np.int64], name="endless")
        self.count = 0

    def start(self):
        self.count = 0

    def work(self, inputs, outputs):
        n = len(outputs[0])
        outputs[0][:] = np.arange(self.count, self.count + n)
        self.count += n
        return n


def test_stop_on_running_zmq_link_within_one_second_leaves_no_socket_or_thread():
    before = set(threading.enumerate())
    context = zmq.Context()
    sink = PushSink(np.int64, (), LOOPBACK, pass_tags=True, context=context, timeout=50)
    src = PullSource(np.int64, (), sink.endpoint, pass_tags=True, context=context, timeout=50)
    out = VectorSink(np.int64)
    tx, rx = Flowgraph(max_items=64, name="tx_live"), Flowgraph(max_items=64, name="rx_live")
    tx.connect(EndlessCounter(), sink)
    rx.connect(src, out)
    rx.start()
    tx.start()
    try:
        deadline = time.monotonic() + 10
        while src.items_received < 1000 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert tx.running and rx.running and src.items_received >= 1000
        for fg in (tx, rx):  # mid-stream: the sender never ends by itself
            t0 = time.monotonic()
            fg.stop()
            assert time.monotonic() - t0 < 1.0, fg.name
            assert not fg.running
    finally:
        tx.stop()
        rx.stop()
    assert sink.closed and src.closed
    terminated = threading.Thread(target=context.term, daemon=True)
    terminated.start()
    terminated.join(2.0)
    assert not terminated.is_alive(), "a socket of the context was left open"
    assert not _new_threads(before)
    np.testing.assert_array_equal(out.data, np.arange(len(out.data)))  # what arrived is the stream's start


# ============================================================================ 4. training faults
SMALL_TOML = "[system]\nn_antennas = 16\nn_subcarriers = 64\nn_angle_grid = 180\nn_range_grid = 50\n"


def _isac(*args: str) -> list[str]:
    """The ``isac`` command line (``python -m isacblocks.cli`` is what the console script runs)."""
    return [sys.executable, "-m", "isacblocks.cli", *args]


def test_isac_train_killed_mid_run_resumes_from_its_checkpoint_to_the_same_spacing(tmp_path):
    (tmp_path / "small.toml").write_text(SMALL_TOML)
    common = ["train", "--schedule", "sl+ul", "--labeled-ratio", "0.5", "--iterations", "24", "--batch-size", "16",
              "--seed", "3", "--config", "small.toml", "--checkpoint-every", "3"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    from isacblocks.cli import main

    # The uninterrupted reference: the same command, run in this process (saves a process start).
    cwd = os.getcwd()
    try:
        os.chdir(tmp_path)
        assert main([*common, "--out", "straight.npy"]) == 0
    finally:
        os.chdir(cwd)
    ck = tmp_path / "ck.pt"
    victim = subprocess.Popen(_isac(*common, "--checkpoint", "ck.pt", "--out", "victim.npy"),
                              cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not ck.exists() and victim.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        assert victim.poll() is None, "the run ended before it could be killed"
        victim.send_signal(signal.SIGKILL)  # no clean-up, no atexit: a power cut
        assert victim.wait(timeout=10) == -signal.SIGKILL
    finally:
        victim.kill()
    assert not (tmp_path / "victim.npy").exists()
    at = torch.load(ck, weights_only=False)["iteration"]
    assert 3 <= at < 24 and at % 3 == 0
    resumed = subprocess.run(_isac(*common, "--checkpoint", "ck.pt", "--resume", "--out", "resumed.npy"),
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed from ck.pt at iteration {at}" in resumed.stdout
    assert np.load(tmp_path / "resumed.npy").tobytes() == np.load(tmp_path / "straight.npy").tobytes()


def test_isac_train_resume_without_checkpoint_is_refused(capsys):
    from isacblocks.cli import main

    assert main(["train", "--resume", "--iterations", "1", "--out", "never.npy"]) == 2
    assert "--resume needs --checkpoint FILE" in capsys.readouterr().err


@pytest.fixture(scope="module")
def small_true_spacing():
    return draw_spacing(np.random.default_rng(5), P)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nan_loss_stops_training_with_a_clear_message_and_keeps_the_last_good_checkpoint(
        small_true_spacing, tmp_path, monkeypatch, bad):
    k, ck = 5, tmp_path / "ck.pt"
    config = TrainConfig(schedule="ul", iterations=10, batch_size=8, progress=False, seed=2, checkpoint=str(ck),
                         checkpoint_every=2)
    real_loss = Trainer.loss

    def poisoned(self, batch, kind):
        loss = real_loss(self, batch, kind)
        return loss * bad if self.iteration == k else loss

    monkeypatch.setattr(Trainer, "loss", poisoned)
    trainer = Trainer(P, small_true_spacing, config)
    with pytest.raises(TrainingError) as info:
        trainer.run()
    msg = str(info.value)
    assert f"training diverged at iteration {k}" in msg and re.search(rf"loss is -?{bad}", msg), msg
    assert str(ck) in msg and "last good checkpoint is kept" in msg
    state = torch.load(ck, weights_only=False)
    assert state["iteration"] == 4 < k
    assert np.all(np.isfinite(state["model"]["u"].numpy()))
    monkeypatch.setattr(Trainer, "loss", real_loss)
    resumed = Trainer(P, small_true_spacing, config)
    resumed.load_checkpoint(ck)  # the kept checkpoint is usable
    assert resumed.iteration == 4 and np.all(np.isfinite(resumed.run().spacing))


def test_unreadable_checkpoint_is_a_training_error(small_true_spacing, tmp_path):
    bad = tmp_path / "garbage.pt"
    bad.write_bytes(b"not a checkpoint")
    trainer = Trainer(P, small_true_spacing, TrainConfig(iterations=1, batch_size=4, progress=False))
    with pytest.raises(TrainingError, match="cannot read checkpoint .*garbage.pt"):
        trainer.load_checkpoint(bad)
    with pytest.raises(TrainingError, match="cannot read checkpoint"):
        trainer.load_checkpoint(tmp_path / "missing.pt")


# ============================================================================ 5. reproducibility
def test_evaluate_spacing_is_bitwise_reproducible_for_a_seed(small_true_spacing):
    runs = [evaluate_spacing(P, small_true_spacing, P.nominal_spacing, 600, seed=7).to_dict() for _ in range(2)]
    np.testing.assert_equal(runs[0], runs[1])
    other = evaluate_spacing(P, small_true_spacing, P.nominal_spacing, 600, seed=8).to_dict()
    assert other["threshold"] != runs[0]["threshold"]


@pytest.mark.parametrize("receiver", ["maprt", "mbml"])
def test_baseline_flowgraph_is_bitwise_reproducible_for_a_seed(receiver):
    ula = ImpairedULA.drawn(P, seed=4)

    def run():
        est = MBMLEstimator(P, ula.spacing) if receiver == "mbml" else None
        chain = isac_flowgraph(P, ula, ula.spacing, 48, seed=11, eta=0.6, phi=0.5, estimator=est, max_items=16)
        chain.flowgraph.run()
        return chain.detection.records, chain.ser.report()

    (rec_a, ser_a), (rec_b, ser_b) = run(), run()
    assert rec_a.shape == (48, 6)
    assert rec_a.tobytes() == rec_b.tobytes()
    assert ser_a == ser_b


def test_numba_receiver_is_bitwise_independent_of_threads_and_batching():
    Y = noise_frames(12, seed=6)
    lo, hi = np.radians([-50.0, -30.0])
    threads = numba.get_num_threads()
    try:
        results = []
        for n in sorted({1, threads}):
            numba.set_num_threads(n)
            results.append(np.stack(mbml_estimate(Y, lo, hi, 0, 200, P.nominal_spacing, P)))
        per_frame = np.concatenate([np.stack(mbml_estimate(Y[i:i + 1], lo, hi, 0, 200, P.nominal_spacing, P))
                                    for i in range(len(Y))], axis=1)
    finally:
        numba.set_num_threads(threads)
    for other in results[1:] + [per_frame]:
        assert other.tobytes() == results[0].tobytes()


MAPRT_SCRIPT = """
import sys, numpy as np
from isacblocks import SystemParams
from isacblocks.dsp import maprt
p = SystemParams(n_antennas=16, n_subcarriers=64, n_angle_grid=180, n_range_grid=50)
rng = np.random.default_rng(0)
Y = (rng.standard_normal((40, 16, 64)) + 1j * rng.standard_normal((40, 16, 64))).astype(np.complex64)
np.save(sys.argv[1], np.stack(maprt(Y, -0.7, -0.35, 0, 200, p.nominal_spacing, p, 360, 200)))
"""


def test_maprt_across_blas_thread_counts_agrees_within_float32_rounding(tmp_path):
    """OpenBLAS splits the matrix products over its threads, so the MAPRT statistic is bitwise
    reproducible for a fixed thread count but may differ in the last float32 bits between thread
    counts: the stated tolerance is rtol 1e-5, with estimates within one grid step."""
    there = tmp_path / "one_thread.npy"
    subprocess.run([sys.executable, "-c", MAPRT_SCRIPT, str(there)], check=True, timeout=120,
                   env={**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"})
    rng = np.random.default_rng(0)  # the same frames in this process, with its own BLAS threads
    Y = (rng.standard_normal((40, K, S)) + 1j * rng.standard_normal((40, K, S))).astype(np.complex64)
    a = np.stack(maprt(Y, -0.7, -0.35, 0, 200, P.nominal_spacing, P, 360, 200))
    b = np.load(there)
    np.testing.assert_allclose(a[0], b[0], rtol=1e-5)
    assert np.all(np.abs(a[1] - b[1]) <= 0.35 / 359 + 1e-12)
    assert np.all(np.abs(a[2] - b[2]) <= 200 / 199 + 1e-9)
