"""The two-process ISAC link (`isac tx` / `isac rx`) on loopback: bit-exact against the
one-process flowgraph, configuration checks, end of stream and Ctrl-C."""

from __future__ import annotations

import argparse
import json
import re
import signal
import time

import numpy as np
import pytest
from linkutil import Cli, free_base_port

from isacblocks import SystemParams
from isacblocks.blocks import true_array
from isacblocks.blocks.chains import isac_flowgraph, make_estimator
from isacblocks.blocks.link import LINK_STREAMS, stream_addresses
from isacblocks.commands import link as link_cli
from isacblocks.errors import ConfigError

SMALL = "n_antennas = 16\nn_subcarriers = 64\nn_angle_grid = 180\nn_range_grid = 50\n"


@pytest.fixture
def small(tmp_path):
    path = tmp_path / "small.toml"
    path.write_text(SMALL)
    return path, SystemParams.from_toml(path)


@pytest.mark.parametrize("estimator, comm", [("maprt", True), ("mbml", False)])
def test_two_process_link_is_bit_exact(tmp_path, small, estimator, comm):
    """tx and rx in two processes give exactly the one-process flowgraph's detection records and SER."""
    config, params = small
    frames, seed, eta, phi = 256, 7, 0.6, 0.8
    common = ["--config", config, "--address", f"tcp://127.0.0.1:{free_base_port()}", "--seed", seed,
              "--report-interval", "0", *([] if comm else ["--no-comm"])]
    rx = Cli("rx", *common, "--estimator", estimator, "--save-records", "rec.npy", "--json", "rx.json", "--perf",
             cwd=tmp_path)
    tx = Cli("tx", *common, "--frames", frames, "--eta", eta, "--phi", phi, "--alternate", "--max-items", 32,
             "--json", "tx.json", cwd=tmp_path)  # batches of 32 at tx, 64 at rx and in the reference
    try:
        assert tx.finish() == 0, tx.stderr
        assert rx.finish() == 0, rx.stderr
    finally:
        tx.kill()
        rx.kill()
    ula = true_array(params, seed, None)
    chain = isac_flowgraph(params, ula, ula.spacing, frames, seed=seed, eta=eta, phi=phi, with_comm=comm,
                           alternate=True, estimator=make_estimator(estimator, params, ula.spacing))
    chain.flowgraph.run()
    received = np.load(tmp_path / "rec.npy")
    assert received.shape == (frames, 6)
    assert received.tobytes() == chain.detection.records.tobytes()  # bit for bit, NaNs included
    record = json.loads((tmp_path / "rx.json").read_text())
    assert record["frames_received"] == frames and record["missing_frames"] == 0
    assert all(s["malformed"] == 0 and s["missed_items"] == 0 for s in record["streams"].values())
    assert any(s["eos_received"] for s in record["streams"].values())  # the first one ends the flowgraph
    assert record["tx_config"]["seed"] == str(seed) and record["tx_config"]["with_comm"] == comm
    if comm:
        assert (record["ser"]["errors"], record["ser"]["symbols"]) == (chain.ser.errors, chain.ser.symbols)
    assert "end of stream received" in rx.stdout and "| Pmd [95% CI]" in rx.stdout
    assert "end of stream sent" in tx.stdout and json.loads((tmp_path / "tx.json").read_text())["frames"] == frames
    # the per-block counters: printed with --perf, always in the JSON; every frame went through the receiver
    perf = {row["type"]: row for row in record["performance"]}
    assert perf[type(chain.detection).__name__]["items_in"] == frames
    assert "rx: per-block performance" in rx.stdout and "rx: per-block performance" not in tx.stdout
    assert {row["items_out"] for row in json.loads((tmp_path / "tx.json").read_text())["performance"]
            if row["type"] == "ScenarioSource"} == {frames}


