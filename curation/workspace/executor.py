"""Pluggable executors: run a function over many items serially, in a local process pool, or on Dask.

All three yield results as they complete, so callers can record each one (and resume after a
kill) instead of waiting for the whole batch. Functions and items must be picklable. Each limits the threads of
the libraries its work uses to the machine's cores shared out among its workers (:mod:`.threads`).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import multiprocessing
import os
import pickle
import signal
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from multiprocessing import forkserver
from typing import Any, Generic, Protocol, TypeVar

from curation.errors import ExecutorError
from curation.lifetime import worker_started

from .layout import SETTINGS_FILE
from .settings import ExecutorSettings
from .threads import apply_thread_budget, limited_threads, threads_per_worker

__all__ = ["CONNECT_TIMEOUT_S", "Executor", "SerialExecutor", "LocalExecutor", "DaskExecutor", "Shared",
           "make_executor"]

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")
V = TypeVar("V")


class Shared(Generic[V]):
    """A value that many items carry (settings, a label set), built once in each worker process: every item still
    takes its pickled bytes along, but a worker unpickles them on first sight only (a label set of 117 classes costs
    more to rebuild than a small case takes to check). ``value`` is the value."""

    def __init__(self, value: V) -> None:
        self.value = value
        self._blob = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        self._key = hashlib.sha256(self._blob).hexdigest()

    def __reduce__(self) -> tuple[Callable[[str, bytes], Shared[V]], tuple[str, bytes]]:
        return _shared, (self._key, self._blob)


_SEEN: dict[str, Shared[Any]] = {}


def _shared(key: str, blob: bytes) -> Shared[Any]:
    """The :class:`Shared` value of ``blob`` (this process's copy, made on first sight)."""
    found = _SEEN.get(key)
    if found is None:
        if len(_SEEN) >= 8:  # a long-lived worker (Dask) sees many batches: keep the latest only
            _SEEN.clear()
        found = _SEEN[key] = Shared.__new__(Shared)
        found.value, found._blob, found._key = pickle.loads(blob), blob, key
    return found


class Executor(Protocol):
    """Runs ``fn`` over ``items`` and yields ``(item, result)`` pairs as they complete."""

    workers: int

    @property
    def running(self) -> bool:
        """Whether its workers run already (work then costs no start)."""

    def imap_unordered(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[tuple[T, R]]: ...

    def close(self, *, wait: bool = True) -> None:
        """Release the workers; ``wait=False`` (after an interruption) drops what has not finished."""


class SerialExecutor:
    """Runs everything in this process: simplest to debug, used when ``workers == 1``. While an item runs, the
    libraries may use ``threads`` threads (default 0: as they are, every core unless the environment says less)."""

    workers = 1
    running = True  # nothing to start

    def __init__(self, threads: int = 0) -> None:
        self.threads = threads_per_worker(1, threads) if threads else 0

    def imap_unordered(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[tuple[T, R]]:
        for item in items:
            with limited_threads(self.threads) if self.threads else contextlib.nullcontext():
                result = fn(item)
            yield item, result  # the caller's code between items runs with its own limits

    def close(self, *, wait: bool = True) -> None:
        """Nothing to release."""

    def __enter__(self) -> SerialExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _worker_init(command_pid: int, threads: int) -> None:
    worker_started(command_pid)
    apply_thread_budget(threads)


class LocalExecutor:
    """A local process pool (forkserver start method, so it is safe beside threads); its workers end with the
    process that made the pool, even when that is killed (see :mod:`curation.lifetime`). Each worker's libraries
    may use ``threads`` threads (default: the cores shared out among the workers).

    The fork server loads the modules the work needs once, and every worker forked from it starts with them:
    ``preload`` names them and starts it at once (it loads them while the caller goes on); by default it starts
    on the first item, with the module of the function run (a run with nothing to do starts no process). A
    process's first pool decides what its fork server holds. Each worker loads the script that made the pool as
    it starts, so a script that makes one keeps its work under ``if __name__ == "__main__":``."""

    def __init__(self, workers: int, threads: int = 0, *, preload: Sequence[str] = ()) -> None:
        if workers < 1:
            raise ExecutorError(f"local executor: expected at least 1 worker, found {workers}")
        self.workers = workers
        self.threads = threads_per_worker(workers, threads)
        self._context = multiprocessing.get_context("forkserver")
        self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=self._context, initializer=_worker_init,
                                         initargs=(os.getpid(), self.threads))
        self._started = False
        if preload:
            self._start(list(preload))

    def _start(self, modules: list[str]) -> None:
        if self._started:
            return
        # not __main__: this Python's fork server is not told the script's path (each worker loads the script as it
        # starts); SimpleITK by every worker's start (its thread limit)
        modules = ["SimpleITK", *(m for m in modules if m and m != "__main__")]
        self._context.set_forkserver_preload(modules)
        # the fork server, and every worker it forks, starts with Ctrl-C blocked: a worker ignores it before it
        # unblocks it (the command stops the pool), so a Ctrl-C while a worker boots cannot interrupt that either
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            forkserver.ensure_running()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        self._started = True

    @property
    def running(self) -> bool:
        """Whether its worker processes run already (earlier items started them); False once the pool broke or
        was closed."""
        processes = getattr(self._pool, "_processes", None) or {}
        return not getattr(self._pool, "_broken", False) and any(p.is_alive() for p in processes.values())

    def imap_unordered(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[tuple[T, R]]:
        pending: dict[Future[R], T] = {}
        queue = iter(items)
        limit = self.workers * 4
        while True:
            for item in queue:
                self._start([getattr(fn, "__module__", "")])
                pending[self._pool.submit(fn, item)] = item
                if len(pending) >= limit:
                    break
            if not pending:
                return
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield pending.pop(future), future.result()

    def close(self, *, wait: bool = True) -> None:
        """Stop the pool; without ``wait`` (an interruption) the workers are killed instead of finishing their
        items, whose temporaries their ended run leaves to the next lock holder."""
        if not wait:
            workers = getattr(self._pool, "_processes", None) or {}
            for process in list(workers.values()):
                with contextlib.suppress(OSError, ValueError, AttributeError):
                    process.kill()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        self.close(wait=kind is None)


class _Budgeted(Generic[T, R]):
    """``fn`` run with the libraries' threads limited (a Dask task: its worker may not have been limited yet)."""

    def __init__(self, fn: Callable[[T], R], threads: int) -> None:
        self.fn, self.threads = fn, threads

    def __call__(self, item: T) -> R:
        apply_thread_budget(self.threads)
        return self.fn(item)


CONNECT_TIMEOUT_S = 5.0  # a scheduler that cannot be reached fails in seconds (distributed would wait 20 s)
_WHERE = f"--scheduler, or [executor] scheduler in {SETTINGS_FILE}; left empty, the local pool is used"


class DaskExecutor:
    """Runs tasks on a Dask cluster given its scheduler address (``tcp://host:port``); each task's libraries may
    use ``threads`` threads (default 1: Dask runs one task per worker thread). Connecting gives up after
    ``timeout_s`` (default :data:`CONNECT_TIMEOUT_S`)."""

    running = True  # the cluster's workers run outside the command

    def __init__(self, address: str, *, timeout_s: float | None = None, threads: int = 0) -> None:
        self.threads = threads_per_worker(1, threads) if threads else 1
        timeout = CONNECT_TIMEOUT_S if timeout_s is None else timeout_s
        from distributed import Client

        try:
            self._client = Client(address, timeout=timeout)
        except ValueError as exc:  # no scheme, an unknown one, no port
            raise ExecutorError(f"Dask scheduler {address!r}: not a scheduler address ({exc}); give one like "
                                f"tcp://host:8786 ({_WHERE})") from None
        except (OSError, TimeoutError):
            raise ExecutorError(f"Dask scheduler {address!r}: cannot connect within {timeout:g} s; start the "
                                f"scheduler at that address or fix the address ({_WHERE})") from None
        self.workers = max(1, len(self._client.scheduler_info().get("workers", {})))

    def imap_unordered(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[tuple[T, R]]:
        from distributed import as_completed

        items = list(items)
        futures = self._client.map(_Budgeted(fn, self.threads), items, pure=False)
        index = {future.key: item for future, item in zip(futures, items, strict=True)}
        for future in as_completed(futures):
            yield index[future.key], self._client.gather(future)

    def close(self, *, wait: bool = True) -> None:
        self._client.close()

    def __enter__(self) -> DaskExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def make_executor(settings: ExecutorSettings | None = None, *, workers: int | None = None,
                  scheduler: str | None = None, threads: int | None = None, preload: Sequence[str] = ()) -> Any:
    """Build the executor the settings (or explicit overrides) ask for (``preload``: modules a local pool's
    workers start with, see :class:`LocalExecutor`)."""
    settings = settings or ExecutorSettings()
    scheduler = settings.scheduler if scheduler is None else scheduler
    workers = settings.workers if workers is None else workers
    threads = settings.threads if threads is None else threads
    if scheduler:
        log.info("using Dask scheduler %s", scheduler)
        return DaskExecutor(scheduler, threads=threads)
    if workers <= 1:
        return SerialExecutor(threads)
    return LocalExecutor(workers, threads, preload=preload)
