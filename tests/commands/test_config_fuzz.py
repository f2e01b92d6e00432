"""Property tests of the configuration loader: `SystemParams.from_toml` and `from_dict`.

Whatever a TOML file or a dict holds, loading either gives a valid `SystemParams` or
raises `ConfigError` (the library's documented error) naming the file and the field;
nothing else escapes.  About 2 000 examples in all, a few seconds on 2 cores.
"""

from __future__ import annotations

import atexit
import dataclasses
import datetime as dt
import math
import re
import shutil
import tempfile
import tomllib
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from isacblocks import SystemParams
from isacblocks.errors import ConfigError

FIELDS = [f.name for f in dataclasses.fields(SystemParams) if f.init]
INT_FIELDS = ("n_antennas", "n_subcarriers", "n_taps", "n_angle_grid", "n_range_grid")
PAIR_FIELDS = ("train_center_deg", "train_width_deg", "test_sector_deg", "ue_sector_deg")
FLOAT_FIELDS = tuple(f for f in FIELDS if f not in INT_FIELDS + PAIR_FIELDS + ("constellation",))

# One file rewritten by every example (hypothesis does not mix with function-scoped tmp_path).
_DIR = Path(tempfile.mkdtemp(prefix="isac-config-fuzz-"))
CONFIG = _DIR / "fuzz.toml"
atexit.register(shutil.rmtree, _DIR, ignore_errors=True)

# --------------------------------------------------------------------------- a small TOML writer
_BARE = re.compile(r"[A-Za-z0-9_-]+")  # matched whole (fullmatch: "$" would let "0\n" through)


def _string(text: str) -> str:
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _key(key: str) -> str:
    return key if _BARE.fullmatch(key) else _string(key)


def _value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(type(value))


def to_toml(values: dict, layout: str) -> str:
    body = "".join(f"{_key(k)} = {_value(v)}\n" for k, v in values.items())
    if layout == "flat":
        return body
    extra = "comment = 1\n" if layout == "system+extra" else ""
    return extra + "[system]\n" + body


# --------------------------------------------------------------------------- strategies
texts = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=10)
scalars = st.one_of(
    st.integers(-(2 ** 63), 2 ** 63 - 1), st.floats(allow_nan=True, allow_infinity=True), st.booleans(), texts,
    st.sampled_from([dt.datetime(1979, 5, 27, 7, 32, tzinfo=dt.UTC), dt.date(2024, 2, 29),
                     dt.time(12, 30, 5)]))
toml_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text("abcxyz_", min_size=1, max_size=6), inner, max_size=3),
                           max_leaves=4)
near_numbers = st.one_of(st.integers(-5, 400), st.floats(-1e3, 1e3), st.sampled_from([0, 1, 2, 0.0, 1e-300, 1e300]))
plausible = {
    **{f: near_numbers for f in INT_FIELDS + FLOAT_FIELDS},
    **{f: st.lists(st.one_of(st.integers(-200, 200), st.floats(-200, 200)), min_size=0, max_size=3)
       for f in PAIR_FIELDS},
    "constellation": st.sampled_from(["qpsk", "QPSK", "", "16qam", "qpsk "]),
}


def _typo(name: str):
    return st.integers(0, len(name) - 1).map(lambda i: name[:i] + name[i + 1:])


keys = st.one_of(st.sampled_from(FIELDS).flatmap(lambda f: st.just(f) | _typo(f)),
                 st.text("abcdefghijklmnopqrstuvwxyzABCXYZ0123456789_-", min_size=1, max_size=12), texts.filter(bool))


@st.composite
def configs(draw):
    chosen = draw(st.lists(keys, max_size=6, unique=True))
    return {k: draw(plausible[k] if k in plausible and draw(st.booleans()) else toml_values) for k in chosen}


