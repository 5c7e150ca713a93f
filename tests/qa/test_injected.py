"""Acceptance 2 and bad input: errors injected into copies of the real masks are caught and named."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from curation import Volume, load_label_set, read_volume, write_volume
from qa import LabelQASettings, find_cases, run_label_qa

from .conftest import replace

V2 = load_label_set("total_v2")


def idx(name: str) -> int:
    return V2.by_name(name).index


def _findings(case: Path) -> pd.DataFrame:
    findings, _ = run_label_qa(find_cases(case.parent, cases=[case.name]), LabelQASettings(V2))
    return findings


def _caught(findings: pd.DataFrame, check: str, structure: str, severity: str = "error") -> pd.Series:
    hit = findings[(findings["check"] == check) & (findings["structure"] == structure)]
    assert not hit.empty, f"{check} on {structure} not reported; found:\n" + \
        findings[findings["severity"] != "info"][["structure", "check", "message"]].to_string()
    assert hit["severity"].iloc[0] == severity, hit["message"].iloc[0]
    return hit.iloc[0]


@pytest.fixture()
def labels(v2_map: Volume) -> np.ndarray:
    return v2_map.array.copy()


def test_swapped_left_right_pair(ts: Path, make_case, v2_map: Volume, labels: np.ndarray) -> None:
    left, right = labels == idx("kidney_left"), labels == idx("kidney_right")
    labels[left], labels[right] = idx("kidney_right"), idx("kidney_left")
    row = _caught(_findings(make_case("swap", ts / "example_ct.nii.gz", multilabel=replace(v2_map, labels))),
                  "laterality.swapped", "kidney_left")
    assert "lies to the right of kidney_right" in row["message"]


def test_vertebra_relabelled_one_level(ts: Path, make_case, v2_map: Volume, labels: np.ndarray) -> None:
    labels[labels == idx("vertebrae_L3")] = idx("vertebrae_L2")
    findings = _findings(make_case("level", ts / "example_ct.nii.gz", multilabel=replace(v2_map, labels)))
    row = _caught(findings, "spine.missing_level", "vertebrae_L3")
    assert "between vertebrae_L2 and vertebrae_L4" in row["message"]


def test_vertebrae_out_of_order(ts: Path, make_case, v2_map: Volume, labels: np.ndarray) -> None:
    l2, l4 = labels == idx("vertebrae_L2"), labels == idx("vertebrae_L4")
    labels[l2], labels[l4] = idx("vertebrae_L4"), idx("vertebrae_L2")
    findings = _findings(make_case("order", ts / "example_ct.nii.gz", multilabel=replace(v2_map, labels)))
    assert "spine.order" in set(findings.loc[findings["severity"] == "error", "check"])
    assert {"vertebrae_L1", "vertebrae_L2", "vertebrae_L3", "vertebrae_L4"} & \
        set(findings.loc[findings["check"] == "spine.order", "structure"])


def test_deleted_structure(ts: Path, make_case, v2_map: Volume, v2_masks: Path, labels: np.ndarray) -> None:
    case = make_case("deleted_file", ts / "example_ct.nii.gz", masks=v2_masks)
    (case / "segmentations" / "liver.nii.gz").unlink()
    row = _caught(_findings(case), "completeness.missing", "liver")
    assert "no mask file for 'liver'" in row["message"]
    labels[labels == idx("kidney_left")] = 0  # in a multi-label map: the counterpart says it should be there
    findings = _findings(make_case("deleted_voxels", ts / "example_ct.nii.gz", multilabel=replace(v2_map, labels)))
    _caught(findings, "fov.expected", "kidney_left", "error")  # all its neighbours are there


def test_shifted_mask(ts: Path, make_case, v2_masks: Path) -> None:
    case = make_case("shift", ts / "example_ct.nii.gz", masks=v2_masks)
    path = case / "segmentations" / "vertebrae_L3.nii.gz"
    vertebra = read_volume(path)
    path.unlink()
    write_volume(path, replace(vertebra, np.roll(vertebra.array, 6, axis=2)))  # 6 voxels = 18 mm along x
    findings = _findings(case)
    row = _caught(findings, "intensity.alignment", "vertebrae_L3")
    values = json.loads(row["values"])
    assert np.allclose(np.abs(values["shift_lps_mm"]), [18, 0, 0]) and values["best_contrast"] > values["contrast"]
    overlapping = findings[findings["check"] == "overlap.classes"]
    assert "vertebrae_L3" in set(overlapping["structure"]) | {json.loads(v)["other"] for v in overlapping["values"]}


def test_flipped_axis_of_the_whole_map(ts: Path, make_case, v2_map: Volume, labels: np.ndarray) -> None:
    findings = _findings(make_case("flip", ts / "example_ct.nii.gz",
                                   multilabel=replace(v2_map, labels[:, :, ::-1].copy())))
    swapped = set(findings.loc[findings["check"] == "laterality.swapped", "structure"])
    assert {"kidney_left", "femur_left", "hip_left", "iliopsoas_left"} <= swapped
    assert (findings["check"] == "intensity.range").any()


def test_far_island(ts: Path, make_case, v2_map: Volume, labels: np.ndarray) -> None:
    labels[10:13, 50:53, 60:63] = idx("liver")  # in the pelvis, far below the liver
    row = _caught(_findings(make_case("island", ts / "example_ct.nii.gz", multilabel=replace(v2_map, labels))),
                  "fragmentation.far_island", "liver")
    assert json.loads(row["values"])["island_voxels"] == 27


def test_a_piece_on_other_tissue_near_its_structure(ts: Path, make_case, v2_map: Volume, labels: np.ndarray) -> None:
    labels[83:86, 23:26, 50:53] = idx("vertebrae_L1")  # on back muscle, 15 mm from L1: too near to be far
    row = _caught(_findings(make_case("piece", ts / "example_ct.nii.gz", multilabel=replace(v2_map, labels))),
                  "fragmentation.other_tissue", "vertebrae_L1", "warning")
    values = json.loads(row["values"])
    assert values["island_voxels"] == 27 and values["piece_hu"] < 150 < values["main_hu"]


def test_hole_in_the_liver(ts: Path, make_case, v2_map: Volume, labels: np.ndarray) -> None:
    liver = labels == idx("liver")
    inner = ndimage.binary_erosion(liver, iterations=4)
    z, y, x = (int(round(c)) for c in ndimage.center_of_mass(inner))
    zz, yy, xx = np.ogrid[: labels.shape[0], : labels.shape[1], : labels.shape[2]]
    ball = ((zz - z) ** 2 + (yy - y) ** 2 + (xx - x) ** 2 <= 9) & inner
    labels[ball] = 0
    row = _caught(_findings(make_case("hole", ts / "example_ct.nii.gz", multilabel=replace(v2_map, labels))),
                  "holes.enclosed", "liver", "warning")
    assert json.loads(row["values"])["hole_voxels"] >= int(ball.sum())  # the real liver has 2 enclosed voxels too


def test_structure_dilated_into_its_neighbour(ts: Path, make_case, v2_masks: Path) -> None:
    case = make_case("dilate", ts / "example_ct.nii.gz", masks=v2_masks)
    path = case / "segmentations" / "spleen.nii.gz"
    spleen = read_volume(path)
    path.unlink()
    write_volume(path, replace(spleen, ndimage.binary_dilation(spleen.array > 0, iterations=3).astype(np.uint8)))
    findings = _findings(case)
    overlap = findings[findings["check"] == "overlap.classes"]
    pairs = {(r["structure"], json.loads(r["values"])["other"]) for _, r in overlap.iterrows()}
    assert any("spleen" in pair for pair in pairs)
    assert (overlap["severity"] == "error").all()


def test_mask_with_another_origin(ts: Path, make_case, v2_masks: Path) -> None:
    case = make_case("origin", ts / "example_ct.nii.gz", masks=v2_masks)
    path = case / "segmentations" / "aorta.nii.gz"
    aorta = read_volume(path)
    path.unlink()
    write_volume(path, Volume(aorta.array, aorta.spacing, tuple(np.add(aorta.origin, (0, 0, 15.0))), aorta.direction))
    row = _caught(_findings(case), "geometry.grid", "aorta")
    assert json.loads(row["values"])["origin_shift_mm"] == pytest.approx(15.0, abs=1e-3)


def test_value_outside_the_label_set(ts: Path, make_case, v2_map: Volume, labels: np.ndarray) -> None:
    labels[0:2, 0:2, 0:2] = 140
    findings = _findings(make_case("value", ts / "example_ct.nii.gz", multilabel=replace(v2_map, labels)))
    row = findings[findings["check"] == "completeness.unknown_value"].iloc[0]
    assert row["severity"] == "error" and json.loads(row["values"]) == {"value": 140, "voxels": 8}
    assert "segmentation.nii.gz: value 140 (8 voxels)" in row["message"]


def test_bad_files_become_findings_and_the_run_goes_on(ts: Path, make_case, v2_masks: Path) -> None:
    case = make_case("broken", ts / "example_ct.nii.gz", masks=v2_masks)
    seg = case / "segmentations"
    (seg / "liver.nii.gz").unlink()
    (seg / "liver.nii.gz").write_bytes(b"not a volume at all")
    spleen = read_volume(seg / "spleen.nii.gz")
    (seg / "spleen.nii.gz").unlink()
    write_volume(seg / "spleen.nii.gz", replace(spleen, spleen.array[:, :, :-5].copy()))  # another size
    stomach = read_volume(seg / "stomach.nii.gz")
    (seg / "stomach.nii.gz").unlink()
    values = stomach.array.astype(np.float32)
    z, y, x = (int(v[0]) for v in np.nonzero(stomach.array))
    values[z, y, x] = np.nan
    write_volume(seg / "stomach.nii.gz", replace(stomach, values))
    colon = read_volume(seg / "colon.nii.gz")
    (seg / "colon.nii.gz").unlink()
    write_volume(seg / "colon.nii.gz", replace(colon, colon.array * 2))
    make_case("fine", ts / "example_ct.nii.gz",
              multilabel=ts / "seg_v2_total117" / "example_seg_fast_force_split.nii.gz")
    findings, stats = run_label_qa(find_cases(case.parent), LabelQASettings(V2))
    assert _caught(findings, "storage.unreadable", "liver")["file"].endswith("liver.nii.gz")
    assert "size [117, 101, 112] vs [122, 101, 112]" in _caught(findings, "geometry.grid", "spleen")["message"]
    assert "1 voxels are NaN" in _caught(findings, "storage.non_finite", "stomach")["message"]
    assert "values [2.0]" in _caught(findings, "storage.non_binary", "colon")["message"]
    assert set(stats["case"]) == {"broken", "fine"}
    assert findings[(findings["case"] == "fine") & (findings["severity"] == "error")].empty


def test_organ_shifted_diagonally_is_found_with_its_shift(ts: Path, make_case, v2_map: Volume,
                                                          labels: np.ndarray) -> None:
    liver = labels == idx("liver")
    labels[liver] = 0
    labels[ndimage.shift(liver, (3, -3, 2), order=0)] = idx("liver")  # 9, 9 and 6 mm along z, y, x
    row = _caught(_findings(make_case("diagonal", ts / "example_ct.nii.gz", multilabel=replace(v2_map, labels))),
                  "intensity.alignment", "liver")
    found = np.array(json.loads(row["values"])["shift_lps_mm"])
    back = v2_map.direction @ np.array([-6.0, 9.0, -9.0])  # the way back, (x, y, z) array mm -> LPS
    assert np.linalg.norm(found - back) <= 4.5, (found, back)


def test_a_whole_map_shifted_diagonally_is_one_verdict(ts: Path, make_case, v2_map: Volume) -> None:
    moved = ndimage.shift(v2_map.array, (2, 2, -1), order=0)  # 6, 6, 3 mm: every structure alike
    findings = _findings(make_case("whole", ts / "example_ct.nii.gz", multilabel=replace(v2_map, moved)))
    verdict = findings[findings["check"] == "case.shifted"]
    assert len(verdict) == 1 and verdict["severity"].iloc[0] == "error", findings[
        findings["severity"] != "info"][["structure", "check", "message"]].to_string()
    found = np.array(json.loads(verdict["values"].iloc[0])["shift_lps_mm"])
    assert np.linalg.norm(found - v2_map.direction @ np.array([3.0, -6.0, -6.0])) <= 4.5
    assert findings.iloc[0]["check"] == "case.shifted"  # at the top of the case


def test_a_mask_saved_under_another_name_is_an_overlap_not_an_empty_structure(ts: Path, make_case,
                                                                              v2_masks: Path) -> None:
    case = make_case("renamed", ts / "example_ct.nii.gz", masks=v2_masks)
    seg = case / "segmentations"
    (seg / "liver.nii.gz").unlink()
    shutil.copy(seg / "spleen.nii.gz", seg / "liver.nii.gz")  # the spleen's mask saved as the liver's
    findings = _findings(case)
    overlap = findings[findings["check"] == "overlap.classes"]
    assert {"spleen", "liver"} <= set(overlap["structure"]) | {json.loads(v)["other"] for v in overlap["values"]}
    assert findings[(findings["structure"] == "spleen") & (findings["check"] == "fov.expected")].empty
    row = _caught(findings, "laterality.midline", "liver", "warning")  # and the "liver" lies where the spleen is
    assert "wrong side of the midline (expected on the right" in row["message"]


def test_a_case_without_label_files_names_what_it_found(ts: Path, make_case, v2_map: Volume) -> None:
    case = make_case("unnamed", ts / "example_ct.nii.gz", multilabel=v2_map, multilabel_name="mymap.nii.gz")
    row = _caught(_findings(case), "completeness.no_labels", "")
    assert "found mymap.nii.gz, not named as labels" in row["message"] and "seg.nrrd" in row["message"]
