"""Executors and strangers: a Dask LocalCluster only its own client can reach (TLS with temporary
credentials), a tls:// scheduler reached with a validated security file, and a journal whose
entries are keyed by the task's inputs by value (so a rerun reuses them on every executor),
written without following a planted symbolic link, and private to its user."""

from __future__ import annotations

import stat
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import LineStream

import isacblocks
from isacblocks import SystemParams
from isacblocks.cli import main
from isacblocks.errors import ConfigError
from isacblocks.executor import ProcessExecutor, ProgressLine, SerialExecutor, Task, make_executor, task_seed
from isacblocks.executor.journal import TaskJournal, temp_names, value_bytes

distributed = pytest.importorskip("distributed")
pytest.importorskip("cryptography")
import cloudpickle  # noqa: E402 - installed with distributed

from isacblocks.executor.dask import DaskExecutor, load_security  # noqa: E402

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Dask workers need not import this file

SMALL = dict(n_antennas=16, n_subcarriers=64, n_angle_grid=180, n_range_grid=50)
SMALL_TOML = "[system]\nn_antennas = 16\nn_subcarriers = 64\nn_angle_grid = 180\nn_range_grid = 50\n"


def add_one(x: int) -> int:
    return x + 1


def grid_noise(params, seed, weights, log: str) -> float:
    """Reads the params' cached grid (a `SystemParams` caches it on the instance) and draws from `seed`."""
    with open(log, "a") as f:
        f.write("ran\n")
    return float(params.angle_grid[:3].sum() + np.random.default_rng(seed).standard_normal(3) @ weights)


def grid_tasks(log, n: int = 4, seed: int = 7, **changes) -> list[Task]:
    """Fresh objects each call, as a new run of the same command makes them."""
    params = SystemParams(**{**SMALL, **changes})
    return [Task(f"chunk {i}", grid_noise, {"params": params, "seed": task_seed(seed, i),
                                            "weights": np.array([1.0, -2.0, 0.5]), "log": str(log)})
            for i in range(n)]


def runs(log: Path) -> int:
    return len(log.read_text().split()) if log.exists() else 0


# --------------------------------------------------------------------------- Dask over TLS

def test_a_dask_local_cluster_only_lets_its_own_client_in():
    with DaskExecutor(local_workers=1, processes=False) as executor:
        address = executor.address
        assert address.startswith("tls://127.0.0.1:"), address
        assert executor.map([Task("one", add_one, {"x": 1})]) == [2]
        strangers = {"no credentials": ({}, address),
                     "plain tcp": ({}, address.replace("tls://", "tcp://")),
                     "credentials of its own": ({"security": distributed.Security.temporary()}, address)}
        for who, (kwargs, where) in strangers.items():
            client = None
            with pytest.raises(Exception):  # noqa: B017 (TypeError, CommClosedError or a TLS error: refused)
                client = distributed.Client(where, timeout=10, set_as_default=False, **kwargs)
                client.submit(add_one, 1).result(timeout=10)
            if client is not None:
                client.close()
                pytest.fail(f"a client with {who} ran a task on the cluster")
        assert executor.map([Task("still", add_one, {"x": 2})]) == [3]  # the own client is unaffected


#: The PEM files a security file names, and the `Security` field each holds.
PEM_FILES = {"ca.pem": "tls_ca_file", "client.pem": "tls_client_cert", "client-key.pem": "tls_client_key"}


@pytest.fixture
def credentials(tmp_path):
    """A security file naming a CA certificate, a client certificate and its key (the one
    self-signed certificate of `Security.temporary`, written to PEM files), and the Security
    a cluster trusting that CA would use."""
    temporary = distributed.Security.temporary()
    for name, field in PEM_FILES.items():
        (tmp_path / name).write_text(getattr(temporary, field))
        (tmp_path / name).chmod(0o600)
    file = tmp_path / "dask-security.toml"
    file.write_text('tls_ca_file = "ca.pem"\ntls_client_cert = "client.pem"\ntls_client_key = "client-key.pem"\n')
    return file, temporary


def test_a_tls_scheduler_is_reached_with_the_security_file(credentials, capsys):
    file, cluster_security = credentials
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, host="127.0.0.1",
                                  protocol="tls://", security=cluster_security, dashboard_address=None) as cluster:
        with make_executor(scheduler=cluster.scheduler_address, dask_security=str(file)) as executor:
            assert executor.map([Task("one", add_one, {"x": 4})]) == [5]
        assert "warning" not in capsys.readouterr().err  # TLS, a private key file: nothing to say
        other = distributed.Security.temporary()  # a certificate the cluster's CA did not sign
        for name, field in PEM_FILES.items():
            (file.parent / name).write_text(getattr(other, field))
        with pytest.raises(isacblocks.executor.ExecutorError, match="cannot reach the scheduler at 'tls://"):
            DaskExecutor(address=cluster.scheduler_address, security=file, connect_timeout_s=10)


