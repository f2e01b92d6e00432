"""The link cannot be fooled: `isac rx` against hand-built hostile streams.

A test binds the transmitter's PUSH sockets itself and sends gr-zeromq messages it built
frame by frame (a duplicate and a missing frame, bad ground truth, stray malformed
messages, a link_config with bad values), while `isac rx` runs in this process (or, for
SIGTERM, as a child).  Every expectation is counted from the stream the test sent, not
from the receiver's code: every index exactly once, bad truth left out and counted, the
table and the JSON from one source, and a report with its JSON whatever ended the run.
"""

from __future__ import annotations

import json
import logging
import re
import signal
import threading
import warnings

import numpy as np
import pytest
import zmq
from linkutil import SMALL, Cli, free_base_port

from isacblocks import SystemParams, commands
from isacblocks.blocks import DetectionMetricsSink, true_array
from isacblocks.blocks import link as link_mod
from isacblocks.blocks.link import (
    EXIT_ERROR,
    EXIT_LOST,
    EXIT_REFUSED,
    check_link_config,
    link_config,
    stream_addresses,
)
from isacblocks.core import Flowgraph, Tag, VectorSink, run_block
from isacblocks.errors import BlockError, ConfigError
from isacblocks.zeromq import EOS_KEY, SEQ_KEY, PullSource, encode_message
from isacblocks.zeromq.indexset import IndexSet
from isacblocks.zeromq.pmt import serialize
from isacblocks.zeromq.sources import SIZE_EVIDENCE

PARAMS = SystemParams.from_dict({"n_antennas": 16, "n_subcarriers": 64, "n_angle_grid": 180, "n_range_grid": 50})
ULA = true_array(PARAMS, 0, None)
RUN = "hostile0run0id00"
SECTOR = (*PARAMS.test_sector, PARAMS.range_min_m, PARAMS.range_max_m)


def truth(i: int) -> dict:
    """The ground truth of frame `i`: a target in every odd frame, inside the test sector."""
    rng = np.random.default_rng(100 + i)
    tags = {"sector": SECTOR, "target_present": i % 2 == 1}
    if i % 2:
        tags["theta"] = float(rng.uniform(*PARAMS.test_sector))
        tags["range"] = float(rng.uniform(10.0, 190.0))
    return tags


def config(n: int | None, **changes) -> dict:
    """The link_config of a run of `n` frames (None: endless), with `changes`."""
    return {**link_config(PARAMS, ULA, 0, n, False, 1.0, 0.0, RUN), **changes}


def run_frames(order, announced: int | None, **changes) -> list[tuple[int, dict]]:
    """Frames of indices `order` (in sending order) with their truth; the first sent carries the
    link_config of a run of `announced` frames (with `changes`)."""
    return [(i, {**truth(i), "link_config": config(announced, **changes)} if k == 0 else truth(i))
            for k, i in enumerate(order)]


def messages(frames: list[tuple[int, dict]], per_message: int = 4, eos: bool = True,
             nan_at: int | None = None) -> dict[str, list[bytes]]:
    """The Y_r and symbols messages of `frames` ((index, tags) in sending order; the sender's
    offsets count items as sent), with stream_seq tags and the eos tag on the last item; the
    Y_r frame sent `nan_at`-th holds a NaN."""
    rng = np.random.default_rng(7)
    k, s = PARAMS.n_antennas, PARAMS.n_subcarriers
    out: dict[str, list[bytes]] = {"Y_r": [], "symbols": []}
    for first in range(0, len(frames), per_message):
        part = frames[first:first + per_message]
        y = (rng.standard_normal((len(part), k, s)) + 1j * rng.standard_normal((len(part), k, s))).astype(np.complex64)
        symbols = np.ones((len(part), s), np.complex64)
        if nan_at is not None and first <= nan_at < first + len(part):
            y[nan_at - first, 2, 3] = np.nan
        for name, data in (("Y_r", y), ("symbols", symbols)):
            tags = []
            for j, (index, extra) in enumerate(part):
                tags.append(Tag(first + j, SEQ_KEY, (RUN, index)))
                if name == "Y_r":
                    tags += [Tag(first + j, key, value) for key, value in extra.items()]
            if eos and first + len(part) == len(frames):
                tags.append(Tag(first + len(part) - 1, EOS_KEY, True))
            out[name].append(encode_message(data, first, tags))
    return out


