"""Executors: the same seed gives the same results bit for bit on this process, on local worker
processes and on a Dask LocalCluster (loopback); a worker that dies loses no finished result."""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from isacblocks import SystemParams
from isacblocks.blocks import ImpairedULA
from isacblocks.errors import ConfigError
from isacblocks.executor import (
    DaskExecutor,
    ExecutorError,
    ProcessExecutor,
    SerialExecutor,
    Task,
    TaskError,
    make_executor,
    task_seed,
)
from isacblocks.experiments.baseline import isac_sweep
from isacblocks.experiments.scales import SCALES
from isacblocks.experiments.studies import Study
from isacblocks.sim.evaluation import evaluate_spacing

distributed = pytest.importorskip("distributed")
import cloudpickle  # noqa: E402 - installed with distributed

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Dask workers need not import this file


def square(x: int) -> int:
    return x * x


def square_or_die(x: int, marker: str) -> int:
    """Kills its worker process the first time it runs for x == 3 (the marker file records it)."""
    path = Path(marker)
    if x == 3 and not path.exists():
        path.write_text(str(os.getpid()))
        os._exit(1)
    return x * x


def fail_on_two(x: int) -> int:
    if x == 2:
        raise ValueError("two is not allowed")
    return x


def noise_mean(seed, n: int) -> float:
    return float(np.random.default_rng(seed).standard_normal(n).mean())


@pytest.fixture(scope="module")
def dask_executor():
    executor = make_executor(dask_local=2)
    yield executor
    executor.close()


@pytest.fixture(scope="module")
def process_executor():
    with ProcessExecutor(2) as executor:
        yield executor


@pytest.fixture(scope="module")
def params():
    return SystemParams()


@pytest.fixture(scope="module")
def ula(params):
    return ImpairedULA.drawn(params, 3)


# --------------------------------------------------------------------------- seeds and the interface

def test_task_seeds_are_the_run_seeds_spawned_children():
    children = np.random.SeedSequence(11).spawn(3)
    assert task_seed(11, 2).generate_state(4).tolist() == children[2].generate_state(4).tolist()
    nested = children[1].spawn(5)[4]
    assert task_seed(11, 1, 4).generate_state(4).tolist() == nested.generate_state(4).tolist()
    assert task_seed(children[1], 4).generate_state(4).tolist() == nested.generate_state(4).tolist()
    with pytest.raises(ConfigError, match="task seed"):
        task_seed(-1, 0)


def test_results_come_in_task_order_with_progress():
    seen = []
    tasks = [Task(f"t{i}", square, {"x": i}) for i in range(6)]
    assert SerialExecutor().map(tasks, lambda done, total, key: seen.append((done, total, key))) == \
        [0, 1, 4, 9, 16, 25]
    assert [s[0] for s in seen] == [1, 2, 3, 4, 5, 6] and {s[1] for s in seen} == {6}


def test_duplicate_keys_and_bad_options_are_rejected():
    with pytest.raises(ConfigError, match="'a' appears twice"):
        SerialExecutor().map([Task("a", square, {"x": 1}), Task("a", square, {"x": 2})])
    with pytest.raises(ConfigError, match="workers"):
        ProcessExecutor(0)
    with pytest.raises(ConfigError, match="at most one"):
        make_executor(workers=2, dask_local=2)
    with pytest.raises(ExecutorError, match="cannot reach the scheduler at 'tcp://127.0.0.1:9'"):
        DaskExecutor(address="tcp://127.0.0.1:9", connect_timeout_s=2)  # nothing listens on port 9


@pytest.mark.parametrize("kind", ["serial", "process", "dask"])
def test_a_raising_task_is_named(kind, process_executor, dask_executor):
    executor = {"serial": SerialExecutor(), "process": process_executor, "dask": dask_executor}[kind]
    with pytest.raises(TaskError, match="task 'x=2' failed: ValueError: two is not allowed"):
        executor.map([Task(f"x={i}", fail_on_two, {"x": i}) for i in range(4)])
    assert executor.map([Task("ok", square, {"x": 5})]) == [25]  # the executor still works


# --------------------------------------------------------------------------- same results everywhere

def test_seeded_tasks_agree_on_every_executor(process_executor, dask_executor):
    tasks = [Task(f"chunk {i}", noise_mean, {"seed": task_seed(5, i), "n": 1000}) for i in range(8)]
    reference = SerialExecutor().map(tasks)
    assert process_executor.map(tasks) == reference
    assert dask_executor.map(tasks) == reference
    assert len(set(reference)) == 8  # distinct streams


