"""CURVE on the ZeroMQ link: `isac keys`, keyed blocks, peers without the keys, replayed bytes,
bad key files, and the command line's --curve and its warnings.

Every socket is on 127.0.0.1; a peer's failed handshake is waited for (its monitor reports it)
instead of sleeping, and every wait is bounded.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import socket
import stat
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import zmq
from linkutil import Cli, free_base_port
from zmq.utils.monitor import recv_monitor_message

from isacblocks import SystemParams, cli
from isacblocks.blocks import true_array
from isacblocks.blocks.chains import isac_flowgraph, make_estimator
from isacblocks.commands import link as link_cli
from isacblocks.commands import tools
from isacblocks.commands.runner import run_command
from isacblocks.core import Flowgraph, Tag, VectorSink, VectorSource
from isacblocks.errors import ConfigError
from isacblocks.zeromq import EOS_KEY, PullSource, PushSink, ZmqWarning, encode_message
from isacblocks.zeromq.curve import KEY_FILES, CurveKeys, create_keys, is_loopback

MARKER = b"ISAC-PLAINTEXT-MARKER-1234567"  # 29 bytes: never split across the 32-byte items below


@pytest.fixture
def keys(tmp_path):
    create_keys(tmp_path / "keys")
    return CurveKeys(tmp_path / "keys")


def _payload(n: int) -> np.ndarray:
    """n items of 32 bytes, each holding MARKER (recognisable in a capture of the wire)."""
    rows = np.zeros((n, 32), np.uint8)
    rows[:, :len(MARKER)] = np.frombuffer(MARKER, np.uint8)
    rows[:, -1] = np.arange(n)
    return rows


def _link(keys_tx, keys_rx, n=12, address=None):
    """VectorSource -> PushSink (binds) ~ PullSource (connects) -> VectorSink, tags on items 0 and 5."""
    data = _payload(n)
    tags = [Tag(0, "first", 1.5), Tag(5, "meta", {"a": (1, 2.0)})]
    sink = PushSink(np.uint8, 32, "tcp://127.0.0.1:0", pass_tags=True, curve=keys_tx, stream_length=n)
    source = PullSource(np.uint8, 32, address or sink.endpoint, pass_tags=True, curve=keys_rx)
    got = VectorSink(np.uint8, 32)
    tx, rx = Flowgraph(max_items=4, name="tx"), Flowgraph(max_items=4, name="rx")
    tx.connect(VectorSource(data, tags), sink)
    rx.connect(source, got)
    return data, tags, sink, source, got, tx, rx


def _run(*fgs, timeout=20.0):
    for fg in fgs:
        fg.start()
    deadline = time.monotonic() + timeout
    for fg in fgs:
        fg.wait(timeout=max(0.1, deadline - time.monotonic()))


# ---------------------------------------------------------------------------------- isac keys
def isac_keys(*argv) -> int:
    """``isac keys ...`` as `isacblocks.cli` runs it (its command group alone: `commands.tools`)."""
    parser = argparse.ArgumentParser(prog="isac")
    tools.register(parser.add_subparsers(dest="command", required=True))
    return run_command(parser, ["keys", *map(str, argv)])


def test_isac_registers_keys(monkeypatch):
    monkeypatch.setattr(cli, "register_bench", lambda sub: None)
    assert "keys" in cli.build_parser()._subparsers._group_actions[0].choices


def test_keys_command_writes_owner_only_keypairs_and_refuses_to_overwrite(tmp_path, capsys):
    folder = tmp_path / "k"
    assert isac_keys(folder) == 0
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert sorted(os.listdir(folder)) == sorted(KEY_FILES)
    assert {stat.S_IMODE((folder / f).stat().st_mode) for f in KEY_FILES} == {0o600}
    loaded = CurveKeys(folder)
    server, client = loaded.load(server=True), loaded.load(server=False)
    assert server[2] == client[0] and client[2] == server[0]  # each side holds the other's public key
    assert server[0] != client[0] and zmq.curve_public(server[1]) == server[0]
    capsys.readouterr()
    assert isac_keys(folder) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already holds CURVE key files" in err and "--force" in err
    assert CurveKeys(folder).load(server=True) == server  # untouched
    (folder / "server.key_secret").chmod(0o644)
    assert isac_keys(folder, "--force") == 0
    assert CurveKeys(folder).load(server=True)[0] != server[0]
    assert stat.S_IMODE((folder / "server.key_secret").stat().st_mode) == 0o600


# ---------------------------------------------------------------------------------- the keyed link
def test_keyed_link_is_bit_exact_and_its_bytes_are_encrypted(keys):
    """Items and tags arrive as sent; a capture of the wire holds no plaintext (the same relay shows
    it for an unkeyed link)."""
    for curve in (keys, None):
        data, tags, sink, source, got, tx, rx = _link(curve, curve)
        relay = _Relay(int(sink.endpoint.rsplit(":", 1)[1]))
        source.close()
        source = PullSource(np.uint8, 32, f"tcp://127.0.0.1:{relay.port}", pass_tags=True, curve=curve)
        rx = Flowgraph(max_items=4, name="rx")
        rx.connect(source, got)
        _run(tx, rx)
        relay.stop()
        assert got.data.tobytes() == data.tobytes()
        assert [(t.offset, t.key, t.value) for t in got.tags] == [(t.offset, t.key, t.value) for t in tags]
        assert source.stats()["malformed"] == 0 and source.eos_received
        assert len(relay.to_client) > data.nbytes
        assert (MARKER in relay.to_client) == (curve is None)


def _feed(rx: Flowgraph, context, push, rogue: str, connect_to: str | None = None) -> str:
    """Start `rx`, let the `rogue` PUSH peer (connecting to `connect_to`, if given) handshake and send
    one payload; a control run ends with the stream, a rogue one is stopped after 0.5 s.  Returns the
    handshake's outcome; the peer's socket and context are closed."""
    try:
        rx.start()
        if connect_to is not None:
            push.connect(connect_to)
        outcome = _handshake(push)
        _send(push, _payload(8))
        if rogue.endswith("(control)"):
            rx.wait(timeout=20)
        else:
            time.sleep(0.5)
            rx.stop(timeout=5)
    finally:
        push.close(linger=0)
        context.term()
    return outcome


@pytest.mark.parametrize("rogue", ["no keys", "other keys", "the right keys (control)"])
def test_a_sender_without_the_keys_gets_nothing_through(keys, rogue):
    """A PUSH peer binding where the keyed receiver connects: without the server's secret key its
    handshake fails, nothing it sends arrives, and the receiver counts nothing at all."""
    context = zmq.Context()
    push = _peer(context, zmq.PUSH, rogue, keys, server=True)
    port = push.bind_to_random_port("tcp://127.0.0.1")
    source = PullSource(np.uint8, 32, f"tcp://127.0.0.1:{port}", pass_tags=True, curve=keys)
    got = VectorSink(np.uint8, 32)
    rx = Flowgraph(max_items=4, name="rx")
    rx.connect(source, got)
    outcome = _feed(rx, context, push, rogue)
    stats = source.stats()
    if rogue.endswith("(control)"):
        assert outcome == "EVENT_HANDSHAKE_SUCCEEDED" and got.data.tobytes() == _payload(8).tobytes()
    else:
        assert outcome.startswith("EVENT_HANDSHAKE_FAILED")
        assert len(got.data) == 0 and got.tags == []
        assert (stats["items_received"], stats["messages_received"], stats["malformed"]) == (0, 0, 0)


@pytest.mark.parametrize("rogue", ["no keys", "an unknown client key", "the right keys (control)"])
def test_a_client_without_the_keys_is_refused_by_a_binding_source(keys, rogue):
    """A keyed source that binds is the CURVE server: a peer connecting without keys, or with the
    server's public key but a client key of its own, is refused (ZAP admits only client.key)."""
    source = PullSource(np.uint8, 32, "tcp://127.0.0.1:0", pass_tags=True, bind=True, curve=keys)
    got = VectorSink(np.uint8, 32)
    rx = Flowgraph(max_items=4, name="rx")
    rx.connect(source, got)
    context = zmq.Context()
    push = _peer(context, zmq.PUSH, rogue, keys, server=False)
    outcome = _feed(rx, context, push, rogue, connect_to=source.endpoint)
    if rogue.endswith("(control)"):
        assert outcome == "EVENT_HANDSHAKE_SUCCEEDED" and got.data.tobytes() == _payload(8).tobytes()
    else:
        assert outcome.startswith("EVENT_HANDSHAKE_FAILED")
        if rogue == "an unknown client key":
            assert outcome == "EVENT_HANDSHAKE_FAILED_AUTH"  # refused by the ZAP handler, not by the crypto
        assert len(got.data) == 0 and source.stats()["messages_received"] == 0
    assert not [t for t in threading.enumerate() if "Authentication" in type(t).__name__]  # ZAP thread ended


