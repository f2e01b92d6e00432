"""Command-line options that choose the executor, shared by every sweep command."""

from __future__ import annotations

import argparse

from ..errors import ConfigError
from ..validation import is_integer
from .base import Executor
from .journal import TaskJournal
from .local import ProcessExecutor, SerialExecutor


def add_executor_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("parallel execution (results do not depend on it)")
    where = group.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, default=None, metavar="N",
                       help="worker processes on this machine (default: one per core; 0 = in this process)")
    where.add_argument("--scheduler", metavar="ADDRESS", default=None,
                       help="run on the Dask distributed cluster whose scheduler is at ADDRESS (tcp://host:8786)")
    where.add_argument("--dask-local", type=int, metavar="N", default=None,
                       help="start a Dask LocalCluster of N worker processes on this machine and run on it")
    group.add_argument("--journal", metavar="DIR", default=None,
                       help="keep every finished task's result in DIR; the same command run again skips "
                            "them (a stopped sweep resumes)")


def make_executor(workers: int | None = None, scheduler: str | None = None, dask_local: int | None = None,
                  journal=None) -> Executor:
    """`SerialExecutor` for ``workers=0``, a Dask executor for `scheduler` or `dask_local`,
    else `ProcessExecutor(workers)`; every one runs a task on one thread, so that they give
    the same results bit for bit.  With `journal` (a folder) finished results are kept there
    and reused."""
    executor = _executor(workers, scheduler, dask_local)
    if journal is not None:
        executor.journal = TaskJournal(journal)
    return executor


def _executor(workers, scheduler, dask_local) -> Executor:
    if sum(x is not None for x in (workers, scheduler, dask_local)) > 1:
        raise ConfigError("executor: give at most one of workers, scheduler, dask_local")
    if scheduler is not None or dask_local is not None:
        from .dask import DaskExecutor

        return DaskExecutor(address=scheduler, local_workers=dask_local)
    if workers is not None and (not is_integer(workers) or workers < 0):
        raise ConfigError(f"executor: --workers {workers!r}: must be 0 (this process) or a positive integer")
    if workers == 0:
        return SerialExecutor(threads_per_task=1)
    return ProcessExecutor(workers)


def executor_from_args(args) -> Executor:
    return make_executor(getattr(args, "workers", None), getattr(args, "scheduler", None),
                         getattr(args, "dask_local", None), getattr(args, "journal", None))
