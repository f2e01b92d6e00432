"""Executors on this machine: in this process, or in a pool of worker processes."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
import threading
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from ..errors import ConfigError
from ..validation import is_integer
from .base import Executor, ExecutorError, TaskError, run_task, usable_cores

#: Thread pools a worker process reads from its environment when numpy / torch load.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
_ENV_LOCK = threading.Lock()


def task_failed(key: str, exc: BaseException) -> TaskError:
    return TaskError(f"task {key!r} failed: {type(exc).__name__}: {exc}")


class SerialExecutor(Executor):
    """Every task in this process, in order (debugging, tiny runs, the reference); with
    `threads_per_task` the tasks run under those thread limits (`thread_limits`)."""

    name = "serial"

    def __init__(self, threads_per_task: int | None = None):
        self.threads = threads_per_task

    def _run(self, tasks, results, progress):
        for task in tasks:
            try:
                results[task.key] = run_task(task.fn, task.kwargs, self.threads)
            except Exception as exc:
                raise task_failed(task.key, exc) from exc
            progress(len(results), len(tasks), task.key)


@contextlib.contextmanager
def _worker_environment(threads: int):
    """Thread-count variables for worker processes started inside the block."""
    with _ENV_LOCK:
        saved = {name: os.environ.get(name) for name in THREAD_VARIABLES}
        os.environ.update({name: str(threads) for name in THREAD_VARIABLES})
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def _started(_index: int) -> int:
    return os.getpid()


class ProcessExecutor(Executor):
    """A pool of `workers` processes (default: one per usable core), each task with
    `threads_per_task` threads (default 1, like a Dask worker's).

    Workers are started with ``spawn`` (no forked thread pools) and kept for the
    executor's life.  When a worker dies (killed, out of memory), the pool is replaced,
    the finished results are kept and the unfinished tasks run again, up to
    `max_restarts` times.
    """

    name = "local processes"

    def __init__(self, workers: int | None = None, threads_per_task: int | None = None, max_restarts: int = 3):
        cores = usable_cores()
        self.workers = cores if workers is None else workers
        if not is_integer(self.workers) or self.workers < 1:
            raise ConfigError(f"ProcessExecutor: workers = {workers!r}: must be a positive integer")
        self.threads = 1 if threads_per_task is None else threads_per_task
        if not is_integer(self.threads) or self.threads < 1:
            raise ConfigError(f"ProcessExecutor: threads_per_task = {threads_per_task!r}: must be a positive integer")
        self.max_restarts = max_restarts
        self.restarts = 0  # pool replacements so far (workers that died)
        self._pool: ProcessPoolExecutor | None = None

    def describe(self) -> str:
        return f"{self.workers} local worker process(es), {self.threads} thread(s) per task"

    def _start(self) -> ProcessPoolExecutor:
        if self._pool is None:
            with _worker_environment(self.threads):
                pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))
                list(pool.map(_started, range(self.workers)))  # every worker starts under the environment
            self._pool = pool
        return self._pool

    def _discard_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def _terminate_pool(self) -> None:
        """End the worker processes now (an interrupt or a failed task: their work is not wanted)."""
        if self._pool is not None:
            processes = list((self._pool._processes or {}).values())
            self._discard_pool()
            for process in processes:
                if process.is_alive():
                    process.terminate()
            for process in processes:
                process.join(timeout=5)

    def _run(self, tasks, results, progress):
        pending = {task.key: task for task in tasks}
        while pending:
            pool = self._start()
            futures = {pool.submit(run_task, t.fn, t.kwargs, self.threads): t for t in pending.values()}
            try:
                self._collect(futures, pending, results, progress, len(tasks))
            except BrokenProcessPool:
                self._keep_finished(futures, pending, results, progress, len(tasks))
                self._discard_pool()
                self.restarts += 1
                if self.restarts > self.max_restarts:
                    raise ExecutorError(f"{self.name}: worker processes died {self.restarts} times; "
                                        f"{len(pending)} task(s) unfinished, e.g. {next(iter(pending))!r}") from None
                print(f"\nexecutor: a worker process died; {len(pending)} unfinished task(s) run again "
                      f"({len(results)} finished kept)", file=sys.stderr)
            except BaseException:
                self._terminate_pool()
                raise

    @staticmethod
    def _collect(futures, pending, results, progress, total):
        waiting = set(futures)
        while waiting:
            done, waiting = wait(waiting, return_when=FIRST_COMPLETED)
            for future in done:
                task = futures[future]
                exc = future.exception()
                if isinstance(exc, BrokenProcessPool):
                    raise exc
                if exc is not None:
                    raise task_failed(task.key, exc) from exc
                results[task.key] = future.result()
                del pending[task.key]
                progress(len(results), total, task.key)

    @staticmethod
    def _keep_finished(futures, pending, results, progress, total):
        for future, task in futures.items():
            if task.key in pending and future.done() and not future.cancelled() and future.exception() is None:
                results[task.key] = future.result()
                del pending[task.key]
                progress(len(results), total, task.key)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
