"""Tasks, per-task seeds, and the executor interface."""

from __future__ import annotations

import abc
import contextlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ConfigError, IsacError


class ExecutorError(IsacError, RuntimeError):
    """The executor could not finish the tasks (workers kept dying, cluster unreachable)."""


class TaskError(IsacError, RuntimeError):
    """A task raised; the message names the task, the original exception is chained."""


@dataclass(frozen=True)
class Task:
    """``fn(**kwargs)`` under a unique `key` (shown in progress and errors).  `fn` must be a
    module-level function and `kwargs` picklable, so that any worker process can run it."""

    key: str
    fn: Callable[..., Any]
    kwargs: dict = field(default_factory=dict)

    def __post_init__(self):
        if not callable(self.fn):
            raise ConfigError(f"task {self.key!r}: fn = {self.fn!r} is not callable")


def task_seed(seed, *key: int) -> np.random.SeedSequence:
    """The seed of the task identified by the integers `key` within the run seeded by `seed`
    (an int or a `SeedSequence`): the same on every executor and for every number of workers."""
    if isinstance(seed, np.random.SeedSequence):
        entropy, base = seed.entropy, tuple(seed.spawn_key)
    else:
        entropy, base = seed, ()
    try:
        return np.random.SeedSequence(entropy, spawn_key=base + tuple(int(k) for k in key))
    except (TypeError, ValueError):
        raise ConfigError(f"task seed: seed = {seed!r}, key = {key!r}: need a non-negative integer seed (or a "
                          "SeedSequence) and non-negative integer keys") from None


@contextlib.contextmanager
def thread_limits(threads: int | None):
    """At most `threads` threads for BLAS, Numba and torch inside the block (None: as they are);
    the previous settings come back afterwards.  Results are reproducible bit for bit for the
    same thread count (a BLAS or torch reduction may sum in another order with another count)."""
    if threads is None:
        yield
        return
    threads = int(threads)
    numba = sys.modules.get("numba")
    torch = sys.modules.get("torch")
    saved_numba = numba.get_num_threads() if numba else None
    saved_torch = torch.get_num_threads() if torch else None
    from threadpoolctl import threadpool_limits

    try:
        if numba:
            numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
        if torch:
            torch.set_num_threads(threads)
        with threadpool_limits(limits=threads, user_api="blas"):
            yield
    finally:
        if numba:
            numba.set_num_threads(saved_numba)
        if torch:
            torch.set_num_threads(saved_torch)


def run_task(fn, kwargs: dict, threads: int | None):
    """What a worker runs: the task under the thread limits."""
    with thread_limits(threads):
        return fn(**kwargs)


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def check_tasks(tasks) -> list[Task]:
    tasks = list(tasks)
    seen = set()
    for task in tasks:
        if not isinstance(task, Task):
            raise ConfigError(f"executor: expected Task objects, got {type(task).__name__}")
        if task.key in seen:
            raise ConfigError(f"executor: task key {task.key!r} appears twice; keys must be unique")
        seen.add(task.key)
    return tasks


class Executor(abc.ABC):
    """Runs tasks and returns their results in task order.

    ``progress(done, total, key)`` is called in this process each time a task finishes; a
    progress object with a ``running(done, total)`` context (`ProgressLine`) is entered for
    the map, so that a long run says it is still going.  With a `journal`, tasks whose
    entries are there are not run, every finished result is kept, and one line at the end
    says how many were reused.
    A task that raises stops the run with a `TaskError` naming it (it is not retried: the
    same inputs would raise again); a worker that dies is replaced and its tasks run again.
    """

    name = "executor"
    workers = 1
    journal = None  # a `TaskJournal`: finished results kept on disk, reused by a rerun

    def map(self, tasks, progress: Callable[[int, int, str], None] | None = None) -> list:
        tasks = check_tasks(tasks)
        journal = self.journal
        entries = journal.entries(tasks) if journal is not None else {}  # from the inputs, before any task runs
        results: dict[str, Any] = journal.load(entries) if journal is not None else {}
        reused = len(results)
        todo = [task for task in tasks if task.key not in results]

        def finished(done: int, total: int, key: str) -> None:
            if key in entries:
                journal.save(entries[key], results[key])
            if progress is not None:
                progress(len(results), len(tasks), key)

        showing = progress.running(reused, len(tasks)) if hasattr(progress, "running") else contextlib.nullcontext()
        complete = False
        try:
            with showing:
                if todo:
                    self._run(todo, results, finished)
            complete = True
        finally:
            if journal is not None and tasks:
                print(journal.summary(len(tasks), reused, len(results) - reused, complete), file=sys.stderr)
        return [results[task.key] for task in tasks]

    @abc.abstractmethod
    def _run(self, tasks: list[Task], results: dict, progress) -> None:
        """Run `tasks`, putting each result in ``results[key]`` and calling `progress` as it comes."""

    def describe(self) -> str:
        return self.name

    def close(self) -> None:  # noqa: B027 (an optional hook: most executors hold nothing to release)
        """Release workers or cluster connections (idempotent)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
