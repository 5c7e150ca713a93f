"""The ``ctcurate`` command line (typer). It sits on top of every stage; nothing imports it.

Library code logs through ``logging``; the CLI configures rich output and progress bars and turns
:class:`~curation.errors.CtcurateError` into one red line and exit code 2. Commands live in
:mod:`ctcurate.cli.curate` (curation steps), :mod:`ctcurate.cli.pacs` (``pull``), :mod:`ctcurate.cli.model`
(``ctcurate model ...``), :mod:`ctcurate.cli.annotate` (``presegment``, ``phase``), :mod:`ctcurate.cli.retrain`
(``review``, ``export nnunet``, ``retrain``) and :mod:`ctcurate.cli.qa` (``ctcurate qa ...``).
"""

from __future__ import annotations

from . import annotate, curate, model, pacs, qa, release, retrain  # noqa: F401  (registers the commands)
from ._common import app, print_error

__all__ = ["app", "main", "run"]


def main(args: list[str] | None = None) -> None:
    """Console entry point: a wrong command line is one line (what is wrong, where the help is) and exit code 2."""
    import sys

    import typer

    try:
        code = app(args=args, prog_name="ctcurate", standalone_mode=False)
    except typer.Abort:  # Ctrl-C or end of input at a prompt, outside any command
        print_error("interrupted")
        sys.exit(130)
    except typer.TyperException as exc:  # click's errors: a usage error carries the command it is about
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        if type(exc).__name__ == "NoArgsIsHelpError":  # a command group called alone: its help, as click shows it
            sys.stdout.write(message + "\n")
            sys.exit(2)
        context = getattr(exc, "ctx", None)
        if context is not None:
            message = f"{message.rstrip('.')} (see '{context.command_path} --help')"
        print_error(message)
        sys.exit(getattr(exc, "exit_code", 2))
    sys.exit(code if isinstance(code, int) else 0)


def run() -> None:
    """The console script and ``python -m ctcurate``: :func:`main`, then the process ends the way exit begins
    (threads joined, exit handlers run, streams flushed) without freeing what the command built one object at a
    time: a scan's tables and modules took 0.3 s to tear down that no caller waits for."""
    import atexit
    import contextlib
    import ctypes
    import os
    import sys
    import threading

    try:
        main()
        code: int = 0
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:  # a message: printed, status 1, as the interpreter does
            sys.stderr.write(f"{exc.code}\n")
            code = 1
    try:
        shutdown = getattr(threading, "_shutdown", None)
        if shutdown is not None:
            shutdown()  # what the interpreter does first at exit: wait for the threads still running
        atexit._run_exitfuncs()
    except KeyboardInterrupt:  # Ctrl-C while the last threads finish: the status of an interrupted command
        code = 130
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can reach it
            code = code or 1
    with contextlib.suppress(OSError, AttributeError):  # what native libraries printed, still in C's buffers
        ctypes.CDLL(None).fflush(None)
    os._exit(code)