def test_rx_names_a_configuration_mismatch(tmp_path, small):
    config, _ = small
    address = f"tcp://127.0.0.1:{free_base_port()}"
    rx = Cli("rx", "--config", config, "--address", address, "--seed", 1, "--report-interval", 0, cwd=tmp_path)
    tx = Cli("tx", "--config", config, "--address", address, "--seed", 2, "--frames", 64, "--report-interval", 0,
             "--linger", 1, cwd=tmp_path)
    try:
        assert rx.finish(60) == 2
        assert "true_spacing" in rx.stderr and "--seed / --true-spacing" in rx.stderr
        assert "Traceback" not in rx.stderr
    finally:
        tx.kill()
        rx.kill()


def test_sigint_on_tx_ends_both_cleanly(tmp_path, small):
    """Ctrl-C on an endless tx: it flushes, sends the end of stream and exits 130; rx ends with 0."""
    config, _ = small
    common = ["--config", config, "--address", f"tcp://127.0.0.1:{free_base_port()}", "--no-comm",
              "--max-items", 8]
    rx = Cli("rx", *common, "--estimator", "mbml", "--report-interval", 0.2, cwd=tmp_path)
    tx = Cli("tx", *common, "--frames", 0, "--report-interval", 0, cwd=tmp_path)
    try:
        rx.wait_for(r"rx: [1-9]\d* frames received")
        tx.proc.send_signal(signal.SIGINT)
        assert tx.finish(60) == 130, tx.stderr
        assert rx.finish(60) == 0, rx.stderr
    finally:
        tx.kill()
        rx.kill()
    assert "Traceback" not in tx.stderr and "Traceback" not in rx.stderr
    assert "interrupted" in tx.stdout and "end of stream sent" in tx.stdout
    sent = int(re.search(r"tx: sent (\d+) frames", tx.stdout).group(1))
    assert re.search(rf"link: {sent} frames received .* end of stream received", rx.stdout)


def test_sigint_on_idle_rx_exits_130_without_traceback(tmp_path, small):
    config, _ = small
    rx = Cli("rx", "--config", config, "--address", f"tcp://127.0.0.1:{free_base_port()}", cwd=tmp_path)
    try:
        rx.wait_for("waiting for frames")
        time.sleep(0.3)
        start = time.monotonic()
        rx.proc.send_signal(signal.SIGINT)
        assert rx.finish(30) == 130
        assert time.monotonic() - start < 10
    finally:
        rx.kill()
    assert "Traceback" not in rx.stderr and "interrupted" in rx.stdout


def test_stream_addresses():
    assert stream_addresses("tcp://127.0.0.1:5555") == {name: f"tcp://127.0.0.1:{5555 + i}"
                                                        for i, name in enumerate(LINK_STREAMS)}
    assert stream_addresses("tcp://*:7000", ("Y_r", "csi")) == {"Y_r": "tcp://*:7000", "csi": "tcp://*:7004"}
    assert stream_addresses("tcp://127.0.0.1:0", ("Y_r", "y_c")) == {"Y_r": "tcp://127.0.0.1:0",
                                                                      "y_c": "tcp://127.0.0.1:0"}
    assert stream_addresses("ipc:///tmp/isac", ("Y_r",)) == {"Y_r": "ipc:///tmp/isac.Y_r"}
    with pytest.raises(ConfigError, match="ports"):
        stream_addresses("tcp://127.0.0.1:65534")
    with pytest.raises(ConfigError, match="expected tcp"):
        stream_addresses("udp://127.0.0.1:5555")


def test_register_adds_tx_and_rx():
    parser = argparse.ArgumentParser()
    link_cli.register(parser.add_subparsers(dest="command"))
    tx = parser.parse_args(["tx", "--frames", "5", "--no-comm", "--alternate"])
    rx = parser.parse_args(["rx", "--estimator", "mbml", "--assume", "nominal"])
    assert tx.frames == 5 and not tx.with_comm and tx.alternate and callable(tx.run)
    assert rx.estimator == "mbml" and rx.assume == "nominal" and rx.with_comm and callable(rx.run)