def test_replayed_session_bytes_do_not_decrypt(keys):
    """The server's bytes of a recorded keyed session, replayed to a new keyed client, give it nothing:
    each session has fresh ephemeral keys."""
    data, _, sink, source, got, tx, rx = _link(keys, keys)
    relay = _Relay(int(sink.endpoint.rsplit(":", 1)[1]))
    source.close()
    source = PullSource(np.uint8, 32, f"tcp://127.0.0.1:{relay.port}", pass_tags=True, curve=keys)
    rx = Flowgraph(max_items=4, name="rx")
    rx.connect(source, got)
    _run(tx, rx)
    relay.stop()
    assert got.data.tobytes() == data.tobytes()  # the recorded session did carry the stream
    replay = _Replay(bytes(relay.to_client))
    fresh = PullSource(np.uint8, 32, f"tcp://127.0.0.1:{replay.port}", pass_tags=True, curve=keys)
    got2 = VectorSink(np.uint8, 32)
    rx2 = Flowgraph(max_items=4, name="rx2")
    rx2.connect(fresh, got2)
    rx2.start()
    assert replay.sent.wait(20), "the client never connected to the replay"
    time.sleep(0.5)
    rx2.stop(timeout=5)
    replay.stop()
    assert len(got2.data) == 0 and fresh.stats()["messages_received"] == 0


