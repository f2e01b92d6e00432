"""Every edge a user touches fails loudly and early: the ``isac`` command's one error path.

Each bad input below must end as ``isac <command>: error: <what, the value, the rule>`` with
exit 2, before any computation, and without a Python traceback.  `BAD_INPUTS` is the table
docs/reliability.md counts.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
import torch
from conftest import LineStream

from isacblocks import SystemParams, __version__
from isacblocks.blocks import true_array
from isacblocks.cli import build_parser, main
from isacblocks.dsp.maprt import maprt
from isacblocks.errors import ConfigError
from isacblocks.executor import Task, make_executor
from isacblocks.experiments.reproduce import staged_folder
from isacblocks.safeio import write_json

SMALL_TOML = "[system]\nn_antennas = 16\nn_subcarriers = 64\nn_angle_grid = 180\nn_range_grid = 50\n"
P = SystemParams(n_antennas=16, n_subcarriers=64, n_angle_grid=180, n_range_grid=50)
MARKER = "pwned.txt"


class _Exploit:
    """Unpickling this writes MARKER: what a crafted checkpoint or journal entry could do."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (Path(self.path).write_text, ("code ran on load",))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The bad and good files the cases below use, in one folder (the cases run there)."""
    root = tmp_path_factory.mktemp("cli")
    (root / "small.toml").write_text(SMALL_TOML)
    (root / "k64.toml").write_text("[system]\nn_antennas = 64\n")
    good = true_array(P, 0, None).spacing
    np.save(root / "strings.npy", np.array(["a"] * 16))
    np.save(root / "complex.npy", good.astype(np.complex128))
    np.save(root / "square.npy", np.full((8, 8), 0.005))
    np.savetxt(root / "mm.txt", good * 1e3)
    np.save(root / "good.npy", good)
    np.savez(root / "odd.npz", spacing=good, gains=np.ones(16))
    np.savez(root / "short.npz", spacing=good, gain=np.ones(3))
    (root / "folder").mkdir()
    (root / "afile").write_text("x")
    (root / "crafted.pt").write_bytes(pickle.dumps({"iteration": _Exploit(root / MARKER)}, protocol=2))
    torch.save({"iteration": 0}, root / "keyless.pt")
    base = ["train", "--iterations", "2", "--batch-size", "4", "--config", "small.toml"]
    cwd = os.getcwd()
    try:
        os.chdir(root)
        assert main([*base, "--seed", "1", "--checkpoint", "ck.pt", "--out", "d.npy"]) == 0
    finally:
        os.chdir(cwd)
    return root


TRAIN = ["train", "--iterations", "2", "--batch-size", "4", "--config", "small.toml", "--out", "o.npy"]
EVAL = ["evaluate", "--config", "small.toml", "--frames", "200", "--workers", "0"]

#: (command line, what the error must say).  Every case ends with exit 2 and a clear message.
def _cuda_available() -> bool:
    from numba import cuda

    return cuda.is_available()


