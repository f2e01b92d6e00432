"""The GNU Radio Companion blocks are generated from the block classes (`isacblocks.gnuradio.grc`):
every public block has one; each matches its class (ports, dtypes, vector lengths at two sizes,
parameter names and defaults, what the make template builds); ``isac grc install`` writes them
atomically and removes its stale ones; and ``grcc`` accepts every block in a flowgraph that
connects each port to a null source or sink of the class's type and size (and refuses it when
one size is wrong)."""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
import json
import os
import shutil
import subprocess
import types
from pathlib import Path

import numpy as np
import pytest
import yaml
from _gnuradio import require_gnuradio

import isacblocks
import isacblocks.blocks
import isacblocks.core
from isacblocks import SystemParams
from isacblocks.blocks import ImpairedULA
from isacblocks.blocks import true_array as cli_true_array
from isacblocks.cli import main
from isacblocks.commands.grc import generator
from isacblocks.core import Block, SyncBlock
from isacblocks.errors import ConfigError
from isacblocks.gnuradio import grc_install
from isacblocks.zeromq.gnuradio import GR_PYTHON

grc = generator()
ROOT = Path(__file__).resolve().parents[2]
EXPECTED_TYPES = {np.dtype(np.complex64): "complex", np.dtype(np.float32): "float", np.dtype(np.float64): "f64",
                  np.dtype(np.complex128): "fc64", np.dtype(np.int32): "int", np.dtype(np.int16): "short",
                  np.dtype(np.int8): "byte"}
TYPE_SIZES = {"complex": 8, "float": 4, "f64": 8, "fc64": 16, "int": 4, "short": 2, "byte": 1, "s64": 8}


class Doubler(SyncBlock):
    """A user's own block: each item of `vlen` floats out twice, scaled by `gain`."""

    def __init__(self, vlen: int = 4, gain: float = 2.0, name=None):
        super().__init__(in_sig=[("x", np.float32, vlen)], out_sig=[("y", np.float32, (2, vlen))], name=name)
        self.gain = gain

    def set_gain(self, gain: float) -> None:
        self.gain = gain

    def work(self, inputs, outputs):
        outputs[0][:] = self.gain * inputs[0][:, None, :]
        return len(inputs[0])


PUBLIC = grc.public_blocks()
ALL = [*PUBLIC, Doubler]


@functools.cache
def _description(cls):
    return yaml.safe_load(grc.block_yaml(cls, category="Test" if cls is Doubler else None))


def _constructor(cls):
    return {n: p for n, p in inspect.signature(cls.__init__).parameters.items() if n != "self"}


def _values(cls, desc, n_antennas=64, n_subcarriers=256, **ints):
    """Parameter code as GRC would hold it: defaults, K and S, `ints`, and a value for each
    required parameter; with the constructor arguments they stand for."""
    params = SystemParams(n_antennas=n_antennas, n_subcarriers=n_subcarriers)
    code, kwargs = {}, {}
    for p in desc["parameters"]:
        code[p["id"]] = p["default"]
    if "config" in code:
        code.update(n_antennas=str(n_antennas), n_subcarriers=str(n_subcarriers))
        kwargs["params"] = params
    for name, value in ints.items():
        if name in code:
            code[name], kwargs[name] = str(value), value
    if ints.get("cyclic_prefix") and "time_domain" in code:
        code["time_domain"], kwargs["time_domain"] = "True", True
    if "ula" in code:
        code["ula"], kwargs["ula"] = "1", ImpairedULA(params)
    if "threshold" in code and not code["threshold"]:
        code["threshold"], kwargs["threshold"] = "1.5", 1.5
    if "dtype" in code:
        code.update(dtype="numpy.float64", item_shape="(2, 3)")
        kwargs.update(dtype=np.float64, item_shape=(2, 3))
    return code, kwargs


