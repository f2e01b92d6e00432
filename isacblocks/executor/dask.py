"""Tasks on a Dask distributed cluster: an existing one (``tcp://host:8786``) or a
`LocalCluster` of worker processes started for the run.

Every worker must have isacblocks and its dependencies installed (``pip install
'isacblocks[cluster]'``); the executor checks the version on each worker when it connects.
Dask's scheduler runs again the tasks of a worker that dies (up to its
``distributed.scheduler.allowed-failures``, default 3); results already finished are kept.
"""

from __future__ import annotations

import logging
import uuid

from ..errors import ConfigError
from ..validation import is_integer
from .base import Executor, ExecutorError, run_task
from .local import task_failed


def _distributed():
    try:
        import distributed
    except ImportError:
        raise ExecutorError("the Dask executor needs the 'distributed' package: "
                            "pip install 'isacblocks[cluster]' (or pip install 'distributed')") from None
    return distributed


def _worker_version() -> str:
    import isacblocks

    return isacblocks.__version__


class DaskExecutor(Executor):
    """Dask distributed: connect to the scheduler at `address`, or start a loopback
    `LocalCluster` of `local_workers` single-threaded worker processes."""

    name = "dask"

    def __init__(self, address: str | None = None, local_workers: int | None = None, threads_per_task: int = 1,
                 connect_timeout_s: float = 30.0):
        if (address is None) == (local_workers is None):
            raise ConfigError("DaskExecutor: give exactly one of address='tcp://host:8786' or local_workers=N")
        if local_workers is not None and (not is_integer(local_workers) or local_workers < 1):
            raise ConfigError(f"DaskExecutor: local_workers = {local_workers!r}: must be a positive integer")
        distributed = _distributed()
        self.threads = threads_per_task
        self.cluster = None
        if local_workers is not None:
            self.cluster = distributed.LocalCluster(n_workers=local_workers, threads_per_worker=1, processes=True,
                                                    host="127.0.0.1", dashboard_address=None,
                                                    silence_logs=logging.CRITICAL)
            address = self.cluster.scheduler_address
        self.address = address
        try:
            self.client = distributed.Client(address, timeout=connect_timeout_s, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            self.close()
            raise ExecutorError(f"dask: cannot reach the scheduler at {address!r} within {connect_timeout_s:g} s "
                                f"({exc})") from None
        self._check_workers()

    @property
    def workers(self) -> int:
        return len(self.client.scheduler_info()["workers"])

    def describe(self) -> str:
        kind = "LocalCluster" if self.cluster is not None else "cluster"
        return f"Dask {kind} at {self.address}, {self.workers} worker(s)"

    def _check_workers(self) -> None:
        from isacblocks import __version__

        try:
            versions = self.client.run(_worker_version)
        except Exception as exc:  # a worker without isacblocks raises ImportError there
            raise ExecutorError(f"dask: a worker at {self.address} cannot import isacblocks ({exc}); install it "
                                "on every worker") from None
        wrong = {w: v for w, v in versions.items() if v != __version__}
        if wrong:
            raise ExecutorError(f"dask: workers run other isacblocks versions than this process ({__version__}): "
                                f"{wrong}")

    def _run(self, tasks, results, progress):
        distributed = _distributed()
        run_id = uuid.uuid4().hex[:8]
        futures = {self.client.submit(run_task, t.fn, t.kwargs, self.threads, key=f"{t.key} [{run_id}]",
                                      pure=False, retries=0): t for t in tasks}
        try:
            for future in distributed.as_completed(list(futures), loop=self.client.loop):
                task = futures[future]
                if future.status == "error":
                    exc = future.exception()
                    if isinstance(exc, distributed.KilledWorker):
                        raise ExecutorError(f"dask: task {task.key!r} was running on workers that died too "
                                            f"often ({exc})") from None
                    raise task_failed(task.key, exc) from exc
                results[task.key] = future.result()
                future.release()
                progress(len(results), len(tasks), task.key)
        finally:
            self.client.cancel([f for f in futures if not f.done()])

    def close(self) -> None:
        client, cluster = getattr(self, "client", None), getattr(self, "cluster", None)
        if client is not None:
            client.close()
            self.client = None
        if cluster is not None:
            cluster.close()
            self.cluster = None

