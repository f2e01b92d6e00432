"""Hostile and corrupt input files, runs too large for memory, and outputs that cannot be written.

Each hostile file is built here by hand (a ``.npy`` header declaring 10^12 numbers, a ``.npz``
whose member inflates past its declared size, a truncated zip); none of them allocates more
than a few kilobytes.  A full disk or a read-only folder is simulated by making the system
call raise ENOSPC / EROFS (tests may run as root, where a read-only mode does not block writes).
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import io
import json
import os
import struct
import subprocess
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from isacblocks import SystemParams, safeio
from isacblocks.blocks import true_array
from isacblocks.cli import main
from isacblocks.commands import memory
from isacblocks.experiments.reproduce import staged_folder
from isacblocks.safeio import InputFileError, OutputError

SMALL_TOML = "[system]\nn_antennas = 16\nn_subcarriers = 64\nn_angle_grid = 180\nn_range_grid = 50\n"
P = SystemParams(n_antennas=16, n_subcarriers=64, n_angle_grid=180, n_range_grid=50)
EVAL = ["evaluate", "--config", "small.toml", "--frames", "200", "--workers", "0"]
TRAIN = ["train", "--iterations", "2", "--batch-size", "4", "--config", "small.toml", "--out", "o.npy"]
GIB = 2**30


# ---------------------------------------------------------------------------- hostile files, by hand
def npy_header(shape, descr: str = "<f8") -> bytes:
    """A version 1.0 ``.npy`` header, written from the format's description (no numpy involved)."""
    text = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {tuple(shape)!r}, }}"
    text += " " * (-(10 + len(text) + 1) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode("latin1")


def npy_bytes(values: np.ndarray) -> bytes:
    return npy_header(values.shape) + values.astype("<f8").tobytes()


def patch_member(data: bytes, size: int | None = None, crc: int | None = None) -> bytes:
    """A one-member zip with the member's declared uncompressed size (and CRC) replaced in its
    local header and its central directory entry."""
    data = bytearray(data)
    for signature, size_at, crc_at in ((b"PK\x03\x04", 22, 14), (b"PK\x01\x02", 24, 16)):
        start = data.index(signature)
        if size is not None:
            data[start + size_at:start + size_at + 4] = struct.pack("<I", size)
        if crc is not None:
            data[start + crc_at:start + crc_at + 4] = struct.pack("<I", crc)
    return bytes(data)


def deflated_zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("files")
    (root / "small.toml").write_text(SMALL_TOML)
    (root / "k100000.toml").write_text("[system]\nn_antennas = 100000\n")
    (root / "k1e12.toml").write_text("[system]\nn_antennas = 1000000000000\n")
    (root / "grid.toml").write_text("[system]\nn_angle_grid = 100000000\n")
    (root / "subcarriers.toml").write_text("[system]\nn_subcarriers = 100000000\nn_range_grid = 2\n")
    good = true_array(P, 0, None).spacing
    np.save(root / "good.npy", good)
    (root / "huge.npy").write_bytes(npy_header((10**12,)))  # 128 bytes declaring 8 TB
    (root / "short.npy").write_bytes(npy_bytes(good)[:-8])  # one number missing
    (root / "object.npy").write_bytes(npy_header((2,), "|O") + b"\x80\x04N.")
    inflating = npy_bytes(np.full(4096, 0.005))  # 32 kB that deflate to almost nothing
    valid = deflated_zip({"spacing.npy": inflating})
    (root / "lying.npz").write_bytes(patch_member(valid, size=200))
    # the same with the CRC of the first 200 bytes: the zip layer has nothing to object to
    (root / "lying_crc.npz").write_bytes(patch_member(valid, size=200, crc=zlib.crc32(inflating[:200])))
    (root / "bomb.npz").write_bytes(patch_member(valid, size=0xF0000000))  # declares 3.75 GiB
    np.savez(root / "good.npz", spacing=good)
    (root / "truncated.npz").write_bytes((root / "good.npz").read_bytes()[:100])
    (root / "many.npz").write_bytes(deflated_zip({f"a{i}.npy": npy_bytes(np.zeros(1)) for i in range(1100)}))
    with open(root / "big.txt", "wb") as f:  # sparse: 65 MB declared, nothing on disk
        f.truncate(safeio.MAX_TEXT_BYTES + 1)
    (root / "bad.json").write_text('{"schema": ')
    results_files(root)
    buffer = io.BytesIO()
    torch.save({"iteration": 0}, buffer)
    (root / "truncated.pt").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    members = {"ck/data.pkl": b"\x80\x02}q\x00." + b"\x00" * 5000, "ck/version": b"3\n"}
    (root / "lying.pt").write_bytes(patch_member(deflated_zip(members), size=100))
    return root


def results_files(root: Path) -> None:
    """A small valid results.json, and copies with one field of the wrong type."""
    from isacblocks.experiments import results as R

    ev = R.Evaluation(R.Estimate(0.1, (0.05, 0.2), 1000), 1.0, 3.0, 0.01, (0.005, 0.02),
                      R.SpacingErrors(1.0, 2.0, 0.5, 0.9))
    R.to_json(R.Reproduction(scale="quick", scale_config={}, figures=(), executor="x", baselines={"known": ev},
                             fig3=None, fig4=None, fig5=None, scaling=None, claims=(), wall_s=1.0, run={}),
              root / "results.json")
    good = json.loads((root / "results.json").read_text())
    known = good["baselines"]["known"]
    bad_estimate = {**known["estimate"], "frames": "x"}
    for name, change in {"wall": {"wall_s": "abc"}, "figures": {"figures": 5},
                         "ci": {"baselines": {"known": {**known, "pfa_check_ci": [1]}}},
                         "frames": {"baselines": {"known": {**known, "estimate": bad_estimate}}},
                         "claims": {"claims": [5]}}.items():
        (root / f"results_{name}.json").write_text(json.dumps({**good, **change}))


def _run(args, capsys):
    try:
        code = main(args)
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


HOSTILE = [
    ([*EVAL, "--assume", "huge.npy"], "spacing file huge.npy: declares an array of shape (1000000000000,) and dtype "
                                      "float64: 8000000000000 bytes"),
    ([*EVAL, "--assume", "nominal", "--true-spacing", "huge.npy"], "declares an array of shape (1000000000000,)"),
    ([*EVAL, "--assume", "short.npy"], "spacing file short.npy: corrupt: its header declares shape (16,) and dtype "
                                       "float64 (128 bytes of data), the file holds 120 bytes of data"),
    ([*EVAL, "--assume", "object.npy"], "spacing file object.npy: holds Python objects (dtype object)"),
    ([*EVAL, "--assume", "lying.npz"], "array file lying.npz: corrupt: member 'spacing.npy'"),
    ([*EVAL, "--assume", "lying_crc.npz"], "the file holds 72 bytes of data"),
    ([*EVAL, "--assume", "bomb.npz"], "array file bomb.npz: its members declare 4026531840 bytes (3.75 GiB) "
                                      "uncompressed"),
    ([*EVAL, "--assume", "truncated.npz"], "array file truncated.npz: not a readable zip archive"),
    ([*EVAL, "--assume", "many.npz"], "array file many.npz: lists 1100 members, more than the limit of 1024"),
    ([*EVAL, "--assume", "big.txt"], "spacing file big.txt: holds 67108865 bytes (0.0625 GiB), more than the limit"),
    (["multi-target", "--learned", "bomb.npz", "--config", "small.toml"], "array file bomb.npz: its members declare"),
    (["snr-sweep", "--learned", "huge.npy", "--config", "small.toml"], "spacing file huge.npy: declares"),
    ([*TRAIN, "--checkpoint", "truncated.pt", "--resume"], "cannot read checkpoint truncated.pt: not a readable zip"),
    ([*TRAIN, "--checkpoint", "lying.pt", "--resume"], "cannot read checkpoint lying.pt: corrupt: member "
                                                       "'ck/data.pkl'"),
    (["train", "--config", "big.txt", "--out", "o.npy"], "configuration big.txt: holds 67108865 bytes"),
    (["report", "bad.json"], "results file bad.json: not valid JSON"),
    (["report", "bomb.npz"], "results file bomb.npz: not utf-8 text"),
    (["report", "results_wall.json"], "results_wall.json.wall_s: expected a float, got 'abc'"),
    (["report", "results_figures.json"], "results_figures.json.figures: expected a list, got 5"),
    (["report", "results_ci.json"], "results_ci.json.baselines.known.pfa_check_ci: expected a list of 2, got [1]"),
    (["report", "results_frames.json"], "results_frames.json.baselines.known.estimate.frames: expected an int"),
    (["report", "results_claims.json"], "results_claims.json.claims[0]: expected an object for Claim, got int"),
]


@pytest.mark.parametrize("args, message", HOSTILE, ids=[" ".join(a)[-40:] for a, _ in HOSTILE])
def test_a_hostile_or_corrupt_file_ends_in_one_error_line(files, monkeypatch, capsys, args, message):
    monkeypatch.chdir(files)
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load reached a refused checkpoint"))
    start = time.perf_counter()
    code, err = _run(args, capsys)
    assert code == 2, err
    assert err.startswith(f"isac {args[0]}: error: ") and message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert time.perf_counter() - start < 10  # refused before any work


def test_a_valid_results_file_is_reported(files, monkeypatch, capsys):
    monkeypatch.chdir(files)
    code, err = _run(["report", "results.json"], capsys)
    assert code == 0 and err == ""


def test_valid_files_read_back_as_written(tmp_path):
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((3, 4)), (rng.standard_normal(5) + 1j).astype(np.complex64)
    np.save(tmp_path / "a.npy", np.asfortranarray(a))
    with open(tmp_path / "v2.npy", "wb") as f:
        np.lib.format.write_array(f, a, version=(2, 0))
    np.savez_compressed(tmp_path / "ab.npz", a=a, b=b)
    np.savetxt(tmp_path / "a.txt", a[0])
    assert np.array_equal(safeio.read_npy(tmp_path / "a.npy"), a)
    assert np.array_equal(safeio.read_npy(tmp_path / "v2.npy"), a)
    read = safeio.read_npz(tmp_path / "ab.npz")
    assert sorted(read) == ["a", "b"] and np.array_equal(read["a"], a) and np.array_equal(read["b"], b)
    assert np.array_equal(safeio.read_text_array(tmp_path / "a.txt"), a[0])


def test_limits_apply_to_what_a_header_declares_not_to_the_file_size(tmp_path):
    (tmp_path / "x.npy").write_bytes(npy_header((1000,)) + bytes(8000))
    assert safeio.read_npy(tmp_path / "x.npy", max_bytes=8000).shape == (1000,)
    with pytest.raises(InputFileError, match="8000 bytes, more than the limit of 7999 bytes"):
        safeio.read_npy(tmp_path / "x.npy", max_bytes=7999)


def test_gr_peer_refuses_a_hostile_items_file_in_one_line(files):
    from isacblocks.zeromq.gnuradio import peer_command

    done = subprocess.run([*peer_command("push", "tcp://127.0.0.1:1", files / "huge.npy", files / "bad.json")],
                          capture_output=True, text=True, timeout=60)
    if "No module named" in done.stderr or not Path(peer_command()[0]).exists():
        pytest.skip(f"no GNU Radio interpreter: {done.stderr.strip()[-200:]}")
    assert done.returncode == 1
    assert done.stderr.strip() == (f"gr_peer.py push: error: items file {files / 'huge.npy'}: declares an array of "
                                   "shape (1000000000000,) and dtype float64: 8000000000000 bytes (7.45e+03 GiB), "
                                   "more than the limit of 268435456 bytes (0.25 GiB)")


# ---------------------------------------------------------------------------- sizes
SIZES = [
    (["train", "--config", "k100000.toml", "--out", "o.npy"],
     # 4 K x K complex128 matrices (Gram, its Cholesky factor and their autograd copies): 4 * 1e10 * 16 B
     "the K x K Gram matrix of the learner's LS precoder and its Cholesky factor (n_antennas = 100000) need "
     "about 596 GiB"),
    (["impairments", "--config", "k100000.toml"], "(n_antennas = 100000) need about"),
    (["reproduce", "--config", "k100000.toml", "--scale", "quick"], "K x K"),
    # 1e12 frames of 64 x 256 complex128 numbers: 2.62e17 B
    (["impairments", "--batch-size", "1000000000000"],
     "--batch-size 1000000000000: the frames of a training batch need about 2.44e+08 GiB"),
    (["multi-target", "--frames", "1000000000000"],
     "--frames 1000000000000 at 5 target count(s), 5 SNR point(s) and 2 arrays: the per-frame estimates need about"),
    (["multi-target", "--h0-frames", "1000000000000"], "--h0-frames 1000000000000: the results of"),
    (["train", "--iterations", "1000000000000", "--out", "o.npy"], "--iterations 1000000000000: the history of"),
    (["sensing", "--max-items", "1000000000", "--workers", "0"], "--max-items 1000000000: the frames in 1 flowgraph"),
    (["evaluate", "--config", "k100000.toml", "--assume", "nominal", "--workers", "0"],
     "--frames 10000: 1 task(s) at once of 2000 frames (K x r = 100000 x 200 each) need about"),
    # 4 K x N_theta complex128 matrices: 4 * 64 * 1e8 * 16 B
    (["multi-target", "--config", "grid.toml"],
     "the steering matrices on the angle grid (n_antennas x n_angle_grid = 64 x 100000000) need about 381 GiB"),
    # 32 maps of N_theta x N_tau float32: 32 * 1e8 * 200 * 4 B
    (["evaluate", "--config", "grid.toml", "--assume", "nominal", "--workers", "0"],
     "the maps of 1 task(s) at once (32 frames of n_angle_grid x n_range_grid = 100000000 x 200) need about "
     "2.38e+03 GiB"),
    (["evaluate", "--config", "subcarriers.toml", "--assume", "nominal", "--frames", "10", "--workers", "0"],
     "the range dictionary and its SVD (n_subcarriers x n_range_grid = 100000000 x 2) need about"),
    (["draw-spacing", "--config", "k1e12.toml", "--out", "d.npy"],
     "the spacing vectors (n_antennas = 1000000000000) need about"),
]


@pytest.mark.parametrize("args, message", SIZES, ids=[" ".join(a)[:50] for a, _ in SIZES])
def test_a_run_too_large_for_memory_is_refused_up_front_naming_the_estimate(files, monkeypatch, capsys, args,
                                                                              message):
    monkeypatch.chdir(files)
    monkeypatch.setattr(memory, "available_memory_bytes", lambda: 8 * GIB)
    start = time.perf_counter()
    code, err = _run(args, capsys)
    assert code == 2, err
    assert err.startswith(f"isac {args[0]}: error: ") and message in err, err
    assert "more than the 8 GiB available; make the run smaller" in err and "Traceback" not in err
    assert time.perf_counter() - start < 10


class Reached(Exception):
    """Raised where a command's work would start: the estimate let the run through."""


def _reached(*args, **kwargs):
    raise Reached


class NoExecutor:
    """Stands in for the executor (no worker processes start); the work is stubbed out anyway."""

    def describe(self) -> str:
        return "no executor"


WORK = {  # command line (the paper's configuration, the defaults) -> (module, the work it starts)
    ("evaluate", "--assume", "nominal", "--workers", "2"): ("commands.learning", "evaluate_spacing"),
    ("train", "--out", "o.npy"): ("learning.trainer", "Trainer"),
    ("reproduce", "--workers", "2"): ("experiments.reproduce", "reproduce"),
    ("reproduce", "--workers", "2", "--fig", "all"): ("experiments.reproduce", "reproduce"),
    ("sensing", "--workers", "2"): ("commands.baseline", "baseline_sensing"),
    ("isac-sweep", "--workers", "2"): ("commands.baseline", "isac_sweep"),
    ("snr-sweep", "--workers", "2"): ("commands.snr", "Study"),
    ("impairments",): ("commands.impairments", "impairments_study"),
    ("multi-target",): ("commands.multitarget", "multitarget_study"),
}


@pytest.mark.parametrize("args", list(WORK), ids=[" ".join(a) for a in WORK])
def test_the_estimate_lets_every_default_run_through_on_4_gib(files, monkeypatch, capsys, args):
    monkeypatch.chdir(files)
    monkeypatch.setattr(memory, "available_memory_bytes", lambda: 4 * GIB)
    module, work = WORK[args]
    for name in ("learning", "reproduce", "baseline", "snr"):
        monkeypatch.setattr(importlib.import_module(f"isacblocks.commands.{name}"), "executor_from_args",
                            lambda args: contextlib.nullcontext(NoExecutor()))
    monkeypatch.setattr(importlib.import_module(f"isacblocks.{module}"), work, _reached)
    with pytest.raises(Reached):
        main(list(args))


def test_a_multi_target_run_reports_its_progress(files, monkeypatch, capsys):
    monkeypatch.chdir(files)
    args = ["multi-target", "--config", "small.toml", "--frames", "4", "--h0-frames", "100", "--snr", "10",
            "--max-targets", "1", "--out", "mt"]
    code, err = _run(args, capsys)
    assert code == 0, err
    # 2 arrays x 2 chunks of 64 threshold frames, then 1 chunk of scenes for T = 1
    assert "multi-target: 5/5 tasks" in err and "multi-target: 1/5 tasks" in err


# ---------------------------------------------------------------------------- outputs
def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _read_only(*args, **kwargs):
    raise OSError(errno.EROFS, os.strerror(errno.EROFS))


def test_a_failed_write_keeps_the_previous_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "x.json"
    target.write_text("previous")

    def half_then_full(f):
        f.write(b"partial")
        _no_space()

    with pytest.raises(OutputError, match=f"^cannot write {target}: No space left on device$"):
        safeio.atomic_write(target, half_then_full)
    assert target.read_text() == "previous" and [p.name for p in tmp_path.iterdir()] == ["x.json"]
    safeio.write_text(target, "new")
    assert target.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["x.json"]
    with pytest.raises(KeyboardInterrupt):  # interrupted while writing: the same
        safeio.atomic_write(target, lambda f: (f.write(b"x"), (_ for _ in ()).throw(KeyboardInterrupt)))
    assert target.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["x.json"]


@pytest.mark.parametrize("call, fail, reason", [("fsync", _no_space, "No space left on device"),
                                                ("replace", _read_only, "Read-only file system")])
def test_a_command_whose_output_cannot_be_written_says_so_in_one_line(files, monkeypatch, capsys, tmp_path,
                                                                      call, fail, reason):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "small.toml").write_text(SMALL_TOML)
    (tmp_path / "d.npy").write_bytes(b"previous")
    monkeypatch.setattr(os, call, fail)
    code, err = _run(["draw-spacing", "--config", "small.toml", "--out", "d.npy"], capsys)
    assert code == 2 and err == f"isac draw-spacing: error: cannot write d.npy: {reason}\n"
    assert (tmp_path / "d.npy").read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.npy", "small.toml"]


