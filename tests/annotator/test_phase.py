"""Contrast phase from HU in segmented structures, with the DICOM contrast tags as a prior (real CT + labels)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from annotator.phase import estimate_case_phase, estimate_phase, measure_hu, phase_prior
from ctcurate.cli import app
from curation import Volume, load_label_set, read_nrrd, read_volume
from curation.annotation.revisions import RevisionStore
from curation.cases.casemeta import read_case_metadata, update_case_metadata
from curation.cases.convert import convert
from curation.catalog.grouping import _contrast_delays, _seconds
from curation.errors import ModelError, WorkspaceError
from curation.workspace.executor import SerialExecutor
from tests.cli_runner import CliRunner

V2 = load_label_set("total_v2")
FLAT = {p: 0.25 for p in phase_prior("", "")}


@pytest.fixture(scope="module")
def native_pair(ts: Path) -> tuple[np.ndarray, np.ndarray]:
    ct = read_volume(ts / "example_ct.nii.gz").array.astype(np.float32)
    labels = read_volume(ts / "seg_v2_total117" / "example_seg_fast_force_split.nii.gz").array
    return ct, labels


def _enhance(ct: np.ndarray, labels: np.ndarray, added: dict[str, float]) -> np.ndarray:
    out = ct.copy()
    for name, hu in added.items():
        out[labels == V2.by_name(name).index] += hu
    return out


def test_unenhanced_real_ct_is_native(native_pair) -> None:
    ct, labels = native_pair
    estimate = estimate_phase(ct, labels, V2, phase_prior("", ""))
    assert estimate.phase == "native" and estimate.confidence > 0.99
    assert 35 <= estimate.hu["aorta"] <= 55 and set(estimate.hu) >= {"aorta", "liver", "urinary_bladder"}


def test_enhancement_patterns_give_their_phase(native_pair) -> None:
    ct, labels = native_pair
    arterial = _enhance(ct, labels, {"aorta": 260, "portal_vein_and_splenic_vein": 80, "inferior_vena_cava": 25,
                                     "kidney_left": 140, "kidney_right": 140, "liver": 25, "spleen": 80})
    portal = _enhance(ct, labels, {"aorta": 120, "portal_vein_and_splenic_vein": 130, "inferior_vena_cava": 90,
                                   "kidney_left": 150, "kidney_right": 150, "liver": 60, "spleen": 75})
    late = _enhance(ct, labels, {"aorta": 70, "portal_vein_and_splenic_vein": 70, "inferior_vena_cava": 65,
                                 "kidney_left": 120, "kidney_right": 120, "liver": 45, "spleen": 55,
                                 "urinary_bladder": 250})
    for volume, expected in ((arterial, "arterial"), (portal, "portal_venous"), (late, "late")):
        estimate = estimate_phase(volume, labels, V2, FLAT)
        assert estimate.phase == expected and estimate.confidence > 0.8, (expected, estimate.posterior)


def test_one_badly_segmented_structure_does_not_decide(native_pair) -> None:
    ct, labels = native_pair
    wrong_bladder = _enhance(ct, labels, {"urinary_bladder": 400})  # e.g. the model took bone for bladder
    assert estimate_phase(wrong_bladder, labels, V2, phase_prior("", "")).phase == "native"


def test_without_structures_the_phase_stays_unknown(native_pair) -> None:
    ct, _ = native_pair
    estimate = estimate_phase(ct, np.zeros(ct.shape, np.uint8), V2)
    assert estimate.phase is None and estimate.confidence is None
    assert estimate.to_metadata()["phase"] is None
    with pytest.raises(ModelError, match=r"CT shape \(112, 101, 122\) and label shape \(2, 2, 2\) differ"):
        measure_hu(ct, np.zeros((2, 2, 2), np.uint8), V2)


def test_prior_from_the_dicom_tags() -> None:
    assert phase_prior("", "")["native"] == pytest.approx(0.4)
    assert phase_prior("NONE", "")["native"] == pytest.approx(0.4)
    assert phase_prior("Iomeron 400", "IV")["native"] == pytest.approx(0.05)
    assert phase_prior("Gastrografin", "ORAL")["native"] == pytest.approx(0.4)  # oral only: the vessels are native
    assert max(phase_prior("APPLIED", "", 35.0).items(), key=lambda kv: kv[1])[0] == "arterial"
    assert max(phase_prior("APPLIED", "", 80.0).items(), key=lambda kv: kv[1])[0] == "portal_venous"
    assert max(phase_prior("", "", 300.0).items(), key=lambda kv: kv[1])[0] == "late"
    assert phase_prior("APPLIED", "", 0.0)["native"] == pytest.approx(0.05)  # start time copied from the scan


def test_dicom_times_give_the_contrast_delay() -> None:
    assert _seconds("140216.694022") == pytest.approx(50536.694022)
    assert _seconds("1402") == 14 * 3600 + 2 * 60 and np.isnan(_seconds("")) and np.isnan(_seconds("14:02"))
    files = pd.DataFrame({"series_key": ["night", "night", "apart"],
                          "contrast_start_time": ["235930", "235930", "080000"],
                          "acquisition_time": ["000040", "000050", "170000"]})
    delays = _contrast_delays(files)  # per series: over midnight, and none for tags hours apart
    assert delays["night"] == pytest.approx(75.0) and np.isnan(delays.get("apart", np.nan))


def test_real_dicom_series_is_portal_venous(copy_series, filtered_workspace, ts: Path) -> None:
    """The DICOM example: contrast tagged, about 96 s after the bolus start; its real labels as a revision."""
    ws = filtered_workspace(copy_series("totalsegmentator/example_ct_dicom"))
    assert convert(ws, executor=SerialExecutor()).converted == ("s0001",)
    contrast = read_case_metadata(ws, "s0001")["contrast"]
    assert contrast["tagged"] and contrast["delay_s"] == pytest.approx(96, abs=1)
    ct = read_nrrd(ws.case_dir("s0001") / "ct.nrrd")
    seg = read_volume(ts / "seg_v2_total117" / "example_seg_dicom.nii.gz")
    on_ct = sitk.Resample(seg.to_sitk(), ct.to_sitk(), sitk.Transform(), sitk.sitkNearestNeighbor, 0)
    labels = Volume(sitk.GetArrayFromImage(on_ct).astype(np.uint8), ct.spacing, ct.origin, ct.direction)
    store = RevisionStore(ws)
    store.add("s0001", {"native": labels}, V2, author="TotalSegmentator", kind="model", parent=None)
    result = CliRunner().invoke(app, ["phase", "-w", str(ws.root)])
    assert result.exit_code == 0, result.output
    assert "portal_venous" in result.output
    stored = read_case_metadata(ws, "s0001")["contrast"]
    assert stored["phase"] == "portal_venous" and stored["phase_confidence"] >= 0.8 and stored["phase_revision"] == 0
    assert stored["phase_evidence"]["median_hu"]["aorta"] == pytest.approx(153, abs=5)
    meta = pd.read_parquet(ws.meta_table)
    assert meta.loc[0, "contrast_phase"] == "portal_venous" and meta.loc[0, "contrast_phase_confidence"] >= 0.8
    csv = ws.meta_csv.read_text()
    assert "contrast_phase" in csv.splitlines()[0] and "140216" not in csv  # the times themselves stay private
    # without the delay, the HU alone still lean to portal venous, less sure
    update_case_metadata(ws, "s0001", "contrast", {"delay_s": None})
    assert estimate_case_phase(ws, "s0001").confidence < 0.8


def test_case_metadata_errors(tmp_path: Path) -> None:
    from curation import Workspace

    ws = Workspace.create(tmp_path / "ws")
    with pytest.raises(WorkspaceError, match="s0009/case.json: case metadata not found; run 'ctcurate convert'"):
        read_case_metadata(ws, "s0009")
    ws.case_dir("s0001").mkdir(parents=True)
    (ws.case_dir("s0001") / "case.json").write_text("{broken")
    with pytest.raises(WorkspaceError, match="s0001/case.json: not valid JSON"):
        update_case_metadata(ws, "s0001", "contrast", {"phase": "late"})
    (ws.case_dir("s0001") / "case.json").write_text(json.dumps({"case_id": "s0001"}))
    with pytest.raises(ModelError, match="case s0001: no segmentation revision to measure"):
        estimate_case_phase(ws, "s0001")


def test_a_rerun_adds_the_phase_a_killed_run_did_not_store(demo_ws) -> None:
    from annotator.presegment import presegment

    meta = read_case_metadata(demo_ws, "s0001")
    contrast = {k: v for k, v in meta["contrast"].items() if not k.startswith("phase")}
    update_case_metadata(demo_ws, "s0001", "contrast", None)
    update_case_metadata(demo_ws, "s0001", "contrast", contrast)  # as if killed between revision 0 and the phase
    result = presegment(demo_ws, "small")
    assert result.done == [] and "s0001" in result.skipped
    restored = read_case_metadata(demo_ws, "s0001")["contrast"]
    assert restored["phase"] == "native" and restored["phase_revision"] == 1  # the labels of record
    assert pd.read_parquet(demo_ws.meta_table).set_index("case_id").loc["s0001", "contrast_phase"] == "native"
