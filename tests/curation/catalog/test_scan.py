import os
import shutil
import sys
from pathlib import Path

import pandas as pd
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


def test_rescan_follows_links_to_their_current_files(copy_series, tmp_path: Path) -> None:
    store = copy_series("dicom2nifti/failing/sliceincrement/001", name="store") / "001"
    export = tmp_path / "export"
    export.mkdir()
    slices = sorted(store.iterdir())
    for i, target in enumerate(slices[:3]):
        (export / f"link{i}.dcm").symlink_to(target)
    (export / "dangling.dcm").symlink_to(store / "not-yet.dcm")
    ws = Workspace.create(tmp_path / "ws")
    first = scan(ws, [export], executor=SerialExecutor())
    assert (first.n_files, first.n_read) == (3, 3)  # a link to nothing is no file
    (export / "link0.dcm").unlink()
    (export / "link0.dcm").symlink_to(slices[3])  # the same name, another file
    shutil.copy2(slices[3], store / "not-yet.dcm")
    again = scan(ws, executor=SerialExecutor())
    files = pd.read_parquet(ws.files_table).set_index("path")
    assert (again.n_files, again.n_read, again.n_reused) == (4, 2, 2)
    assert files.loc[str(export / "link0.dcm"), "resolved_path"] == str(slices[3].resolve())
    assert files.loc[str(export / "link1.dcm"), "resolved_path"] == str(slices[1].resolve())
    assert files.loc[str(export / "dangling.dcm"), "status"] == "ok"


def test_scan_without_sources(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "ws")
    with pytest.raises(ScanError, match="no export folder to scan"):
        scan(ws, executor=SerialExecutor())


def test_scan_empty_folder(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "ws")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ScanError, match="no files in this folder; pass the export folder"):
        scan(ws, [tmp_path / "empty"], executor=SerialExecutor())
    assert ws.settings.sources == ()


