"""The two-process link under faults: every run that did not see all of one transmitter run
ends by itself, with a non-zero exit code, a one-line reason and ``"complete": false``.

Each case runs `isac rx` / `isac tx` as child processes on loopback with a short
``--idle-timeout`` and bounded waits, so a hang fails the test instead of holding the suite.
"""

from __future__ import annotations

import json
import re
import signal
import time

from linkutil import Cli, free_base_port, small_config

from isacblocks.blocks.link import EXIT_CUT_SHORT, EXIT_FOREIGN, EXIT_LOST, EXIT_NO_RECEIVER

IDLE = 2  # seconds


def common(tmp_path, *extra):
    return ["--config", small_config(tmp_path), "--address", f"tcp://127.0.0.1:{free_base_port()}",
            "--report-interval", 0, "--idle-timeout", IDLE, "--no-comm", *extra]


def rx_record(tmp_path, name="rx.json"):
    return json.loads((tmp_path / name).read_text())


def stop_all(*clis):
    for cli in clis:
        cli.kill()


def test_two_receivers_on_one_address_both_end_incomplete(tmp_path):
    """PUSH load-balances each stream between the two: neither may score mixed frames."""
    args = common(tmp_path)
    rx1 = Cli("rx", *args, "--json", "rx1.json", cwd=tmp_path)
    rx2 = Cli("rx", *args, "--json", "rx2.json", cwd=tmp_path)
    for rx in (rx1, rx2):
        rx.wait_for("waiting for frames")
    # An endless transmitter, stopped once both receivers are connected: a fixed number of frames
    # can all be sent before the second receiver's connection is up.
    tx = Cli("tx", *args, "--frames", 0, "--max-items", 8, "--report-interval", 0.2, cwd=tmp_path)
    try:
        tx.wait_for(r"frames sent, .* 2 receiver\(s\) connected")
        time.sleep(0.5)  # both streams well under way
        tx.proc.send_signal(signal.SIGINT)
        assert tx.finish(60) == 130, tx.stderr
        codes = [rx1.finish(30), rx2.finish(30)]
    finally:
        stop_all(tx, rx1, rx2)
    for code, name, cli in zip(codes, ("rx1.json", "rx2.json"), (rx1, rx2)):
        record = rx_record(tmp_path, name)
        assert code in (EXIT_LOST, EXIT_CUT_SHORT) and record["exit_code"] == code, cli.stdout + cli.stderr
        assert record["complete"] is False and record["link"]["lost"] > 0
        assert "incomplete" in record["reason"] and "Traceback" not in cli.stderr
    sent = int(re.search(r"tx: sent (\d+) frames", tx.stdout).group(1))
    total = sum(rx_record(tmp_path, n)["link"]["paired"] for n in ("rx1.json", "rx2.json"))
    # frames whose streams went to different receivers are never scored, none twice (when PUSH
    # happens to send both streams of every frame to one receiver, every frame is scored once)
    assert total <= sent


def test_receiver_restarted_mid_stream_reports_the_frames_it_missed(tmp_path):
    args = common(tmp_path)
    rx1 = Cli("rx", *args, "--report-interval", 0.2, cwd=tmp_path)
    tx = Cli("tx", *args, "--frames", 3000, "--max-items", 8, "--idle-timeout", 60, cwd=tmp_path)
    try:
        rx1.wait_for(r"rx: [1-9]\d* frames received")
        rx1.kill()
        rx2 = Cli("rx", *args, "--json", "rx2.json", cwd=tmp_path)
        code = rx2.finish(90)
        assert tx.finish(60) == 0, tx.stderr
    finally:
        stop_all(tx, rx1)
    record = rx_record(tmp_path, "rx2.json")
    assert code == EXIT_LOST == record["exit_code"], rx2.stdout
    assert record["complete"] is False and record["link"]["missed_start"] > 0
    assert not record["link"]["config_seen"] and "link_config was never received" in record["reason"]
    assert f"exit {EXIT_LOST}: incomplete" in rx2.stderr