def test_a_checkpoint_that_cannot_be_written_keeps_the_last_good_one(tmp_path, monkeypatch):
    from isacblocks.learning.trainer import TrainConfig, Trainer

    trainer = Trainer(P, true_array(P, 0, None).spacing, TrainConfig(iterations=1, batch_size=4, progress=False))
    trainer.save_checkpoint(tmp_path / "ck.pt")
    good = (tmp_path / "ck.pt").read_bytes()
    monkeypatch.setattr(os, "fsync", _no_space)
    with pytest.raises(OutputError, match="cannot write checkpoint .*ck.pt: No space left on device"):
        trainer.save_checkpoint(tmp_path / "ck.pt")
    assert (tmp_path / "ck.pt").read_bytes() == good and [p.name for p in tmp_path.iterdir()] == ["ck.pt"]


def test_reproduce_output_folder_that_cannot_be_moved_into_place_keeps_the_old_one(tmp_path, monkeypatch):

    out = tmp_path / "rep"
    out.mkdir()
    (out / "fig3.png").write_text("old")
    real_replace = os.replace

    def refuse_the_stage(src, dst, *args, **kwargs):
        if Path(src).name.startswith(".rep.partial-"):
            _read_only()
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", refuse_the_stage)
    with pytest.raises(OutputError, match=f"cannot write {out}: Read-only file system"):
        with staged_folder(out) as stage:
            (stage / "fig4.png").write_text("new")
    assert [p.name for p in tmp_path.iterdir()] == ["rep"]
    assert [p.name for p in out.iterdir()] == ["fig3.png"] and (out / "fig3.png").read_text() == "old"


def test_reproduce_output_that_cannot_be_written_is_named_by_its_final_path(tmp_path, monkeypatch):
    from isacblocks.experiments.reproduce import staged_folder

    out = tmp_path / "rep"
    out.mkdir()
    (out / "fig3.png").write_text("old")
    with pytest.raises(OutputError, match=f"^cannot write {out / 'results.json'}: No space left on device$"):
        with staged_folder(out) as stage:
            safeio.write_text(stage / "claims.md", "new")
            monkeypatch.setattr(os, "fsync", _no_space)
            safeio.write_text(stage / "results.json", "new")
    assert [p.name for p in tmp_path.iterdir()] == ["rep"] and [p.name for p in out.iterdir()] == ["fig3.png"]
