"""Many small BLAS products spread over threads, one BLAS thread each.

Small products on many BLAS threads wait for each other (and for any other process on the
cores): a receiver that does one product per frame (or per block of frames) runs the blocks
on a thread pool instead, with BLAS held to one thread.  numpy's products and Numba's
``nogil`` functions release the GIL, so the blocks run in parallel.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numba as nb
from threadpoolctl import ThreadpoolController

_CONTROLLER = ThreadpoolController()  # finding the BLAS libraries once: a limit then costs ~20 us


_HOLD = threading.Lock()
_holders = 0  # threads inside `one_blas_thread` now
_restore = None  # the limit to restore when the last of them leaves


@contextlib.contextmanager
def one_blas_thread():
    """A context in which numpy's BLAS runs on the calling thread only.

    BLAS worker threads woken by a product busy-wait for a while after it (OpenBLAS: about
    2^28 cycles); a parallel kernel started meanwhile shares its cores with them.  A loop that
    alternates small products with such kernels (a training step) runs its products here.

    The BLAS thread count is one setting per process: the context counts the threads inside
    it and restores the setting when the last one leaves, so a thread's products stay on one
    BLAS thread for as long as it is inside, whatever other threads enter and leave (a product
    computed with one BLAS thread or with several can differ in its last bit).
    """
    global _holders, _restore
    with _HOLD:
        if _holders == 0:
            _take_control()
            _restore = _CONTROLLER.limit(limits=1, user_api="blas")
        _holders += 1
    try:
        yield
    finally:
        with _HOLD:
            _holders -= 1
            if _holders == 0:
                _take_control()
                _restore.restore_original_limits()
                _restore = None


def _take_control() -> None:
    """Let this thread set OpenBLAS's thread count: threadpoolctl lets only the first thread that
    set it set it again (others are silently ignored); `one_blas_thread` serialises the changes."""
    for library in _CONTROLLER.lib_controllers:
        clear = getattr(library, "clear_controlling_thread", None)
        if clear is not None:
            clear(force=True)


def map_blocks(work, starts) -> None:
    """``work(start)`` for every start in `starts`, on up to ``numba.get_num_threads()`` threads,
    with BLAS held to one thread; an exception in any block is raised here."""
    starts = list(starts)
    with one_blas_thread():
        workers = min(len(starts), nb.get_num_threads())
        if workers <= 1:
            for start in starts:
                work(start)
        else:
            list(_pool(os.getpid(), workers).map(work, starts))


@functools.cache
def _pool(pid: int, workers: int) -> ThreadPoolExecutor:
    """One pool per process and size (`pid`: a forked child must not reuse its parent's threads)."""
    return ThreadPoolExecutor(workers, thread_name_prefix="isac-blas")
