"""A folder of finished task results, so that a sweep stopped midway (Ctrl-C, a killed client,
a lost cluster) resumes where it was.

An entry's name is a digest of the task's inputs taken before it runs, from their values
(`value_bytes`), and of the isacblocks version: the same command run again finds it, whatever
executor runs it, and a task whose inputs changed, or a journal written by another version,
is run again, never served a stale result.

A result is stored with an HMAC-SHA256 over its entry name and its bytes, keyed per journal
by a secret that never leaves this user's state folder (``$ISACBLOCKS_STATE_DIR``, default
``$XDG_STATE_HOME/isacblocks`` or ``~/.local/state/isacblocks``).  An entry is unpickled only
after its HMAC checks out, so entries this user's runs did not write (a journal folder shared
by a colleague, a crafted or damaged file) are refused and their tasks run again: a journal
from someone else is never code that runs on load.  Files are created exclusively with mode
0600 and never through a symbolic link.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import functools
import hashlib
import hmac
import os
import pickle
import secrets
import stat
import struct
import sys
import types
from pathlib import Path, PurePath

import numpy as np

from ..errors import ConfigError
from ..safeio import MAX_INPUT_BYTES
from .base import Task

MAGIC = b"ISACJ1\n"
MAC_BYTES = 32
KEY_SCHEME = b"isacblocks journal key 2\0"  # change it when `value_bytes` changes
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_READ_FILE = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def state_dir() -> Path:
    """This user's private folder for isacblocks' secrets."""
    if os.environ.get("ISACBLOCKS_STATE_DIR"):
        return Path(os.environ["ISACBLOCKS_STATE_DIR"])
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "isacblocks"


def warn_if_open_to_others(path: Path, what: str) -> bool:
    """Print one line when `path` has group or other permission bits; True when it has."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return False
    if not mode & 0o077:
        return False
    private = "700" if os.path.isdir(path) else "600"
    print(f"warning: {what} {path} is open to other users (mode {mode:04o}: group/other permission bits set); "
          f"run chmod {private} {path}", file=sys.stderr)
    return True


def temp_names(path: Path):
    """The temporary names a writer of `path` tries, in order: first a predictable one, then random ones."""
    yield path.parent / f".{path.name}.{os.getpid()}.tmp"
    for _ in range(7):
        yield path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(8)}.tmp"


def write_exclusive(path: Path, data: bytes, replace: bool = True) -> None:
    """Write `data` to `path` through a temporary file created exclusively (``O_EXCL |
    O_NOFOLLOW``, mode 0600): a file or symbolic link already at a temporary name is left
    alone and another name is tried.  The temporary file then replaces `path` (rename: a
    symbolic link at `path` is replaced, not followed) or, with ``replace=False``, takes its
    name only if nothing is there (`FileExistsError` otherwise)."""
    for tmp in temp_names(path):
        try:
            fd = os.open(tmp, _NEW_FILE, 0o600)
        except FileExistsError:
            continue
        break
    else:
        raise FileExistsError(f"every temporary name for {path.name} in {path.parent} is taken")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        if replace:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path, follow_symlinks=False)  # fails if `path` exists, as a link or not
            except FileExistsError:
                raise
            except OSError:  # a file system without hard links
                if os.path.lexists(path):
                    raise FileExistsError(path) from None
                os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def read_regular(path: Path, max_bytes: int = MAX_INPUT_BYTES) -> bytes:
    """The bytes of the regular file `path`; `OSError` for a symbolic link or anything else, or for
    a file larger than `max_bytes` (a planted file must not fill the memory)."""
    fd = os.open(path, _READ_FILE)
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise OSError(f"{path} is not a regular file")
        data = f.read(max_bytes + 1)
        if max(info.st_size, len(data)) > max_bytes:
            raise OSError(f"{path} holds more than the limit of {max_bytes} bytes")
        return data


def user_secret() -> bytes:
    """This user's journal secret (created on first use, readable by this user only)."""
    folder = state_dir()
    path = folder / "journal.key"
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not os.path.lexists(path):
            with contextlib.suppress(FileExistsError):  # another process made it first: use theirs
                write_exclusive(path, secrets.token_bytes(32), replace=False)
        secret = read_regular(path)
    except OSError as exc:
        raise ConfigError(f"--journal: cannot read or create the journal key {path} ({exc})") from None
    if len(secret) < 16:
        raise ConfigError(f"--journal: the journal key {path} is damaged (delete it; journals written "
                          "with it then run their tasks again)")
    warn_if_open_to_others(path, "the journal key")
    return secret


