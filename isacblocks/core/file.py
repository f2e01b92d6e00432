"""Raw item files, as GNU Radio's ``blocks.file_source`` / ``blocks.file_sink`` read and write them.

The format is the items themselves, back to back, in the machine's byte order, with no
header: one item of dtype ``d`` and shape ``s`` takes ``d.itemsize * prod(s)`` bytes
(GNU Radio's itemsize, e.g. ``gr.sizeof_gr_complex * vlen``).  Tags are not stored.
"""

from __future__ import annotations

import os

import numpy as np

from ..errors import ConfigError
from .block import WORK_DONE, SinkBlock, SourceBlock
from .ports import port


def _file_items(owner: str, path: str, itemsize: int) -> int:
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise ConfigError(f"{owner}: cannot read {path!r}: {exc.strerror or exc}") from None
    if size % itemsize:
        raise ConfigError(f"{owner}: {path!r} has {size} bytes, not a whole number of {itemsize}-byte items "
                          f"({size // itemsize} items and {size % itemsize} bytes left over); check dtype and "
                          "item_shape (GNU Radio's itemsize = sizeof(type) * vlen)")
    return size // itemsize


class _OpenFile:
    """The open file of a file block: closed at stop() or by close()."""

    _file = None

    def stop(self) -> None:
        self.close()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class FileSource(_OpenFile, SourceBlock):
    """Play the items of a raw file (GNU Radio's ``file_source(itemsize, filename, repeat)``).

    With ``repeat=True`` the file plays again from its start forever (an empty file is
    then an error).  A file whose size is not a whole number of items is refused, naming
    both sizes.

    Output
    ------
    out0 : [n, *item_shape], dtype
        The raw items of the file.
    """

    waits_for_external_input = False

    def __init__(self, filename, dtype, item_shape=(), repeat: bool = False, name=None):
        super().__init__(out_sig=[port(dtype, item_shape)], name=name)
        self.filename = os.fspath(filename)
        self.repeat = bool(repeat)
        self.itemsize = self.out_sig[0].itemsize
        self._check()
        self._file = None

    def _check(self) -> int:
        n = _file_items(self.name, self.filename, self.itemsize)
        if self.repeat and n == 0:
            raise ConfigError(f"{self.name}: {self.filename!r} is empty; repeat=True needs at least one item")
        return n

    def start(self) -> None:
        self._check()
        self.close()
        self._file = open(self.filename, "rb")  # noqa: SIM115 - closed in stop()


    def work(self, inputs, outputs):
        out = outputs[0]
        view = memoryview(out.reshape(-1).view(np.uint8))
        got = self._file.readinto(view)
        if got == 0 and self.repeat:
            self._file.seek(0)
            got = self._file.readinto(view)
        if got % self.itemsize:  # the file changed under us
            raise ConfigError(f"{self.name}: {self.filename!r} ended inside an item ({got % self.itemsize} of "
                              f"{self.itemsize} bytes)")
        return got // self.itemsize if got else WORK_DONE


class FileSink(_OpenFile, SinkBlock):
    """Write every item to a raw file (GNU Radio's ``file_sink(itemsize, filename, append)`` with
    ``unbuffered`` off).  The file is created (or, with ``append=True``, extended) at start
    and closed at the end of the run.

    Input
    -----
    in0 : [n, *item_shape], dtype
        Written raw to the file.
    """

    def __init__(self, filename, dtype, item_shape=(), append: bool = False, name=None):
        super().__init__(in_sig=[port(dtype, item_shape)], name=name)
        self.filename = os.fspath(filename)
        self.append = bool(append)
        self.items_written = 0
        self._file = None

    def start(self) -> None:
        self.close()
        self.items_written = 0
        try:
            self._file = open(self.filename, "ab" if self.append else "wb")  # noqa: SIM115 - closed in stop()
        except OSError as exc:
            raise ConfigError(f"{self.name}: cannot write {self.filename!r}: {exc.strerror or exc}") from None


    def work(self, inputs, outputs):
        x = np.ascontiguousarray(inputs[0])
        self._file.write(memoryview(x.reshape(-1).view(np.uint8)))
        self.items_written += len(x)
        return len(x)