@pytest.mark.parametrize("text, files, message", [
    (None, {}, "no such file"),
    ("tls_ca_file = ", {}, "not valid TOML"),
    ('tls_ca = "ca.pem"\n', {}, "unknown key 'tls_ca'; did you mean 'tls_ca_file'?"),
    ('tls_ca_file = "ca.pem"\n', {"ca.pem": "ca"}, "missing tls_client_cert"),
    ('tls_ca_file = 3\ntls_client_cert = "c.pem"\n', {}, "tls_ca_file = 3: must be the name of a PEM file"),
    ('tls_ca_file = "nope.pem"\ntls_client_cert = "c.pem"\n', {}, "tls_ca_file = 'nope.pem': no such file"),
    ('tls_ca_file = "ca.pem"\ntls_client_cert = "c.pem"\n', {"ca.pem": "not PEM", "c.pem": "not PEM"},
     "cannot use the credentials"),
])
def test_a_bad_security_file_is_named_before_any_connection(tmp_path, text, files, message):
    file = tmp_path / "sec.toml"
    if text is not None:
        file.write_text(text)
    for name, content in files.items():
        (tmp_path / name).write_text(content)
    with pytest.raises(ConfigError, match="--dask-security .*" + message.replace("(", r"\(").replace("?", r"\?")):
        load_security(file)


def test_a_client_key_open_to_others_is_said(credentials, capsys):
    file, _ = credentials
    (file.parent / "client-key.pem").chmod(0o644)
    assert load_security(file).require_encryption
    err = capsys.readouterr().err
    assert "warning: the Dask client key" in err and "open to other users (mode 0644" in err
    assert len(err.strip().splitlines()) == 1


def test_a_tcp_scheduler_beyond_loopback_is_said_to_be_unauthenticated(capsys):
    with pytest.raises(isacblocks.executor.ExecutorError, match="cannot reach the scheduler"):
        DaskExecutor(address="tcp://192.0.2.1:8786", connect_timeout_s=1)  # TEST-NET-1: nothing answers
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["dask: warning: the connection to tcp://192.0.2.1:8786 is neither authenticated nor encrypted: "
                   "anyone who reaches that port can run code on the workers (use tls:// with --dask-security FILE)"]
    with pytest.raises(isacblocks.executor.ExecutorError):
        DaskExecutor(address="tcp://127.0.0.1:9", connect_timeout_s=1)  # loopback: no warning
    assert "warning" not in capsys.readouterr().err


EVAL = ["evaluate", "--config", "small.toml", "--frames", "200", "--assume", "nominal"]
CLI_CASES = [
    ([*EVAL, "--scheduler", "tls://127.0.0.1:8786", "--dask-security", "missing.toml"],
     "argument --dask-security: 'missing.toml': no such file"),
    ([*EVAL, "--scheduler", "tls://127.0.0.1:8786", "--dask-security", "typo.toml"],
     "argument --dask-security: 'typo.toml': unknown key 'tls_client_crt'; did you mean 'tls_client_cert'?"),
    ([*EVAL, "--scheduler", "ucx://head:8786"], "argument --scheduler: 'ucx://head:8786': expected tls://HOST:PORT"),
    ([*EVAL, "--scheduler", "tcp://head:port"], "argument --scheduler: 'tcp://head:port': expected tls://HOST:PORT"),
    ([*EVAL, "--scheduler", "tls://127.0.0.1:8786"],
     "--scheduler 'tls://127.0.0.1:8786': a tls:// scheduler needs --dask-security FILE"),
    ([*EVAL, "--scheduler", "tcp://127.0.0.1:8786", "--dask-security", "sec.toml"],
     "--dask-security: needs a tls:// scheduler; got --scheduler 'tcp://127.0.0.1:8786'"),
    ([*EVAL, "--dask-local", "1", "--dask-security", "sec.toml"],
     "--dask-security: only for --scheduler tls://HOST:PORT; --dask-local makes its own temporary credentials"),
    ([*EVAL, "--workers", "0", "--dask-security", "sec.toml"], "--dask-security: only for --scheduler tls://"),
]


