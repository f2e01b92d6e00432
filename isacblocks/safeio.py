"""Input files read within limits, output files written atomically.

Reading (`read_npy`, `read_npz`, `read_text_array`, `read_text`, `read_json`, `check_zip`): every
size is checked before anything is read or decompressed: a ``.npy`` header's declared shape
and dtype against `MAX_INPUT_BYTES` and against the bytes the file holds, an archive's
member count and declared sizes against `MAX_ARCHIVE_MEMBERS` and `MAX_INPUT_BYTES`, a text
file's size against `MAX_TEXT_BYTES`; a member that inflates past its declared size is
stopped there, and object (pickled) arrays are refused.  Whatever is wrong with a file ends
in one `InputFileError` naming the file and what was found.

Writing (`atomic_write`, `write_text`): into a temporary file in the same folder, moved into
place with ``os.replace`` once complete; a failure (full disk, read-only folder) removes the
temporary file, keeps the previous file and raises one `OutputError`
(``cannot write out/x.json: No space left on device``).

Needs only numpy and the standard library: `zmq/gr_peer.py`, run by an interpreter without
isacblocks, loads this file by its path.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import secrets
import zipfile
from pathlib import Path

import numpy as np

try:
    from .errors import ConfigError, IsacError
except ImportError:  # loaded by file path, outside the package (zmq/gr_peer.py)
    class IsacError(Exception):
        pass

    class ConfigError(IsacError, ValueError):
        pass

#: The most bytes one input array, or all members of one archive together, may hold once read.
#: Far above any file the project writes (a spacing vector of 10^5 antennas is 0.8 MB, a
#: paper-scale checkpoint a few MB), far below any machine's memory.
MAX_INPUT_BYTES = 256 * 2**20
#: The most members an archive (.npz, torch checkpoint) may list; the project's hold under 50.
MAX_ARCHIVE_MEMBERS = 1024
#: The largest text input (configuration, spacing text, JSON, a document to update).
MAX_TEXT_BYTES = 64 * 2**20
_CHUNK = 1 << 20


class InputFileError(ConfigError):
    """An input file that is corrupt, larger than the limits, or holds what is not allowed."""


class OutputError(IsacError, RuntimeError):
    """An output file or folder that could not be written (the previous one is kept)."""


def _fail(path, what: str, text: str):
    raise InputFileError(f"{what} {path}: {text}")


def _reason(exc: BaseException) -> str:
    """One line for an exception: an OSError's strerror, else its first line."""
    if isinstance(exc, OSError) and exc.errno:
        return exc.strerror or os.strerror(exc.errno)
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _file_size(path, what: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError as exc:
        _fail(path, what, f"cannot read it ({_reason(exc)})")


def _size_text(n: int) -> str:
    return f"{n} bytes" if n < 2**20 else f"{n} bytes ({n / 2**30:.3g} GiB)"


# ---------------------------------------------------------------- .npy and .npz
def _npy_from(fp, available: int, path, what: str, max_bytes: int) -> np.ndarray:
    """The array of a ``.npy`` stream `fp` of `available` bytes, its header checked before its data is read."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(fp)
        header = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0}.get(version)
        if header is not None:
            shape, fortran, dtype = header(fp)
    except (ValueError, EOFError, OSError, SyntaxError, TypeError) as exc:
        _fail(path, what, f"not a valid .npy array ({_reason(exc)})")
    if header is None:
        _fail(path, what, f"npy format version {version[0]}.{version[1]} is not read (1.0 and 2.0 are)")
    if dtype.hasobject:
        _fail(path, what, f"holds Python objects (dtype {dtype}); only arrays of plain numbers are read")
    if any(n < 0 for n in shape):
        _fail(path, what, f"declares the shape {shape}")
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes > max_bytes:
        _fail(path, what, f"declares an array of shape {shape} and dtype {dtype}: {_size_text(nbytes)}, more "
                          f"than the limit of {_size_text(max_bytes)}")
    data = available - fp.tell()
    if data != nbytes:
        _fail(path, what, f"corrupt: its header declares shape {shape} and dtype {dtype} ({nbytes} bytes of data), "
                          f"the file holds {data} bytes of data")
    try:
        fp.seek(0)
        return fmt.read_array(fp, allow_pickle=False)
    except (ValueError, EOFError, OSError) as exc:
        _fail(path, what, f"not a valid .npy array ({_reason(exc)})")


def read_npy(path, what: str = "file", max_bytes: int = MAX_INPUT_BYTES) -> np.ndarray:
    """The array of the ``.npy`` file `path` (`what` names it in errors), checked before reading."""
    size = _file_size(path, what)
    try:
        with open(path, "rb") as fp:
            return _npy_from(fp, size, path, what, max_bytes)
    except OSError as exc:
        _fail(path, what, f"cannot read it ({_reason(exc)})")


@contextlib.contextmanager
def _open_zip(path, what: str, max_bytes: int, max_members: int):
    """The archive `path`, its member count and declared sizes checked."""
    try:
        archive = zipfile.ZipFile(path)
    except OSError as exc:
        _fail(path, what, _reason(exc))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, NotImplementedError) as exc:
        _fail(path, what, f"not a readable zip archive ({_reason(exc)})")
    with archive:
        members = archive.infolist()
        if len(members) > max_members:
            _fail(path, what, f"lists {len(members)} members, more than the limit of {max_members}")
        declared = sum(m.file_size for m in members)
        if declared > max_bytes:
            big = max(members, key=lambda m: m.file_size)
            _fail(path, what, f"its members declare {_size_text(declared)} uncompressed (member {big.filename!r}: "
                              f"{_size_text(big.file_size)}), more than the limit of {_size_text(max_bytes)}")
        yield archive, members


def _read_member(archive: zipfile.ZipFile, member: zipfile.ZipInfo, path, what: str, keep: bool) -> bytes:
    """A member's bytes (or b"" unless `keep`), read in chunks and stopped once past its declared size."""
    parts, total = [], 0
    try:
        with archive.open(member) as f:
            while True:
                chunk = f.read(_CHUNK)
                if not chunk:
                    break
                total += len(chunk)
                if total > member.file_size:
                    _fail(path, what, f"corrupt: member {member.filename!r} inflates past its declared "
                                      f"{member.file_size} bytes")
                if keep:
                    parts.append(chunk)
    except InputFileError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError, ValueError) as exc:
        _fail(path, what, f"corrupt: member {member.filename!r}: {_reason(exc)}")
    if total != member.file_size:
        _fail(path, what, f"corrupt: member {member.filename!r} holds {total} bytes, {member.file_size} declared")
    return b"".join(parts)