def _grc_eval(text, code):
    """A port's dtype or vlen as GRC evaluates it: ``${ expr }`` in the parameters' values."""
    if not isinstance(text, str) or not text.startswith("${"):
        return text
    namespace = {}
    for name, value in code.items():
        if name == "dtype":
            value = types.SimpleNamespace(grc={o[0]: o[1] for o in grc.DTYPE_OPTIONS}[value])
        else:
            value = eval(value or "None", {"numpy": np})  # noqa: S307 - the test's own values
        namespace[name] = value
    return eval(text[2:-1], namespace)  # noqa: S307


def test_every_public_block_has_a_generated_yaml_or_a_reason():
    found = {name: cls for name, cls in vars(isacblocks.blocks).items()
             if isinstance(cls, type) and (issubclass(cls, Block) or cls is ImpairedULA)}
    core = {name: getattr(isacblocks.core, name) for name in isacblocks.core.__all__}
    found.update((name, cls) for name, cls in core.items() if isinstance(cls, type) and issubclass(cls, Block)
                 and cls.__module__ != "isacblocks.core.block")
    assert set(isacblocks.blocks.__all__) <= set(found)
    generated = {cls.__name__ for cls in PUBLIC}
    assert generated.isdisjoint(grc.EXCLUDED)
    assert set(found) == generated | (set(found) & set(grc.EXCLUDED)), set(found) - generated - set(grc.EXCLUDED)
    assert {"MultiTargetChannel", "SuccessiveDetector", "MultiTargetMetricsSink", "TagFilter"} <= generated
    assert all(reason.strip() for reason in grc.EXCLUDED.values())
    files = grc.all_yaml()
    assert sorted(files) == sorted(f"{grc.block_id(cls)}.block.yml" for cls in PUBLIC)
    assert all(text.startswith(grc.GENERATED_MARK) for text in files.values())


@pytest.mark.parametrize("cls", ALL, ids=lambda cls: cls.__name__)
def test_the_yaml_matches_the_class(cls):
    desc = _description(cls)
    assert desc["file_format"] == 1 and desc["flags"] == ["python"]
    assert desc["id"] == grc.block_id(cls) and desc["id"].startswith("isacblocks_")
    assert desc["category"].startswith("[isacblocks]/")
    assert desc["documentation"].startswith(inspect.getdoc(cls).split("\n")[0])

    # Parameters: the constructor's, with its defaults ("params" -> the System tab, "name" -> the GRC id).
    signature = _constructor(cls)
    expected = set(signature) - {"name", "params"} | (set(grc.SYSTEM_FIELDS) if "params" in signature else set())
    by_id = {p["id"]: p for p in desc["parameters"]}
    assert set(by_id) == expected
    for name, p in signature.items():
        if name in ("name", "params"):
            continue
        param = by_id[name]
        if p.default is inspect.Parameter.empty:
            assert param["default"] == "" or param["dtype"] == "enum", name
        elif param["dtype"] == "string":
            assert ast.literal_eval(param["default"]) == p.default
        else:
            assert ast.literal_eval(param["default"]) == p.default, name
        if isinstance(p.default, bool):
            assert param["dtype"] == "bool"
        elif type(p.default) is int:
            assert param["dtype"] == "int"
        elif type(p.default) is float:
            assert param["dtype"] == "real"
        if param["dtype"] == "enum":
            assert param["default"] in param["options"]
    if "params" in signature:
        defaults = SystemParams()
        assert by_id["n_antennas"]["default"] == str(defaults.n_antennas)
        assert by_id["n_subcarriers"]["default"] == str(defaults.n_subcarriers)
        assert by_id["config"]["default"] == "''" and by_id["system"]["default"] == "{}"

    # Ports: names, GRC types and vector lengths of the class's own in_sig / out_sig, at two sizes.
    for sizes in ({}, {"n_antennas": 8, "n_subcarriers": 12, "max_targets": 2, "cyclic_prefix": 3, "vlen": 5}):
        code, kwargs = _values(cls, desc, **sizes)
        block = cls(**kwargs)
        for key, sigs in (("inputs", block.in_sig), ("outputs", block.out_sig)):
            stream = [p for p in desc.get(key, []) if p["domain"] == "stream"]
            assert [p["label"] for p in stream] == [s.name for s in sigs]
            for port, spec in zip(stream, sigs):
                assert _grc_eval(port["dtype"], code) == EXPECTED_TYPES[np.dtype(spec.dtype)], (port, spec)
                assert _grc_eval(port["vlen"], code) == int(np.prod(spec.shape)), (port, spec, sizes)
        messages = [p["id"] for p in desc.get("inputs", []) if p["domain"] == "message"]
        assert messages == list(block.message_ports_in)
        assert all(p["optional"] for p in desc.get("inputs", []) if p["domain"] == "message")

    # The make template: the wrapper around the class, every constructor argument by keyword.
    make = desc["templates"]["make"]
    module = "isacblocks.core" if cls.__module__.startswith("isacblocks.core") else (
        "isacblocks.blocks" if cls.__module__.startswith("isacblocks.blocks") else cls.__module__)
    assert make.startswith(f"isacblocks.gnuradio.as_gr_block({module}.{cls.__name__}(")
    assert f"import {module}" in desc["templates"]["imports"]
    for name in signature:
        assert f"{name}=" in make