def _isac(args, capsys):
    """``isac args`` in this process: (exit code, stdout, stderr)."""
    try:
        code = main(args)
    except SystemExit as exc:  # argparse's own exit after its message
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("args, message", CLI_CASES, ids=[" ".join(a[7:]) for a, _ in CLI_CASES])
def test_bad_dask_options_end_with_one_line_and_exit_2(credentials, monkeypatch, capsys, args, message):
    file, _ = credentials
    monkeypatch.chdir(file.parent)
    Path("sec.toml").write_text(file.read_text())
    Path("typo.toml").write_text('tls_ca_file = "ca.pem"\ntls_client_crt = "client.pem"\n')
    Path("small.toml").write_text(SMALL_TOML)
    code, out, err = _isac(args, capsys)
    assert code == 2, err
    assert f"isac evaluate: error: {message}" in err, err
    assert "Traceback" not in err and out == ""


# --------------------------------------------------------------------------- the journal's keys

def test_task_keys_come_from_values_not_from_what_an_object_cached():
    params = SystemParams(**SMALL)
    before = value_bytes(params)
    params.angle_grid  # noqa: B018 - cached on the instance now
    assert "angle_grid" in vars(params)
    assert value_bytes(params) == before == value_bytes(SystemParams(**SMALL))
    assert value_bytes(params) != value_bytes(params.replace(n_angle_grid=181))
    a = np.arange(4.0)
    assert value_bytes(a) == value_bytes(a.copy()) == value_bytes(np.arange(0.0, 4.0, 0.5)[::2])  # a view: values
    assert len({value_bytes(a), value_bytes(a.astype(np.float32)), value_bytes(a.reshape(2, 2)),
                value_bytes(list(a)), value_bytes(tuple(a))}) == 5
    assert value_bytes({"a": 1, "b": 2}) == value_bytes({"b": 2, "a": 1})
    assert value_bytes(task_seed(3, 1)) == value_bytes(task_seed(3, 1)) != value_bytes(task_seed(3, 2))


def test_the_librarys_tasks_all_have_keys(tmp_path):
    """Evaluation chunks, flowgraph runs and training runs resumed from a trainer state."""
    from isacblocks.blocks import ImpairedULA
    from isacblocks.experiments.baseline import _chain_task
    from isacblocks.learning.trainer import TrainConfig, Trainer
    from isacblocks.sim.evaluation import spacing_evaluation

    params = SystemParams(**SMALL)
    ula = ImpairedULA.drawn(params, 3)
    trainer = Trainer(params, ula.array, TrainConfig(schedule="sl", iterations=2, batch_size=4))
    trainer.run(until=1)
    tasks = [*spacing_evaluation(params, ula.array, params.nominal_spacing, 100, seed=1).tasks,
             _chain_task("chain", params, ula, params.nominal_spacing, 10, task_seed(1, 0), 8, with_comm=False),
             Task("ssl", add_one, {"params": params, "true_spacing": ula.array, "config": trainer.config,
                                   "resume_state": trainer.state_dict(), "keep_states_at": (1,)})]
    journal = TaskJournal(tmp_path / "j")
    entries = journal.entries(tasks)
    assert sorted(entries) == sorted(t.key for t in tasks)
    assert journal.entries(tasks) == entries  # the same inputs, the same entries


# --------------------------------------------------------------------------- the journal across runs