BAD_INPUTS = [
    (["reproduce", "--device", "gpu"], "argument --device: 'gpu': expected one of cpu, cuda"),
    (["draw-spacing", "--seed", "-1", "--out", "d.npy"], "argument --seed: '-1': must be an integer >= 0"),
    (["draw-spacing", "--seed", "x", "--out", "d.npy"], "argument --seed: 'x': must be an integer >= 0"),
    (["draw-spacing", "--out", "no/such/dir/d.npy"], "folder 'no/such/dir' does not exist"),
    (["draw-spacing", "--out", "d.npy", "--json", "folder"], "argument --json: 'folder': is a folder"),
    (["train", "--out", "no/such/dir/d.npy"], "argument --out: 'no/such/dir/d.npy': folder 'no/such/dir' does not"),
    (["train", "--out", "folder"], "argument --out: 'folder': is a folder; a file name is expected"),
    (["train", "--out", "/proc/d.npy"], "is not writable"),
    ([*TRAIN, "--schedule", "ul", "--labeled-ratio", "0.3"], "--labeled-ratio 0.3: only the schedules sl+ul"),
    ([*TRAIN, "--schedule", "sl+ul", "--labeled-ratio", "1.5"], "argument --labeled-ratio: '1.5': must be a number in"),
    ([*TRAIN, "--lr", "-1"], "argument --lr: '-1': must be a number in (0, inf)"),
    ([*TRAIN, "--lr", "nan"], "argument --lr: 'nan'"),
    ([*TRAIN, "--iterations", "0"], "argument --iterations: '0': must be an integer >= 1"),
    ([*TRAIN, "--batch-size", "2.5"], "argument --batch-size: '2.5': must be an integer >= 1"),
    ([*TRAIN, "--checkpoint-every", "0"], "argument --checkpoint-every: '0'"),
    ([*TRAIN, "--batch-size", "1000000000000"], "--batch-size 1000000000000: the frames of a training batch need"),
    ([*TRAIN, "--resume"], "--resume needs --checkpoint FILE"),
    ([*TRAIN, "--seed", "2", "--checkpoint", "ck.pt", "--resume"], "seed = 1 there, 2 here"),
    ([*TRAIN, "--seed", "1", "--schedule", "sl", "--checkpoint", "ck.pt", "--resume"], "schedule = 'ul' there, 'sl'"),
    ([*TRAIN, "--seed", "1", "--batch-size", "8", "--checkpoint", "ck.pt", "--resume"], "batch_size = 4 there, 8"),
    (["train", "--iterations", "2", "--batch-size", "4", "--out", "o.npy", "--seed", "1", "--config", "k64.toml",
      "--checkpoint", "ck.pt", "--resume"], "another system configuration: n_antennas = 16 there, 64"),
    ([*TRAIN, "--seed", "1", "--true-spacing", "good.npy", "--checkpoint", "ck.pt", "--resume"],
     "another true array"),
    ([*TRAIN, "--checkpoint", "keyless.pt", "--resume"], "keys ['model', 'optimizer'"),
    ([*TRAIN, "--checkpoint", "crafted.pt", "--resume"], "cannot read checkpoint crafted.pt"),
    ([*TRAIN, "--true-spacing", "mm.txt"], "the values look like millimetres; metres expected"),
    ([*TRAIN, "--config", "missing.toml"], "argument --config: 'missing.toml': no such file"),
    (["reproduce", "--fig", "6"], "argument --fig: '6': figure '6' does not exist"),
    (["reproduce", "--fig", "3,x"], "figure 'x' does not exist"),
    (["reproduce", "--scale", "huge"], "argument --scale: invalid choice: 'huge'"),
    (["reproduce", "--out", "afile"], "argument --out: 'afile': is a file; a folder is expected"),
    (["reproduce", "--out", "afile/sub"], "'afile' is a file"),
    (["reproduce", "--json", "folder"], "argument --json: 'folder': is a folder"),
    (["reproduce", "--json", "/proc/r.json"], "is not writable"),
    (["reproduce", "--seed", "-3"], "argument --seed: '-3'"),
    (["evaluate", "--frames", "10"], "the following arguments are required: --assume"),
    ([*EVAL, "--assume", "strings.npy"], "strings.npy: holds dtype <U1; real numbers (metres) expected"),
    ([*EVAL, "--assume", "complex.npy"], "complex.npy: holds dtype complex128; real numbers"),
    (["evaluate", "--config", "k64.toml", "--assume", "square.npy"], "holds an array of shape (8, 8)"),
    ([*EVAL, "--assume", "mm.txt"], "is not a plausible spacing in metres"),
    ([*EVAL, "--assume", "missing.npy"], "argument --assume: 'missing.npy': no such file"),
    ([*EVAL, "--assume", "folder"], "argument --assume: 'folder': is a folder"),
    ([*EVAL, "--assume", "nominal", "--true-spacing", "complex.npy"], "complex.npy: holds dtype complex128"),
    ([*EVAL, "--assume", "nominal", "--frames", "0"], "argument --frames: '0': must be an integer >= 1"),
    ([*EVAL, "--assume", "nominal", "--frames", "1000000000000"], "the results of 2000000000000 frames need about"),
    ([*EVAL, "--assume", "nominal", "--json", "/proc/e.json"], "argument --json: '/proc/e.json': is not writable"),
    ([*EVAL, "--assume", "nominal", "--workers", "-1"], "--workers -1: must be 0"),
    ([*EVAL, "--assume", "nominal", "--journal", "afile"], "--journal 'afile': is a file; a folder is expected"),
    (["sensing", "--frames", "-5"], "argument --frames: '-5'"),
    (["sensing", "--json", "folder"], "argument --json: 'folder': is a folder"),
    (["sensing", "--assume", "complex.npy", "--config", "small.toml"], "holds dtype complex128"),
    (["sensing", "--true-spacing", "mm.txt", "--config", "small.toml"], "metres expected"),
    (["sensing", "--max-items", "0"], "argument --max-items: '0'"),
    (["isac-sweep", "--grid", "1"], "argument --grid: '1': must be an integer >= 2"),
    (["isac-sweep", "--json", "no/dir/x.json"], "folder 'no/dir' does not exist"),
    (["snr-sweep", "--snr", "0:20:1e-12"], "more than 1000 points"),
    (["snr-sweep", "--snr", "0:20:-2"], "expected start:stop:step (step > 0)"),
    (["snr-sweep", "--snr", "a,b"], "argument --snr"),
    (["snr-sweep", "--out", "afile"], "argument --out: 'afile': is a file"),
    (["snr-sweep", "--learned", "missing.npy"], "argument --learned: 'missing.npy': no such file"),
    (["snr-sweep", "--learned", "mm.txt", "--config", "small.toml", "--json", "s.json"], "metres expected"),
    (["snr-sweep", "--frames", "1000000000000", "--learned", "good.npy"], "GiB"),
    ([*TRAIN, "--impairments", "spacing,gain"], "--out o.npy: a model with spacing, gain impairments is written"),
    ([*TRAIN, "--impairments", "gain,tilt"], "argument --impairments: impairments 'gain,tilt': tilt is not an"),
    ([*TRAIN, "--learn", "phase"], "argument --learn: impairments 'phase': phase is not an impairment type"),
    ([*EVAL, "--assume", "odd.npz"], "array file odd.npz: holds ['gains', 'spacing']; expected 'spacing'"),
    ([*EVAL, "--assume", "nominal", "--true-spacing", "short.npz"], "short.npz: ArrayImpairments.gain: expected 16"),
    (["impairments", "--doc", "afile", "--config", "small.toml"], "afile: expected one <!-- impairments:begin -->"),
    (["impairments", "--iterations", "0"], "argument --iterations: '0'"),
    (["multi-target", "--learned", "odd.npz", "--config", "small.toml"], "array file odd.npz"),
    (["bench", "--seed", "-1"], "argument --seed: '-1'"),
    (["bench", "--out", "afile"], "argument --out: 'afile': is a file"),
]


