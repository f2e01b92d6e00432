"""A folder of finished task results, so that a sweep stopped midway (Ctrl-C, a killed client,
a lost cluster) resumes where it was."""

from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path

from ..errors import ConfigError
from .base import Task


class TaskJournal:
    """Each finished task's result in ``DIR/<digest>.pkl``, the digest taken over the task's
    key, function and arguments: a task whose inputs changed is run again, never served a
    stale result.  Files are written atomically (temporary file, then rename)."""

    def __init__(self, directory):
        self.directory = Path(directory)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"--journal {str(directory)!r}: cannot create the folder ({exc})") from None

    def path(self, task: Task) -> Path:
        payload = pickle.dumps((task.key, task.fn.__module__, task.fn.__qualname__, task.kwargs), protocol=5)
        return self.directory / f"{hashlib.sha256(payload).hexdigest()[:40]}.pkl"

    def load(self, tasks: list[Task]) -> dict:
        """``{key: result}`` of the tasks already in the journal."""
        found = {}
        for task in tasks:
            path = self.path(task)
            if path.is_file():
                try:
                    with path.open("rb") as f:
                        found[task.key] = pickle.load(f)
                except (OSError, pickle.UnpicklingError, EOFError):
                    path.unlink(missing_ok=True)  # a damaged entry: run the task again
        return found

    def save(self, task: Task, result) -> None:
        path = self.path(task)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        with tmp.open("wb") as f:
            pickle.dump(result, f, protocol=5)
        os.replace(tmp, path)