def read_npz(path, what: str = "file", max_bytes: int = MAX_INPUT_BYTES,
             max_members: int = MAX_ARCHIVE_MEMBERS) -> dict[str, np.ndarray]:
    """``{name: array}`` of the ``.npz`` file `path` (as `np.savez` writes it), checked before decompressing."""
    arrays = {}
    with _open_zip(path, what, max_bytes, max_members) as (archive, members):
        for member in members:
            if not member.filename.endswith(".npy"):
                _fail(path, what, f"member {member.filename!r} is not a .npy array")
            data = _read_member(archive, member, path, what, keep=True)
            name = member.filename[:-4]
            arrays[name] = _npy_from(io.BytesIO(data), len(data), f"{path}[{name}]", what, max_bytes)
    return arrays


def check_zip(path, what: str = "file", max_bytes: int = MAX_INPUT_BYTES,
              max_members: int = MAX_ARCHIVE_MEMBERS) -> None:
    """Refuse a zip archive (a torch checkpoint) that is corrupt, lists too many members, or whose
    members declare or inflate to more than the limits; every member is decompressed (and dropped)
    within its declared size, so a reader that trusts the archive afterwards stays within them."""
    with _open_zip(path, what, max_bytes, max_members) as (archive, members):
        for member in members:
            _read_member(archive, member, path, what, keep=False)