class Sender:
    """The transmitter's two PUSH sockets (bound, as `isac tx` binds), sending in a thread."""

    def __init__(self):
        self.address = f"tcp://127.0.0.1:{free_base_port(2)}"
        self.context = zmq.Context()
        self.socks = {}
        for name, endpoint in stream_addresses(self.address, ("Y_r", "symbols")).items():
            sock = self.context.socket(zmq.PUSH)
            sock.setsockopt(zmq.LINGER, 2000)
            sock.setsockopt(zmq.SNDTIMEO, 60_000)
            sock.bind(endpoint)
            self.socks[name] = sock
        self.thread: threading.Thread | None = None

    def send(self, streams: dict[str, list[bytes]]) -> None:
        def run():
            for name, msgs in streams.items():
                for m in msgs:
                    self.socks[name].send(m)
        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def close(self):
        if self.thread is not None:
            self.thread.join(30)
        for sock in self.socks.values():
            sock.close(linger=0)
        self.context.term()


@pytest.fixture
def restore_process_state():
    """`isac rx` run in-process sets the warning format and a log handler: put them back."""
    logger = logging.getLogger("isacblocks.zeromq")
    saved = (warnings.formatwarning, list(logger.handlers), logger.level, logger.propagate)
    yield
    warnings.formatwarning = saved[0]
    logger.handlers[:] = saved[1]
    logger.setLevel(saved[2])
    logger.propagate = saved[3]


def run_rx(tmp_path, capsys, streams, *extra) -> tuple[int, dict, str, str]:
    """`isac rx --no-comm` in this process against `streams`; returns (exit code, JSON, stdout, stderr)."""
    cfg = tmp_path / "small.toml"
    cfg.write_text(SMALL)
    sender = Sender()
    try:
        sender.send(streams)
        code = commands.main(["rx", "--config", str(cfg), "--address", sender.address, "--no-comm",
                              "--report-interval", "0", "--idle-timeout", "5", "--json", str(tmp_path / "rx.json"),
                              *extra])
    finally:
        sender.close()
    out = capsys.readouterr()
    return code, json.loads((tmp_path / "rx.json").read_text()), out.out, out.err


def table_row(stdout: str, header: str) -> dict[str, str]:
    """The row of the printed table whose header line starts with `header`, by column."""
    lines = stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith(f"| {header}"))
    cells = lambda line: [c.strip() for c in line.strip().strip("|").split("|")]  # noqa: E731
    return dict(zip(cells(lines[at]), cells(lines[at + 2])))


pytestmark = pytest.mark.usefixtures("restore_process_state")


# ----------------------------------------------------------------------------------- indices
def test_a_duplicate_and_a_missing_frame_do_not_cancel_out(tmp_path, capsys):
    """Frame 5 twice and frame 7 never: the same count as a complete run, but not complete."""
    order = [0, 1, 2, 3, 4, 5, 5, 6, 8, 9, 10, 11]
    code, record, stdout, stderr = run_rx(tmp_path, capsys, messages(run_frames(order, 12)))
    assert code == EXIT_LOST == record["exit_code"] and record["complete"] is False, stderr
    link = record["link"]
    assert (link["paired"], link["duplicates"], link["lost"], link["gaps"]) == (11, 1, 1, 1)
    assert record["frames_scored"] == 11 == record["h0"] + record["h1"]  # frame 5 scored once
    assert (record["h0"], record["h1"]) == (6, 5)  # 0 2 4 6 8 10 / 1 3 5 9 11
    assert "1 frames lost: 1 in gaps" in record["reason"] and "1 duplicate frames dropped" in record["reason"]
    assert record["tx_config"]["frames"] == 12
    row = table_row(stdout, "frames received")
    assert (row["missing"], row["duplicates"]) == ("1", "1")
    assert f"rx: exit {EXIT_LOST}: incomplete" in stderr and "Traceback" not in stderr


