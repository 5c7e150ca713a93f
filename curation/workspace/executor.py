"""Pluggable executors: run a function over many items serially, in a local process pool, or on Dask.

All three yield results as they complete, so callers can record each one (and resume after a
kill) instead of waiting for the whole batch. Functions and items must be picklable. Each limits the threads of
the libraries its work uses to the machine's cores shared out among its workers (:mod:`.threads`).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from multiprocessing import forkserver
from typing import Any, Generic, Protocol, TypeVar

from curation.errors import ExecutorError
from curation.lifetime import worker_started

from .settings import ExecutorSettings
from .threads import apply_thread_budget, limited_threads, threads_per_worker

__all__ = ["Executor", "SerialExecutor", "LocalExecutor", "DaskExecutor", "make_executor"]

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")


class Executor(Protocol):
    """Runs ``fn`` over ``items`` and yields ``(item, result)`` pairs as they complete."""

    workers: int

    def imap_unordered(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[tuple[T, R]]: ...

    def close(self, *, wait: bool = True) -> None:
        """Release the workers; ``wait=False`` (after an interruption) drops what has not finished."""


class SerialExecutor:
    """Runs everything in this process: simplest to debug, used when ``workers == 1``. While an item runs, the
    libraries may use ``threads`` threads (default 0: as they are, every core unless the environment says less)."""

    workers = 1

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
    may use ``threads`` threads (default: the cores shared out among the workers)."""

    def __init__(self, workers: int, threads: int = 0) -> None:
        if workers < 1:
            raise ExecutorError(f"local executor: expected at least 1 worker, found {workers}")
        self.workers = workers
        self.threads = threads_per_worker(workers, threads)
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["curation.catalog.scan", "curation.dicom.series"])
        # the fork server, and every worker it forks, starts with Ctrl-C blocked: a worker ignores it before it
        # unblocks it (the command stops the pool), so a Ctrl-C while a worker boots cannot interrupt that either
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            forkserver.ensure_running()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_worker_init,
                                         initargs=(os.getpid(), self.threads))

    def imap_unordered(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[tuple[T, R]]:
        pending: dict[Future[R], T] = {}
        queue = iter(items)
        limit = self.workers * 4
        while True:
            for item in queue:
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


class DaskExecutor:
    """Runs tasks on a Dask cluster given its scheduler address (``tcp://host:port``); each task's libraries may
    use ``threads`` threads (default 1: Dask runs one task per worker thread)."""

    def __init__(self, address: str, *, timeout_s: float = 20.0, threads: int = 0) -> None:
        self.threads = threads_per_worker(1, threads) if threads else 1
        from distributed import Client

        try:
            self._client = Client(address, timeout=timeout_s)
        except (OSError, TimeoutError) as exc:
            raise ExecutorError(
                f"Dask scheduler {address!r}: cannot connect ({exc}); check that the scheduler runs and "
                "the address is right, or drop --scheduler to use the local pool"
            ) from None
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
                  scheduler: str | None = None, threads: int | None = None) -> Any:
    """Build the executor the settings (or explicit overrides) ask for."""
    settings = settings or ExecutorSettings()
    scheduler = settings.scheduler if scheduler is None else scheduler
    workers = settings.workers if workers is None else workers
    threads = settings.threads if threads is None else threads
    if scheduler:
        log.info("using Dask scheduler %s", scheduler)
        return DaskExecutor(scheduler, threads=threads)
    if workers <= 1:
        return SerialExecutor(threads)
    return LocalExecutor(workers, threads)
