"""Sources: checked before they are saved, kept as given (symlinks too), listed and removed."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from ctcurate.cli import app
from curation.catalog.scan import scan
from curation.errors import ScanError
from curation.workspace import Workspace
from curation.workspace.executor import SerialExecutor
from tests.cli_runner import CliRunner

runner = CliRunner()
SERIES = "dcm_qa_ct/In/Philips/S21570/S2010"


def test_a_source_reached_through_a_symlink_keeps_its_name(copy_series, tmp_path: Path) -> None:
    export = copy_series(SERIES)
    link = tmp_path / "pacs-mount"
    link.symlink_to(export, target_is_directory=True)
    ws = Workspace.create(tmp_path / "ws")
    result = scan(ws, [link], executor=SerialExecutor())
    files = pd.read_parquet(ws.files_table)
    assert ws.settings.sources == (str(link),) and result.n_files == len(files) > 20
    assert files["path"].str.startswith(str(link) + os.sep).all()
    assert files["resolved_path"].str.startswith(str(export.resolve()) + os.sep).all()
    assert (files["path"].map(os.path.realpath) == files["resolved_path"]).all()
    again = scan(ws, [export], executor=SerialExecutor())  # the same folder by its real path
    assert ws.settings.sources == (str(link),) and again.n_removed == 0 and again.n_reused == again.n_files


def test_bad_sources_are_refused_before_they_are_saved(copy_series, tmp_path: Path) -> None:
    export = copy_series(SERIES)
    ws = Workspace.create(tmp_path / "ws")
    typo = tmp_path / "exprot"
    out = runner.invoke(app, ["scan", str(typo), "-w", str(ws.root)])
    assert out.exit_code == 2 and "exprot: export folder not found; check the path (nothing was saved)" in \
        " ".join(out.output.split())
    assert ws.settings.sources == ()
    assert runner.invoke(app, ["scan", str(export), "-w", str(ws.root), "--workers", "1"]).exit_code == 0
    listing = runner.invoke(app, ["sources", "-w", str(ws.root)])
    assert listing.exit_code == 0 and str(export) in listing.output and "ok" in listing.output
    # a saved source gone missing stops a rescan instead of dropping its files from the catalog
    moved = tmp_path / "moved"
    shutil.move(export, moved)
    with pytest.raises(ScanError, match="this workspace's source is missing; mount it again, or remove it with "
                                        "'ctcurate sources --remove"):
        scan(ws, executor=SerialExecutor())
    assert len(pd.read_parquet(ws.files_table)) > 20
    listing = runner.invoke(app, ["sources", "-w", str(ws.root)])
    assert "missing" in listing.output
    removed = runner.invoke(app, ["sources", "-w", str(ws.root), "--remove", str(export)])
    assert removed.exit_code == 0 and ws.settings.sources == ()
    assert len(pd.read_parquet(ws.files_table)) == 0  # its files left the catalog at once
    again = runner.invoke(app, ["sources", "-w", str(ws.root), "--remove", str(export)])
    assert again.exit_code == 2 and "not a source of this workspace (sources: none)" in again.output
    result = scan(ws, [moved], executor=SerialExecutor())
    assert result.n_read == result.n_files > 20 and result.n_removed == 0 and ws.settings.sources == (str(moved),)


def test_a_file_given_as_the_export_is_refused_and_not_saved(copy_series, tmp_path: Path) -> None:
    """An export is a folder: a file (a README beside the export) was catalogued as not_dicom and saved."""
    import dataclasses

    from curation.catalog.scan import find_files

    readme = tmp_path / "README.md"
    readme.write_text("# not an export\n")
    ws = Workspace.create(tmp_path / "ws")
    out = runner.invoke(app, ["scan", str(readme), "-w", str(ws.root), "--workers", "1"])
    assert out.exit_code == 2
    assert out.output.strip().splitlines()[-1] == f"error: {readme}: not a folder; pass the export folder (the " \
                                                 "folder holding the DICOM files), not a file (nothing was saved)"
    assert ws.settings.sources == () and not ws.files_table.exists()
    with pytest.raises(ScanError, match="README.md: not a folder; pass the export folder"):
        find_files([readme])
    export = copy_series(SERIES)  # a folder still scans, and rescans from the settings
    assert runner.invoke(app, ["scan", str(export), "-w", str(ws.root), "--workers", "1"]).exit_code == 0
    assert runner.invoke(app, ["scan", "-w", str(ws.root), "--workers", "1"]).exit_code == 0
    # a file saved as a source before this check stops a rescan until it is removed
    ws.save_settings(dataclasses.replace(ws.settings, sources=(str(export), str(readme))))
    with pytest.raises(ScanError, match=f"README.md: this workspace's source is not a folder; remove it with "
                                        f"'ctcurate sources --remove {readme} -w {ws.root}'"):
        scan(ws, executor=SerialExecutor())
    assert runner.invoke(app, ["sources", "-w", str(ws.root), "--remove", str(readme)]).exit_code == 0
    assert ws.settings.sources == (str(export),) and scan(ws, executor=SerialExecutor()).n_files > 20


def test_the_scan_summary_counts_image_series_of_exams(copy_series, tmp_path: Path) -> None:
    """A DICOMDIR (DIRFILE) beside each exam is no patient, exam or series of its own."""
    export = copy_series("dcm_qa_ct/In/Philips")
    ws = Workspace.create(tmp_path / "ws")
    result = scan(ws, [export], executor=SerialExecutor())
    assert (result.n_patients, result.n_studies) == (1, 2)
    assert result.n_ct_exams == 2 and result.n_series == result.n_ct_series == 10
    out = runner.invoke(app, ["scan", "-w", str(ws.root), "--workers", "1"])
    assert "1 patient, 2 exams and 10 image series of any modality; 2 exams with CT series (10 CT series): the " \
           "sampling frame" in " ".join(out.output.split())


def test_an_unreadable_source_is_refused(copy_series, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """(Tests run as root, who reads everything: the permission answer is what a steward's account would get.)"""
    import curation.catalog.sources as sources

    export = copy_series(SERIES)
    ws = Workspace.create(tmp_path / "ws")
    monkeypatch.setattr(sources, "_can_read", lambda path, mode: False)
    out = runner.invoke(app, ["scan", str(export), "-w", str(ws.root)])
    assert out.exit_code == 2 and "export folder cannot be read (permission denied); give this user read access" \
        in " ".join(out.output.split())
    assert ws.settings.sources == ()


def test_a_folder_that_cannot_be_listed_is_recorded_and_the_scan_goes_on(copy_series, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib
    import json

    scanning = importlib.import_module("curation.catalog.scan")  # the module, not the function it exports

    export = copy_series(SERIES)
    locked = export / "locked"
    locked.mkdir()
    real_scandir = os.scandir

    def scandir(path):  # noqa: ANN001, ANN202 - the permission a steward's account would meet
        if str(path) == str(locked):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(scanning.os, "scandir", scandir)
    ws = Workspace.create(tmp_path / "ws")
    result = scan(ws, [export], executor=SerialExecutor())
    assert result.skipped_folders == (str(locked),) and result.n_files > 20
    assert json.loads(ws.skipped_folders_file.read_text()) == [str(locked)]



def test_scan_and_sample_count_the_same_ct_exams(copy_series, tmp_path: Path) -> None:
    from curation.selection.sample import sample

    export = copy_series("totalsegmentator/example_ct_dicom")
    ws = Workspace.create(tmp_path / "ws")
    result = scan(ws, [export], executor=SerialExecutor())
    assert (result.n_patients, result.n_studies, result.n_series, result.n_ct_exams) == (1, 1, 1, 1)
    assert sample(ws, n=0, seed=1).frame_size == result.n_ct_exams


def test_nested_sources_are_one_source(copy_series, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A folder inside a source was added as a second source: the sources listed its files twice, and removing it
    dropped them from the catalog although the outer source still held them."""
    import dataclasses
    import logging

    from curation.catalog.sources import remove_source

    export = copy_series(SERIES)
    inner = next(p for p in export.iterdir() if p.is_dir())
    ws = Workspace.create(tmp_path / "ws")
    first = scan(ws, [export], executor=SerialExecutor())
    with caplog.at_level(logging.WARNING):
        again = scan(ws, [inner], executor=SerialExecutor())
    assert ws.settings.sources == (str(export),) and again.n_reused == again.n_files == first.n_files
    assert f"{inner}: already scanned as part of the source {export}; not added apart" in caplog.text

    other = Workspace.create(tmp_path / "other")  # the other way round: the outer folder replaces the inner one
    scan(other, [inner], executor=SerialExecutor())
    with caplog.at_level(logging.WARNING):
        scan(other, [export], executor=SerialExecutor())
    assert other.settings.sources == (str(export),)
    assert f"{export}: holds the source(s) {inner}, which it replaces" in caplog.text

    # a workspace that saved both before: removing the inner one keeps the files the outer one holds
    ws.save_settings(dataclasses.replace(ws.settings, sources=(str(export), str(inner))))
    assert remove_source(ws, inner) == (str(export),)
    assert len(pd.read_parquet(ws.files_table)) == first.n_files


def test_an_empty_folder_is_refused_before_it_is_saved(copy_series, tmp_path: Path) -> None:
    """It was added with a warning and then failed the scan, staying a source that broke every later scan; now it is
    refused like a missing folder, with one line, and the workspace is as it was."""
    import dataclasses

    export, empty = copy_series(SERIES), tmp_path / "empty"
    empty.mkdir()
    ws = Workspace.create(tmp_path / "ws")
    out = runner.invoke(app, ["scan", str(empty), "-w", str(ws.root)])
    assert out.exit_code == 2 and "WARNING" not in out.output, out.output
    assert " ".join(out.output.split()) == (f"error: {empty}: no files in this folder; pass the export folder "
                                            "(nothing was scanned and no source was added)")
    assert ws.settings.sources == () and not ws.files_table.exists()
    with pytest.raises(ScanError, match=f"^{empty}: no files in this folder; .*nothing was scanned"):
        scan(ws, [export, empty], executor=SerialExecutor())  # with another folder: neither is scanned or added
    assert ws.settings.sources == () and not ws.files_table.exists()
    first = scan(ws, [export], executor=SerialExecutor())
    with pytest.raises(ScanError, match="no files in this folder"):
        scan(ws, [empty], executor=SerialExecutor())
    assert ws.settings.sources == (str(export),)
    assert scan(ws, executor=SerialExecutor()).n_reused == first.n_files  # later scans are not blocked
    # a workspace whose only source is empty (saved by an earlier version, or emptied since) says how to go on
    ws.save_settings(dataclasses.replace(ws.settings, sources=(str(empty),)))
    catalog = ws.files_table.read_bytes()
    with pytest.raises(ScanError, match=f"no files found in the workspace's sources; mount or fill the export folder, "
                                        f"or remove a wrong one with 'ctcurate sources --remove {empty} -w "):
        scan(ws, executor=SerialExecutor())
    assert ws.files_table.read_bytes() == catalog
