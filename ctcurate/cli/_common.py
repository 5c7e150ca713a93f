"""Shared pieces of the command line: the typer app, consoles, error handling, progress bars."""

from __future__ import annotations

import functools
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar, overload

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from curation.errors import CtcurateError
from curation.workspace import SETTINGS_FILE
from curation.workspace.layout import Workspace
from curation.workspace.lock import workspace_lock

from ._guard import RERUN, RESUME, explain, record_traceback

__all__ = ["app", "console", "counted", "err_console", "exit_on_failures", "friendly", "print_error", "writes",
           "progress_bar", "progress_bars", "with_executor", "WorkspaceOpt"]

PIPE_WIDTH = 200  # columns of output to a file or pipe (rich would assume 80 and cut tables' cells)


def _width(stream: Any) -> int | None:
    """The console width: the terminal's, else PIPE_WIDTH (a long line also stays one line: soft wrap)."""
    return None if stream.isatty() or os.environ.get("COLUMNS") else PIPE_WIDTH


console = Console(stderr=False, soft_wrap=True, width=_width(sys.stdout))
err_console = Console(stderr=True, soft_wrap=True, width=_width(sys.stderr))
app = typer.Typer(
    name="ctcurate",
    help="Turn a CT archive into a segmented, documented dataset.\n\n"
    "Steps: init -> scan -> sample -> filter -> convert -> qa. 'ctcurate demo' runs them on a synthetic export.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
F = TypeVar("F", bound=Callable[..., Any])
WorkspaceOpt = Annotated[Path, typer.Option("--workspace", "-w", help="Workspace folder (default: current folder).")]
ThreadsOpt = Annotated[int | None, typer.Option(
    help="Threads each worker's libraries may use (default from settings; 0 = the cores shared out among the "
         "workers).", min=0)]


def counted(n: int, noun: str) -> str:
    """'1 exam', '2 exams' ('series' is both)."""
    return f"{n} {noun[:-1] if n == 1 and noun.endswith('s') and noun != 'series' else noun}"


def print_error(message: str) -> None:
    """The one line of a failure: ``error: ...`` on standard error."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False)


@overload
def friendly(func: F, /) -> F: ...


@overload
def friendly(*, resumes: bool = False, interrupted: str | None = None) -> Callable[[F], F]: ...


def friendly(func: F | None = None, /, *, resumes: bool = False,
             interrupted: str | None = None) -> F | Callable[[F], F]:
    """A command's failures as one line and an exit code. What a stopped run leaves is said as the command
    does it: ``resumes`` for a command whose rerun skips the work a stopped run finished (convert's cases,
    ...), else the rerun is only said to be needed; ``interrupted`` replaces the Ctrl-C line's text."""
    if func is None:
        return functools.partial(friendly, resumes=resumes, interrupted=interrupted)
    rerun = RESUME if resumes else RERUN
    stopped = interrupted or f"nothing half-written was kept; {rerun}"

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except CtcurateError as exc:
            print_error(str(exc))
            raise typer.Exit(code=2) from None
        except KeyboardInterrupt:
            err_console.print(f"[bold red]interrupted:[/] {escape(stopped)}", highlight=False, soft_wrap=True)
            raise typer.Exit(code=130) from None
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except Exception as exc:  # the top-level guard: one line, the traceback to a log file
            root = kwargs.get("workspace") or kwargs.get("root")
            log_file = record_traceback(exc, Path(root) if root else None)
            print_error(f"{explain(exc, Path(root) if root else None, rerun)} (details: {log_file})")
            if logging.getLogger().isEnabledFor(logging.DEBUG):
                err_console.print_exception()
            raise typer.Exit(code=2) from None

    return wrapper


_STATE = {"wait": False}


def writes(command: str) -> Callable[[F], F]:
    """Hold the workspace's write lock while the command runs (refused, or with --wait waited for, while another
    command writes to the same workspace); ``command`` is how the lock names its holder ('qa labels')."""

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            root = kwargs.get("workspace") or kwargs.get("root")
            if root is None or not (Path(root) / SETTINGS_FILE).is_file():
                return func(*args, **kwargs)
            with workspace_lock(Workspace.open(root), f"ctcurate {command}", wait=_STATE["wait"]):
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


@app.callback()
def _setup(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show debug logging.")] = False,
           wait: Annotated[bool, typer.Option("--wait", help="Wait for a command that writes to the same "
                                                             "workspace instead of stopping.")] = False) -> None:
    _STATE["wait"] = wait
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="%(message)s",
                        handlers=[RichHandler(console=err_console, show_path=False)], force=True)
    logging.getLogger("retrying").setLevel(logging.CRITICAL)  # dicomweb-client's retry wrapper logs every failure
    # pydicom logs each of its warnings too, without the file: ctcurate catches them and logs them with the file
    logging.getLogger("pydicom").setLevel(logging.ERROR)


@contextmanager
def progress_bar(label: str) -> Iterator[Callable[[int, int], None]]:
    with progress_bars(label) as (update,):
        yield update


@contextmanager
def progress_bars(*labels: str) -> Iterator[tuple[Callable[[int, int], None], ...]]:
    """One bar per label; each comes with an ``update(done, total)``. A bar is drawn from its first update on (when
    its work is known), and none is left on the screen when the command fails before any item is done: its error
    line is then all it prints."""
    bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=console, transient=False)
    tasks: dict[str, TaskID] = {}
    advanced = threading.Event()
    lock = threading.Lock()  # updates may come from threads (a PACS retrieval's)

    def updater(label: str) -> Callable[[int, int], None]:
        def update(done: int, total: int) -> None:
            with lock:
                if label not in tasks:
                    if not tasks:
                        bar.start()
                    tasks[label] = bar.add_task(label, total=total)
            if done:
                advanced.set()
            bar.update(tasks[label], completed=done, total=total)

        return update

    failed = True
    try:
        yield tuple(updater(label) for label in labels)
        failed = False
    finally:
        if tasks and failed and not advanced.is_set():  # a bar of nothing done goes with the failure
            bar.live.transient = True
            bar.live.stop()  # (Progress.stop would end a bar printed to a file or pipe with an empty line)
        elif tasks:
            bar.stop()


def with_executor(ws: Workspace, workers: int | None, scheduler: str | None, label: str,
                  step: Callable[..., Any], threads: int | None = None, preload: Sequence[str] = ()) -> Any:
    """Run ``step(executor=..., progress=...)`` on the executor asked for, with a progress bar (``preload``: the
    modules a local pool's workers start with, loaded while ``step`` prepares its work)."""
    from curation.workspace.executor import make_executor

    # leaving the block on an error or Ctrl-C stops the pool without waiting for the items still running
    with make_executor(ws.settings.executor, workers=workers, scheduler=scheduler, threads=threads,
                       preload=preload) as executor, \
            progress_bar(label) as progress:
        return step(executor=executor, progress=progress)




def exit_on_failures(failed: dict[str, str]) -> None:
    """Print each failed case with its reason and exit with code 1 when there is any."""
    for case_id, error in failed.items():
        err_console.print(f"[red]{escape(case_id)}[/]: {escape(error)}", highlight=False)
    if failed:
        raise typer.Exit(code=1)
