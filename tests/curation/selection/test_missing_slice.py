"""Acceptance 3: a deleted middle file is reported at its position; junk files are recorded."""

import json
import os
from pathlib import Path

import pandas as pd
import pydicom
import pytest

from curation.dicom.geometry import slice_normal


def test_deleted_middle_slice_is_reported_at_its_position(copy_series, filtered_workspace) -> None:
    export = copy_series("dcm_qa_ct/In/Philips/S21570/S2010")
    folder = export / "S2010"
    slices = []
    for path in folder.iterdir():
        if path.name == "DIRFILE":
            continue
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        normal = slice_normal([float(v) for v in ds.ImageOrientationPatient])
        slices.append((float(normal @ [float(v) for v in ds.ImagePositionPatient]), path))
    slices.sort()
    position, victim = slices[len(slices) // 2]
    victim.unlink()
    ws = filtered_workspace(export)
    verdicts = pd.read_parquet(ws.verdicts_table)
    series = pd.read_parquet(ws.series_table)
    key = series.loc[series["n_files"] == len(slices) - 1, "series_key"].iloc[0]
    row = verdicts.set_index("series_key").loc[key]
    assert not row["included"] and "missing_slices" in row["reasons"].split(";")
    finding = next(f for f in json.loads(row["findings"]) if f["code"] == "missing_slices")
    gap = finding["details"]["gaps"][0]
    assert gap["from_mm"] < position < gap["to_mm"]
    assert gap["gap_mm"] == pytest.approx(10.0, abs=0.01) and gap["missing"] == 1
    assert f"between {gap['from_mm']:.2f} and {gap['to_mm']:.2f} mm" in finding["message"]


def test_random_and_truncated_files_are_recorded(copy_series, filtered_workspace, shared_data: Path) -> None:
    export = copy_series("totalsegmentator/example_ct_dicom")
    (export / "random.bin").write_bytes(os.urandom(50_000))
    source = next((shared_data / "totalsegmentator/example_ct_dicom").iterdir())
    (export / "truncated.dcm").write_bytes(source.read_bytes()[:40_000])
    ws = filtered_workspace(export)
    files = pd.read_parquet(ws.files_table).set_index("path")
    assert files.loc[str(export / "random.bin"), "status"] == "not_dicom"
    assert files.loc[str(export / "truncated.dcm"), "status"] == "truncated"
    verdicts = pd.read_parquet(ws.verdicts_table).set_index("series_key")
    assert verdicts.loc[files.loc[str(export / "random.bin"), "series_key"], "reasons"] == "unreadable"
    exams = pd.read_parquet(ws.exams_table)
    assert len(exams) == 1


@pytest.mark.parametrize("cut", [900, 3000, 100_000])
def test_a_slice_cut_short_stays_in_its_series_and_is_named(copy_series, filtered_workspace, cut: int) -> None:
    """Cut inside its header (before or after its series UID) or inside its pixels, a slice keeps the facts read
    before the cut, stays in its series, and the series is excluded as corrupt_file naming the file and byte."""
    export = copy_series("dcm_qa_ct/In/Philips/S21570/S2010")
    files = sorted(p for p in (export / "S2010").iterdir() if p.name != "DIRFILE")
    victim = files[len(files) // 2]
    victim.write_bytes(victim.read_bytes()[:cut])
    ws = filtered_workspace(export)
    catalog = pd.read_parquet(ws.files_table).set_index("path")
    assert catalog.loc[str(victim), "status"] == "truncated"
    key = catalog.loc[str(victim), "series_key"]
    siblings = catalog.loc[[str(p) for p in files if p != victim], "series_key"]
    assert (siblings == key).all()  # one series, with the damaged file in it
    verdict = pd.read_parquet(ws.verdicts_table).set_index("series_key").loc[key]
    assert not verdict["included"] and verdict["reasons"].split(";")[0] == "corrupt_file"
    finding = next(f for f in json.loads(verdict["findings"]) if f["code"] == "corrupt_file")
    assert str(victim) in finding["message"] and "byte" in finding["message"]


def test_a_file_that_is_not_dicom_is_named_in_its_verdict(copy_series, filtered_workspace) -> None:
    export = copy_series("dcm_qa_ct/In/Philips/S21570/S2010")
    stray = export / "S2010" / "report.pdf"
    stray.write_bytes(b"%PDF-1.4 not an image")
    ws = filtered_workspace(export)
    files = pd.read_parquet(ws.files_table).set_index("path")
    verdict = pd.read_parquet(ws.verdicts_table).set_index("series_key").loc[files.loc[str(stray), "series_key"]]
    message = json.loads(verdict["findings"])[0]["message"]
    assert verdict["reasons"] == "unreadable" and message.startswith(f"{stray}: cannot be read as DICOM: not a DICOM")


def test_a_file_cut_between_two_elements_reads_as_header_only_and_says_so(copy_series, filtered_workspace) -> None:
    """Cut exactly at an element boundary (byte 400 here), a file cannot be told from a header-only object: its
    status is no_pixel_data and the message says it may be cut short, naming the file."""
    export = copy_series("dcm_qa_ct/In/Philips/S21570/S2010")
    victim = sorted(p for p in (export / "S2010").iterdir() if p.name != "DIRFILE")[14]
    victim.write_bytes(victim.read_bytes()[:400])
    ws = filtered_workspace(export)
    catalog = pd.read_parquet(ws.files_table).set_index("path")
    assert catalog.loc[str(victim), "status"] == "no_pixel_data"
    assert "or a file cut short at byte 400" in catalog.loc[str(victim), "detail"]
    verdict = pd.read_parquet(ws.verdicts_table).set_index("series_key").loc[catalog.loc[str(victim), "series_key"]]
    message = next(f["message"] for f in json.loads(verdict["findings"]) if f["code"] == "no_pixel_data")
    assert str(victim) in message and "cut short at byte 400" in message



def test_a_slice_without_rescale_is_excluded_not_converted_wrong(copy_series, filtered_workspace) -> None:
    """One slice lacking RescaleIntercept/Slope would come out 1024 HU too bright: the series is excluded."""
    from curation.dicom.series import load_series
    from curation.errors import ConversionError

    export = copy_series("dcm_qa_ct/In/Philips/S21570/S2010")
    files = sorted(p for p in (export / "S2010").iterdir() if p.name != "DIRFILE")
    ds = pydicom.dcmread(files[7])
    del ds.RescaleIntercept, ds.RescaleSlope
    ds.save_as(files[7])
    ws = filtered_workspace(export)
    verdicts = pd.read_parquet(ws.verdicts_table)
    verdict = verdicts[verdicts["n_files"] == len(files)].iloc[0] if "n_files" in verdicts else verdicts.iloc[0]
    assert verdict["primary_reason"] == "missing_rescale"
    assert "1 of 28 file(s) lack RescaleIntercept/RescaleSlope" in json.loads(verdict["findings"])[0]["message"]
    with pytest.raises(ConversionError, match="no RescaleIntercept/RescaleSlope while other slices"):
        load_series([str(p) for p in files])
