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
    where.add_argument("--scheduler", metavar="ADDRESS", default=None, type=_checked(_scheduler_address),
                       help="run on the Dask distributed cluster whose scheduler is at ADDRESS: tls://host:8786 "
                            "(with --dask-security) or tcp://host:8786 (unauthenticated: a warning beyond loopback)")
    where.add_argument("--dask-local", type=int, metavar="N", default=None,
                       help="start a Dask LocalCluster of N worker processes on this machine and run on it "
                            "(TLS with temporary credentials: no other client can connect)")
    group.add_argument("--dask-security", metavar="FILE", default=None, type=_checked(_security_file),
                       help="TOML file naming the PEM files for a tls:// --scheduler: tls_ca_file, "
                            "tls_client_cert and tls_client_key (relative to the file's folder)")
    group.add_argument("--journal", metavar="DIR", default=None,
                       help="keep every finished task's result in DIR; the same command run again skips "
                            "them (a stopped sweep resumes)")


def _checked(check):
    """``type=`` running `check`, a `ConfigError` becoming argparse's one-line error."""
    def parse(text: str):
        try:
            check(text)
        except ConfigError as exc:
            message = str(exc)  # "--option 'value': rule" -> "'value': rule" (argparse names the option)
            raise argparse.ArgumentTypeError(message.split(" ", 1)[1] if message.startswith("--") else message) \
                from None
        return text
    parse.__name__ = check.__name__.strip("_").replace("_", " ")
    return parse


def _scheduler_address(text: str) -> None:
    from .dask import scheduler_address

    scheduler_address(text)


def _security_file(text: str) -> None:
    from .dask import load_security

    load_security(text, warn=False)  # said once, when the executor loads it


def make_executor(workers: int | None = None, scheduler: str | None = None, dask_local: int | None = None,
                  journal=None, dask_security=None) -> Executor:
    """`SerialExecutor` for ``workers=0``, a Dask executor for `scheduler` (with the
    `dask_security` file for a ``tls://`` one) or `dask_local`, else `ProcessExecutor(workers)`;
    every one runs a task on one thread, so that they give the same results bit for bit.
    With `journal` (a folder) finished results are kept there and reused."""
    executor = _executor(workers, scheduler, dask_local, dask_security)
    if journal is not None:
        executor.journal = TaskJournal(journal)
    return executor


def _executor(workers, scheduler, dask_local, dask_security) -> Executor:
    if sum(x is not None for x in (workers, scheduler, dask_local)) > 1:
        raise ConfigError("executor: give at most one of workers, scheduler, dask_local")
    if dask_security is not None and scheduler is None:
        raise ConfigError("--dask-security: only for --scheduler tls://HOST:PORT"
                          + ("; --dask-local makes its own temporary credentials" if dask_local is not None else ""))
    if scheduler is not None or dask_local is not None:
        from .dask import DaskExecutor

        return DaskExecutor(address=scheduler, local_workers=dask_local, security=dask_security)
    if workers is not None and (not is_integer(workers) or workers < 0):
        raise ConfigError(f"executor: --workers {workers!r}: must be 0 (this process) or a positive integer")
    if workers == 0:
        return SerialExecutor(threads_per_task=1)
    return ProcessExecutor(workers)


def executor_from_args(args) -> Executor:
    return make_executor(getattr(args, "workers", None), getattr(args, "scheduler", None),
                         getattr(args, "dask_local", None), getattr(args, "journal", None),
                         getattr(args, "dask_security", None))