def test_a_frame_announced_but_never_sent_is_missing_at_the_end(tmp_path, capsys):
    code, record, _, _ = run_rx(tmp_path, capsys, messages(run_frames(range(10), 10)))
    assert code == 0 and record["complete"] is True  # the reference: every index once
    code, record, _, _ = run_rx(tmp_path, capsys, messages(run_frames(range(10), 12)))
    assert code == EXIT_LOST and record["link"]["missed_end"] == 2 and record["link"]["lost"] == 2
    assert "2 frames lost: 2 after the last received" in record["reason"]


# ------------------------------------------------------------------------------- ground truth
@pytest.mark.parametrize("index, bad, rule", [
    (3, {"target_present": 2}, "target_present = 2: must be 0, 1, True or False"),
    (4, {"target_present": 1.0}, "target_present = 1.0"),
    (5, {"theta": 0.5}, "theta = 0.5: must be a finite number in"),  # outside the test sector
    (7, {"range": float("nan")}, "range = nan"),
    (9, {"range": 250.0}, "range = 250.0"),  # beyond range_max_m
    (2, {"sector": (-2.0, 0.0, 0.0, 200.0)}, "sector = (-2.0, 0.0, 0.0, 200.0): needs finite"),
    (6, {"sector": "test"}, "sector = 'test': must be four numbers"),
    (1, {"theta": None}, "a target frame without its 'theta' tag"),
    (8, {"invalid_frame": True}, "the sender set the receiver's tag 'invalid_frame'"),
])
def test_frames_with_bad_truth_are_left_out_and_counted(tmp_path, capsys, index, bad, rule):
    frames = run_frames(range(12), 12)
    frames[index] = (index, {k: v for k, v in {**frames[index][1], **bad}.items() if v is not None})
    code, record, stdout, stderr = run_rx(tmp_path, capsys, messages(frames))
    assert code == EXIT_LOST and record["complete"] is False, stderr
    assert record["bad_truth"] == 1 == record["link"]["bad_truth"] and record["link"]["lost"] == 0
    assert record["frames_scored"] == 11 == record["h0"] + record["h1"]
    assert rule in record["reason"] and f"item {index}:" in record["reason"]
    # the table shows what the JSON holds (one source)
    scored = table_row(stdout, "frames scored")
    assert (int(scored["frames scored"]), int(scored["H0"]), int(scored["H1"])) == \
        (record["frames_scored"], record["h0"], record["h1"])
    assert table_row(stdout, "frames received")["bad truth (left out)"] == "1"


def test_a_frame_with_nan_samples_is_left_out_and_the_run_is_incomplete(tmp_path, capsys):
    code, record, stdout, _ = run_rx(tmp_path, capsys, messages(run_frames(range(12), 12), nan_at=4))
    assert code == EXIT_LOST and record["invalid_frames"] == 1 and record["frames_scored"] == 11
    assert "1 frames left out for NaN/Inf samples" in record["reason"]
    assert table_row(stdout, "frames received")["NaN/Inf frames (left out)"] == "1"


# -------------------------------------------------------------------------------- link_config
@pytest.mark.parametrize("field, value, rule", [
    ("frames", "x", "frames = 'x': must be an integer >= -1"),
    ("frames", float("inf"), "frames = inf: must be an integer >= -1"),
    ("frames", (1, 2), "frames = (1, 2): must be an integer >= -1"),
    ("eta", 1 + 2j, "eta = (1+2j): must lie in [0, 1]"),
    ("eta", 1.5, "eta = 1.5: must lie in [0, 1]"),
    ("phi", (0.0, 1.0), "phi = (0.0, 1.0): must be a finite real number"),
    ("seed", 5, "seed = 5: must be the text of a seed"),
    ("version", 2, "version = 2: this receiver reads version 3"),
])
def test_a_link_config_with_bad_values_is_refused_in_one_line(tmp_path, capsys, field, value, rule):
    code, record, _, stderr = run_rx(tmp_path, capsys, messages(run_frames(range(6), 6, **{field: value})))
    assert code == EXIT_REFUSED == record["exit_code"] and record["complete"] is False
    assert rule in stderr and "the transmitter's link_config" in stderr and "Traceback" not in stderr
    assert "refused" in record["reason"] and rule in record["reason"]


