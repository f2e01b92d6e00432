"""The GNU Radio Companion examples in flowgraphs/grc: each compiles with ``grcc``; the no-GUI
range-profile flowgraph computes what numpy computes from the same frames, and the relay
carries an `isac tx` run to `isac rx`, which ends by itself with a complete run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from linkutil import GR_PYTHON, Cli, free_base_port, require_gnuradio, small_config

from isacblocks.core import Flowgraph, VectorSource
from isacblocks.zeromq import PushSink

GRC = Path(__file__).resolve().parents[2] / "flowgraphs" / "grc"


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """Every example compiled by ``grcc`` with the generated isacblocks blocks on GRC_BLOCKS_PATH and a
    fresh HOME: nothing of this machine's own GRC folders is used."""
    require_gnuradio()
    from isacblocks.gnuradio import grc as generator

    root = tmp_path_factory.mktemp("grc")
    out, blocks, home = root / "py", root / "blocks", root / "home"
    home.mkdir()
    generator.install(blocks, generator.all_yaml())
    env = {**os.environ, "HOME": str(home), "GRC_BLOCKS_PATH": str(blocks)}
    env.pop("GRC_HIER_PATH", None)
    for grc in sorted(GRC.glob("*.grc")):
        done = subprocess.run(["grcc", "-o", str(out), str(grc)], capture_output=True, text=True, timeout=120,
                              env=env)
        assert done.returncode == 0 and "Generating" in done.stdout, done.stdout + done.stderr
    return out


def test_every_grc_example_compiles(compiled):
    assert {p.stem for p in compiled.glob("*.py")} == {p.stem for p in GRC.glob("*.grc")}


def test_range_profile_flowgraph_matches_numpy(compiled, tmp_path):
    k, s, frames = 8, 32, 20
    rng = np.random.default_rng(3)
    y_r = (rng.standard_normal((frames, k, s)) + 1j * rng.standard_normal((frames, k, s))).astype(np.complex64)
    symbols = np.exp(1j * np.pi / 2 * rng.integers(0, 4, (frames, s))).astype(np.complex64)
    port = free_base_port(2)
    out = tmp_path / "profile.f32"
    sinks = [PushSink(np.complex64, (k, s), f"tcp://127.0.0.1:{port}", pass_tags=True, linger=5000),
             PushSink(np.complex64, s, f"tcp://127.0.0.1:{port + 1}", pass_tags=True, linger=5000)]
    gr = subprocess.Popen([GR_PYTHON, str(compiled / "isac_range_profile_nogui.py"), "--n-antennas", str(k),
                           "--n-subcarriers", str(s), "--tx-port", str(port), "--outfile", str(out)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        fg = Flowgraph(max_items=4, name="tx")
        fg.connect(VectorSource(y_r), sinks[0])
        fg.connect(VectorSource(symbols), sinks[1])
        fg.run()
        deadline = time.monotonic() + 30
        while (not out.exists() or out.stat().st_size < frames * s * 4) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        gr.send_signal(signal.SIGTERM)
        gr.wait(10)
    profile = np.fromfile(out, dtype=np.float32).reshape(-1, s)
    expected = np.abs(s * np.fft.ifft(y_r[:, 0, :].astype(np.complex128) / symbols, axis=-1))  # eq. 7, then IDFT
    assert profile.shape == (frames, s)
    np.testing.assert_allclose(profile, expected, rtol=1e-4, atol=1e-4 * expected.max())


def test_relay_grc_carries_a_complete_isac_run(compiled, tmp_path):
    tx_port, rx_port = free_base_port(), free_base_port()
    config = small_config(tmp_path)
    relay = subprocess.Popen([GR_PYTHON, str(compiled / "isac_relay.py"), "--n-antennas", "16", "--n-subcarriers",
                              "64", "--tx-port", str(tx_port), "--rx-port", str(rx_port)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    common = ["--config", config, "--seed", 3, "--report-interval", 0, "--idle-timeout", 20]
    rx = Cli("rx", *common, "--address", f"tcp://127.0.0.1:{rx_port}", "--json", "rx.json", cwd=tmp_path)
    tx = Cli("tx", *common, "--address", f"tcp://127.0.0.1:{tx_port}", "--frames", 150, cwd=tmp_path)
    try:
        assert rx.finish(120) == 0, rx.stdout + rx.stderr
        assert tx.finish(60) == 0, tx.stderr
    finally:
        relay.send_signal(signal.SIGTERM)
        relay.wait(10)
        rx.kill()
        tx.kill()
    record = json.loads((tmp_path / "rx.json").read_text())
    assert record["complete"] and record["link"]["paired"] == 150
