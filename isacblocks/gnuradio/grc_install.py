"""The GNU Radio Companion blocks of the package (`public_blocks`) and installing their YAML (`install`).

``isac grc install`` writes them into the folder GRC reads user blocks from (`default_folder`),
each atomically, and removes the files an earlier install wrote there and this one did not.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path

from ..core import Block
from ..safeio import OutputError, make_folder, write_text
from .grc_params import PREFIX
from .grc_yaml import GENERATED_MARK, block_yaml, file_name

__all__ = [
    "EXCLUDED", "all_yaml", "default_folder", "install", "InstallResult", "public_blocks",
]

#: Public classes of `isacblocks.blocks` and `isacblocks.core` that get no GRC block, and why.
EXCLUDED = {
    "SensingEstimator": "the base class of MAPRTDetector and MBMLEstimator: it has no estimate() of its own",
    "ImpairedULA": "not a block but the hardware both channels share: a channel's `ula` parameter takes a seed, "
                   "a file or an ImpairedULA expression",
    "VectorSource": "GNU Radio's Vector Source (blocks.vector_source_*) does the same for any type and vlen",
    "VectorSink": "GNU Radio's Vector Sink; what it collects is out of reach of a GRC flowgraph anyway",
    "NullSink": "GNU Radio's Null Sink",
    "Head": "GNU Radio's Head",
    "Throttle": "GNU Radio's Throttle",
    "TagDebug": "GNU Radio's Tag Debug",
    "FileSource": "GNU Radio's File Source reads the same raw items (no header, no tags)",
    "FileSink": "GNU Radio's File Sink writes the same raw items",
    "MessageCollector": "GNU Radio's Message Debug; what it collects is out of reach of a GRC flowgraph",
    "HierBlock": "the base class of blocks made of blocks; GRC builds its own hier blocks from flowgraphs",
    "PushSink": "gr-zeromq's ZMQ PUSH Sink (byte-compatible); it binds its socket when built",
    "PullSource": "gr-zeromq's ZMQ PULL Source (byte-compatible); it connects its socket when built",
    "PubSink": "gr-zeromq's ZMQ PUB Sink (byte-compatible); it binds its socket when built",
    "SubSource": "gr-zeromq's ZMQ SUB Source (byte-compatible); it connects its socket when built",
}


def public_blocks() -> list[type]:
    """The block classes that get a GRC block: the blocks of `isacblocks.blocks` (its ``__all__``
    and the multi-target blocks it imports) and of `isacblocks.core`, less `EXCLUDED`."""
    from .. import blocks, core

    names = [*blocks.__all__, *(n for n, v in vars(blocks).items() if isinstance(v, type) and issubclass(v, Block)
                                and v.__module__.startswith("isacblocks.blocks") and not n.startswith("_")),
             *core.__all__]
    classes = []
    for name in dict.fromkeys(names):
        cls = getattr(blocks, name, None) or getattr(core, name, None)
        if isinstance(cls, type) and issubclass(cls, Block) and name not in EXCLUDED and cls is not Block \
                and cls.__module__ not in ("isacblocks.core.block",):
            classes.append(cls)
    return classes


def all_yaml(classes: Iterable[type] | None = None) -> dict[str, str]:
    """``{file name: YAML}`` of `classes` (default: `public_blocks`)."""
    return {file_name(cls): block_yaml(cls) for cls in (public_blocks() if classes is None else classes)}


def _gnuradio_hier_dir(python: str) -> str | None:
    """The folder the installed GRC reads its user blocks from (``Config.hier_block_lib_dir``:
    ``~/.grc_gnuradio`` in GNU Radio 3.10.5, ``~/.local/state/gnuradio`` since GNU Radio PR #7350
    (3.10.11), or ``$GRC_HIER_PATH``), asked of GNU Radio's Python; None when it cannot tell."""
    script = "from gnuradio.grc.core.Config import Config; print(Config.hier_block_lib_dir)"
    try:
        done = subprocess.run([python, "-c", script], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = done.stdout.strip().splitlines()
    return lines[-1] if done.returncode == 0 and lines else None


def default_folder(python: str | None = None) -> tuple[Path, str]:
    """Where `install` writes by default, and why: the first folder of ``$GRC_BLOCKS_PATH``; else the
    user block folder the installed GRC reads (asked of GNU Radio's Python); else
    ``$GRC_HIER_PATH``, else ``~/.local/state/gnuradio`` (the newer GNU Radio's)."""
    from ..zeromq.gnuradio import GR_PYTHON

    paths = [p for p in os.environ.get("GRC_BLOCKS_PATH", "").split(os.pathsep) if p.strip()]
    if paths:
        return Path(os.path.expandvars(paths[0])).expanduser(), "the first folder of GRC_BLOCKS_PATH"
    found = _gnuradio_hier_dir(python or GR_PYTHON)
    if found:
        return Path(found).expanduser(), "the user block folder of GNU Radio Companion"
    if os.environ.get("GRC_HIER_PATH"):
        return Path(os.environ["GRC_HIER_PATH"]).expanduser(), "GRC_HIER_PATH"
    return Path("~/.local/state/gnuradio").expanduser(), "GNU Radio 3.10.11+'s user block folder (GNU Radio not found)"


def _ours(path: Path, prefix: str) -> bool:
    if not (path.name.startswith(prefix + "_") and path.name.endswith(".block.yml") and path.is_file()):
        return False
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.readline().startswith(GENERATED_MARK)
    except OSError:
        return False


@dataclasses.dataclass
class InstallResult:
    folder: Path
    written: list[Path]
    removed: list[Path]


def install(folder, files: dict[str, str] | None = None, prefix: str = PREFIX,
            on_file: Callable[[Path], None] | None = None) -> InstallResult:
    """Write the YAML `files` (default: `all_yaml`) into `folder` (created if needed), each
    atomically, then remove the ``isacblocks_*.block.yml`` files that an earlier install wrote there
    and this one did not (a file without `GENERATED_MARK` is left alone)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"cannot install into {folder}: it is not a folder")
    files = all_yaml() if files is None else files
    make_folder(folder)
    written = []
    for name, text in files.items():
        path = folder / name
        write_text(path, text, "GRC block description")
        written.append(path)
        if on_file:
            on_file(path)
    removed = []
    for path in sorted(folder.glob(f"{prefix}_*.block.yml")):
        if path.name not in files and _ours(path, prefix):
            try:
                path.unlink()
            except OSError as exc:
                raise OutputError(f"cannot remove the stale {path}: {exc.strerror or exc}") from None
            removed.append(path)
    return InstallResult(folder, written, removed)
