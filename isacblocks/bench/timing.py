"""Measurement helpers: repeated timings with warm-up, summary statistics, RSS, the machine.

Every timing is wall-clock (`time.perf_counter`); a `Timing` keeps all samples and
reports the median and the min-max.  Rates (frames/s, GB/s) are derived from the
samples, so a rate's "min" comes from the slowest sample.  When implementations are
compared, `round_robin` interleaves their repetitions so that a change in the machine's
load (other jobs share the 2 cores) hits all of them alike.
"""

from __future__ import annotations

import os
import platform
import resource
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Timing:
    """Wall-clock samples of one measured operation (seconds)."""

    samples: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def min(self) -> float:
        return min(self.samples)

    @property
    def max(self) -> float:
        return max(self.samples)

    def rate(self, amount: float) -> dict:
        """``amount`` per second: median, min (slowest sample), max (fastest sample)."""
        return {"median": amount / self.median, "min": amount / self.max, "max": amount / self.min}

    def to_dict(self, unit_scale: float = 1.0, unit: str = "s") -> dict:
        return {f"median_{unit}": self.median * unit_scale, f"min_{unit}": self.min * unit_scale,
                f"max_{unit}": self.max * unit_scale, "repetitions": len(self.samples),
                f"samples_{unit}": [s * unit_scale for s in self.samples]}


def child_env(base: dict | None = None) -> dict:
    """The environment of a benchmark's child process (``python -m isacblocks.bench.<module>``).

    ``PYTHONPATH`` starts with the folder that holds the `isacblocks` this process imported, so
    the child runs the same code whether the package is installed, installed editable, or
    imported from a checkout on ``sys.path``, and whatever the working directory holds.
    """
    import isacblocks

    env = dict(os.environ if base is None else base)
    here = os.path.dirname(os.path.dirname(os.path.abspath(isacblocks.__file__)))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [here, env.get("PYTHONPATH")]))
    return env


def time_call(fn: Callable[[], object]) -> float:
    """Seconds one call of `fn` takes."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(fn: Callable[[], object], warmup: int, reps: int) -> Timing:
    """`warmup` untimed calls, then `reps` timed ones."""
    for _ in range(warmup):
        fn()
    return Timing([time_call(fn) for _ in range(reps)])


def round_robin(fns: dict[str, Callable[[], object]], warmup: int, reps: int) -> dict[str, Timing]:
    """Time several implementations with their repetitions interleaved (A B C A B C ...)."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    timings = {name: Timing() for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            timings[name].samples.append(time_call(fn))
    return timings


def fmt_rate(rate: dict, digits: int = 0) -> str:
    """``median [min-max]`` of a `Timing.rate` dict."""
    return f"{rate['median']:.{digits}f} [{rate['min']:.{digits}f}-{rate['max']:.{digits}f}]"


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages (runnable + waiting tasks; 2.0 fills 2 cores)."""
    return [round(v, 2) for v in os.getloadavg()]


def rss_bytes() -> int:
    """Resident set size of this process now (Linux /proc/self/statm)."""
    with open("/proc/self/statm") as fh:
        resident_pages = int(fh.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def ru_maxrss_bytes() -> int:
    """``getrusage(RUSAGE_SELF).ru_maxrss`` (KiB on Linux), in bytes.

    On Linux this survives fork and exec: a child process started from a large parent
    reports at least the parent's peak RSS at the time of the spawn (the kernel keeps the
    high-water mark of the address space the child had before exec).  `peak_rss_bytes`
    is the child's own peak.
    """
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def peak_rss_bytes() -> int:
    """Peak resident set size of this process's own address space (VmHWM, Linux /proc/self/status).

    The same high-water mark as ru_maxrss, without what a parent process left in it.
    """
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return ru_maxrss_bytes()


class RssSampler:
    """Highest RSS seen while the ``with`` block runs, sampled every `interval_s` by a thread.

    Unlike ``ru_maxrss`` (the process's high-water mark since it started), this is the peak
    of one stretch of work, so an earlier, larger one-time transient does not hide it.
    Allocations that live shorter than the interval can be missed.
    """

    def __init__(self, interval_s: float = 0.001):
        self.interval_s = interval_s
        self.peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            self._stop.wait(self.interval_s)

    def __enter__(self) -> RssSampler:
        self.peak = rss_bytes()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())


def _cpuinfo() -> dict:
    info: dict = {}
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                key, value = key.strip(), value.strip()
                if key and key not in info:
                    info[key] = value
    except OSError:
        pass
    return info


def _meminfo_total_gib() -> float | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def _blas_config() -> dict:
    """numpy's BLAS (from `numpy.show_config`), and threadpoolctl's view if it is installed."""
    out: dict = {}
    try:
        config = np.show_config(mode="dicts")
        deps = config.get("Build Dependencies", {})
        out["numpy_blas"] = {k: deps.get("blas", {}).get(k) for k in ("name", "version", "openblas configuration")}
    except (TypeError, ValueError, AttributeError):  # very old numpy: no dict mode
        out["numpy_blas"] = None
    try:
        import threadpoolctl
    except ImportError:
        out["threadpoolctl"] = "not installed"
    else:
        out["threadpoolctl"] = [{k: pool.get(k) for k in ("internal_api", "version", "num_threads", "architecture")}
                                for pool in threadpoolctl.threadpool_info()]
    return out


def machine_description() -> dict:
    """CPU model, cores, memory, BLAS, numba and torch versions and thread counts."""
    import numba
    import torch

    cpu = _cpuinfo()
    flags = set(cpu.get("flags", "").split())
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count()
    torch_config = [line.strip() for line in torch.__config__.show().splitlines()
                    if any(k in line for k in ("BLAS_INFO", "LAPACK_INFO", "CPU capability"))]
    try:
        numba_layer = numba.threading_layer()
    except ValueError:  # no parallel function has run yet
        numba_layer = "not initialised"
    return {
        "cpu_model": cpu.get("model name", platform.processor() or "unknown"),
        "cpu_mhz": cpu.get("cpu MHz"),
        "vector_extensions": sorted(flags & {"avx", "avx2", "fma", "avx512f", "avx512_bf16", "avx512vl"}),
        "logical_cores": os.cpu_count(),
        "usable_cores": affinity,
        "memory_gib": _meminfo_total_gib(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        **_blas_config(),
        "numba": numba.__version__,
        "numba_threads": numba.config.NUMBA_NUM_THREADS,
        "numba_threading_layer": numba_layer,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_config": torch_config,
    }
