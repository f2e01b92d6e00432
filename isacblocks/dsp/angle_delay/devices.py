"""Where an angle-delay search runs: the one place a device string is interpreted, and the
CUDA kernel's fixed layout (shared by `cuda` and `cuda_kernel`, which import it, not each other)."""

from __future__ import annotations

from ...errors import ConfigError

DEVICES = ("cpu", "cuda")

MAX_ANTENNAS = 64  # K
MAX_RANK = 64  # r', the padded rank of the range factor
TILE_ROWS = 4  # sector rows per shared-memory tile of w
THREADS_PER_BLOCK = 128


def resolve_device(device, owner: str, parameter: str = "device") -> str:
    """Validate a ``device`` parameter: "cpu" or "cuda"; "cuda" needs a usable CUDA device.

    Raises `ConfigError` naming `owner`.`parameter` and the reason.  Imports numba.cuda
    only for "cuda".
    """
    if device not in DEVICES:
        raise ConfigError(f"{owner}.{parameter} = {device!r}: expected one of {', '.join(map(repr, DEVICES))}")
    if device == "cuda":
        try:
            from numba import cuda
        except Exception as exc:  # pragma: no cover - depends on the installation
            raise ConfigError(f"{owner}.{parameter} = 'cuda': numba.cuda cannot be imported ({exc}); "
                              f"install the 'cuda' extra (numba-cuda)") from None
        if not cuda.is_available():
            raise ConfigError(f"{owner}.{parameter} = 'cuda': no CUDA device: numba.cuda.is_available() is False")
    return device