# --------------------------------------------------------------------------- task inputs by value

class NoValueEncoding(TypeError):
    """An input of a type `value_bytes` does not know; `where` names it within the task."""

    def __init__(self, where: str, value):
        self.where = where
        super().__init__(f"{where} is a {type(value).__module__}.{type(value).__qualname__}, which has no value "
                         "encoding for the journal key")


def _frame(tag: bytes, payload: bytes) -> bytes:
    return tag + len(payload).to_bytes(8, "little") + payload


def _name(obj) -> bytes:
    return f"{obj.__module__}.{obj.__qualname__}".encode()


def value_bytes(value, where: str = "value") -> bytes:
    """A canonical byte string of `value` made from its value only (never from attributes an
    object caches, object identities or pickle): equal values give equal bytes in any process.

    Known: None, bool, int, float, complex, str, bytes, tuples, lists, dicts and sets of known
    values; numpy arrays (dtype, shape, bytes) and scalars, torch tensors (dtype, shape, bytes);
    `SeedSequence` and numpy generators (their state); dataclasses (their type and init fields,
    e.g. `SystemParams`); enums; paths; module-level functions and classes (their names).
    Anything else raises `NoValueEncoding`."""
    if value is None:
        return b"N"
    if isinstance(value, enum.Enum):
        return _frame(b"E", _name(type(value)) + value_bytes(value.value, f"{where}.value"))
    if isinstance(value, np.generic):
        return _frame(b"s", repr(np.lib.format.dtype_to_descr(value.dtype)).encode() + b"\0" + value.tobytes())
    if isinstance(value, bool):
        return b"B1" if value else b"B0"
    if isinstance(value, int):
        return _frame(b"i", str(int(value)).encode())
    if isinstance(value, float):
        return b"f" + struct.pack("<d", value)
    if isinstance(value, complex):
        return b"c" + struct.pack("<dd", value.real, value.imag)
    if isinstance(value, str):
        return _frame(b"u", value.encode("utf-8", "surrogatepass"))
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _frame(b"y", bytes(value))
    if isinstance(value, (tuple, list)):
        tag = b"t" if isinstance(value, tuple) else b"l"
        return _frame(tag, b"".join(value_bytes(v, f"{where}[{i}]") for i, v in enumerate(value)))
    if isinstance(value, dict):
        items = sorted((value_bytes(k, f"{where} key"), value_bytes(v, f"{where}[{k!r}]")) for k, v in value.items())
        return _frame(b"d", b"".join(k + v for k, v in items))
    if isinstance(value, (set, frozenset)):
        return _frame(b"e", b"".join(sorted(value_bytes(v, f"{where} item") for v in value)))
    if isinstance(value, np.ndarray):
        shape = value_bytes(tuple(value.shape))
        if value.dtype.hasobject:
            return _frame(b"A", shape + value_bytes(value.ravel().tolist(), where))
        descr = repr(np.lib.format.dtype_to_descr(value.dtype)).encode()
        return _frame(b"a", descr + b"\0" + shape + np.ascontiguousarray(value).tobytes())
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        try:
            flat = value.detach().cpu().contiguous().reshape(-1)
            data = flat.view(torch.uint8).numpy().tobytes()
        except (RuntimeError, TypeError):
            raise NoValueEncoding(where, value) from None
        return _frame(b"T", str(value.dtype).encode() + b"\0" + value_bytes(tuple(value.shape)) + data)
    if isinstance(value, np.random.SeedSequence):
        return _frame(b"S", value_bytes((value.entropy, tuple(value.spawn_key), value.pool_size,
                                         value.n_children_spawned), where))
    if isinstance(value, np.random.Generator):
        value = value.bit_generator
    if isinstance(value, np.random.BitGenerator):
        return _frame(b"R", _name(type(value)) + value_bytes(value.state, f"{where}.state"))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value) if f.init}
        return _frame(b"D", _name(type(value)) + b"\0" + value_bytes(fields, where))
    if isinstance(value, PurePath):
        return _frame(b"p", str(value).encode("utf-8", "surrogatepass"))
    if isinstance(value, functools.partial):
        return _frame(b"P", value_bytes((value.func, value.args, value.keywords), where))
    if isinstance(value, (type, types.FunctionType, types.BuiltinFunctionType)) and "<" not in value.__qualname__:
        return _frame(b"F", _name(value))
    raise NoValueEncoding(where, value)


