"""Acceptance 1: ``qa labels`` on the real TotalSegmentator label maps (v1 and v2, both storage forms)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from curation import Volume, load_label_set, read_volume
from qa import LabelQASettings, find_cases, run_label_qa

from .conftest import replace


def _run(root: Path, label_set: str, cases: list[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    return run_label_qa(find_cases(root, cases=cases), LabelQASettings(load_label_set(label_set)))


def test_v1_pair_reports_extra_lung_files_and_float_storage_and_nothing_else(ts: Path, make_case) -> None:
    v1 = ts / "seg_v1_total104"
    case = make_case("v1", ts / "example_ct.nii.gz", multilabel=v1 / "example_seg.nii.gz", masks=v1 / "example_seg")
    findings, stats = _run(case.parent, "total_v1")
    serious = findings[findings["severity"] != "info"]
    extra = serious[serious["check"] == "completeness.unknown_file"]
    assert sorted(extra["structure"]) == ["lung", "lung_trachea_bronchia", "lung_vessels"]
    assert (extra["severity"] == "warning").all()
    dtype = serious[serious["check"] == "storage.dtype"]
    assert len(dtype) == 2 and (dtype["severity"] == "warning").all()  # the float64 masks and the float64 map
    assert json.loads(dtype[dtype["file"].str.endswith("segmentations")]["values"].iloc[0]) == {"files": 104}
    assert len(serious) == 5, serious[["structure", "check", "message"]].to_string()
    # the per-class files and the multi-label map agree, and everything present was measured
    assert "storage.disagree" not in set(findings["check"])
    assert set(stats["structure"]) == {load_label_set("total_v1").by_index(int(v)).name for v in
                                       np.unique(read_volume(v1 / "example_seg.nii.gz").array) if v}


@pytest.mark.parametrize(("name", "ct", "multilabel", "masks"), [
    ("v2_sm", "example_ct_sm.nii.gz", "example_seg_fast.nii.gz", "example_seg_fast"),
    ("v2_sm_accurate", "example_ct_sm.nii.gz", "example_seg.nii.gz", None),
    ("v2_full", "example_ct.nii.gz", "example_seg_fast_force_split.nii.gz", None),
])
def test_clean_v2_pairs_have_no_errors(ts: Path, make_case, name: str, ct: str, multilabel: str,
                                       masks: str | None) -> None:
    v2 = ts / "seg_v2_total117"
    case = make_case(name, ts / ct, multilabel=v2 / multilabel, masks=v2 / masks if masks else None)
    findings, stats = _run(case.parent, "total_v2")
    errors = findings[findings["severity"] == "error"]
    assert errors.empty, errors[["structure", "check", "message"]].to_string()
    assert len(stats) >= 39  # every present structure measured
    assert (findings["check"] == "fov.truncated").sum() >= 20  # the FOV cuts many structures: noted, not errors


def test_example_ct_sm_origin_mismatch_is_reported_not_resampled(ts: Path, make_case) -> None:
    """example_ct_sm holds slices 82..111 of example_ct but keeps the parent's origin.

    Labels cut from the parent's map for those slices, with the origin a correct crop has, do not
    overlay it: the geometry check must say so (origin shifted by 82 slices x 3 mm = 246 mm)."""
    parent_labels = read_volume(ts / "seg_v1_total104" / "example_seg_fast.nii.gz")
    cropped = Volume(parent_labels.array[82:112].copy(), parent_labels.spacing,
                     tuple(parent_labels.index_to_world(np.array([0, 0, 82]))[0]), parent_labels.direction)
    ct_sm = read_volume(ts / "example_ct_sm.nii.gz")
    assert np.array_equal(ct_sm.array, read_volume(ts / "example_ct.nii.gz").array[82:112])  # the data quirk
    case = make_case("sm", ts / "example_ct_sm.nii.gz", multilabel=cropped)
    # and the v2 masks made on example_ct_sm's grid, checked against the full example_ct: size mismatch
    make_case("sm_masks_on_parent", ts / "example_ct.nii.gz",
              masks=ts / "seg_v2_total117" / "example_seg_fast")
    findings, _ = _run(case.parent, "total_v1", ["sm"])
    geometry = findings[findings["check"] == "case.other_grid"]  # one verdict at the top of the case
    assert len(geometry) == 1 and geometry["severity"].iloc[0] == "error"
    values = json.loads(geometry["values"].iloc[0])
    assert values["origin_shift_mm"] == pytest.approx(246.0, abs=0.01) and "size" not in values
    assert "on another grid than the CT (origin 246.0 mm away)" in geometry["message"].iloc[0]
    assert "the voxels line up: fix the header" in geometry["message"].iloc[0]  # the quirk: only the header is off
    # HU checks are skipped rather than run on a misplaced CT
    assert not findings["check"].str.startswith("intensity").any()

    findings, _ = _run(case.parent, "total_v2", ["sm_masks_on_parent"])
    geometry = findings[findings["check"] == "case.other_grid"]  # all 117 masks alike: one verdict
    assert len(geometry) == 1 and json.loads(geometry["values"].iloc[0])["size"] == [[122, 101, 30], [122, 101, 112]]
    assert geometry["file"].iloc[0].endswith("segmentations")


def test_dicom_seg_stored_with_a_flipped_axis_is_read_onto_the_ct(ts: Path, make_case) -> None:
    """example_seg_dicom overlays the DICOM series in world space but stores the y axis flipped: the same
    voxels in another axis order, read onto the CT's grid voxel for voxel (a note, no error)."""
    from curation.dicom.series import load_series

    ct = load_series(sorted((ts / "example_ct_dicom").iterdir()))
    case = make_case("dicom", ct, multilabel=ts / "seg_v2_total117" / "example_seg_dicom.nii.gz")
    findings, _ = _run(case.parent, "total_v2")
    orientation = findings[findings["check"] == "geometry.orientation"]
    assert len(orientation) == 1 and orientation["severity"].iloc[0] == "info"
    assert findings[findings["severity"] == "error"].empty, findings.to_string()
    # flipped back onto the CT's grid by hand it is the same clean pair
    seg = read_volume(ts / "seg_v2_total117" / "example_seg_dicom.nii.gz")
    flipped = replace(ct, seg.array[:, ::-1, :].copy())
    make_case("dicom_fixed", ct, multilabel=flipped)
    findings, _ = _run(case.parent, "total_v2", ["dicom_fixed"])
    assert findings[findings["severity"] == "error"].empty, findings.to_string()


def test_a_map_checked_with_the_wrong_label_set_is_one_verdict(ts: Path, make_case) -> None:
    """The real v1 map checked as total_v2: its values name other structures there, and fit total_v1 far better."""
    case = make_case("v1_as_v2", ts / "example_ct.nii.gz",
                     multilabel=ts / "seg_v1_total104" / "example_seg_fast.nii.gz")
    findings, _ = _run(case.parent, "total_v2")
    verdict = findings[findings["check"] == "case.label_set"]
    assert len(verdict) == 1 and verdict["severity"].iloc[0] == "error"
    assert "fit label set 'total_v1' far better than 'total_v2'" in verdict["message"].iloc[0]
    assert json.loads(verdict["values"].iloc[0])["fit_other"] > 0.8
    findings, _ = _run(case.parent, "total_v1")  # with its own set: no verdict, no error
    assert findings[findings["severity"] == "error"].empty
