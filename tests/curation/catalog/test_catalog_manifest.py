"""Acceptance 2: scan agrees with the shared data's manifest; filter gives the expected verdicts."""

import json
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from curation.catalog.scan import scan
from curation.selection.filter import run_filter
from curation.selection.sample import sample
from curation.workspace.layout import Workspace


@pytest.fixture(scope="module")
def shared_ws(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    ws = Workspace.create(tmp_path_factory.mktemp("shared") / "ws")
    from curation.workspace.executor import SerialExecutor

    scan(ws, [shared_data], executor=SerialExecutor())
    sample(ws, n=0, seed=3)
    run_filter(ws)
    return ws


def _manifest(shared_data: Path) -> list[dict]:
    return json.loads((shared_data / "MANIFEST_series.json").read_text())["series"]


def _series_for(ws: Workspace, shared_data: Path, entry: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    files = pd.read_parquet(ws.files_table)
    series = pd.read_parquet(ws.series_table)
    folder = shared_data / entry["folder"]
    if "..." in entry["files"]:
        wanted = files[files["folder"] == str(folder)]
        wanted = wanted[wanted["series_uid"] == entry["series_uid"]]
    else:
        wanted = files[files["path"].isin([str(shared_data / f) for f in entry["files"]])]
    return wanted, series[series["series_key"].isin(set(wanted["series_key"]))]


def test_every_file_has_a_verdict(shared_ws: Workspace, shared_data: Path) -> None:
    files = pd.read_parquet(shared_ws.files_table)
    verdicts = pd.read_parquet(shared_ws.verdicts_table)
    assert len(files) == sum(1 for p in shared_data.rglob("*") if p.is_file())
    merged = files.merge(verdicts, on="series_key", how="left")
    assert merged["included"].notna().all()
    excluded = merged[~merged["included"].astype(bool)]
    assert (excluded["reasons"] != "").all()


def test_ct_series_agree_with_manifest(shared_ws: Workspace, shared_data: Path) -> None:
    checked = 0
    for entry in _manifest(shared_data):
        if entry["modality"] != "CT":
            continue
        files, series = _series_for(shared_ws, shared_data, entry)
        assert len(files) == entry["n_files"], entry["folder"]
        # the files of one manifest group are never mixed with other files
        assert series["n_files"].sum() == entry["n_files"], entry["folder"]
        gaps = entry.get("gaps_along_normal_mm")
        if gaps and set(gaps) != {"0.0"} and entry["sop_class"] == "CT Image Storage":
            assert len(series) == 1, entry["folder"]
            row = series.iloc[0]
            found = Counter(f"{round(g, 3)}" for g in json.loads(row["gaps"]))
            assert found == Counter({k: v for k, v in gaps.items()}), entry["folder"]
            angle = entry.get("angle_ipp_line_vs_normal_deg")
            if angle is not None:
                assert row["tilt_deg"] == pytest.approx(angle, abs=0.1), entry["folder"]
        checked += 1
    assert checked >= 25


def _reasons(ws: Workspace, shared_data: Path, folder: str) -> list[set[str]]:
    verdicts = pd.read_parquet(ws.verdicts_table)
    series = pd.read_parquet(ws.series_table)
    merged = verdicts.merge(series[["series_key", "folder", "modality"]], on="series_key")
    rows = merged[(merged["folder"] == str(shared_data / folder)) & (merged["modality"] == "CT")]
    return [set(r.split(";")) - {""} for r in rows["reasons"]]


def test_expected_verdicts(shared_ws: Workspace, shared_data: Path) -> None:
    ge = _reasons(shared_ws, shared_data, "dcm_qa_ct/In/GE")
    assert len(ge) == 1 and {"gantry_tilt", "inconsistent_spacing"} <= ge[0]
    for folder in ("dicom2nifti/failing/sliceincrement/001", "dicom2nifti/failing/sliceincrement/002"):
        assert "missing_slices" in _reasons(shared_ws, shared_data, folder)[0]
    assert "single_position" in _reasons(shared_ws, shared_data, "dicom2nifti/failing/notavolume/001")[0]
    for study in ("S21570", "S21610"):
        assert "localizer" in _reasons(shared_ws, shared_data, f"dcm_qa_ct/In/Philips/{study}/S1000")[0]
        for reasons in _reasons(shared_ws, shared_data, f"dcm_qa_ct/In/Philips/{study}/S4010"):
            assert {"secondary_capture", "screen_capture"} <= reasons
    assert _reasons(shared_ws, shared_data, "dcm_qa_ct/In/Philips/S21610/S2010")[0] == {"gantry_tilt"}
    assert _reasons(shared_ws, shared_data, "totalsegmentator/example_ct_dicom") == [set()]
    assert _reasons(shared_ws, shared_data, "dcm_qa_ct/In/Philips/S21570/S2010") == [set()]


def test_missing_slice_message_names_position(shared_ws: Workspace, shared_data: Path) -> None:
    verdicts = pd.read_parquet(shared_ws.verdicts_table)
    series = pd.read_parquet(shared_ws.series_table)
    key = series.loc[series["folder"] == str(shared_data / "dicom2nifti/failing/sliceincrement/001"), "series_key"]
    findings = json.loads(verdicts.set_index("series_key").loc[key.iloc[0], "findings"])
    missing = next(f for f in findings if f["code"] == "missing_slices")
    assert missing["details"]["gaps"][0]["gap_mm"] == pytest.approx(10.0, abs=0.01)
    assert "about 1 slice(s) missing" in missing["message"]


def test_exam_flow_figure(shared_ws: Workspace) -> None:
    assert (shared_ws.figures_dir / "exclusion_flow.png").stat().st_size > 1000
    svg = (shared_ws.figures_dir / "exclusion_flow.svg").read_text()
    assert "<svg" in svg
    exams = pd.read_parquet(shared_ws.exams_table)
    assert exams["included"].sum() == 2
    assert (exams.loc[~exams["included"], "primary_reason"] != "").all()


def test_derived_reformats_and_secondary_captures_are_told_apart(shared_ws: Workspace, shared_data: Path) -> None:
    """A CT Image Storage reformat (DERIVED\\SECONDARY) is derived_image; a Secondary Capture names its SOP class
    and modality by name, not as a UID."""
    files = pd.read_parquet(shared_ws.files_table)
    verdicts = pd.read_parquet(shared_ws.verdicts_table).set_index("series_key")

    def verdict(name: str) -> pd.Series:
        key = files.loc[files["path"] == str(shared_data / "fo_dicom" / name), "series_key"].iloc[0]
        return verdicts.loc[key]

    reformat = verdict("D_CLUNIE_CT1_RLE_FRAGS.dcm")
    assert "derived_image" in reformat["reasons"].split(";") and "secondary_capture" not in reformat["reasons"]
    message = next(f["message"] for f in json.loads(reformat["findings"]) if f["code"] == "derived_image")
    assert "stored as CT Image Storage" in message and "DERIVED" in message
    capture = verdict("GH1728.dcm")
    message = next(f["message"] for f in json.loads(capture["findings"]) if f["code"] == "secondary_capture")
    assert message.startswith("Secondary Capture Image Storage object (modality CT)") and "1.2.840" not in message