def test_evaluation_is_identical_on_every_executor(params, ula, process_executor, dask_executor):
    """2 500 frames per hypothesis: two chunks each; the report is the same to the last bit."""
    def run(executor):
        return evaluate_spacing(params, ula.spacing, params.nominal_spacing, 2500, seed=4, executor=executor).to_dict()

    reference = run(SerialExecutor(threads_per_task=1))
    assert run(process_executor) == reference
    assert run(dask_executor) == reference
    assert 0.0 < reference["pmd"] < 1.0 and reference["n_h1"] == 2500


def test_flowgraph_sweep_is_identical_on_every_executor(params, ula, dask_executor):
    def run(executor):
        return isac_sweep(params, ula, 16, seed=2, h0_frames=100, n_grid=2, max_items=50, executor=executor)

    reference = run(SerialExecutor(threads_per_task=1))
    assert _same(run(dask_executor), reference)  # NaN (no detection at eta = 0) compares equal here
    assert [p["eta"] for p in reference["known"]["points"]] == [0.0, 1.0]


def test_learning_curves_are_identical_on_every_executor(params, ula, dask_executor):
    """Two tiny training runs, then an SSL run resumed from the SL run's state in another process."""
    micro = replace(SCALES["quick"], iterations=4, batch_size=8, eval_points=1, eval_frames=200,
                    final_eval_frames=200, labeled_ratios=(0.5,), limited_ratio=0.5)

    def run(executor):
        study = Study(params, ula.spacing, micro, seed=1, log=lambda *a: None, executor=executor)
        study.train_many({"SL": study._sl_spec(), "UL": {"schedule": "ul"}})
        ssl = study.ssl(0.5)
        return [study.runs["SL"].spacing_m, study.runs["UL"].spacing_m, ssl.spacing_m, ssl.final.estimate.pmd]

    reference = run(SerialExecutor(threads_per_task=1))
    assert run(dask_executor) == reference
    assert reference[0] != reference[1]  # SL and UL learnt different spacings


def _same(a, b) -> bool:
    return np.array_equal(np.asarray(_flatten(a), dtype=float), np.asarray(_flatten(b), dtype=float), equal_nan=True)


def _flatten(x):
    if isinstance(x, dict):
        return [v for k in sorted(x) for v in _flatten(x[k])]
    if isinstance(x, (list, tuple)):
        return [v for item in x for v in _flatten(item)]
    return [float(x)]


# --------------------------------------------------------------------------- workers that die

def test_a_dead_local_worker_loses_no_result(tmp_path):
    marker = tmp_path / "died"
    tasks = [Task(f"x={i}", square_or_die, {"x": i, "marker": str(marker)}) for i in range(8)]
    with ProcessExecutor(2) as executor:
        assert executor.map(tasks) == [i * i for i in range(8)]
        assert marker.exists() and executor.restarts == 1
        assert executor.map([Task("after", square, {"x": 7})]) == [49]  # the replaced pool works


def test_a_dead_dask_worker_loses_no_result(tmp_path, dask_executor):
    marker = tmp_path / "died"
    tasks = [Task(f"x={i}", square_or_die, {"x": i, "marker": str(marker)}) for i in range(8)]
    assert dask_executor.map(tasks) == [i * i for i in range(8)]
    assert marker.exists()
    assert int(marker.read_text()) not in dask_executor.client.run(os.getpid).values()  # that process is gone


# --------------------------------------------------------------------------- the journal

def square_counted(x: int, log: str) -> int:
    with open(log, "a") as f:
        f.write(f"{x}\n")
    return x * x


def test_a_journal_keeps_finished_results_for_a_rerun(tmp_path):
    """A run stopped by a failing task keeps what finished; the rerun computes only the rest, and a
    task whose arguments changed is computed again."""
    log, journal = tmp_path / "calls.txt", tmp_path / "journal"
    tasks = [Task(f"x={i}", square_counted, {"x": i, "log": str(log)}) for i in range(4)]
    failing = tasks[:2] + [Task("x=2", fail_on_two, {"x": 2})] + tasks[3:]
    with pytest.raises(TaskError, match="x=2"):
        make_executor(workers=0, journal=journal).map(failing)
    assert log.read_text().split() == ["0", "1"]  # serial: stopped at the failing task
    seen = []
    assert make_executor(workers=0, journal=journal).map(tasks, lambda d, t, k: seen.append((d, t))) == [0, 1, 4, 9]
    assert log.read_text().split() == ["0", "1", "2", "3"]  # 0 and 1 came from the journal
    assert seen == [(3, 4), (4, 4)]
    changed = [Task("x=1", square_counted, {"x": 5, "log": str(log)})]
    assert make_executor(workers=0, journal=journal).map(changed) == [25]
    assert log.read_text().split()[-1] == "5"