def _run(args, capsys):
    """``isac args`` in this process: (exit code, stderr)."""
    try:
        code = main(args)
    except SystemExit as exc:  # argparse's own exit after its message
        code = exc.code
    return code, capsys.readouterr().err


if not _cuda_available():  # where a GPU is there, --device cuda is no mistake
    BAD_INPUTS += [
        (["evaluate", "--assume", "known", "--device", "cuda"], "argument --device: cuda: no CUDA device"),
        (["train", "--device", "cuda", "--out", "d.npy"], "argument --device: cuda: no CUDA device"),
    ]


@pytest.mark.parametrize("args, message", BAD_INPUTS, ids=[" ".join(a)[:60] for a, _ in BAD_INPUTS])
def test_every_bad_input_ends_with_a_clear_error_and_exit_2(files, monkeypatch, capsys, args, message):
    monkeypatch.chdir(files)
    code, err = _run(args, capsys)
    assert code == 2, err
    assert f"isac {args[0]}: error: " in err and message in err, err
    assert "Traceback" not in err
    assert not (files / MARKER).exists(), "a crafted checkpoint ran code on load"


def test_bad_inputs_are_found_before_any_computation(files, monkeypatch, capsys):
    """An unwritable --json is refused at argument time, not after the run."""
    monkeypatch.chdir(files)
    start = time.perf_counter()
    code, err = _run(["reproduce", "--json", "/proc/r.json"], capsys)
    assert code == 2 and "baselines" not in err
    assert time.perf_counter() - start < 30  # generous: it does no work at all


