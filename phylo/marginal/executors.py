"""Executors for :func:`phylo.marginal.workflow.compare_candidates`.

Any object with ``submit(fn, *args, **kwargs)`` returning a future (``result()``,
``add_done_callback``, ``cancel``) works: a :mod:`concurrent.futures` executor or a
:class:`dask.distributed.Client`. This module adds what the command line needs:

- :func:`open_executor` turns ``--executor`` text into one: ``serial`` (None: tasks run
  in the calling process), ``local:N`` (:class:`LocalProcessPool`, N processes on this
  machine), ``dask:ADDRESS`` (a ``dask.distributed.Client`` of a running scheduler,
  from the ``distributed`` extra);
- :class:`LocalProcessPool`, a process pool that replaces itself when a worker dies
  (a plain ``ProcessPoolExecutor`` is broken for good after a killed worker);
- :func:`is_lost_worker_error`: which failures mean "the worker died" (retried with
  the same inputs, hence the same numbers) rather than "the task failed";
- :func:`warm_numba_cache`: compile every kernel a comparison uses once, in this
  process, before workers start (several processes writing a cold Numba cache at once
  are known to crash).
"""
from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable

from ..errors import PhyloError

#: Processes started by :class:`LocalProcessPool` ("spawn": a fresh interpreter, so no
#: Numba or thread state is inherited from the client through fork).
START_METHOD = "spawn"


def _worker_init(threads: int) -> None:
    """Worker start-up: this worker's Numba threads (the machine's cores are shared
    between the workers)."""
    import numba
    numba.set_num_threads(max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS)))


class LocalProcessPool:
    """``concurrent.futures.ProcessPoolExecutor`` of ``n_workers`` processes that
    replaces itself (:meth:`recover`) after a worker died.

    threads_per_worker: Numba threads in each worker (default: cores // workers, ≥ 1).
    """

    def __init__(self, n_workers: int, *, threads_per_worker: int | None = None) -> None:
        if not isinstance(n_workers, int) or n_workers < 1:
            raise PhyloError(f"local executor: the number of workers must be ≥ 1, got {n_workers!r}")
        self.n_workers = n_workers
        cores = os.cpu_count() or 1
        self.threads_per_worker = threads_per_worker or max(1, cores // n_workers)
        self.restarts = 0
        self._pool = self._new_pool()

    def _new_pool(self) -> concurrent.futures.ProcessPoolExecutor:
        return concurrent.futures.ProcessPoolExecutor(
            max_workers=self.n_workers, mp_context=multiprocessing.get_context(START_METHOD),
            initializer=_worker_init, initargs=(self.threads_per_worker,))

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> concurrent.futures.Future:
        try:
            return self._pool.submit(fn, *args, **kwargs)
        except BrokenProcessPool:
            self.recover()
            return self._pool.submit(fn, *args, **kwargs)

    def map(self, fn: Callable, *iterables, **kwargs):
        return self._pool.map(fn, *iterables, **kwargs)

    def recover(self) -> None:
        """Replace the pool if a worker died (submitting to a broken pool raises)."""
        try:
            self._pool.submit(int).result()
        except BrokenProcessPool:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new_pool()
            self.restarts += 1

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=cancel_futures)

    def __enter__(self) -> "LocalProcessPool":
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown(wait=exc[0] is None, cancel_futures=exc[0] is not None)


def _is_dask_client(executor: Any) -> bool:
    return type(executor).__module__.split(".")[0] == "distributed"


def submit_task(executor: Any, fn: Callable, *args: Any, **kwargs: Any):
    """``executor.submit(fn, *args, **kwargs)``; a Dask client gets ``pure=False`` so
    that a resubmitted task is a new task, not the cached failure of the old one."""
    if _is_dask_client(executor):
        return executor.submit(fn, *args, pure=False, **kwargs)
    return executor.submit(fn, *args, **kwargs)


