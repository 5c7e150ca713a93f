"""How many threads the libraries of one worker may use: the machine's cores shared out among the workers.

SimpleITK (resampling), torch (pre-segmentation) and the BLAS under NumPy each start a thread per core by
default. Two worker processes on a 2-core machine would then run four busy threads on two cores, and a stage
would get slower on 2 workers than on 1. So each worker gets ``cores // workers`` threads (at least 1), or the
number the settings give (``[executor] threads``); the executors apply it where the work runs:

- a local pool's worker, once when it starts;
- the serial executor, in this process while each item runs (and puts the previous limits back after), only
  when the settings give a number: by default the libraries stay as they are (every core, or what the
  environment's ``OMP_NUM_THREADS`` and the like say);
- a Dask worker, per task: the number the settings give, else 1 (Dask runs one task per worker thread, and its
  workers start with one OpenMP/BLAS thread). The limit stays in the worker process after the task; a count
  above 1 on a worker that runs several tasks at once gives more busy threads than cores.

Models read :func:`thread_budget` when they are built (torch's count is set there too, for a library imported
after the budget was applied).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator

from curation.errors import ExecutorError

__all__ = ["available_cores", "threads_per_worker", "thread_budget", "apply_thread_budget", "limited_threads"]

log = logging.getLogger(__name__)
_BUDGET: int | None = None  # what this process was given; None: no budget applied (use every core)
_APPLIED_WITH = 0  # how many modules were loaded when it was applied (a library loaded since gets it too)


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system tells it, else the CPU count)."""
    getter = getattr(os, "sched_getaffinity", None)
    if getter is not None:
        with contextlib.suppress(OSError):
            return max(1, len(getter(0)))
    return max(1, os.cpu_count() or 1)


def threads_per_worker(workers: int, threads: int = 0) -> int:
    """``threads`` when given (> 0), else this machine's cores shared out among ``workers`` (at least 1)."""
    if workers < 1 or threads < 0:
        raise ExecutorError(f"thread budget: expected workers >= 1 and threads >= 0, found workers={workers}, "
                            f"threads={threads}; give at least one worker, and 0 or more threads")
    return threads if threads > 0 else max(1, available_cores() // workers)


def thread_budget() -> int:
    """The threads one task of this process may use: the budget applied here, else every core."""
    return _BUDGET if _BUDGET is not None else available_cores()


def _current() -> tuple[int | None, int | None, int | None]:
    sitk_threads = torch_threads = None
    if "SimpleITK" in sys.modules:
        sitk_threads = sys.modules["SimpleITK"].ProcessObject.GetGlobalDefaultNumberOfThreads()
    if "torch" in sys.modules:
        torch_threads = sys.modules["torch"].get_num_threads()
    return _BUDGET, sitk_threads, torch_threads


def _set(budget: int | None, sitk_threads: int | None, torch_threads: int | None) -> None:
    global _BUDGET
    _BUDGET = budget
    if sitk_threads is not None:
        sys.modules["SimpleITK"].ProcessObject.SetGlobalDefaultNumberOfThreads(sitk_threads)
    if torch_threads is not None:
        sys.modules["torch"].set_num_threads(torch_threads)


def apply_thread_budget(threads: int) -> None:
    """Limit this process's SimpleITK, torch and BLAS/OpenMP threads to ``threads`` (for good: a worker's start)."""
    global _APPLIED_WITH
    if threads < 1:
        raise ExecutorError(f"thread budget: expected at least 1 thread, found {threads}; set --threads or "
                            "[executor] threads to 1 or more (0: the cores shared out among the workers)")
    if threads == _BUDGET and len(sys.modules) == _APPLIED_WITH:
        return  # nothing loaded since: the limits hold (a task calls this each time, so it must be cheap)
    import SimpleITK  # noqa: F401  (loaded by every stage that resamples; the limit must be there before it runs)
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads)
    _set(threads, threads, threads if "torch" in sys.modules else None)
    _APPLIED_WITH = len(sys.modules)
    log.debug("process %d: %d thread(s) per task", os.getpid(), threads)


@contextlib.contextmanager
def limited_threads(threads: int) -> Iterator[None]:
    """:func:`apply_thread_budget` for the duration of the block; the previous limits come back after."""
    import SimpleITK  # noqa: F401  (so that its count before the block is known)
    from threadpoolctl import threadpool_limits

    budget, sitk_threads, torch_threads = _current()
    with threadpool_limits(threads):
        apply_thread_budget(threads)
        try:
            yield
        finally:
            if torch_threads is None and "torch" in sys.modules:  # imported inside the block: back to its default
                torch_threads = available_cores()
            _set(budget, sitk_threads, torch_threads)