def test_a_link_config_that_changes_in_mid_run_is_refused(tmp_path, capsys):
    frames = run_frames(range(12), 12)
    frames[6] = (6, {**frames[6][1], "link_config": config(13)})
    code, record, _, stderr = run_rx(tmp_path, capsys, messages(frames))
    assert code == EXIT_REFUSED and "link_config changed in mid-run: frames = 13, before 12" in stderr


@pytest.mark.parametrize("field, value, rule", [
    ("n_antennas", 16.5, "n_antennas = 16.5: must be an integer >= 2"),
    ("with_comm", "yes", "with_comm = 'yes': must be True or False"),
    ("true_spacing", "abc", "true_spacing = 'abc': must be 16 finite spacings > 0"),
    ("true_spacing", np.full(16, 1 + 1j), "must be 16 finite spacings > 0"),
    ("params", {"snr_radar_db": "high"}, "SystemParams.snr_radar_db = 'high': must be a real number"),
    ("run_id", "", "run_id = '': must be a non-empty str"),
])
def test_every_link_config_value_is_checked(field, value, rule):
    with pytest.raises(ConfigError, match=re.escape(rule)):
        check_link_config(config(10, **{field: value}))


def test_a_transmitter_with_other_system_parameters_is_named():
    expect = {"params": PARAMS, "n_antennas": 16}
    assert check_link_config(config(10), expect)["frames"] == 10
    theirs = config(10, params={**PARAMS.to_dict(), "snr_radar_db": 5.0})
    with pytest.raises(ConfigError, match=r"snr_radar_db = 5.0, this receiver with 15.0: give both the same --config"):
        check_link_config(theirs, expect)
    receiver_only = config(10, params={**PARAMS.to_dict(), "pfa": 0.1, "n_angle_grid": 90})
    assert check_link_config(receiver_only, expect)["params"].pfa == 0.1  # the receiver's own choice


# ----------------------------------------------------------------------- rx never loses what it has
def stray_messages() -> list[bytes]:
    """Malformed messages a stray sender might put on the Y_r stream."""
    frame = np.zeros((1, 16, 64), np.complex64)
    good = encode_message(frame, 0, [])
    unknown_pmt = (good[:11] + (1).to_bytes(8, "little") + (0).to_bytes(8, "little") + serialize("k") + b"\xee"
                   + serialize(False) + frame.tobytes())
    return [b"\x00\x01\x02garbage",  # no header
            unknown_pmt,  # a tag whose value has an unknown PMT type
            good[:-7],  # payload cut short
            encode_message(frame, 1000, [Tag(1003, "x", 1)])]  # a tag past its one item


def test_stray_malformed_messages_mid_run_are_counted_and_the_run_goes_on(tmp_path, capsys):
    streams = messages(run_frames(range(16), 16))
    streams["Y_r"][2:2] = stray_messages()  # between the second and the third message
    code, record, stdout, stderr = run_rx(tmp_path, capsys, streams)
    assert code == EXIT_LOST and record["complete"] is False and "Traceback" not in stderr
    assert record["link"]["paired"] == 16 and record["frames_scored"] == 16 and record["link"]["lost"] == 0
    kinds = record["streams"]["Y_r"]["malformed_kinds"]
    assert (kinds["bad_header"], kinds["bad_tags"], kinds["truncated"], kinds["wrong_size"]) == (1, 1, 1, 1)
    assert "4 malformed messages skipped" in record["reason"] and "item size mismatch" not in stdout + stderr
    assert table_row(stdout, "frames received")["malformed messages"] == "4"


def test_an_exception_in_a_block_still_gives_the_report_and_json(tmp_path, capsys, monkeypatch):
    work = link_mod.LinkMonitor.work

    def failing(self, inputs, outputs):
        if self.frames >= 8:
            raise RuntimeError("boom")
        return work(self, inputs, outputs)

    monkeypatch.setattr(link_mod.LinkMonitor, "work", failing)
    code, record, stdout, stderr = run_rx(tmp_path, capsys, messages(run_frames(range(40), 40)), "--max-items", "4")
    assert code == EXIT_ERROR == record["exit_code"] and record["complete"] is False
    assert "RuntimeError: boom" in record["reason"] and "block 'link_monitor'" in stderr
    assert record["frames_received"] >= 8 and "| frames scored" in stdout and "Traceback" not in stderr