# ---------------------------------------------------------------------------------- bad keys
def test_bad_key_files_are_refused_naming_the_file(tmp_path, keys):
    folder = keys.directory
    with pytest.raises(ConfigError, match=r"push_sink\w*: curve = CurveKeys\(.*nowhere.*\): curve key directory .* "
                                          r"does not exist \(create the keys with `isac keys DIR`\)"):
        PushSink(np.uint8, 32, "tcp://127.0.0.1:0", curve=tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="curve = 5: expected CurveKeys"):
        PushSink(np.uint8, 32, "tcp://127.0.0.1:0", curve=5)
    (folder / "server.key").unlink()
    with pytest.raises(ConfigError, match=r"server.key' is missing"):
        PullSource(np.uint8, 32, "tcp://127.0.0.1:5", curve=CurveKeys(folder))
    PushSink(np.uint8, 32, "tcp://127.0.0.1:0", curve=CurveKeys(folder)).close()  # the binding side needs no server.key
    (folder / "client.key").write_text('curve\n    public-key = "not a key"\n')
    with pytest.raises(ConfigError, match=r"client.key': public-key b'not a key' is not a Z85 CURVE key"):
        PushSink(np.uint8, 32, "tcp://127.0.0.1:0", curve=CurveKeys(folder))
    other = zmq.curve_keypair()
    text = (folder / "client.key_secret").read_text()
    (folder / "client.key_secret").write_text(text.replace(text.split('public-key = "')[1][:40], other[0].decode()))
    with pytest.raises(ConfigError, match=r"client.key_secret': its public-key does not belong to its secret-key"):
        PullSource(np.uint8, 32, "tcp://127.0.0.1:5", curve=CurveKeys(folder))