VALID = {
    "n_antennas": st.integers(2, 128), "n_subcarriers": st.integers(8, 512), "n_taps": st.integers(1, 8),
    "n_angle_grid": st.integers(2, 1000), "n_range_grid": st.integers(2, 500),
    "subcarrier_spacing_hz": st.floats(1e3, 1e6), "carrier_hz": st.floats(1e9, 1e11),
    "noise_power": st.floats(1e-3, 10.0), "snr_radar_db": st.floats(-30, 60), "snr_comm_db": st.floats(-30, 60),
    "constellation": st.just("qpsk"), "tap_decay": st.floats(0, 5), "spacing_std_wavelengths": st.floats(0, 0.2),
    "range_min_m": st.floats(0, 100), "range_max_m": st.floats(150, 1000), "pfa": st.floats(1e-6, 0.5),
    "train_center_deg": st.tuples(st.floats(-90, 0), st.floats(0, 90)).map(list),
    "train_width_deg": st.tuples(st.floats(0.5, 90), st.floats(90, 180)).map(list),
    "test_sector_deg": st.tuples(st.floats(-90, -1), st.integers(0, 90)).map(list),
    "ue_sector_deg": st.tuples(st.integers(-90, 0), st.floats(1, 90)).map(list),
}


def _load(text: str):
    CONFIG.write_text(text, encoding="utf-8")
    try:
        return SystemParams.from_toml(CONFIG), None
    except ConfigError as exc:  # anything else fails the test
        return None, exc


# --------------------------------------------------------------------------- properties
@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs(), st.sampled_from(["flat", "system", "system+extra"]))
@example({"0\n": 0}, "flat")  # a key ending in a newline must be quoted by the writer
def test_toml_loader_gives_params_or_config_error_naming_file_and_field(values, layout):
    text = to_toml(values, layout)
    data = tomllib.loads(text)  # the writer itself is sound
    table = isinstance(data.get("system"), dict)  # a [system] table (or a `system` inline table) is read alone
    inner = data["system"] if table else data
    unknown = [k for k in inner if k not in FIELDS]
    params, error = _load(text)
    if error is not None:
        msg = str(error)
        assert str(CONFIG) in msg, msg
        if table and len(data) > 1:
            assert "unexpected top-level keys" in msg, msg
            assert all(repr(k) in msg for k in data if k != "system"), msg
        elif unknown:
            assert f"unknown field {unknown[0]!r}" in msg, msg
            assert "did you mean" in msg or "valid names" in msg, msg
        else:
            assert re.search(r"SystemParams\.(\w+) = ", msg), msg
            assert re.search(r"SystemParams\.(\w+) = ", msg).group(1) in FIELDS, msg
        return
    assert not (table and len(data) > 1) and not unknown
    assert SystemParams.from_dict(params.to_dict()) == params  # what loaded is valid
    for key, value in inner.items():
        got = getattr(params, key)
        if key in PAIR_FIELDS:
            assert got == tuple(float(v) for v in value)
        elif key in INT_FIELDS:
            assert got == value and type(got) is int
        elif key in FLOAT_FIELDS:
            assert got == float(value) and type(got) is float
        else:
            assert got == value == "qpsk"


@settings(max_examples=300, deadline=None)
@given(st.fixed_dictionaries({}, optional=VALID), st.booleans())
def test_valid_toml_configs_load_and_keep_their_values(values, table):
    assume(values.get("n_taps", 5) <= values.get("n_subcarriers", 256))
    params, error = _load(to_toml(values, "system" if table else "flat"))
    assert error is None, error
    for key, value in values.items():
        assert getattr(params, key) == (tuple(float(v) for v in value) if key in PAIR_FIELDS else value)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.binary(max_size=80), texts.map(lambda t: t.encode()),
                 st.builds(lambda a, b: (a + b).encode(), st.sampled_from(
                     ["n_antennas = ", "[system]\npfa = ", "test_sector_deg = [", "n_taps = 3\n["]), texts)))
def test_toml_loader_on_arbitrary_bytes_raises_only_config_error(raw):
    CONFIG.write_bytes(raw)
    try:
        SystemParams.from_toml(CONFIG)
    except ConfigError as exc:
        assert str(CONFIG) in str(exc)


python_values = st.one_of(
    toml_values, st.none(), st.tuples(near_numbers, near_numbers), st.integers(-(10 ** 400), 10 ** 400),
    st.builds(np.array, st.lists(near_numbers, max_size=3)), st.builds(np.float32, st.floats(width=32)),
    st.builds(np.int64, st.integers(-10, 300)), st.sampled_from([np.str_("qpsk"), b"qpsk", object(), np.nan]))


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(keys, python_values, max_size=5))
def test_from_dict_with_any_python_values_raises_only_config_error(values):
    try:
        params = SystemParams.from_dict(values)
    except ConfigError as exc:
        assert "SystemParams" in str(exc)
        return
    assert SystemParams.from_dict(params.to_dict()) == params
