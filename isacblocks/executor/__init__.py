"""Executors for embarrassingly parallel Monte Carlo work (sweeps, evaluations, training runs).

A study splits its work into `Task` objects: a module-level function, its keyword
arguments and a key.  Every random number a task uses comes from seeds derived from the
run's seed and the task's own identity (`task_seed`), never from the executor, so the
results do not depend on where the tasks run or on how many workers there are.

- `SerialExecutor`: in this process, one task after the other.
- `ProcessExecutor`: processes on this machine (the default); a worker that dies takes no
  finished result with it, and the tasks it held are run again.
- `DaskExecutor`: a Dask distributed cluster (``tls://host:8786`` with a security file, or
  ``tcp://host:8786``) or a `LocalCluster` started for the run, reachable over TLS by this
  client only (needs the ``cluster`` extra: ``pip install 'isacblocks[cluster]'``).

``executor.map(tasks, progress)`` returns the results in task order.  With a `TaskJournal`
(``--journal DIR``) every finished result is also kept on disk, keyed by the task's inputs
by value, and a rerun on any executor skips it.
"""

from .base import Executor, ExecutorError, Task, TaskError, task_seed
from .journal import TaskJournal
from .local import ProcessExecutor, SerialExecutor
from .options import add_executor_options, executor_from_args, make_executor
from .progress import ProgressLine

__all__ = ["Executor", "ExecutorError", "ProcessExecutor", "ProgressLine", "SerialExecutor", "Task", "TaskError",
           "TaskJournal",
           "add_executor_options", "executor_from_args", "make_executor", "task_seed", "DaskExecutor"]


def __getattr__(name):  # Dask is imported only when asked for
    if name == "DaskExecutor":
        from .dask import DaskExecutor

        return DaskExecutor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
