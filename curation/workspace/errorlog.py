"""The workspace's error log (``WS/logs/errors.log``): where tracebacks go, so that users see one line.

A command that fails as a whole and a batch item that fails for an unforeseen reason both append their
traceback here; the line the user sees names the log. Each entry is appended with one ``write`` on a file
opened for appending, so that workers of one batch can add theirs at the same time without mixing them.
"""

from __future__ import annotations

import os
import tempfile
import traceback
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["append_traceback", "failure_line", "FALLBACK_ERROR_LOG"]

FALLBACK_ERROR_LOG = Path(tempfile.gettempdir()) / "ctcurate-errors.log"


def append_traceback(exc: BaseException, logs: list[Path] | Path, context: str = "") -> Path:
    """Append ``exc``'s traceback, headed by the time and ``context`` (which item failed), to the first of ``logs``
    that can be written (the system's temporary folder's log when none can); return the log it went to."""
    text = f"--- {datetime.now(UTC).isoformat(timespec='seconds')}{' ' + context if context else ''}\n" + "".join(
        traceback.format_exception(type(exc), exc, exc.__traceback__))
    data = text.encode("utf-8", errors="replace")
    candidates = [logs] if isinstance(logs, Path) else list(logs)
    for path in [*candidates, FALLBACK_ERROR_LOG]:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(handle, data)
            finally:
                os.close(handle)
            return path
        except OSError:
            continue
    return FALLBACK_ERROR_LOG


def failure_line(exc: BaseException, log: Path, context: str) -> str:
    """The one line of a batch item that failed unforeseen (``TypeError: ... (details: LOG)``), its traceback
    appended to ``log`` under ``context``."""
    return f"{type(exc).__name__}: {exc} (details: {append_traceback(exc, log, context)})"