def is_lost_worker_error(exc: BaseException) -> bool:
    """True when ``exc`` says the worker running a task died, not that the task failed:
    a broken process pool, or Dask's ``KilledWorker`` (the scheduler already retried
    the task on other workers) or a lost/cancelled future of a dying cluster."""
    if isinstance(exc, BrokenProcessPool):
        return True
    name = type(exc).__name__
    module = type(exc).__module__.split(".")[0]
    return module == "distributed" and name in ("KilledWorker", "FutureCancelledError")


def recover(executor: Any) -> None:
    """Make ``executor`` usable after a lost worker, where it knows how."""
    hook = getattr(executor, "recover", None)
    if callable(hook) and not _is_dask_client(executor):
        hook()


def parse_executor(text: str) -> tuple[str, Any]:
    """``serial`` | ``local:N`` | ``dask:ADDRESS`` → ``(kind, argument)``; a
    :class:`PhyloError` explains the syntax otherwise."""
    text = (text or "").strip()
    if text in ("", "serial"):
        return "serial", None
    kind, _, rest = text.partition(":")
    if kind == "local":
        try:
            n = int(rest)
        except ValueError:
            n = 0
        if n < 1:
            raise PhyloError(f"--executor local:N needs a number of processes N ≥ 1, got {text!r}")
        return "local", n
    if kind == "dask":
        if not rest:
            raise PhyloError("--executor dask:ADDRESS needs the scheduler's address, e.g. "
                             "dask:tcp://10.0.0.5:8786")
        return "dask", rest
    raise PhyloError(f"--executor must be serial, local:N or dask:ADDRESS, got {text!r}")


class open_executor:
    """Context manager: the executor for ``--executor`` text (None for ``serial``).

    ``local:N`` starts N processes and stops them on exit; ``dask:ADDRESS`` connects
    to a running scheduler (needs the ``distributed`` extra: ``pip install
    'phylo[distributed]'``) and disconnects on exit, leaving the cluster running.
    """

    def __init__(self, text: str, *, timeout: float = 10.0) -> None:
        self.kind, self.argument = parse_executor(text)
        self.timeout = timeout
        self.executor: Any = None

    def __enter__(self):
        if self.kind == "local":
            self.executor = LocalProcessPool(self.argument)
        elif self.kind == "dask":
            try:
                from distributed import Client
            except ImportError:
                raise PhyloError("--executor dask: needs dask.distributed (pip install "
                                 "'phylo[distributed]')") from None
            address = self.argument
            try:
                self.executor = Client(address, timeout=self.timeout)
            except (OSError, TimeoutError) as exc:
                raise PhyloError(f"--executor dask: cannot reach the scheduler at {address} "
                                 f"({exc})") from None
        return self.executor

    def __exit__(self, *exc) -> None:
        if self.executor is None:
            return
        if self.kind == "local":
            self.executor.shutdown(wait=exc[0] is None, cancel_futures=exc[0] is not None)
        else:
            self.executor.close()


def warm_numba_cache(alignment, candidates, estimator, *, problem_options=None,
                     problem_factory=None) -> float:
    """Compile, in this process, every kernel the comparison's tasks will call; seconds.

    Runs the estimator with its :meth:`~phylo.marginal.MarginalLikelihoodEstimator.warmup`
    settings (tiny sample sizes) on the first candidate of every distinct model, so
    that Numba's on-disk cache holds each specialisation before workers start; workers
    then load instead of compiling, and never write the cache at the same time.
    """
    import time
    from .workflow import build_problem, derive_seed
    start = time.perf_counter()
    factory = problem_factory or build_problem
    tiny = estimator.warmup()
    seen = set()
    for c in candidates:
        if c.model in seen:
            continue
        seen.add(c.model)
        problem = factory(alignment, c, **dict(problem_options or {}))
        try:
            tiny.run(problem, seed=derive_seed(0, "warm-up", tiny.name, 0))
        except PhyloError:
            pass   # tiny settings may be refused late; the kernels met so far are compiled
    return time.perf_counter() - start