def _render(template, code, block_id="blk"):
    """GRC's Mako rendering of a make or callback template, for plain ``${name}`` fields."""
    out = template.replace("${id}", block_id)
    for name, value in sorted(code.items(), key=lambda item: -len(item[0])):
        out = out.replace("${" + name + "}", value)
    assert "${" not in out, out
    return out


def _namespace():
    """What the generated flowgraph's imports give, with `as_gr_block` as a stand-in wrapper that
    keeps the block as ``.block`` (as the real one does)."""
    wrapper = types.SimpleNamespace(as_gr_block=lambda block: types.SimpleNamespace(block=block), grc=grc)
    pkg = types.SimpleNamespace(blocks=isacblocks.blocks, core=isacblocks.core, gnuradio=wrapper)
    return {"isacblocks": pkg, "numpy": np, Doubler.__module__: importlib.import_module(Doubler.__module__)}


@pytest.mark.parametrize("cls", ALL, ids=lambda cls: cls.__name__)
def test_the_make_template_builds_the_block(cls):
    desc = _description(cls)
    code, kwargs = _values(cls, desc, n_antennas=8, n_subcarriers=12)
    made = eval(_render(desc["templates"]["make"], code), _namespace())  # noqa: S307
    block = made.block
    assert type(block) is cls and block.name == "blk"
    expected = cls(**kwargs)
    assert [(s.dtype, s.shape) for s in block.in_sig + block.out_sig] == \
           [(s.dtype, s.shape) for s in expected.in_sig + expected.out_sig]
    if "params" in kwargs:
        assert block.params == kwargs["params"]


def test_the_make_template_coerces_grc_floats_and_reads_files(tmp_path):
    desc = _description(isacblocks.blocks.MAPRTDetector)
    spacing = SystemParams(n_antennas=8).nominal_spacing * 1.01
    np.save(tmp_path / "d.npy", spacing)
    code, _ = _values(isacblocks.blocks.MAPRTDetector, desc, n_antennas=8, n_subcarriers=12)
    code.update(n_theta="90.0", n_range="1e2", spacing=repr(str(tmp_path / "d.npy")))
    block = eval(_render(desc["templates"]["make"], code), _namespace()).block  # noqa: S307
    assert (block.n_theta, block.n_range) == (90, 100) and type(block.n_theta) is int
    np.testing.assert_allclose(block.spacing, spacing)
    source = isacblocks.blocks.SymbolSource
    code, _ = _values(source, _description(source), n_antennas=8, n_subcarriers=12)
    code["n_frames"] = "2e3"
    assert eval(_render(_description(source)["templates"]["make"], code), _namespace()).block.n_frames == 2000  # noqa: S307


