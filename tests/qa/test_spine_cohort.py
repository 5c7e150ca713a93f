"""Rib levels (on a synthetic spine phantom: the real maps hold no rib with its whole vertebra in view)
and cohort outliers (on copies of the real map)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy import ndimage

from curation import Volume, load_label_set
from qa import AnatomySettings, LabelQASettings, compute_label_stats, find_cases, run_label_qa
from qa.anatomy import check_anatomy

from .conftest import replace

V2 = load_label_set("total_v2")


def _phantom(rib_offset: int = 0) -> Volume:
    """T4..T10 as 10 mm blocks stacked downwards (LPS: z up), ribs 5..9 leaving each level sideways."""
    labels = np.zeros((90, 60, 80), dtype=np.uint8)  # 1 mm voxels; array z index 0 = lowest
    for n, level in enumerate(range(10, 3, -1)):  # T10 at the bottom
        z0 = 10 + n * 10
        labels[z0:z0 + 9, 25:35, 35:45] = V2.by_name(f"vertebrae_T{level}").index
        rib = level + rib_offset
        if 5 <= level <= 9 and 1 <= rib <= 12:
            for side, xs in (("left", slice(46, 75)), ("right", slice(5, 34))):
                # the rib starts beside its vertebra and slopes downwards away from the spine
                labels[z0 + 3:z0 + 6, 28:31, xs] = V2.by_name(f"rib_{side}_{rib}").index
                labels[z0:z0 + 3, 28:31, (xs.start + 20 if side == "left" else xs.start):
                       (xs.stop if side == "left" else xs.start + 9)] = V2.by_name(f"rib_{side}_{rib}").index
    return Volume(labels, (1.0, 1.0, 1.0), (-40.0, -30.0, -45.0), np.eye(3))


def _check(volume: Volume) -> list:
    stats = compute_label_stats(volume)
    return check_anatomy("phantom", volume, stats, V2, AnatomySettings())


def test_ribs_at_their_own_level_pass_and_ribs_numbered_two_off_are_named() -> None:
    assert not [f for f in _check(_phantom()) if f.severity == "error"]
    findings = [f for f in _check(_phantom(rib_offset=2)) if str(f.check) == "spine.rib_level"]
    assert {f.structure for f in findings} >= {"rib_left_7", "rib_right_7", "rib_left_9"}
    assert "lies at the level of vertebrae_T5, 2 levels above vertebrae_T7" in \
        next(f.message for f in findings if f.structure == "rib_left_7")


def _trimmed(labels: np.ndarray, index: int, share: float, seed: int) -> np.ndarray:
    """``labels`` with ``share`` of a structure's boundary voxels removed at random (a person's own size)."""
    out = labels.copy()
    mask = labels == index
    boundary = np.argwhere(mask & ~ndimage.binary_erosion(mask))
    rng = np.random.default_rng(seed)
    chosen = boundary[rng.random(len(boundary)) < share]
    out[tuple(chosen.T)] = 0
    return out


def test_cohort_flags_the_case_whose_kidney_is_much_bigger(ts: Path, make_case, v2_map: Volume) -> None:
    kidney_index = V2.by_name("kidney_left").index  # wholly inside the FOV (a cut liver is not judged)
    for n in range(10):
        root = make_case(f"c{n:02d}", ts / "example_ct.nii.gz",
                         multilabel=replace(v2_map, _trimmed(v2_map.array, kidney_index, 0.05 * n, n))).parent
    labels = v2_map.array.copy()
    kidney = labels == kidney_index
    labels[ndimage.binary_dilation(kidney, iterations=3) & (labels == 0)] = kidney_index
    make_case("big", ts / "example_ct.nii.gz", multilabel=replace(v2_map, labels))
    findings, stats = run_label_qa(find_cases(root), LabelQASettings(V2, cohort_min_cases=10))
    volume = findings[findings["check"] == "cohort.volume"]
    assert set(volume["case"]) == {"big"} and "kidney_left" in set(volume["structure"])
    row = volume[volume["structure"] == "kidney_left"].iloc[0]
    assert json.loads(row["values"])["z"] > 5 and "x the cohort median" in row["message"]
    assert len(stats[stats["structure"] == "kidney_left"]) == 11
    # below the minimum cohort size nothing is judged
    findings, _ = run_label_qa(find_cases(root), LabelQASettings(V2, cohort_min_cases=12))
    assert not findings["check"].str.startswith("cohort").any()


def test_near_duplicate_cases_do_not_make_a_cohort(ts: Path, make_case, v2_map: Volume) -> None:
    """Ten copies of one scan and one changed case: no distinct cohort, so no z-score against it."""
    for n in range(10):
        root = make_case(f"c{n:02d}", ts / "example_ct.nii.gz",
                         multilabel=ts / "seg_v2_total117" / "example_seg_fast_force_split.nii.gz").parent
    labels = v2_map.array.copy()
    labels[labels == V2.by_name("kidney_left").index] = 0
    make_case("changed", ts / "example_ct.nii.gz", multilabel=replace(v2_map, labels))
    findings, _ = run_label_qa(find_cases(root), LabelQASettings(V2, cohort_min_cases=10))
    assert not findings["check"].str.startswith("cohort").any()
    assert "kidney_left" in set(findings.loc[(findings["case"] == "changed") & (findings["check"] == "fov.expected"),
                                              "structure"])


def test_cohort_compares_a_cut_structure_level_by_level(ts: Path, make_case, v2_map: Volume) -> None:
    """The liver touches the top of the field of view, so its volume says nothing; its cross-sections at the same
    vertebral levels do: a liver grown by 21 mm is named, ten livers of their own sizes are not."""
    liver = V2.by_name("liver").index
    for n in range(10):
        root = make_case(f"c{n:02d}", ts / "example_ct.nii.gz",
                         multilabel=replace(v2_map, _trimmed(v2_map.array, liver, 0.05 * n, n))).parent
    labels = v2_map.array.copy()
    labels[ndimage.binary_dilation(labels == liver, iterations=7) & (labels == 0)] = liver
    make_case("big", ts / "example_ct.nii.gz", multilabel=replace(v2_map, labels))
    findings, stats = run_label_qa(find_cases(root), LabelQASettings(V2, cohort_min_cases=10))
    assert stats.loc[stats["structure"] == "liver", "truncated"].all()
    profile = findings[findings["check"] == "cohort.profile"]
    assert set(profile["case"]) == {"big"} and set(profile["structure"]) == {"liver"}, profile.to_string()
    assert json.loads(profile["values"].iloc[0])["ratio"] > 1.5
    assert "at the same vertebral levels" in profile["message"].iloc[0]