def test_the_catalog_does_not_depend_on_batches_or_workers(shared_data: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers return a typed table per batch; joined in path order they make the table one batch would."""
    import pandas as pd

    from curation.workspace.executor import LocalExecutor

    export = shared_data / "dcm_qa_ct"
    one = Workspace.create(tmp_path / "one")
    scan(one, [export], executor=SerialExecutor())
    monkeypatch.setattr(sys.modules["curation.catalog.scan"], "BATCH_SIZE", 7)
    monkeypatch.setattr(sys.modules["curation.catalog.scan"], "IN_PROCESS_BELOW", 0)  # these few files too
    many = Workspace.create(tmp_path / "many")
    with LocalExecutor(2) as pool:
        scan(many, [export], executor=pool)
        assert pool.running
    for table in ("files_table", "series_table"):
        first, second = (pd.read_parquet(getattr(ws, table)) for ws in (one, many))
        pd.testing.assert_frame_equal(first, second)


def test_few_files_are_read_in_the_command_unless_the_workers_run(shared_data: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Starting a pool's workers costs more than a second worker saves on a few thousand headers: those are read
    in the command's process, unless the workers run already (then they read them)."""
    from curation.workspace.executor import LocalExecutor

    module = sys.modules["curation.catalog.scan"]
    export = shared_data / "dcm_qa_ct"
    ws = Workspace.create(tmp_path / "ws")
    with LocalExecutor(2) as pool:
        first = scan(ws, [export], executor=pool, full=True)
        assert not pool.running and first.n_read == first.n_files  # read here: no worker was started
        monkeypatch.setattr(module, "IN_PROCESS_BELOW", 0)
        scan(ws, executor=pool, full=True)
        assert pool.running  # more files than the bound: the workers read them
        read_here: list[int] = []
        original = module.read_header_table

        def recorded(paths: list[str]) -> object:
            read_here.append(len(paths))
            return original(paths)

        monkeypatch.setattr(module, "IN_PROCESS_BELOW", first.n_files + 1)
        monkeypatch.setattr(module, "read_header_table", recorded)
        again = scan(ws, executor=pool, full=True)
        assert not read_here and again.n_read == first.n_files  # the workers run: they read even a few files
        scan(ws, executor=SerialExecutor(), full=True)
        assert sum(read_here) == first.n_files  # (what the check above would have seen had they been read here)


def test_records_of_different_makings_share_one_table() -> None:
    """A record with a column the others lack: every column is there, empty where a record has no value."""
    from curation.catalog.scan import records_to_frame
    from curation.dicom.header import new_record

    plain, extra = new_record("/e/a.dcm"), {**new_record("/e/b.dcm"), "pacs_note": "gone", "n_announced": 3}
    plain.update(rows=512, patient_id="P1")
    files = records_to_frame([plain, extra])
    assert files["pacs_note"].tolist() == ["", "gone"] and files["patient_id"].tolist() == ["P1", ""]
    assert files["rows"].dtype == "float64" and files["size"].dtype == "int64"


def test_one_study_uid_under_two_patients_is_an_exam_each_and_excluded(copy_series, filtered_workspace) -> None:
    """A re-exported exam under another Patient ID (same UIDs) is neither merged into one exam nor kept."""
    import pandas as pd
    import pydicom

    export = copy_series("dcm_qa_ct/In/Philips/S21570/S2010", "export/first")
    copy_series("dcm_qa_ct/In/Philips/S21570/S2010", "export/second")
    for path in sorted((export.parent / "second").rglob("*")):
        if path.is_file() and path.name != "DIRFILE":
            ds = pydicom.dcmread(path)
            ds.PatientID = "SOMEONE-ELSE"
            ds.save_as(path)
    ws = filtered_workspace(export.parent)
    series = pd.read_parquet(ws.series_table)
    ct = series[series["modality"] == "CT"]
    assert ct["study_key"].nunique() == 2 and ct["patient_key"].nunique() == 2
    assert set(ct["study_uid_patients"]) == {2}
    verdicts = pd.read_parquet(ws.verdicts_table).set_index("series_key").loc[ct["series_key"]]
    assert set(verdicts["primary_reason"]) == {"shared_study_uid"}, verdicts["primary_reason"].tolist()
    again = scan(ws, executor=SerialExecutor())
    assert again.n_shared_study_uids == 1 and again.n_studies == 2
    from ctcurate.cli import app
    from tests.cli_runner import CliRunner

    out = CliRunner().invoke(app, ["scan", "-w", str(ws.root), "--workers", "1"])
    assert out.exit_code == 0
    assert "1 Study UID(s) found under more than one patient" in " ".join(out.output.split())


def test_a_second_copy_of_an_export_changes_no_case(copy_series, filtered_workspace) -> None:
    """The same export copied under another folder: the first folder keeps its series, the copy is excluded as
    'second_copy', and the converted case stays (no withdrawal, no new case)."""
    import shutil

    import pandas as pd

    from curation.cases.convert import convert
    from curation.selection.filter import run_filter

    export = copy_series("dcm_qa_ct/In/Philips/S21570/S2010", "export/a")
    ws = filtered_workspace(export.parent)
    before = pd.read_parquet(ws.exams_table)
    assert convert(ws, executor=SerialExecutor()).converted == ("s0001",)
    shutil.copytree(export, export.parent / "b")
    scan(ws, executor=SerialExecutor())
    series = pd.read_parquet(ws.series_table)
    ct = series[series["modality"] == "CT"].set_index("folder")
    original, copy = ct.loc[str(export / "S2010")], ct.loc[str(export.parent / "b" / "S2010")]
    assert original["series_key"] == before["chosen_series_key"].iloc[0] and original["copy_of"] == ""
    assert copy["copy_of"] == original["series_key"]
    result = run_filter(ws)
    verdicts = pd.read_parquet(ws.verdicts_table).set_index("series_key")
    assert verdicts.loc[copy["series_key"], "primary_reason"] == "second_copy"
    assert result.n_included_exams == 1 and not result.withdrawn
    assert convert(ws, executor=SerialExecutor()).converted == ()