def test_callbacks_post_to_the_blocks_message_ports(tmp_path):
    combiner = _description(isacblocks.blocks.ISACCombiner)
    code, _ = _values(isacblocks.blocks.ISACCombiner, combiner, n_antennas=8, n_subcarriers=12)
    ns = _namespace()
    made = eval(_render(combiner["templates"]["make"], code), ns)  # noqa: S307
    (callback,) = combiner["templates"]["callbacks"]
    code.update(eta="0.25", phi="1.5")
    exec(_render(callback, code), {**ns, "self": types.SimpleNamespace(blk=made)})  # noqa: S102
    assert made.block.eta == 1.0  # handled in the block's thread, before its next work()
    made.block.handle_messages()
    assert (made.block.eta, made.block.phi) == (0.25, 1.5)

    estimator = _description(isacblocks.blocks.MBMLEstimator)
    code, _ = _values(isacblocks.blocks.MBMLEstimator, estimator, n_antennas=8, n_subcarriers=12)
    made = eval(_render(estimator["templates"]["make"], code), ns)  # noqa: S307
    (callback,) = estimator["templates"]["callbacks"]
    assert "n_antennas" not in callback and "config" not in callback  # GRC calls it when the spacing changes
    learned = made.block.params.nominal_spacing * 0.99
    np.save(tmp_path / "learned.npy", learned)
    code["spacing"] = repr(str(tmp_path / "learned.npy"))
    exec(_render(callback, code), {**ns, "self": types.SimpleNamespace(blk=made)})  # noqa: S102
    made.block.handle_messages()
    np.testing.assert_allclose(made.block.spacing, learned)

    doubler = _description(Doubler)
    assert doubler["templates"]["callbacks"] == ["isacblocks.gnuradio.grc.call(self.${id}, 'set_gain', ${gain})"]


def test_system_params_file_fields_and_conflicts(tmp_path):
    toml = tmp_path / "small.toml"
    toml.write_text("[system]\nn_antennas = 16\nsnr_radar_db = 5.0\n")
    p = grc.system_params(str(toml), 16.0, 64, {"n_taps": 3.0})
    assert (p.n_antennas, p.n_subcarriers, p.snr_radar_db, p.n_taps) == (16, 64, 5.0, 3)
    assert grc.system_params("", 64, 256, {}) == SystemParams()
    with pytest.raises(ConfigError, match="sets n_antennas = 16 but the block's n_antennas is 64"):
        grc.system_params(str(toml), 64, 64, {})
    with pytest.raises(ConfigError, match="system sets n_subcarriers = 32"):
        grc.system_params("", 64, 64, {"n_subcarriers": 32})
    with pytest.raises(ConfigError, match="unknown field 'snr_db'"):
        grc.system_params("", 64, 64, {"snr_db": 3})
    with pytest.raises(ConfigError, match="expected a dict"):
        grc.system_params("", 64, 64, [1])
    assert grc.integer(3.0) == 3 and type(grc.integer(np.int64(3))) is int
    assert grc.integer(2.5) == 2.5 and grc.integer(True) is True and grc.integer("x") == "x"


def test_a_seed_draws_the_array_isac_draws(tmp_path):
    p = SystemParams(n_antennas=8, n_subcarriers=12)
    np.testing.assert_array_equal(grc.true_array(3, p).spacing, cli_true_array(p, 3, None).spacing)
    np.testing.assert_array_equal(grc.true_array(3.0, p).spacing, cli_true_array(p, 3, None).spacing)
    np.save(tmp_path / "d.npy", p.nominal_spacing)
    np.testing.assert_array_equal(grc.true_array(str(tmp_path / "d.npy"), p).spacing, p.nominal_spacing)
    for bad in (None, True, -1):
        with pytest.raises(ConfigError, match="ula = "):
            grc.true_array(bad, p)