def test_workers_0_reuses_the_entries_of_the_same_command_run_again(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path("small.toml").write_text(SMALL_TOML)
    command = [*EVAL, "--workers", "0", "--journal", "jd"]
    code, first, err = _isac(command, capsys)
    assert code == 0 and "journal jd: 0 of 2 tasks reused, 2 run" in err, err
    code, second, err = _isac(command, capsys)
    assert code == 0 and "journal jd: 2 of 2 tasks reused, 0 run" in err, err
    assert second == first  # the same report, from the entries


def test_a_changed_input_or_version_is_not_reused(tmp_path, monkeypatch, capsys):
    log, journal = tmp_path / "calls.txt", tmp_path / "journal"
    reference = make_executor(workers=0, journal=journal).map(grid_tasks(log))
    assert make_executor(workers=0, journal=journal).map(grid_tasks(log)) == reference and runs(log) == 4
    assert make_executor(workers=0, journal=journal).map(grid_tasks(log, n_angle_grid=181))[0] != reference[0]
    assert runs(log) == 8  # another params field: every task again
    make_executor(workers=0, journal=journal).map(grid_tasks(log, seed=8))
    assert runs(log) == 12
    monkeypatch.setattr(isacblocks, "__version__", "0.0.0+other")
    assert make_executor(workers=0, journal=journal).map(grid_tasks(log)) == reference
    assert runs(log) == 16  # another version's entries are not reused
    err = capsys.readouterr().err
    assert err.count("0 of 4 tasks reused, 4 run") == 4 and err.count("4 of 4 tasks reused, 0 run") == 1


def test_every_executor_writes_and_reuses_the_same_entries(tmp_path):
    log = tmp_path / "calls.txt"
    folders = {kind: tmp_path / kind for kind in ("serial", "process", "dask")}
    with ProcessExecutor(1) as process, DaskExecutor(local_workers=1, processes=False) as dask:
        executors = {"serial": SerialExecutor(threads_per_task=1), "process": process, "dask": dask}
        results, names = {}, {}
        for kind, executor in executors.items():
            executor.journal = TaskJournal(folders[kind])
            results[kind] = executor.map(grid_tasks(log))
            names[kind] = sorted(p.name for p in folders[kind].iterdir())
        assert results["process"] == results["dask"] == results["serial"]  # bit for bit
        assert names["process"] == names["dask"] == names["serial"] and len(names["serial"]) == 4
        assert runs(log) == 12
        for kind, executor in executors.items():  # each reuses what another wrote
            other = {"serial": "dask", "process": "serial", "dask": "process"}[kind]
            executor.journal = TaskJournal(folders[other])
            assert executor.map(grid_tasks(log)) == results["serial"]
        assert runs(log) == 12


def counted_add(x: int, log: str, tag=None) -> int:
    with open(log, "a") as f:
        f.write("ran\n")
    return x + 1


def test_a_task_with_an_input_of_no_value_encoding_runs_every_time(tmp_path, capsys):
    log, journal = tmp_path / "calls.txt", tmp_path / "journal"
    tasks = [Task(f"x={i}", counted_add, {"x": i, "log": str(log)}) for i in range(2)]
    tasks.append(Task("odd", counted_add, {"x": 5, "log": str(log), "tag": object()}))
    for _ in range(2):
        assert make_executor(workers=0, journal=journal).map(tasks) == [1, 2, 6]
    err = capsys.readouterr().err
    assert err.count("1 task(s) are not kept and run every time: task 'odd': argument['tag'] is a "
                     "builtins.object, which has no value encoding for the journal key") == 2
    assert "journal" in err and "2 of 3 tasks reused, 1 run" in err
    assert runs(log) == 2 + 1 + 1  # two kept, then reused; 'odd' ran both times


# --------------------------------------------------------------------------- the journal's files

def test_a_symlink_planted_at_a_temporary_name_is_not_followed(tmp_path, capsys):
    log = tmp_path / "calls.txt"
    journal = TaskJournal(tmp_path / "journal")
    task = grid_tasks(log, n=1)[0]
    entry = journal.path(task)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    planted = next(temp_names(entry))
    planted.symlink_to(victim)
    executor = SerialExecutor()
    executor.journal = journal
    [result] = executor.map([task])
    assert victim.read_text() == "precious" and planted.is_symlink()  # left alone; another name was used
    assert stat.S_IMODE(entry.lstat().st_mode) == 0o600 and journal.read(entry) == result
    assert stat.S_IMODE((tmp_path / "journal").stat().st_mode) == 0o700
    entry.unlink()
    entry.symlink_to(victim)  # at the final name: replaced, not followed
    executor.map([task])
    assert victim.read_text() == "precious" and not entry.is_symlink() and journal.read(entry) == result
    entry.unlink()
    entry.symlink_to(victim)  # and never read through
    executor.map([task])
    assert victim.read_text() == "precious"
    assert entry.name in journal.refused and runs(log) == 3
    assert "Traceback" not in capsys.readouterr().err


def test_a_journal_folder_or_key_open_to_others_is_said(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ISACBLOCKS_STATE_DIR", str(tmp_path / "state"))
    TaskJournal(tmp_path / "private")
    assert capsys.readouterr().err == ""  # made private
    key = tmp_path / "state" / "journal.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    TaskJournal(shared)
    assert capsys.readouterr().err.splitlines() == [
        f"warning: the journal folder {shared} is open to other users (mode 0755: group/other permission bits "
        f"set); run chmod 700 {shared}"]
    key.chmod(0o640)
    TaskJournal(tmp_path / "private")
    assert capsys.readouterr().err.splitlines() == [
        f"warning: the journal key {key} is open to other users (mode 0640: group/other permission bits set); "
        f"run chmod 600 {key}"]


# --------------------------------------------------------------------------- progress

def sleep_then(x: float) -> float:
    time.sleep(x)
    return x


def test_a_map_keeps_saying_it_runs_while_a_long_task_runs():
    lines = LineStream()
    SerialExecutor().map([Task("slow", sleep_then, {"x": 0.5})], ProgressLine("study", stream=lines, heartbeat_s=0.05))
    text = "".join(lines)
    assert "study: 0/1 tasks finished" in text and "running" in text and "study: 1/1 tasks" in text
