"""The top-level guard: no traceback reaches the user.

Every exception a command does not turn into a :class:`~curation.errors.CtcurateError` itself is turned here
into one line (what failed, which path, the likely fix) and exit code 2; the traceback goes to the
workspace's error log (``WS/logs/errors.log``, or the system's temporary folder when the workspace cannot be
written), which the line names. ``-v`` also prints it.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path

from curation.workspace import SETTINGS_FILE, Workspace
from curation.workspace.errorlog import append_traceback

__all__ = ["RERUN", "RESUME", "explain", "record_traceback"]

RERUN = "run the same command again"
RESUME = "run the same command again to finish (finished parts are kept)"  # a command whose rerun skips done work

_READ_ONLY = {errno.EROFS, errno.EACCES, errno.EPERM}


def _chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    while exc is not None and exc not in out:
        out.append(exc)
        exc = exc.__cause__ or exc.__context__ or getattr(exc, "orig", None)  # type: ignore[assignment]
    return out


def _mount_of(path: str) -> str:
    target = Path(path).resolve()
    while not os.path.ismount(target) and target != target.parent:
        target = target.parent
    return str(target)


def explain(exc: BaseException, root: Path | None = None, rerun: str = RERUN) -> str:
    """One line for an unexpected exception: what failed, where (in the workspace ``root``), and the likely fix
    (``rerun``: how the command is run again, as it resumes or starts over)."""
    for item in _chain(exc):
        if isinstance(item, OSError) and item.errno == errno.ENOSPC:
            where = item.filename or ""
            volume = f" (the volume {_mount_of(where)})" if where else ""
            return (f"no space left on the device while writing {where or 'a file'}{volume}; free space there, "
                    f"then {rerun}")
        if isinstance(item, OSError) and item.errno in _READ_ONLY:
            where = item.filename or ""
            kind = "a read-only file system" if item.errno == errno.EROFS else "no permission"
            return (f"cannot write {where or 'the workspace'}: {kind}; give this user write access to the workspace "
                    f"(or copy it somewhere writable), then run the same command again")
        text = str(item).lower()
        if isinstance(item, sqlite3.DatabaseError) or "sqlite" in type(item).__module__.lower():
            if "disk is full" in text:
                database = Workspace(Path(root)).database_file if root is not None else None
                where = f"{database} (the volume {_mount_of(str(database))})" if database else "the annotation database"
                return f"no space left on the device while writing {where}; free space there, then {rerun}"
            if "readonly" in text or "read-only" in text:
                return ("the annotation database cannot be written (read-only file or folder); give this user "
                        "write access to the workspace, then run the same command again")
            if "malformed" in text or "not a database" in text:
                return ("the annotation database is damaged (" + str(item).strip() + "); restore annotations.sqlite "
                        "from a backup, or move it aside and migrate from the database that holds the record")
    last = _chain(exc)[-1]
    return f"unexpected {type(last).__name__}: {str(last).strip().splitlines()[0] if str(last).strip() else ''}"


def record_traceback(exc: BaseException, root: Path | None) -> Path:
    """Append the traceback to the workspace's error log (or the temporary folder's); return the log's path."""
    logs = [Workspace(Path(root)).error_log] if root is not None and (Path(root) / SETTINGS_FILE).is_file() else []
    return append_traceback(exc, logs)