def test_a_key_file_open_to_others_is_warned_about(keys):
    (keys.directory / "server.key_secret").chmod(0o640)
    with pytest.warns(ZmqWarning, match=r"server.key_secret' is readable by group or others \(mode 0640\); make "
                                        r"it owner-only: chmod 600"):
        PushSink(np.uint8, 32, "tcp://127.0.0.1:0", curve=CurveKeys(keys.directory)).close()


def test_is_loopback():
    local = ["tcp://127.0.0.1:5555", "tcp://127.3.2.1:1", "tcp://[::1]:5555", "tcp://localhost:5", "ipc:///tmp/x",
             "inproc://isac"]
    remote = ["tcp://0.0.0.0:5555", "tcp://*:5555", "tcp://192.168.1.4:5555", "tcp://[::]:5", "tcp://eth0:5",
              "tcp://example.org:5555", "udp://127.0.0.1:5"]
    assert all(map(is_loopback, local)) and not any(map(is_loopback, remote))


# ---------------------------------------------------------------------------------- the command line
def _cli(*args):
    proc = subprocess.run([sys.executable, "-m", "isacblocks.commands", *map(str, args)],
                          capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


def test_cli_refuses_bad_curve_keys_and_a_huge_hwm_in_one_line_and_warns_beyond_loopback(tmp_path):
    create_keys(tmp_path / "k")
    (tmp_path / "k" / "server.key").unlink()
    code, _, err = _cli("rx", "--curve", tmp_path / "k")
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"isac rx: error: --curve {tmp_path / 'k'}: curve key file ")
    assert "server.key' is missing" in err
    code, _, err = _cli("tx", "--address", "tcp://0.0.0.0:0", "--hwm", "1e11")
    lines = err.splitlines()
    assert code == 2 and len(lines) == 2 and "Traceback" not in err
    assert lines[0].startswith("isac tx: warning: binding tcp://0.0.0.0:0 without --curve: the link is "
                               "unauthenticated") and "isac keys DIR" in lines[0] and "--curve DIR" in lines[0]
    assert lines[1].startswith("isac tx: error: argument --hwm: --hwm 100000000000 queues up to") and "GiB" in lines[1]


@pytest.mark.parametrize("role, address, warned", [
    ("rx", "tcp://192.0.2.1:5555", "isac rx: warning: connecting to tcp://192.0.2.1:5555 without --curve"),
    ("tx", "tcp://[::1]:5555", None), ("rx", "ipc:///tmp/isac", None), ("tx", "tcp://127.0.0.1:0", None)])
def test_the_unauthenticated_link_warning_is_one_line_beyond_loopback_only(capsys, role, address, warned):
    parser = link_cli.tx_parser() if role == "tx" else link_cli.rx_parser()
    args = parser.parse_args(["--address", address])
    link_cli._check_curve(args)
    err = capsys.readouterr().err
    assert args.curve_keys is None
    assert (err.splitlines() == [err.rstrip("\n")] and err.startswith(warned)) if warned else err == ""


