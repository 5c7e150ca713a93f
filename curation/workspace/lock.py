"""The workspace lock: one writing command at a time.

A command that writes holds an exclusive ``flock`` on ``WS/ctcurate.lock`` for as long as it runs; the file
names the holder (host, pid, command, since). A second writer is refused with one line naming the holder, or
waits for it (``wait=True``). The kernel releases the lock when its holder dies, even by kill -9; the next
writer then takes it over and says whose it was.

Temporaries belong to their run (their names carry host and pid, see :mod:`curation.atomic`): the holder of
the lock, and only it, removes those left by runs that have ended, when it takes the lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from curation.atomic import remove_stale_temporaries
from curation.errors import WorkspaceBusyError

from .layout import Workspace

__all__ = ["workspace_lock", "lock_holder"]

log = logging.getLogger(__name__)


def lock_holder(ws: Workspace) -> dict[str, Any]:
    """Who holds (or last held) the lock, as written in the lock file; empty when nobody did."""
    try:
        text = ws.lock_file.read_text(encoding="utf-8")
        return dict(json.loads(text)) if text.strip() else {}
    except (OSError, ValueError):
        return {}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_LOCAL = threading.local()  # per thread: the lock files it holds, and how many blocks hold each


def _held() -> dict[str, int]:
    if not hasattr(_LOCAL, "held"):
        _LOCAL.held = {}
    held: dict[str, int] = _LOCAL.held
    return held


@contextlib.contextmanager
def workspace_lock(ws: Workspace, command: str, *, wait: bool = False) -> Iterator[None]:
    """Hold the workspace's write lock while the block runs (refused, or waited for, while another holds it).

    Re-entrant within one thread: a block inside another that holds the lock of the same workspace goes on.
    """
    key, held = os.path.realpath(ws.lock_file), _held()
    if held.get(key):
        held[key] += 1
        try:
            yield
        finally:
            held[key] -= 1
        return
    fd = os.open(ws.lock_file, os.O_RDWR | os.O_CREAT, 0o666)  # held open as long as the lock
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = lock_holder(ws)
            if not wait:
                raise WorkspaceBusyError(
                    f"{ws.root}: busy: '{holder.get('command', '?')}' (pid {holder.get('pid', '?')} on "
                    f"{holder.get('host', '?')}, since {holder.get('since', '?')}) is writing to this workspace; "
                    "run again when it has finished, or add --wait to wait for it") from None
            log.warning("%s: waiting for '%s' (pid %s) to finish", ws.root, holder.get("command"), holder.get("pid"))
            fcntl.flock(fd, fcntl.LOCK_EX)
        previous = lock_holder(ws)
        if previous.get("pid") and previous.get("host") == socket.gethostname() and not _alive(int(previous["pid"])):
            log.warning("%s: taking over the lock of '%s' (pid %s), which ended without releasing it",
                        ws.root, previous.get("command"), previous.get("pid"))
        try:  # who holds it: for the messages of others; the lock itself is the flock
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "command": command,
                                      "since": datetime.now(UTC).isoformat(timespec="seconds")}).encode(), 0)
        except OSError as exc:  # a full volume: the command's own first write will say so, naming its file
            log.debug("%s: cannot name the holder (%s)", ws.lock_file, exc)
        removed = remove_stale_temporaries(ws.root, recursive=True, skip=lambda p: p.parent == ws.releases_dir)
        if removed:
            log.info("%s: removed %d unfinished temporaries of ended runs", ws.root, len(removed))
        held[key] = 1
        try:
            yield
        finally:
            held.pop(key, None)
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