def test_killed_transmitter_ends_the_receiver_after_the_idle_timeout(tmp_path):
    args = common(tmp_path)
    rx = Cli("rx", *args, "--report-interval", 0.2, "--json", "rx.json", cwd=tmp_path)
    tx = Cli("tx", *args, "--frames", 0, "--max-items", 8, cwd=tmp_path)
    try:
        rx.wait_for(r"rx: [1-9]\d* frames received")
        tx.kill()
        killed = time.monotonic()
        code = rx.finish(30)
        ended_after = time.monotonic() - killed
    finally:
        stop_all(tx, rx)
    record = rx_record(tmp_path)
    assert code == EXIT_CUT_SHORT == record["exit_code"], rx.stdout + rx.stderr
    assert record["complete"] is False and not record["link"]["eos_received"] and record["link"]["timed_out"]
    assert IDLE - 0.5 < ended_after < IDLE + 15
    assert "no end of stream" in record["reason"]


def test_transmitter_ends_when_the_receiver_is_killed(tmp_path):
    args = common(tmp_path)
    rx = Cli("rx", *args, "--report-interval", 0.2, cwd=tmp_path)
    tx = Cli("tx", *args, "--frames", 0, "--max-items", 8, "--json", "tx.json", cwd=tmp_path)
    try:
        rx.wait_for(r"rx: [1-9]\d* frames received")
        rx.kill()
        code = tx.finish(30)
    finally:
        stop_all(tx, rx)
    assert code == EXIT_NO_RECEIVER, tx.stdout + tx.stderr
    assert "no receiver took data" in tx.stderr and "Traceback" not in tx.stderr
    assert rx_record(tmp_path, "tx.json")["complete"] is False


def test_refused_configuration_ends_both(tmp_path):
    """rx refuses K = 16 from a K = 64 transmitter and says why; tx then gives up by itself."""
    address = f"tcp://127.0.0.1:{free_base_port()}"
    base = ["--address", address, "--report-interval", 0, "--idle-timeout", IDLE, "--no-comm"]
    rx = Cli("rx", *base, "--config", small_config(tmp_path), cwd=tmp_path)
    tx = Cli("tx", *base, "--frames", 0, "--max-items", 4, cwd=tmp_path)  # the paper's K = 64
    try:
        assert rx.finish(60) == 2
        start = time.monotonic()
        assert tx.finish(60) == EXIT_NO_RECEIVER, tx.stdout + tx.stderr
        assert time.monotonic() - start < IDLE + 20
    finally:
        stop_all(tx, rx)
    assert "item size mismatch" in rx.stderr or "n_antennas" in rx.stderr
    assert "Traceback" not in rx.stderr and "Traceback" not in tx.stderr


def test_frames_of_another_run_are_counted_not_scored(tmp_path):
    """A transmitter killed and started again on the same address: the receiver sees two runs."""
    args = common(tmp_path, "--idle-timeout", 20)
    rx = Cli("rx", *args, "--report-interval", 0.2, "--json", "rx.json", cwd=tmp_path)
    tx1 = Cli("tx", *args, "--frames", 0, "--max-items", 8, cwd=tmp_path)
    try:
        rx.wait_for(r"rx: [1-9]\d* frames received")
        tx1.kill()
        tx2 = Cli("tx", *args, "--frames", 200, "--max-items", 8, cwd=tmp_path)
        code = rx.finish(60)
        tx2.kill()
    finally:
        stop_all(tx1, rx)
    record = rx_record(tmp_path)
    assert code == EXIT_FOREIGN == record["exit_code"], rx.stdout + rx.stderr
    assert record["link"]["foreign"] > 0 and record["complete"] is False
    assert "another transmitter run" in record["reason"]


def test_receiver_without_sender_says_it_is_waiting(tmp_path):
    rx = Cli("rx", *common(tmp_path), cwd=tmp_path)
    try:
        rx.wait_for(r"waiting for a sender on tcp://127\.0\.0\.1:\d+", timeout=30)
        rx.proc.send_signal(signal.SIGINT)
        assert rx.finish(30) == 130
    finally:
        rx.kill()


def test_transmitter_without_receiver_says_it_is_waiting(tmp_path):
    tx = Cli("tx", *common(tmp_path), "--frames", 10, cwd=tmp_path)
    try:
        tx.wait_for(r"waiting for a receiver on tcp://127\.0\.0\.1:\d+ \(\d+ s so far\)", timeout=30)
        tx.proc.send_signal(signal.SIGINT)
        assert tx.finish(30) == 130
    finally:
        tx.kill()
