"""One set of CPU kernels on every x86-64 CPU with AVX2 and FMA, so that a seed gives the same numbers.

numpy's OpenBLAS, torch (its own vector kernels and MKL), Numba and numpy's own loops each
pick the fastest code for the CPU they run on: AVX-512 on one Xeon, AVX2 on an EPYC.  Those
round differently in the last bit, and training amplifies such bits into another learned
spacing (an SL run at scale quick: Pmd 0.313 with one kernel set, 0.216 with another).
The ``isac`` command therefore runs with the kernels every x86-64-v3 CPU (Intel since
Haswell, AMD since Zen) has, set through the libraries' own environment variables before
they load (`pinned_environment`; the command starts itself again with them).
``ISAC_KERNELS=native`` keeps each library's own choice (faster on AVX-512; the learned rows
of the results may then differ from the README's).  A CPU without AVX2 and FMA runs its own
kernels, with the same caveat.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
from pathlib import Path

#: The switch: unset (pin when the CPU can), ``native`` (never pin), ``pinned`` (set by the pin).
SWITCH = "ISAC_KERNELS"

#: Each library's variable and the value that selects its AVX2 (x86-64-v3) kernels.
PINNED = {
    "OPENBLAS_CORETYPE": "Haswell",  # numpy's and scipy's OpenBLAS
    "MKL_CBWR": "COMPATIBLE",  # torch's MKL: Conditional Numerical Reproducibility, the same on every CPU
    "ATEN_CPU_CAPABILITY": "avx2",  # torch's own vector kernels
    "NUMBA_CPU_NAME": "haswell",  # Numba's code generation (its cache keeps one build per CPU name)
}


def numpy_pin(version: str | None = None) -> dict:
    """numpy's own loops at AVX2, in the words the installed numpy knows (read without importing it):
    numpy 2.4 groups its targets as X86_V3 / X86_V4, older ones name each AVX-512 feature."""
    if version is None:
        try:
            version = importlib.metadata.version("numpy")
        except importlib.metadata.PackageNotFoundError:
            return {}
    major_minor = tuple(int(part) for part in version.split(".")[:2] if part.isdigit())
    if major_minor >= (2, 4):
        return {"NPY_ENABLE_CPU_FEATURES": "X86_V3"}
    return {"NPY_DISABLE_CPU_FEATURES": "AVX512F AVX512CD AVX512_SKX AVX512_CLX AVX512_CNL AVX512_ICL"}


def cpu_has_avx2_fma(cpuinfo: str | None = None) -> bool:
    """Whether this is an x86-64 CPU with AVX2 and FMA (Linux: read from /proc/cpuinfo)."""
    if cpuinfo is None:
        if platform.machine().lower() not in ("x86_64", "amd64"):
            return False
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            return False
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[-1].split())
            return {"avx2", "fma"} <= flags
    return False


def pinned_environment(environ, cpuinfo: str | None = None) -> dict | None:
    """`environ` with the `PINNED` kernel set, or None where nothing is to change (``ISAC_KERNELS``
    set, or a CPU without AVX2 and FMA).  A variable the user set keeps the user's value."""
    if environ.get(SWITCH) or not cpu_has_avx2_fma(cpuinfo):
        return None
    return {**PINNED, **numpy_pin(), **environ, SWITCH: "pinned"}


def restart_with_pinned_kernels() -> None:
    """Start this command again with the pinned kernel set (`pinned_environment`), if it applies:
    the libraries read these variables when they load, so they must be set before the process
    starts.  Returns only where nothing is to change."""
    environ = pinned_environment(os.environ)
    if environ is not None:
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], environ)