def test_version_and_defaults_in_every_help(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and __version__ in capsys.readouterr().out
    commands = build_parser()._subparsers._group_actions[0].choices
    for name, command in commands.items():
        text = command.format_help()
        formatter = command.formatter_class(name)
        for action in command._actions:
            if action.option_strings and not any(action.default is v for v in (None, False, argparse.SUPPRESS)):
                assert "default" in formatter._get_help_string(action), (name, action.dest)
        assert "--json" in text, f"isac {name} has no --json"


def test_true_spacing_and_assume_mean_the_same_in_every_command_that_has_them():
    commands = build_parser()._subparsers._group_actions[0].choices
    helps = {}
    for name, command in commands.items():
        if "--true-spacing" not in command._option_string_actions:
            continue
        for action in command._actions:
            if "--true-spacing" in action.option_strings or "--assume" in action.option_strings:
                helps.setdefault(action.option_strings[0], set()).add(action.help.split(";")[0].split(" repeat")[0])
        assert not any("--spacing" in a.option_strings for a in command._actions), name
    assert len(helps["--true-spacing"]) == 1
    assert {h.split(":")[0] for h in helps["--assume"]} <= {"the spacing the transceiver assumes",
                                                             "a spacing the receiver assumes"}


def test_json_is_strict_with_null_and_a_reason(tmp_path):
    path = tmp_path / "r.json"
    write_json(path, {"a": float("nan"), "b": [1.0, np.float64("inf")], "c": np.arange(2)})
    text = path.read_text()
    record = json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} is not JSON"))
    assert record["a"] is None and record["b"] == [1.0, None] and record["c"] == [0, 1]
    assert set(record["null_reasons"]) == {"a", "b[1]"} and "NaN" in record["null_reasons"]["a"]


def test_every_json_records_version_seed_configuration_and_true_spacing_source(files, monkeypatch, capsys):
    monkeypatch.chdir(files)
    assert main(["draw-spacing", "--seed", "4", "--config", "small.toml", "--out", "d4.npy", "--json", "d4.json"]) == 0
    assert main([*EVAL, "--assume", "d4.npy", "--true-spacing", "good.npy", "--json", "e.json"]) == 0
    for name, source in (("d4.json", "drawn from seed 4"), ("e.json", "good.npy")):
        record = json.loads((files / name).read_text())
        assert record["isacblocks_version"] == __version__ and record["true_spacing_source"] == source
        assert "seed" in record and record["params"]["n_antennas"] == 16


def test_train_progress_in_a_file_is_plain_lines(files, monkeypatch, tmp_path):
    monkeypatch.chdir(files)
    log = tmp_path / "log.txt"
    with log.open("w") as f:
        done = subprocess.run([sys.executable, "-m", "isacblocks.cli", *TRAIN, "--iterations", "20"], cwd=files,
                              stdout=f, stderr=subprocess.STDOUT, timeout=300,
                              env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})
    text = log.read_text()
    assert done.returncode == 0, text
    assert "\r" not in text and "20/20" in text and 2 <= text.count("] ") <= 11


# ---------------------------------------------------------------------------- MAPRT sectors
@pytest.mark.parametrize("sector, what", [
    ((0.2, 0.1, 0.0, 200.0), "theta_min, theta_max = [0.2, 0.1]"),
    ((float("nan"), 0.1, 0.0, 200.0), "theta_min, theta_max = [nan"),
    ((-2.0, 0.1, 0.0, 200.0), "-1.5708 <= theta_min"),
    ((-0.5, 0.0, 0.0, 721.0), "r_min, r_max = [0.0, 721.0] m"),
    ((-0.5, 0.0, 50.0, 50.0), "r_min, r_max = [50.0, 50.0]"),
])
def test_maprt_validates_its_sectors_as_mbml_does(sector, what):
    frames = np.ones((2, P.n_antennas, P.n_subcarriers), np.complex64)
    with pytest.raises(ConfigError, match="maprt: frame 0: sector") as info:
        maprt(frames, *sector, P.nominal_spacing, P)
    assert what in str(info.value)


