"""Reading real-world DICOM leniently, without changing pydicom's settings for anyone else.

Headers from other sources break the standard in small ways (a value too long for its VR, a bad character
in a code string). ctcurate reads them as they are: inside :func:`lenient_reading`, pydicom's
``reading_validation_mode`` is ``IGNORE``; outside it, pydicom behaves as its caller configured it.
Nested and concurrent uses (threads of one process) share one switch that is restored when the last
one leaves.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import pydicom.config

__all__ = ["lenient_reading"]

_LOCK = threading.Lock()
_USERS = 0
_SAVED: int | None = None


@contextlib.contextmanager
def lenient_reading() -> Iterator[None]:
    """pydicom reads and decodes values without validating them while the block runs."""
    global _USERS, _SAVED
    with _LOCK:
        if _USERS == 0:
            _SAVED = pydicom.config.settings.reading_validation_mode
            pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE
        _USERS += 1
    try:
        yield
    finally:
        with _LOCK:
            _USERS -= 1
            if _USERS == 0 and _SAVED is not None:
                pydicom.config.settings.reading_validation_mode = _SAVED
