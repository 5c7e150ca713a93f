"""The error log keeps every traceback that the user sees as one line; entries are appended, never replaced."""

from __future__ import annotations

from pathlib import Path

import pytest

from curation.workspace import errorlog
from curation.workspace.errorlog import append_traceback


def _raised(message: str) -> ValueError:
    try:
        raise ValueError(message)
    except ValueError as exc:
        return exc


def test_entries_are_appended_with_their_context(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "errors.log"
    assert append_traceback(_raised("first"), log, "convert s0001") == log
    assert append_traceback(_raised("second"), [log]) == log
    text = log.read_text()
    assert text.count("Traceback (most recent call last)") == 2
    assert " convert s0001\n" in text and "ValueError: first" in text and text.index("first") < text.index("second")


def test_an_unwritable_log_falls_back_to_the_temporary_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fallback = tmp_path / "tmp" / "ctcurate-errors.log"
    monkeypatch.setattr(errorlog, "FALLBACK_ERROR_LOG", fallback)
    (tmp_path / "a-file").write_text("")
    assert append_traceback(_raised("lost?"), tmp_path / "a-file" / "errors.log") == fallback
    assert "ValueError: lost?" in fallback.read_text()
