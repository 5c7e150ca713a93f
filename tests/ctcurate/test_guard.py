"""The top-level guard: an unexpected exception reaches the user as one line with an exit code; the traceback
goes to the workspace's error log, which the line names."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from ctcurate.cli import app
from curation.workspace import Workspace
from tests.cli_runner import CliRunner
from tests.faults import held_elsewhere

runner = CliRunner()


@pytest.fixture()
def sampled(copy_series, filtered_workspace) -> Workspace:
    return filtered_workspace(copy_series("dcm_qa_ct/In/Philips/S21570/S2010"))


def _one_line(output: str) -> str:
    assert "Traceback" not in output and "File \"" not in output, output
    return " ".join(output.split())


@pytest.mark.parametrize(("error", "expected"), [
    (OSError(errno.EROFS, "Read-only file system"), "cannot write {path}: a read-only file system; give this user "
                                                    "write access to the workspace"),
    (PermissionError(errno.EACCES, "Permission denied"), "cannot write {path}: no permission;"),
    (OSError(errno.ENOSPC, "No space left on device"), "no space left on the device while writing {path} (the "
                                                       "volume /"),
])
def test_write_failures_are_one_line_naming_the_file(sampled: Workspace, monkeypatch: pytest.MonkeyPatch,
                                                      error: OSError, expected: str) -> None:
    import curation.selection.filter as filtering

    target = sampled.verdicts_table

    def refuse(path: object, frame: object) -> None:
        error.filename = str(path)
        raise error

    monkeypatch.setattr(filtering, "atomic_write_parquet", refuse)
    out = runner.invoke(app, ["filter", "-w", str(sampled.root)])
    line = _one_line(out.output)
    assert out.exit_code == 2 and expected.format(path=target) in line
    assert f"(details: {sampled.error_log})" in line
    assert "finished parts are kept" not in line  # a filter starts over: it keeps no finished part
    logged = sampled.error_log.read_text()
    assert "Traceback" in logged and type(error).__name__ in logged


@pytest.mark.parametrize(("command", "stop", "said"), [
    ("scan", "curation.catalog.scan.assign_keys", "interrupted: the catalog is as it was before this scan (the "
     "headers read so far were not kept); run the same command again (it reads them again)"),
    ("filter", "curation.selection.filter.withdraw_cases", "interrupted: nothing half-written was kept; run the same "
     "command again"),
    ("convert", "curation.cases.convert.write_meta_table", "interrupted: nothing half-written was kept; run the same "
     "command again to finish (finished parts are kept)"),
])
def test_ctrl_c_says_what_the_rerun_does(sampled: Workspace, monkeypatch: pytest.MonkeyPatch, command: str,
                                         stop: str, said: str) -> None:
    """Only a command whose rerun skips finished work says finished parts are kept; a scan keeps nothing it read."""
    def interrupt(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    import importlib

    module, name = stop.rsplit(".", 1)
    catalog = sampled.files_table.read_bytes()
    monkeypatch.setattr(importlib.import_module(module), name, interrupt)
    args = [command, "-w", str(sampled.root)] + (["--full", "--workers", "1"] if command == "scan" else [])
    out = runner.invoke(app, args)
    line = _one_line(out.output)
    assert out.exit_code == 130 and line.endswith(said) and line.count("interrupted:") == 1, line
    assert sampled.files_table.read_bytes() == catalog
    if command == "scan":
        monkeypatch.undo()
        again = runner.invoke(app, args[:3])
        assert again.exit_code == 0 and "(0 read, " in again.output  # the catalog from before: nothing new to read


def test_an_unexpected_error_is_one_line_and_logged(sampled: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    import curation.selection.filter as filtering

    def broken(*args: object, **kwargs: object) -> None:
        raise ValueError("a bug somewhere")

    monkeypatch.setattr(filtering, "judge_series", broken)
    out = runner.invoke(app, ["filter", "-w", str(sampled.root)])
    assert out.exit_code == 2 and "unexpected ValueError: a bug somewhere" in _one_line(out.output)
    assert "judge_series" not in out.output and "broken" in sampled.error_log.read_text()


def test_a_damaged_annotation_database_is_named(sampled: Workspace) -> None:
    sampled.database_file.write_bytes(b"this is not SQLite" * 100)
    out = runner.invoke(app, ["annotate", "status", "-w", str(sampled.root)])
    line = _one_line(out.output)
    assert out.exit_code == 2 and "the annotation database is damaged" in line and "restore annotations.sqlite" in line


def test_outside_a_workspace_the_log_goes_to_the_temporary_folder(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    import curation.labels.labelset as labelsets

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("label sets unreadable")

    monkeypatch.setattr(labelsets, "builtin_label_sets", broken)
    monkeypatch.setattr("ctcurate.cli.qa.builtin_label_sets", broken)
    out = runner.invoke(app, ["qa", "labelsets"])
    assert out.exit_code == 2 and "unexpected RuntimeError: label sets unreadable" in _one_line(out.output)
    assert str(Path(tempfile.gettempdir()) / "ctcurate-errors.log") in _one_line(out.output)


def test_inputs_are_checked_on_entry(sampled: Workspace, tmp_path: Path) -> None:
    from curation.errors import ConfigError
    from curation.workspace.settings_file import load_settings
    from datacard.split import _semver

    empty = tmp_path / "empty.toml"
    empty.write_text("\n  \n")
    with pytest.raises(ConfigError, match="the settings file is empty"):
        load_settings(empty)
    for bad in ("02.0.0", "1.01.0", "1.0"):
        with pytest.raises(Exception, match="without leading zeros"):
            _semver(bad)
    assert _semver("10.0.20") == (10, 0, 20)
    for size in ("0", "-5", "nan"):
        out = runner.invoke(app, ["release", "9.0.0", "-w", str(sampled.root), "--archive-mb", size])
        assert out.exit_code == 2 and "expected a size in MiB above 0" in _one_line(out.output), size
    out = runner.invoke(app, ["qa", "report", str(tmp_path / "no" / "such" / "path")])
    assert out.exit_code == 2 and "no such folder" in _one_line(out.output)


def test_one_writer_at_a_time(sampled: Workspace) -> None:
    """A second writing command is refused naming the holder, or waits with --wait; a dead holder's lock is
    taken over and said so."""
    import json
    import time

    from curation.workspace import lock_holder, workspace_lock

    with held_elsewhere(sampled, "ctcurate convert"):
        assert lock_holder(sampled)["command"] == "ctcurate convert"
        out = runner.invoke(app, ["filter", "-w", str(sampled.root)])
        line = _one_line(out.output)
        assert out.exit_code == 2 and "busy: 'ctcurate convert' (pid" in line
        assert "wait for it: 'ctcurate --wait COMMAND ...' (--wait before the command)" in line
    assert lock_holder(sampled) == {}
    with workspace_lock(sampled, "ctcurate split"), workspace_lock(sampled, "ctcurate split freeze"):
        assert lock_holder(sampled)["command"] == "ctcurate split"  # re-entered, not refused
    started = time.monotonic()
    with held_elsewhere(sampled, "ctcurate split", release_after_s=1.0):
        out = runner.invoke(app, ["--wait", "filter", "-w", str(sampled.root)])
    assert out.exit_code == 0, out.output
    assert time.monotonic() - started >= 0.5  # it waited for the holder
    sampled.lock_file.write_text(json.dumps({"host": __import__("socket").gethostname(), "pid": 2**22 + 12345,
                                             "command": "ctcurate release", "since": "earlier"}))
    import logging

    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    logging.getLogger("curation.workspace.lock").addHandler(handler)
    try:
        with workspace_lock(sampled, "ctcurate filter"):
            pass
    finally:
        logging.getLogger("curation.workspace.lock").removeHandler(handler)
    assert any("taking over the lock of 'ctcurate release'" in m for m in seen)