def task_digest(task: Task) -> str:
    """The digest naming `task`'s entry: its key, function and arguments by value
    (`value_bytes`), and the isacblocks version.  Raises `NoValueEncoding`."""
    import isacblocks

    payload = value_bytes((isacblocks.__version__, task.key, task.fn), "task")
    payload += value_bytes(task.kwargs, f"task {task.key!r}: argument")
    return hashlib.sha256(KEY_SCHEME + payload).hexdigest()[:40]


# --------------------------------------------------------------------------- the journal

class TaskJournal:
    """Each finished task's result in ``DIR/<digest>.pkl`` (`task_digest`): the same in every
    executor, computed before the task runs."""

    def __init__(self, directory):
        self.directory = Path(directory)
        if self.directory.exists() and not self.directory.is_dir():
            raise ConfigError(f"--journal {str(directory)!r}: is a file; a folder is expected")
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise ConfigError(f"--journal {str(directory)!r}: cannot create the folder ({exc})") from None
        self._key = hmac.new(user_secret(), str(self.directory.resolve()).encode(), hashlib.sha256).digest()
        warn_if_open_to_others(self.directory, "the journal folder")
        self.refused: list[str] = []  # entries found but not used (not written by this user's runs, or damaged)
        self.unwritten = 0  # results that could not be written (disk full, a folder in the way)

    def path(self, task: Task) -> Path:
        """Where `task`'s result is kept; `ConfigError` when an input has no value encoding."""
        try:
            return self.directory / f"{task_digest(task)}.pkl"
        except NoValueEncoding as exc:
            raise ConfigError(f"journal: {exc}") from None

    def entries(self, tasks: list[Task]) -> dict[str, Path]:
        """``{key: path}`` of the tasks, from their inputs as they are now (before they run).
        A task with an input of no value encoding is left out (it runs every time), said in one line."""
        entries, unkeyed = {}, []
        for task in tasks:
            try:
                entries[task.key] = self.directory / f"{task_digest(task)}.pkl"
            except NoValueEncoding as exc:
                unkeyed.append(exc)
        if unkeyed:
            print(f"journal {self.directory}: {len(unkeyed)} task(s) are not kept and run every time: "
                  f"{unkeyed[0]}", file=sys.stderr)
        return entries

    def _mac(self, path: Path, data: bytes) -> bytes:
        return hmac.new(self._key, path.name.encode() + b"\0" + data, hashlib.sha256).digest()

    def read(self, path: Path):
        """The result in `path`, or raise `ValueError` when it is not an entry this journal wrote."""
        blob = read_regular(path)
        head, mac, data = blob[:len(MAGIC)], blob[len(MAGIC):len(MAGIC) + MAC_BYTES], blob[len(MAGIC) + MAC_BYTES:]
        if head != MAGIC or not hmac.compare_digest(mac, self._mac(path, data)):
            raise ValueError("not written by this user's runs into this journal (HMAC does not match)")
        return pickle.loads(data)

    def load(self, entries: dict[str, Path]) -> dict:
        """``{key: result}`` of the `entries` (see `entries`) already in the journal."""
        found = {}
        for key, path in entries.items():
            if not os.path.lexists(path):
                continue
            try:
                found[key] = self.read(path)
            except Exception as exc:  # a refused or damaged entry: run the task again
                self.refused.append(path.name)
                print(f"journal: ignoring {path} ({exc}); the task runs again", file=sys.stderr)
        return found

    def save(self, path: Path, result) -> None:
        """Keep `result` at `path`; a failure to write is said once and the run goes on."""
        data = pickle.dumps(result, protocol=5)
        try:
            write_exclusive(path, MAGIC + self._mac(path, data) + data)
        except OSError as exc:
            if not self.unwritten:
                print(f"journal: cannot write {path} ({exc}); results not written run again next time",
                      file=sys.stderr)
            self.unwritten += 1

    def summary(self, total: int, reused: int, ran: int, finished: bool) -> str:
        """The line said at the end of a map."""
        text = f"journal {self.directory}: {reused} of {total} tasks reused, {ran} run"
        if not finished:
            text += f" and kept, {total - reused - ran} not finished (the same command again runs only those)"
        if self.unwritten:
            text += f" ({self.unwritten} result(s) could not be written)"
        return text
