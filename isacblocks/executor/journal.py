"""A folder of finished task results, so that a sweep stopped midway (Ctrl-C, a killed client,
a lost cluster) resumes where it was.

A result is stored with an HMAC-SHA256 over its task digest and its bytes, keyed per journal
by a secret that never leaves this user's state folder (``$ISACBLOCKS_STATE_DIR``, default
``$XDG_STATE_HOME/isacblocks`` or ``~/.local/state/isacblocks``).  An entry is unpickled only
after its HMAC checks out, so entries this user's runs did not write (a journal folder shared
by a colleague, a crafted or damaged file) are refused and their tasks run again: a journal
from someone else is never code that runs on load.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import pickle
import secrets
import sys
from pathlib import Path

from ..errors import ConfigError
from .base import Task

MAGIC = b"ISACJ1\n"
MAC_BYTES = 32


def state_dir() -> Path:
    """This user's private folder for isacblocks' secrets."""
    if os.environ.get("ISACBLOCKS_STATE_DIR"):
        return Path(os.environ["ISACBLOCKS_STATE_DIR"])
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "isacblocks"


def user_secret() -> bytes:
    """This user's journal secret (created on first use, readable by this user only)."""
    folder = state_dir()
    path = folder / "journal.key"
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not path.is_file():
            tmp = folder / f"journal.key.tmp{os.getpid()}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(secrets.token_bytes(32))
            os.replace(tmp, path)
        secret = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"--journal: cannot read or create the journal key {path} ({exc})") from None
    if len(secret) < 16:
        raise ConfigError(f"--journal: the journal key {path} is damaged (delete it; journals written "
                          "with it then run their tasks again)")
    return secret


class TaskJournal:
    """Each finished task's result in ``DIR/<digest>.pkl``, the digest taken over the task's
    key, function and arguments: a task whose inputs changed is run again, never served a
    stale result.  Files are written atomically (temporary file, then rename)."""

    def __init__(self, directory):
        self.directory = Path(directory)
        if self.directory.exists() and not self.directory.is_dir():
            raise ConfigError(f"--journal {str(directory)!r}: is a file; a folder is expected")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"--journal {str(directory)!r}: cannot create the folder ({exc})") from None
        self._key = hmac.new(user_secret(), str(self.directory.resolve()).encode(), hashlib.sha256).digest()
        self.refused: list[str] = []  # entries found but not used (not written by this user's runs, or damaged)

    def path(self, task: Task) -> Path:
        payload = pickle.dumps((task.key, task.fn.__module__, task.fn.__qualname__, task.kwargs), protocol=5)
        return self.directory / f"{hashlib.sha256(payload).hexdigest()[:40]}.pkl"

    def _mac(self, path: Path, data: bytes) -> bytes:
        return hmac.new(self._key, path.name.encode() + b"\0" + data, hashlib.sha256).digest()

    def read(self, path: Path):
        """The result in `path`, or raise `ValueError` when it is not an entry this journal wrote."""
        blob = path.read_bytes()
        head, mac, data = blob[:len(MAGIC)], blob[len(MAGIC):len(MAGIC) + MAC_BYTES], blob[len(MAGIC) + MAC_BYTES:]
        if head != MAGIC or not hmac.compare_digest(mac, self._mac(path, data)):
            raise ValueError("not written by this user's runs into this journal (HMAC does not match)")
        return pickle.loads(data)

    def load(self, tasks: list[Task]) -> dict:
        """``{key: result}`` of the tasks already in the journal."""
        found = {}
        for task in tasks:
            path = self.path(task)
            if not path.is_file():
                continue
            try:
                found[task.key] = self.read(path)
            except Exception as exc:  # a refused or damaged entry: run the task again
                self.refused.append(path.name)
                print(f"journal: ignoring {path} ({exc}); the task runs again", file=sys.stderr)
        return found

    def save(self, task: Task, result) -> None:
        path = self.path(task)
        data = pickle.dumps(result, protocol=5)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        with tmp.open("wb") as f:
            f.write(MAGIC + self._mac(path, data) + data)
        os.replace(tmp, path)