# ---------------------------------------------------------------------------- files from elsewhere
def square(x: int) -> int:
    return x * x


def test_a_crafted_or_damaged_journal_entry_is_refused_and_its_task_runs_again(tmp_path):
    journal, marker = tmp_path / "journal", tmp_path / MARKER
    tasks = [Task(f"x={i}", square, {"x": i}) for i in range(3)]
    executor = make_executor(workers=0, journal=journal)
    assert executor.map(tasks) == [0, 1, 4]
    entries = [executor.journal.path(t) for t in tasks]
    entries[0].write_bytes(pickle.dumps(_Exploit(marker)))  # a colleague's "result"
    entries[1].write_bytes(entries[1].read_bytes()[:-3])  # damaged
    rerun = make_executor(workers=0, journal=journal)
    assert rerun.map(tasks) == [0, 1, 4]
    assert not marker.exists(), "a crafted journal entry ran code on load"
    assert sorted(rerun.journal.refused) == sorted(e.name for e in entries[:2])


def test_a_checkpoint_that_is_a_crafted_pickle_does_not_run(files):
    assert not (files / MARKER).exists()
    with pytest.raises(Exception):  # noqa: B017 (whichever error torch raises: the point is that nothing ran)
        torch.load(files / "crafted.pt", weights_only=True)
    assert not (files / MARKER).exists()


# ---------------------------------------------------------------------------- interrupts
def test_an_interrupted_reproduce_leaves_the_old_folder_untouched(tmp_path):
    out = tmp_path / "rep"
    out.mkdir()
    (out / "fig3.png").write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with staged_folder(out) as stage:
            (stage / "fig3.png").write_text("new")
            (stage / "fig4.png").write_text("new")
            raise KeyboardInterrupt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep"]
    assert [p.name for p in out.iterdir()] == ["fig3.png"] and (out / "fig3.png").read_text() == "old"
    with staged_folder(out) as stage:
        (stage / "fig4.png").write_text("new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep"]
    assert [p.name for p in out.iterdir()] == ["fig4.png"]


def test_sigterm_on_reproduce_ends_the_workers_exits_143_and_leaves_the_old_folder(files):
    out = files / "rep"
    out.mkdir()
    (out / "fig3.png").write_text("old")
    proc = subprocess.Popen([sys.executable, "-m", "isacblocks.cli", "reproduce", "--scale", "quick", "--config",
                             "small.toml", "--out", "rep", "--workers", "2"], cwd=files, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})
    try:
        parent = psutil.Process(proc.pid)
        deadline = time.monotonic() + 120
        workers = []
        while time.monotonic() < deadline and len(workers) < 3 and proc.poll() is None:
            workers = parent.children(recursive=True)  # 2 workers and the resource tracker
            time.sleep(0.2)
        assert proc.poll() is None and len(workers) >= 2, "the workers did not start"
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 143, err
    assert "isac reproduce: terminated" in err and "Traceback" not in err
    gone, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive, f"worker processes left running: {alive}"
    assert [p.name for p in out.iterdir()] == ["fig3.png"] and (out / "fig3.png").read_text() == "old"
    assert not [p.name for p in files.iterdir() if p.name.startswith(".rep")], "a partial folder was left"


def test_a_run_of_few_long_tasks_says_it_is_still_running():
    """`isac sensing` runs one long flowgraph per spacing: a heartbeat line comes meanwhile."""
    from isacblocks.executor import ProgressLine

    stream = LineStream()
    with ProgressLine("sensing", stream=stream, heartbeat_s=0.01):
        assert stream.wrote.wait(10)
    assert "sensing: 0/? tasks finished" in "".join(stream) and "running" in "".join(stream)