def test_sigterm_mid_run_still_gives_the_report_and_json(tmp_path):
    """rx as a child process: frames arrive, no end of stream; SIGTERM ends it with 143 and its JSON."""
    cfg = tmp_path / "small.toml"
    cfg.write_text(SMALL)
    sender = Sender()
    frames = run_frames(range(12), None)
    rx = Cli("rx", "--config", cfg, "--address", sender.address, "--no-comm", "--report-interval", 0.2,
             "--idle-timeout", 0, "--json", "rx.json", cwd=tmp_path)
    try:
        sender.send(messages(frames, eos=False))
        rx.wait_for(r"rx: 12 frames received", timeout=120)
        rx.proc.send_signal(signal.SIGTERM)
        code = rx.finish(60)
    finally:
        rx.kill()
        sender.close()
    record = json.loads((tmp_path / "rx.json").read_text())
    assert code == 143 == record["exit_code"] and record["complete"] is False, rx.stderr
    assert record["frames_received"] == 12 and "terminated" in record["reason"] and "Traceback" not in rx.stderr
    assert "| frames scored" in rx.stdout


# --------------------------------------------------------------------------- the rules themselves
def test_item_size_mismatch_is_named_only_on_consistent_evidence():
    """One message with a tag past its payload is skipped as wrong_size; SIZE_EVIDENCE in a row
    (the sender's items half this source's size) name the mismatch."""
    context = zmq.Context()
    push = context.socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 0)
    port = push.bind_to_random_port("tcp://127.0.0.1")
    source = PullSource(np.complex64, 4, f"tcp://127.0.0.1:{port}", pass_tags=True, idle_timeout=20)
    got = VectorSink(np.complex64, 4)
    rx = Flowgraph(max_items=8, name="rx")
    rx.connect(source, got)

    def msg(first, n, width=4):
        return encode_message(np.zeros((n, width), np.complex64), first, [Tag(first + i, "t", i) for i in range(n)])

    try:
        rx.start()
        push.send(msg(0, 4))
        push.send(msg(4, 4, width=2))  # 4 items of 16 bytes: read as 2 of 32 with tags past them
        push.send(msg(6, 4))
        for k in range(SIZE_EVIDENCE):
            push.send(msg(10 + 4 * k, 4, width=2))
        with pytest.raises(BlockError, match=rf"item size mismatch: the sender's items are at most 16 bytes "
                                             rf"\({SIZE_EVIDENCE} consecutive messages show it"):
            rx.wait(timeout=30)
    finally:
        push.close(linger=0)
        context.term()
    assert source.items_received == 8 and source.malformed_kinds["wrong_size"] == SIZE_EVIDENCE  # stray one + 2


def test_metrics_sink_leaves_out_and_counts_bad_truth():
    """Also in a one-process flowgraph: every record is an H0 or an H1 frame."""
    est = np.tile([5.0, -0.5, 50.0], (8, 1))
    tags = [Tag(i, key, value) for i in range(8) for key, value in truth(i).items()]
    tags += [Tag(2, "target_present", 2), Tag(3, "range", float("nan")), Tag(5, "theta", 10**400)]
    sink = DetectionMetricsSink(PARAMS, pfa=0.25)
    run_block(sink, [est], tags=[tags])
    rec = sink.records
    assert sink.bad_truth == 3 and len(rec) == 5 == np.count_nonzero(rec[:, 3] == 0) + np.count_nonzero(rec[:, 3] == 1)
    assert sink.last_bad_truth.startswith("item 5: theta = 1000") and sink.invalid_frames == 0


def test_index_set_counts_each_index_once():
    seen = IndexSet()
    for i in (5, 7, 6, 0, 1, 2, 9):
        assert i not in seen
        seen.add(i)
    seen.add(10, 5)
    assert (seen.first, seen.last, len(seen)) == (0, 14, 12)
    assert (seen.starts, seen.stops) == ([0, 5, 9], [3, 8, 15])
    assert seen.count_in(0, 12) == 9 and seen.count_in(3, 5) == 0 and 6 in seen and 8 not in seen
