"""No process outlives its command: worker and helper processes end when the process that started them ends.

A command killed with ``kill -9`` gets no chance to stop its pool workers or the programs it started. Each
such process therefore asks the kernel, as it starts, to kill it when its parent ends (Linux's
parent-death signal, ``PR_SET_PDEATHSIG``), and a pool worker also watches the command's own process (its
parent is the pool's fork server, which ends with the command) and exits once that is gone.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time

__all__ = ["die_with_parent", "worker_started", "pid_alive"]

log = logging.getLogger(__name__)
_PR_SET_PDEATHSIG = 1


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid runs on this host (one we may not signal counts as running; a zombie, which
    has ended but whose parent has not collected it yet, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return _state(pid) not in ("Z", "X")


def _state(pid: int) -> str:
    """The process's state letter from /proc (Linux); empty where it cannot be read."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read().decode("ascii", "replace")
    except OSError:
        return ""
    after_name = stat.rpartition(")")[2].split()  # the name, in brackets, may hold spaces and brackets
    return after_name[0] if after_name else ""


def die_with_parent() -> None:
    """Have the kernel kill this process when its parent ends (Linux; elsewhere nothing happens).

    Safe as a ``subprocess`` ``preexec_fn``: it runs in the child before the program starts, and the
    request survives the exec.
    """
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if parent == 1 or not pid_alive(parent):  # it ended before the request was made
        os._exit(1)


def _watch(pid: int, period_s: float) -> None:
    while pid_alive(pid):
        time.sleep(period_s)
    os._exit(1)


def worker_started(command_pid: int, period_s: float = 1.0) -> None:
    """Initializer of a pool worker: end with the parent, and within ``period_s`` of the command's process; leave
    Ctrl-C (which the terminal sends to the whole process group) to the command, which stops the pool."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # blocked by the pool until it was ignored
    die_with_parent()
    if command_pid != os.getpid():
        threading.Thread(target=_watch, args=(command_pid, period_s), name="ctcurate-watchdog", daemon=True).start()