# ---------------------------------------------------------------- text
def read_text(path, what: str = "file", max_bytes: int = MAX_TEXT_BYTES) -> str:
    """The UTF-8 text of `path`, refused beyond `max_bytes` before it is read."""
    size = _file_size(path, what)
    if size > max_bytes:
        _fail(path, what, f"holds {_size_text(size)}, more than the limit of {_size_text(max_bytes)} for a text file")
    try:
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as exc:
        _fail(path, what, f"cannot read it ({_reason(exc)})")
    if len(data) > max_bytes:
        _fail(path, what, f"holds more than the limit of {_size_text(max_bytes)} for a text file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        _fail(path, what, f"not utf-8 text (byte {exc.start} is {data[exc.start]:#04x})")


def read_text_array(path, what: str = "file", max_bytes: int = MAX_TEXT_BYTES) -> np.ndarray:
    """Numbers in a text file (``np.loadtxt`` layout) as float64, at least 1-D."""
    text = read_text(path, what, max_bytes)
    try:
        return np.loadtxt(io.StringIO(text), dtype=np.float64, ndmin=1)
    except (ValueError, IndexError) as exc:
        _fail(path, what, f"not a table of numbers ({_reason(exc)})")


def read_json(path, what: str = "file", max_bytes: int = MAX_TEXT_BYTES):
    """The JSON value in `path`."""
    text = read_text(path, what, max_bytes)
    try:
        return json.loads(text)
    except RecursionError:
        _fail(path, what, "not valid JSON (nested too deeply)")
    except ValueError as exc:
        _fail(path, what, f"not valid JSON ({_reason(exc)})")


# ---------------------------------------------------------------- writing
def _discard(path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def atomic_write(path, write, what: str = "") -> None:
    """Write the file `path` by ``write(f)`` (`f` a binary file opened on a temporary file in the
    same folder), then move it into place with ``os.replace``.  On any failure the temporary file
    is removed and the previous `path`, if any, stays as it was; an OSError (a full disk, a
    read-only folder) becomes `OutputError`: ``cannot write PATH: <reason>``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            with os.fdopen(fd, "wb") as f:
                with contextlib.suppress(FileNotFoundError):  # a replaced file keeps its permissions
                    os.fchmod(f.fileno(), os.stat(path).st_mode & 0o7777)
                write(f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            _discard(tmp)
            raise
    except OSError as exc:
        raise OutputError(f"cannot write {what + ' ' if what else ''}{path}: {_reason(exc)}") from None


def write_text(path, text: str, what: str = "") -> None:
    """`atomic_write` of UTF-8 `text`."""
    atomic_write(path, lambda f: f.write(text.encode("utf-8")), what)


def save_figure(figure, path, **options) -> None:
    """`atomic_write` of a matplotlib `figure` (``savefig`` `options`; the format from the suffix)."""
    fmt = Path(path).suffix.lstrip(".") or "png"
    atomic_write(path, lambda f: figure.savefig(f, format=fmt, **options))


def make_folder(path) -> Path:
    """Create the folder `path` (and its parents) if needed; `OutputError` when it cannot be."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create folder {path}: {_reason(exc)}") from None
    return path


def write_json(path, record: dict) -> None:
    """Write `record` as strict JSON: a NaN or infinite number becomes ``null``, and
    ``null_reasons`` says, for each such place, what the number was and why."""
    reasons: dict[str, str] = {}
    clean = strict_json_value(record, "", reasons)
    if reasons:
        clean["null_reasons"] = reasons
    path = Path(path)
    make_folder(path.parent)
    write_text(path, json.dumps(clean, indent=2, allow_nan=False) + "\n")


_NULL_REASON = {"nan": "NaN: not defined (e.g. no frame to average, or no value measured)",
                "inf": "+Inf: unbounded", "-inf": "-Inf: unbounded"}


def strict_json_value(value, where: str, reasons: dict):
    """`value` with numpy types turned into Python ones and NaN/Inf into None (noted in `reasons`)."""
    if isinstance(value, dict):
        return {str(k): strict_json_value(v, f"{where}.{k}" if where else str(k), reasons) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [strict_json_value(v, f"{where}[{i}]", reasons) for i, v in enumerate(value)]
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        reasons[where] = _NULL_REASON[repr(value).lower()]
        return None
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"not JSON serialisable at {where}: {type(value).__name__}")
