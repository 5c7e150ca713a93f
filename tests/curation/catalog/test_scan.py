import os
from pathlib import Path

import pytest

from curation.catalog.scan import scan
from curation.errors import ScanError
from curation.workspace.executor import SerialExecutor
from curation.workspace.layout import Workspace


def test_rescan_reads_only_changed_files(copy_series, tmp_path: Path) -> None:
    export = copy_series("dicom2nifti/failing/sliceincrement/001")
    ws = Workspace.create(tmp_path / "ws")
    first = scan(ws, [export], executor=SerialExecutor())
    assert (first.n_files, first.n_read, first.n_reused) == (4, 4, 0)
    again = scan(ws, executor=SerialExecutor())  # sources come from the settings now
    assert (again.n_read, again.n_reused) == (0, 4)
    changed = sorted((export / "001").iterdir())[0]
    os.utime(changed, ns=(changed.stat().st_atime_ns, changed.stat().st_mtime_ns + 10**9))
    (export / "001" / "junk.txt").write_text("not dicom")
    third = scan(ws, executor=SerialExecutor())
    assert (third.n_files, third.n_read, third.n_reused) == (5, 2, 3)
    assert third.statuses == {"ok": 4, "not_dicom": 1}


def test_scan_without_sources(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "ws")
    with pytest.raises(ScanError, match="no export folder to scan"):
        scan(ws, executor=SerialExecutor())


def test_scan_empty_folder(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "ws")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ScanError, match="no files found"):
        scan(ws, [tmp_path / "empty"], executor=SerialExecutor())
