"""Enhanced (multi-frame) CT through scan, filter and convert: built from real classic series with highdicom's
legacy converter, it converts voxel for voxel like the classic series; a frame removed is missing_slices."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest

from curation.cases.convert import convert
from curation.image import read_nrrd
from curation.workspace.executor import SerialExecutor

highdicom = pytest.importorskip("highdicom")  # in the test extra: make test installs it
pytestmark = pytest.mark.filterwarnings("ignore:The string .* is unlikely to represent the intended person name")


ENHANCED_CT = "1.2.840.10008.5.1.4.1.1.2.1"


def _legacy_enhanced(folder: Path, out: Path, *, drop: int | None = None, sop_class: str | None = None) -> Path:
    """A Legacy Converted Enhanced CT of a classic series (highdicom), or with ``sop_class`` the same object
    stored as another enhanced class (Enhanced CT keeps the same functional groups)."""
    from highdicom.legacy import LegacyConvertedEnhancedCTImage

    paths = sorted(p for p in folder.iterdir() if p.is_file() and p.name != "DIRFILE")
    datasets = [pydicom.dcmread(p) for p in paths]
    for ds in datasets:  # real files: an empty SOP Class UID in the data set, JPEG 2000 pixel data
        ds.SOPClassUID = ds.SOPClassUID or ds.file_meta.MediaStorageSOPClassUID
        if ds.file_meta.TransferSyntaxUID.is_compressed:
            ds.decompress()
    datasets.sort(key=lambda ds: float(ds.ImagePositionPatient[2]))
    if drop is not None:
        del datasets[drop]
    image = LegacyConvertedEnhancedCTImage(legacy_datasets=datasets, series_instance_uid=highdicom.UID(),
                                           series_number=900, sop_instance_uid=highdicom.UID(), instance_number=1)
    if sop_class:
        image.SOPClassUID = image.file_meta.MediaStorageSOPClassUID = sop_class
    out.parent.mkdir(parents=True, exist_ok=True)
    image.save_as(out)
    return out


@pytest.mark.parametrize(("series", "sop_class"), [("dcm_qa_ct/In/Philips/S21570/S2010", None),
                                                   ("totalsegmentator/example_ct_dicom", None),
                                                   ("dcm_qa_ct/In/Philips/S21570/S2010", ENHANCED_CT)])
def test_an_enhanced_ct_converts_like_its_classic_series(series: str, sop_class: str | None, shared_data: Path,
                                                         copy_series, filtered_workspace, tmp_path: Path) -> None:
    classic_export = copy_series(series, "classic")
    enhanced_export = tmp_path / "enhanced"
    _legacy_enhanced(shared_data / series, enhanced_export / "series" / "enhanced.dcm", sop_class=sop_class)
    classic = filtered_workspace(classic_export, "classic_ws")
    enhanced = filtered_workspace(enhanced_export, "enhanced_ws")
    for ws in (classic, enhanced):
        exams = pd.read_parquet(ws.exams_table)
        assert exams["included"].all(), exams["primary_reason"].tolist()
        assert convert(ws, executor=SerialExecutor()).converted == ("s0001",)
    series_row = pd.read_parquet(enhanced.series_table).iloc[0]
    assert series_row["sop_class_uid"] == (sop_class or "1.2.840.10008.5.1.4.1.1.2.2")
    slices = [p for p in classic_export.rglob("*") if p.is_file() and p.name != "DIRFILE"]
    assert series_row["n_files"] == 1 and series_row["n_positions"] == len(slices)
    from curation.cases import read_case_metadata

    scanners = [read_case_metadata(ws, "s0001")["scanner"] for ws in (enhanced, classic)]
    for fact in ("kvp", "kernel", "manufacturer", "model"):  # kept among a legacy conversion's unassigned attributes
        assert scanners[0][fact] == scanners[1][fact], fact
    for name in (enhanced.ct_name(), enhanced.ct_name(1.5), enhanced.ct_name(3.0)):
        ours, theirs = read_nrrd(enhanced.case_dir("s0001") / name), read_nrrd(classic.case_dir("s0001") / name)
        assert np.array_equal(ours.array, theirs.array), name
        corners = [np.array(c) for c in ((0, 0, 0), np.array(ours.size) - 1)]
        for corner in corners:
            assert np.allclose(ours.index_to_world(corner[np.newaxis]), theirs.index_to_world(corner[np.newaxis]),
                               atol=1e-3), name


def test_an_enhanced_ct_with_a_frame_removed_is_missing_slices(shared_data: Path, filtered_workspace,
                                                               tmp_path: Path) -> None:
    export = tmp_path / "export"
    _legacy_enhanced(shared_data / "dcm_qa_ct/In/Philips/S21570/S2010", export / "series" / "gap.dcm", drop=14)
    ws = filtered_workspace(export)
    verdicts = pd.read_parquet(ws.verdicts_table)
    assert len(verdicts) == 1 and not verdicts["included"].iloc[0]
    assert verdicts["primary_reason"].iloc[0] == "missing_slices"


def test_a_localizer_frame_type_is_a_localizer(shared_data: Path, filtered_workspace, tmp_path: Path) -> None:
    export = tmp_path / "export"
    path = _legacy_enhanced(shared_data / "dcm_qa_ct/In/Philips/S21570/S2010", export / "series" / "scout.dcm")
    ds = pydicom.dcmread(path)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
    ds.save_as(path)
    ws = filtered_workspace(export)
    assert pd.read_parquet(ws.verdicts_table)["primary_reason"].iloc[0] == "localizer"


def test_pacs_metadata_of_an_enhanced_ct_holds_its_frames(shared_data: Path, tmp_path: Path) -> None:
    """Judged from DICOMweb metadata before retrieval, an enhanced CT has the positions of all its frames."""
    import json

    from curation.dicom.header import header_from_dataset, read_header

    path = _legacy_enhanced(shared_data / "dcm_qa_ct/In/Philips/S21570/S2010", tmp_path / "enhanced.dcm")
    remote = header_from_dataset(pydicom.dcmread(path, stop_before_pixels=True), "/not/yet/here.dcm")
    local = read_header(path)
    assert remote["status"] == local["status"] == "ok" and local["number_of_frames"] == 28
    assert json.loads(remote["frame_positions"]) == json.loads(local["frame_positions"])
    assert len(json.loads(local["frame_positions"])) == 28


def test_a_series_without_preamble_or_file_meta_converts_like_the_original(shared_data: Path, copy_series,
                                                                          filtered_workspace) -> None:
    """Files written as bare data sets (no 128-byte preamble, no DICM, no file meta), as some tools do."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset

    series = "dcm_qa_ct/In/Philips/S21570/S2010"
    original = filtered_workspace(copy_series(series, "original"), "original_ws")
    bare_export = copy_series(series, "bare")
    for path in (p for p in (bare_export / "S2010").iterdir() if p.name != "DIRFILE"):
        body = DicomBytesIO()
        body.is_little_endian, body.is_implicit_VR = True, False
        write_dataset(body, pydicom.dcmread(path))  # the data set alone: no preamble, no DICM, no file meta
        path.write_bytes(body.getvalue())
        assert path.read_bytes()[:2] == b"\x08\x00"
    bare = filtered_workspace(bare_export, "bare_ws")
    assert pd.read_parquet(bare.exams_table)["included"].all()
    for ws in (original, bare):
        assert convert(ws, executor=SerialExecutor()).converted == ("s0001",)
    ours, theirs = (read_nrrd(ws.case_dir("s0001") / ws.ct_name()) for ws in (bare, original))
    assert np.array_equal(ours.array, theirs.array) and np.allclose(ours.origin, theirs.origin)