def test_a_class_the_generator_cannot_read_is_refused_with_the_reason():
    class Opaque(SyncBlock):
        def __init__(self, thing, name=None):
            super().__init__(in_sig=[np.float32], name=name)

    with pytest.raises(ConfigError, match="give parameter 'thing' a placeholder"):
        grc.block_yaml(Opaque)
    assert "label: in0" in grc.block_yaml(Opaque, hints={"placeholders": {"thing": 1}})

    class NotAffine(SyncBlock):
        def __init__(self, n: int = 3, name=None):
            super().__init__(out_sig=[(np.float32, n * n)], name=name)

    NotAffine.__module__ = __name__
    with pytest.raises(ConfigError, match="no affine function"):
        grc.block_yaml(NotAffine)
    assert "'${ n * n }'" in grc.block_yaml(NotAffine, hints={"vlen": {"out0": "${ n * n }"}})


# ------------------------------------------------------------------------------------------------ isac grc install
def test_install_writes_removes_its_stale_files_and_keeps_others(tmp_path, capsys):
    folder = tmp_path / "blocks"
    assert main(["grc", "install", "--dir", str(folder), "--json", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted(grc.all_yaml()) and out.count("wrote ") == len(names) + 1
    stale = folder / "isacblocks_retired_block.block.yml"
    stale.write_text(f"{grc.GENERATED_MARK} 0.0.1\nid: isacblocks_retired_block\n")
    mine = folder / "isacblocks_my_own.block.yml"
    mine.write_text("id: isacblocks_my_own\n")
    assert main(["grc", "install", "--dir", str(folder)]) == 0
    assert f"removed {stale}" in capsys.readouterr().out
    assert not stale.exists() and mine.exists()
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]
    record = json.loads((tmp_path / "r.json").read_text())
    assert record["folder"] == str(folder) and len(record["written"]) == len(names)

    assert main(["grc", "install", "--dir", str(tmp_path / "printed"), "--print"]) == 0
    captured = capsys.readouterr()
    assert not (tmp_path / "printed").exists() and "nothing written" in captured.err
    assert captured.out.count("file_format: 1") == len(names)


def test_install_refuses_a_file_as_folder_in_one_line(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    assert main(["grc", "install", "--dir", str(tmp_path / "f")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("isac grc: error: --dir") and "\n" not in err


def test_install_honours_grc_blocks_path_then_the_folder_grc_reads(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GRC_BLOCKS_PATH", os.pathsep.join([str(tmp_path / "first"), str(tmp_path / "second")]))
    assert main(["grc", "install"]) == 0
    assert len(list((tmp_path / "first").iterdir())) == len(PUBLIC) and not (tmp_path / "second").exists()
    capsys.readouterr()
    monkeypatch.delenv("GRC_BLOCKS_PATH")
    monkeypatch.setenv("GRC_HIER_PATH", str(tmp_path / "hier"))
    monkeypatch.setattr(grc_install, "_gnuradio_hier_dir", lambda python: None)
    assert grc.default_folder() == (tmp_path / "hier", "GRC_HIER_PATH")
    monkeypatch.delenv("GRC_HIER_PATH")
    assert grc.default_folder()[0] == Path("~/.local/state/gnuradio").expanduser()


def test_the_default_folder_is_the_one_the_installed_grc_reads(tmp_path, monkeypatch):
    require_gnuradio()
    monkeypatch.delenv("GRC_BLOCKS_PATH", raising=False)
    monkeypatch.setenv("GRC_HIER_PATH", str(tmp_path / "hier"))
    assert grc.default_folder() == (tmp_path / "hier", "the user block folder of GNU Radio Companion")


# ------------------------------------------------------------------------------------------------ grcc
def _require_grcc() -> str:
    require_gnuradio()
    path = shutil.which("grcc")
    if path is None:
        reason = "grcc (GNU Radio Companion's compiler) is not on PATH (install it with `apt-get install gnuradio`)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason + "; CI=true requires it")
        pytest.skip(reason)
    return path


def _null_block(kind: str) -> str:
    """A test block: GNU Radio's null sink/source for every GRC type GRC's own offers none for."""
    names = list(TYPE_SIZES)
    direction = "inputs" if kind == "sink" else "outputs"
    return (f"id: isactest_null_{kind}\nlabel: Test null {kind}\nflags: [python]\nparameters:\n"
            f"-   id: type\n    label: Type\n    dtype: enum\n    options: {names}\n"
            f"    option_attributes:\n        size: {[TYPE_SIZES[n] for n in names]}\n"
            f"-   id: vlen\n    label: Vlen\n    dtype: int\n    default: '1'\n"
            f"{direction}:\n-   domain: stream\n    dtype: ${{ type }}\n    vlen: ${{ vlen }}\n"
            f"templates:\n    imports: from gnuradio import blocks\n"
            f"    make: blocks.null_{kind}(${{type.size}} * ${{vlen}})\nfile_format: 1\n")


def _flowgraph(broken: str | None = None, classes=ALL, flowgraph_id: str = "isac_grc_blocks") -> dict:
    """Every generated block (K, S and the combiner's eta from GRC variables), each stream port on a
    null block of the type and vector length the class itself declares; `broken`: one null block one
    item too long."""
    blocks, connections = [], []

    def add(name, block_type, parameters):
        blocks.append({"name": name, "id": block_type, "parameters": parameters,
                       "states": {"coordinate": [8, 8 + 48 * len(blocks)], "rotation": 0, "state": "enabled"}})

    add("K", "variable", {"value": "8"})
    add("S", "variable", {"value": "12"})
    add("eta", "variable", {"value": "1.0"})
    for cls in classes:
        desc = _description(cls)
        code, kwargs = _values(cls, desc, n_antennas=8, n_subcarriers=12)
        if "config" in code:
            code.update(n_antennas="K", n_subcarriers="S")
        if cls is isacblocks.blocks.ISACCombiner:
            code["eta"] = "eta"
        name = "b_" + desc["id"]
        add(name, desc["id"], {k: v for k, v in code.items() if v != next(
            p["default"] for p in desc["parameters"] if p["id"] == k)})
        block = cls(**kwargs)
        for direction, sigs in (("in", block.in_sig), ("out", block.out_sig)):
            for index, spec in enumerate(sigs):
                null = f"null_{name}_{direction}{index}"
                vlen = int(np.prod(spec.shape)) + (null == broken)
                add(null, "isactest_null_" + ("source" if direction == "in" else "sink"),
                    {"type": EXPECTED_TYPES[np.dtype(spec.dtype)], "vlen": str(vlen)})
                connections.append([null, "0", name, str(index)] if direction == "in"
                                   else [name, str(index), null, "0"])
    return {"options": {"parameters": {"id": flowgraph_id, "title": "every isacblocks GRC block",
                                       "generate_options": "no_gui", "output_language": "python"},
                        "states": {"coordinate": [0, 0], "rotation": 0, "state": "enabled"}},
            "blocks": blocks, "connections": connections, "metadata": {"file_format": 1}}


@pytest.fixture(scope="module")
def grcc_run(tmp_path_factory):
    grcc = _require_grcc()
    root = tmp_path_factory.mktemp("grcc")
    blocks = root / "blocks"
    grc.install(blocks, {**grc.all_yaml(), grc.file_name(Doubler): grc.block_yaml(Doubler, category="Test")})
    for kind in ("sink", "source"):
        (blocks / f"isactest_null_{kind}.block.yml").write_text(_null_block(kind))
    # A home of its own: GRC's block cache, its user block folder (an installed isacblocks
    # there would clash with these) and preferences stay out of the user's.
    (root / "home").mkdir()
    env = {**os.environ, "HOME": str(root / "home"), "GRC_BLOCKS_PATH": str(blocks)}
    env.pop("GRC_HIER_PATH", None)

    def run(flowgraph: dict, name: str):
        """grcc on `flowgraph`; the Python it writes goes to folder `name`."""
        path = root / f"{name}.grc"
        path.write_text(json.dumps(flowgraph, indent=1))
        return subprocess.run([grcc, "-o", str(root / name), str(path)], capture_output=True, text=True,
                              timeout=120, env=env)
    return root, blocks, run


def test_grcc_compiles_every_generated_block(grcc_run):
    root, _, run = grcc_run
    done = run(_flowgraph(), "good")
    assert done.returncode == 0 and "Generating" in done.stdout, done.stdout + done.stderr
    code = (root / "good" / "isac_grc_blocks.py").read_text()
    for cls in PUBLIC:
        assert f"as_gr_block({grc.public_module(cls)}.{cls.__name__}(" in code, cls.__name__
    assert "isacblocks.gnuradio.grc.system_params('', K, S, {})" in code


def test_grcc_refuses_a_port_of_the_wrong_size(grcc_run):
    _, _, run = grcc_run
    done = run(_flowgraph(broken="null_b_isacblocks_mbml_estimator_out0"), "broken")
    assert done.returncode != 0
    assert 'Source IO size "24" does not match sink IO size "32"' in done.stdout + done.stderr


def test_grc_reads_every_yaml_without_a_schema_complaint(grcc_run):
    _, blocks, _ = grcc_run
    script = ("import json, sys, yaml\n"
              "from gnuradio.grc.core.schema_checker import BLOCK_SCHEME, Validator\n"
              "out = {}\n"
              "for path in sys.argv[1:]:\n"
              "    v = Validator(BLOCK_SCHEME); v.run(yaml.safe_load(open(path)))\n"
              "    out[path] = [str(m) for m in v.messages]\n"
              "print(json.dumps(out))\n")
    paths = sorted(str(p) for p in blocks.glob("isacblocks_*.block.yml"))
    done = subprocess.run([GR_PYTHON, "-c", script, *paths], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {p: [] for p in paths}


def _gr_python_with_isacblocks() -> str:
    """A Python that imports GNU Radio and isacblocks (the project's ``.venv-gr``: ``make gnuradio``)."""
    python = ROOT / ".venv-gr" / "bin" / "python"
    if python.exists():
        done = subprocess.run([str(python), "-c", "import isacblocks.gnuradio"], capture_output=True, timeout=120,
                              cwd=python.parent)
        if done.returncode == 0:
            return str(python)
    pytest.skip("no Python that imports both gnuradio and isacblocks (`make gnuradio` makes .venv-gr)")


def test_the_compiled_flowgraph_builds_every_block_in_gnu_radio(grcc_run):
    """The generated Python, in GNU Radio: the top block builds every block through as_gr_block (not
    run), and changing a GRC variable reaches the block as a message."""
    root, _, run = grcc_run
    python = _gr_python_with_isacblocks()
    done = run(_flowgraph(classes=PUBLIC, flowgraph_id="isac_grc_built"), "built")
    assert done.returncode == 0, done.stdout + done.stderr
    script = ("import json, sys\n"
              f"sys.path.insert(0, {str(root / 'built')!r})\n"
              "import isac_grc_built\n"
              "tb = isac_grc_built.isac_grc_built()\n"
              "built = {n: type(getattr(tb, n).block).__name__ for n in dir(tb) if n.startswith('b_')}\n"
              "tb.set_eta(0.25)\n"
              "combiner = tb.b_isacblocks_isac_combiner.block\n"
              "combiner.handle_messages()\n"
              "print(json.dumps({'built': built, 'eta': combiner.eta, 'K': combiner.params.n_antennas}))\n")
    done = subprocess.run([python, "-c", script], capture_output=True, text=True, timeout=180, cwd=root)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["built"] == {f"b_{grc.block_id(cls)}": cls.__name__ for cls in PUBLIC}
    assert result["eta"] == 0.25 and result["K"] == 8
