"""The number of threads the compiled kernels use, set in one place.

``threads(n)`` is a context manager that sets Numba's thread count for the calls made
inside it and restores the previous count afterwards (``numba.set_num_threads`` acts on
the calling thread only, so concurrent callers do not see each other's setting).
``n = None`` leaves the current count alone. Every ``threads=`` argument of the API and
the CLI's ``--threads`` come through here.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from .errors import PhyloError


def max_threads() -> int:
    """The most threads Numba can use in this process (``NUMBA_NUM_THREADS``)."""
    import numba
    return int(numba.config.NUMBA_NUM_THREADS)


def check_threads(n: int | None, what: str = "threads") -> int | None:
    """``n`` if it is None or an int in 1..max_threads(); a PhyloError otherwise."""
    if n is None:
        return None
    if isinstance(n, bool) or not isinstance(n, (int,)) and not hasattr(n, "__index__"):
        raise PhyloError(f"{what} must be an integer, got {n!r}")
    n = int(n)
    top = max_threads()
    if not 1 <= n <= top:
        raise PhyloError(f"{what} must be between 1 and {top}, got {n}")
    return n


def current_threads() -> int:
    """The thread count the kernels would use now."""
    import numba
    return int(numba.get_num_threads())


@contextmanager
def threads(n: int | None) -> Iterator[int | None]:
    """Run the enclosed calls with ``n`` Numba threads (None: unchanged, and Numba is
    not even imported); the previous count is restored on exit, also after an
    exception. Yields ``n``."""
    n = check_threads(n)
    if n is None:
        yield None
        return
    import numba
    old = numba.get_num_threads()
    if n == old:
        yield n
        return
    numba.set_num_threads(n)
    try:
        yield n
    finally:
        numba.set_num_threads(old)


@contextmanager
def single_thread_blas() -> Iterator[None]:
    """Run the enclosed calls with one BLAS/LAPACK thread (threadpoolctl).

    SciPy's L-BFGS-B makes BLAS calls on vectors of a few dozen entries at every
    iteration; with a multithreaded OpenBLAS each call wakes its thread pool, and on a
    busy 2-core machine that cost 2.5 ms per call, the largest single item of a DS1
    GTR+G4 Gamma-Laplus-IS run (3.6 of 11 s CPU; 140x a single-threaded call). The
    kernels of this package do not use BLAS, so nothing here loses parallelism."""
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=1, user_api="blas"):
        yield
