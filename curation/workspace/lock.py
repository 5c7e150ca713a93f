"""The workspace lock: one writing command at a time.

A command that writes holds an exclusive ``flock`` on ``WS/ctcurate.lock`` for as long as it runs; the file
names the holder (host, pid, command, since). A second writer is refused with one line naming the holder, or
waits for it (``wait=True``). The kernel releases the lock when its holder dies, even by kill -9; the next
writer then takes it over and says whose it was.

Workstations that share the workspace's annotation database on PostgreSQL (and often the workspace on a
network file system, whose ``flock`` other hosts may not see) also take the database's advisory lock, keyed by
the workspace's secret, on a connection held as long as the command runs: the server frees it when that
connection ends, also when its process is killed. The holder is named by the connection's application name.

Temporaries belong to their run (their names carry host and pid, see :mod:`curation.atomic`): the holder of
the lock, and only it, removes those left by runs that have ended, when it takes the lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from curation.atomic import remove_stale_temporaries
from curation.errors import WorkspaceBusyError, WorkspaceError
from curation.lifetime import pid_alive

from .layout import Workspace
from .settings import database_driver

__all__ = ["workspace_lock", "lock_holder"]

log = logging.getLogger(__name__)


def lock_holder(ws: Workspace) -> dict[str, Any]:
    """Who holds (or last held) the lock, as written in the lock file; empty when nobody did."""
    try:
        text = ws.lock_file.read_text(encoding="utf-8")
        return dict(json.loads(text)) if text.strip() else {}
    except (OSError, ValueError):
        return {}


_APPLICATION = "ctcurate:"  # application name of the connection holding the lock: ctcurate:PID@HOST COMMAND
_LOCAL = threading.local()  # per thread: the lock files it holds, and how many blocks hold each


def _held() -> dict[str, int]:
    if not hasattr(_LOCAL, "held"):
        _LOCAL.held = {}
    held: dict[str, int] = _LOCAL.held
    return held


def _advisory_key(ws: Workspace) -> int:
    """The advisory lock's key: the same for every workstation that opens this workspace, whatever its path."""
    digest = hashlib.sha256(b"ctcurate workspace lock\0" + ws.secret).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _busy(ws: Workspace, holder: dict[str, Any]) -> WorkspaceBusyError:
    return WorkspaceBusyError(
        f"{ws.root}: busy: '{holder.get('command', '?')}' (pid {holder.get('pid', '?')} on "
        f"{holder.get('host', '?')}, since {holder.get('since', '?')}) is writing to this workspace; "
        "run again when it has finished, or wait for it: 'ctcurate --wait COMMAND ...' (--wait before the command)")


@contextlib.contextmanager
def _database_lock(ws: Workspace, url: str, holder: dict[str, Any], wait: bool) -> Iterator[None]:
    """Hold the PostgreSQL advisory lock of the workspace for as long as the block runs."""
    import sqlalchemy as sa

    command = str(holder["command"]).removeprefix("ctcurate ")
    name = f"{_APPLICATION}{holder['pid']}@{str(holder['host'])[:20]} {command}"[:63]  # PostgreSQL keeps 63 bytes
    engine = sa.create_engine(database_driver(url), poolclass=sa.pool.NullPool,
                              connect_args={"application_name": name})
    key = _advisory_key(ws)
    try:
        connection = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    except sa.exc.OperationalError as exc:
        engine.dispose()
        raise WorkspaceError(f"annotation database {sa.make_url(database_driver(url)).render_as_string(True)}: cannot "
                             f"connect to take the workspace lock ({str(exc.orig).strip().splitlines()[0]}); check "
                             "the server and [annotation] database_url") from None
    try:
        if not connection.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar():
            other = connection.execute(sa.text(
                "SELECT a.application_name, a.client_addr, a.backend_start FROM pg_locks l JOIN pg_stat_activity a "
                "ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted AND "
                "((l.classid::bigint << 32) | l.objid::bigint) = (:k)::bigint & x'ffffffffffffffff'::bigint"),
                {"k": key}).first()
            found: dict[str, Any] = {}
            if other is not None and str(other[0]).startswith(_APPLICATION):
                where, _, what = str(other[0]).removeprefix(_APPLICATION).partition(" ")
                pid, _, host = where.partition("@")
                found = {"pid": pid, "host": host, "command": f"ctcurate {what}"}
            found["since"] = other[2].isoformat(timespec="seconds") if other is not None else "?"
            if not wait:
                raise _busy(ws, found)
            log.warning("%s: waiting for '%s' (pid %s on %s) to finish", ws.root, found.get("command"),
                        found.get("pid"), found.get("host"))
            connection.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": key})
        yield
    finally:
        connection.close()  # ends the session, which frees the advisory lock
        engine.dispose()


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
    try:
        fd = os.open(ws.lock_file, os.O_RDWR | os.O_CREAT, 0o666)  # held open as long as the lock
    except IsADirectoryError:
        raise WorkspaceError(f"{ws.lock_file}: a folder where the workspace's lock file belongs; remove it (no "
                             "command holds a lock through it) and run again") from None
    stack = contextlib.ExitStack()
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = lock_holder(ws)
            if not wait:
                raise _busy(ws, holder) from None
            log.warning("%s: waiting for '%s' (pid %s) to finish", ws.root, holder.get("command"), holder.get("pid"))
            fcntl.flock(fd, fcntl.LOCK_EX)
        previous = lock_holder(ws)
        if previous.get("pid") and previous.get("host") == socket.gethostname() \
                and not pid_alive(int(previous["pid"])):
            log.warning("%s: taking over the lock of '%s' (pid %s), which ended without releasing it",
                        ws.root, previous.get("command"), previous.get("pid"))
        me = {"host": socket.gethostname(), "pid": os.getpid(), "command": command,
              "since": datetime.now(UTC).isoformat(timespec="seconds")}
        try:  # who holds it, at once: for the messages of others; the lock itself is the flock
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(me).encode(), 0)
        except OSError as exc:  # a full volume: the command's own first write will say so, naming its file
            log.debug("%s: cannot name the holder (%s)", ws.lock_file, exc)
        shared = ws.settings.annotation.database_url
        if shared.startswith("postgresql"):  # other workstations may not see this flock
            try:
                stack.enter_context(_database_lock(ws, shared, me, wait))
            except BaseException:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, 0)  # not held after all
                raise
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
        stack.close()
        os.close(fd)