def test_two_process_link_with_curve_is_bit_exact(tmp_path):
    """isac tx --curve DIR and isac rx --curve DIR: the one-process flowgraph's records, bit for bit."""
    (tmp_path / "small.toml").write_text("n_antennas = 16\nn_subcarriers = 64\nn_angle_grid = 180\n"
                                         "n_range_grid = 50\n")
    assert isac_keys(tmp_path / "keys") == 0
    frames, seed = 64, 3
    common = ["--config", tmp_path / "small.toml", "--address", f"tcp://127.0.0.1:{free_base_port()}", "--seed",
              seed, "--report-interval", "0", "--no-comm", "--curve", tmp_path / "keys"]
    rx = Cli("rx", *common, "--save-records", "rec.npy", "--json", "rx.json", cwd=tmp_path)
    tx = Cli("tx", *common, "--frames", frames, "--alternate", cwd=tmp_path)
    try:
        assert tx.finish() == 0, tx.stderr
        assert rx.finish() == 0, rx.stderr
    finally:
        tx.kill()
        rx.kill()
    assert "warning" not in tx.stderr + rx.stderr
    params = SystemParams.from_toml(tmp_path / "small.toml")
    ula = true_array(params, seed, None)
    chain = isac_flowgraph(params, ula, ula.spacing, frames, seed=seed, with_comm=False, alternate=True,
                           estimator=make_estimator("maprt", params, ula.spacing))
    chain.flowgraph.run()
    assert np.load(tmp_path / "rec.npy").tobytes() == chain.detection.records.tobytes()
    assert json.loads((tmp_path / "rx.json").read_text())["complete"] is True


# ---------------------------------------------------------------------------------- helpers
_EVENTS = {getattr(zmq, n): n for n in dir(zmq) if n.startswith("EVENT_HANDSHAKE")}


def _peer(context, kind, rogue: str, keys: CurveKeys, server: bool):
    """A raw socket: without keys, with keys of its own (a client also knowing the real server key),
    or with the right keys; monitored for its handshake."""
    sock = context.socket(kind)
    sock.linger = 0
    if rogue != "no keys":
        if rogue.endswith("(control)"):
            public, secret, peer = keys.load(server)
        else:
            public, secret = zmq.curve_keypair()
            peer = keys.load(False)[2]
        sock.curve_secretkey, sock.curve_publickey = secret, public
        if server:
            sock.curve_server = True
        else:
            sock.curve_serverkey = peer
    _MONITORS[sock] = sock.get_monitor_socket(sum(_EVENTS))
    return sock


_MONITORS: dict = {}


def _handshake(sock, timeout: float = 20.0) -> str:
    """The first handshake outcome the socket's monitor reports."""
    monitor = _MONITORS.pop(sock)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if monitor.poll(100):
                return _EVENTS[recv_monitor_message(monitor)["event"]]
    finally:
        sock.disable_monitor()
        monitor.close(linger=0)
    pytest.fail("no handshake within the timeout")


def _send(sock, items: np.ndarray) -> None:
    """Offer the items and the end of stream as gr-zeromq messages (dropped where no peer took them)."""
    for message in (encode_message(items, 0, []), encode_message(b"", len(items), [Tag(len(items), EOS_KEY, True)])):
        try:
            sock.send(message, zmq.NOBLOCK)
        except zmq.Again:
            pass


class _Relay:
    """A TCP relay to 127.0.0.1:`port` for one connection, recording the server's bytes to the client."""

    def __init__(self, port: int):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.to_client = bytearray()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(port,), daemon=True)
        self._thread.start()

    def _run(self, port: int) -> None:
        self.listener.settimeout(20)
        client, _ = self.listener.accept()
        server = socket.create_connection(("127.0.0.1", port), timeout=20)
        peers = {client: server, server: client}
        try:
            while not self._stop.is_set():
                for sock in select.select(list(peers), [], [], 0.05)[0]:
                    chunk = sock.recv(65536)
                    if not chunk:
                        return
                    if sock is server:
                        self.to_client += chunk
                    peers[sock].sendall(chunk)
        except OSError:
            return
        finally:
            client.close()
            server.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.listener.close()


class _Replay:
    """A TCP server that sends recorded bytes to the first client (and ignores what it says)."""

    def __init__(self, recorded: bytes):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sent = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(recorded,), daemon=True)
        self._thread.start()

    def _run(self, recorded: bytes) -> None:
        self.listener.settimeout(20)
        try:
            client, _ = self.listener.accept()
        except OSError:
            return
        try:
            client.sendall(recorded)
            self.sent.set()
            while not self._stop.is_set():
                if select.select([client], [], [], 0.05)[0] and not client.recv(65536):
                    return
        except OSError:
            self.sent.set()
        finally:
            client.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.listener.close()