# ------------------------------------------------------------------------- the receiver's form
def _test_sector_frames(params, spacing, n, seed):
    """Reciprocal-filtered frames with a target in the test sector in every other frame (12 dB)."""
    from isacblocks.dsp.channels import complex_normal
    from isacblocks.dsp.impairments import array_steering
    from isacblocks.dsp.steering import range_steering

    rng = np.random.default_rng(seed)
    Y = complex_normal(rng, (n, params.n_antennas, params.n_subcarriers), params.noise_power, dtype=np.complex128)
    a = array_steering(rng.uniform(*params.test_sector), spacing, params.wavelength).T
    rho = range_steering(rng.uniform(5.0, 190.0, n), params).T
    Y[::2] += 4.0 * a[::2, :, None] * rho[::2, None, :]
    return Y.astype(np.complex64)


def test_auto_form_takes_the_low_rank_map_once_a_sector_repeats_with_the_fused_estimates():
    """The test sector of every frame: fused for the first LOWRANK_AFTER - 1 frames, then low-rank,
    within the tolerances the low-rank form is held to (tests/dsp/test_lowrank_receiver.py), and
    bit for bit the same whatever the batches."""
    from isacblocks.blocks import MBMLEstimator
    from isacblocks.blocks.receivers import LOWRANK_AFTER
    from isacblocks.dsp.mbml import mbml_estimate
    from isacblocks.dsp.spacing import draw_spacing

    params = SystemParams()
    spacing = draw_spacing(np.random.default_rng(4), params)
    n = 40
    Y = _test_sector_frames(params, spacing, n, 1)
    Y[20, 3, 7] = np.nan  # a broken frame takes the fused kernel in either form
    sectors = np.tile([*params.test_sector, params.range_min_m, params.range_max_m], (n, 1))
    whole = MBMLEstimator(params, spacing)
    got = whole.estimate(Y, sectors)
    assert whole.lowrank_frames == n - (LOWRANK_AFTER - 1)
    assert whole.describe() == f"auto: low-rank for {n - LOWRANK_AFTER + 1} of {n} frames"
    fused = mbml_estimate(Y, *sectors.T, spacing, params)
    early = slice(0, LOWRANK_AFTER - 1)
    for mine, ref in zip(got, fused):
        assert np.array_equal(mine[early], ref[early])  # before the sector repeats: the fused kernel itself
    np.testing.assert_allclose(got[0], fused[0], rtol=1e-5)
    np.testing.assert_allclose(got[1], fused[1], atol=1e-5)  # rad
    np.testing.assert_allclose(got[2], fused[2], atol=1e-3)  # m
    assert np.isnan(got[0][20]) and np.isfinite(np.delete(got[0], 20)).all()
    for size in (1, 7):
        cut = MBMLEstimator(params, spacing)
        parts = [cut.estimate(Y[s:s + size], sectors[s:s + size]) for s in range(0, n, size)]
        for k in range(3):
            assert np.array_equal(np.concatenate([p[k] for p in parts]), got[k], equal_nan=True)


def test_auto_form_keeps_the_fused_kernel_for_sectors_that_do_not_repeat():
    from isacblocks.blocks import MBMLEstimator
    from isacblocks.dsp.mbml import mbml_estimate

    params = SystemParams()
    spacing = params.nominal_spacing
    n = 24
    Y = _test_sector_frames(params, spacing, n, 2)
    centres = np.radians(np.linspace(-60.0, 60.0, n))  # a new sector in every frame (isac tx --sector train)
    sectors = np.stack([centres - 0.1, centres + 0.1, np.full(n, 10.0), np.full(n, 150.0)], axis=1)
    est = MBMLEstimator(params, spacing)
    got = est.estimate(Y, sectors)
    assert est.lowrank_frames == 0
    for mine, ref in zip(got, mbml_estimate(Y, *sectors.T, spacing, params)):
        assert np.array_equal(mine, ref)


def test_estimator_forms():
    from isacblocks.blocks import MBMLEstimator

    params = SystemParams()
    assert make_estimator("mbml", params, params.nominal_spacing).method == "auto"
    assert make_estimator("mbml", params, params.nominal_spacing, "fused").describe() == "fused"
    with pytest.raises(ConfigError, match="method = 'svd': expected one of 'auto', 'fused', 'lowrank'"):
        MBMLEstimator(params, method="svd")
    with pytest.raises(ConfigError, match="expected 'maprt' or 'mbml'"):
        make_estimator("ml", params, params.nominal_spacing)
