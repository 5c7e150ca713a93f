"""The workspace lock: one writing command at a time.

A command that writes holds an exclusive ``flock`` on ``WS/ctcurate.lock`` for as long as it runs; the file
names the holder (host, pid, command, since). A second writer is refused with one line naming the holder, or
waits for it (``wait=True``). The kernel releases the lock when its holder dies, even by kill -9; the next
writer then takes it over and says whose it was.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

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


@contextlib.contextmanager
def workspace_lock(ws: Workspace, command: str, *, wait: bool = False) -> Iterator[None]:
    """Hold the workspace's write lock while the block runs (refused, or waited for, while another holds it)."""
    handle = open(ws.lock_file, "a+", encoding="utf-8")  # noqa: SIM115 - held open as long as the lock
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = lock_holder(ws)
            if not wait:
                raise WorkspaceBusyError(
                    f"{ws.root}: busy: '{holder.get('command', '?')}' (pid {holder.get('pid', '?')} on "
                    f"{holder.get('host', '?')}, since {holder.get('since', '?')}) is writing to this workspace; "
                    "run again when it has finished, or add --wait to wait for it") from None
            log.warning("%s: waiting for '%s' (pid %s) to finish", ws.root, holder.get("command"), holder.get("pid"))
            fcntl.flock(handle, fcntl.LOCK_EX)
        previous = lock_holder(ws)
        if previous.get("pid") and previous.get("host") == socket.gethostname() and not _alive(int(previous["pid"])):
            log.warning("%s: taking over the lock of '%s' (pid %s), which ended without releasing it",
                        ws.root, previous.get("command"), previous.get("pid"))
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "command": command,
                                 "since": datetime.now(UTC).isoformat(timespec="seconds")}))
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            handle.flush()
            fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        handle.close()
