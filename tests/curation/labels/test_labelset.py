"""Label sets: the shipped v1/v2 sets against the real TotalSegmentator maps, user sets, the v1->v2 mapping."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from curation import LabelSet, load_label_set, read_volume
from curation.errors import LabelSetError
from curation.labels.labelmapping import LabelMapping, load_label_mapping
from curation.labels.labelset import Code, LabelClass, builtin_label_sets


def test_builtin_sets_have_the_published_counts() -> None:
    assert builtin_label_sets() == ["total_v1", "total_v2"]
    v1, v2 = load_label_set("total_v1"), load_label_set("total_v2")
    assert len(v1) == 104 and len(v2) == 117
    assert v1.counts_by_category() == {"organ": 27, "bone": 59, "muscle": 10, "vessel": 8}
    assert [c.index for c in v1] == list(range(1, 105)) and [c.index for c in v2] == list(range(1, 118))
    assert v1.by_name("kidney_left").counterpart == "kidney_right"
    assert str(v1.by_name("kidney_left").laterality) == "left"
    assert v1.by_name("vertebrae_C1").spine_level == 1 and v1.by_name("sacrum").spine_level == 26
    assert v2.by_name("rib_left_7").rib == 7
    assert str(v2.by_name("liver").snomed["type"]) == "SCT:10200004 Liver"


def test_class_names_and_indices_match_the_real_label_maps(ts: Path) -> None:
    for name, folder, multi in (("total_v1", "seg_v1_total104/example_seg", "seg_v1_total104/example_seg.nii.gz"),
                                ("total_v2", "seg_v2_total117/example_seg_fast",
                                 "seg_v2_total117/example_seg_fast.nii.gz")):
        label_set = load_label_set(name)
        files = {p.name[: -len(".nii.gz")] for p in (ts / folder).glob("*.nii.gz")}
        assert set(label_set.names) <= files
        labels = read_volume(ts / multi).array
        for cls in label_set:
            mask = read_volume(ts / folder / f"{cls.name}.nii.gz").array > 0
            assert np.array_equal(mask, labels == cls.index), cls.name


def test_v1_to_v2_mapping_turns_the_real_v1_map_into_a_valid_v2_map(ts: Path) -> None:
    mapping = load_label_mapping("total_v1", "total_v2")
    assert set(mapping.removed) == {"face", "pulmonary_artery"}
    assert "vertebrae_S1" in mapping.added and "heart" not in mapping.added
    assert ("liver", 5, 5) not in mapping.reordered and ("pancreas", 10, 7) in mapping.reordered
    v1 = read_volume(ts / "seg_v1_total104" / "example_seg.nii.gz")  # float64 on the example_ct grid
    mapped = mapping.apply(v1)
    v2_set = mapping.target
    assert set(np.unique(mapped.array).tolist()) <= {0} | {c.index for c in v2_set}
    for cls in mapping.source:
        target = mapping.target_of(cls.name)
        if target == cls.name:
            assert np.array_equal(mapped.array == v2_set.by_name(target).index, v1.array == cls.index), cls.name
    # the mapped map means the same as TotalSegmentator v2's own output on the same CT
    real_v2 = read_volume(ts / "seg_v2_total117" / "example_seg_fast_force_split.nii.gz").array
    for name in ("liver", "spleen", "kidney_left", "vertebrae_L3", "hip_right", "iliopsoas_left"):
        a, b = mapped.array == v2_set.by_name(name).index, real_v2 == v2_set.by_name(name).index
        assert 2 * (a & b).sum() / (a.sum() + b.sum()) > 0.85, name


def test_mapping_errors() -> None:
    v1, v2 = load_label_set("total_v1"), load_label_set("total_v2")
    with pytest.raises(LabelSetError, match="merge source 'heart_x' is not a class of 'total_v1'"):
        LabelMapping(v1, v2, {"heart_x": "heart"})
    with pytest.raises(LabelSetError, match="merge target 'cor' is not a class of 'total_v2'"):
        LabelMapping(v1, v2, {"heart_myocardium": "cor"})
    with pytest.raises(LabelSetError, match="no shipped mapping from 'total_v2' to 'total_v1'"):
        load_label_mapping("total_v2", "total_v1")
    from curation import Volume

    bad = Volume(np.full((2, 2, 2), 140, dtype=np.uint8), (1, 1, 1), (0, 0, 0), np.eye(3))
    with pytest.raises(LabelSetError, match=r"values \[140\] that are not classes of 'total_v1'"):
        load_label_mapping("total_v1", "total_v2").apply(bad)


def test_user_label_set_round_trips_through_toml(tmp_path: Path) -> None:
    own = LabelSet("mine", "0.1", (LabelClass(1, "liver", "organ", solid=True, hu=(-20, 300, 0.8)),
                                   LabelClass(2, "kidney_left", "ORGAN", "left", "kidney_right", (1, 2, 3),
                                              snomed={"type": "SCT:64033007 Kidney"}),
                                   LabelClass(3, "kidney_right", "organ", "right", "kidney_left")))
    path = tmp_path / "mine.toml"
    own.save(path)
    loaded = load_label_set(path)
    assert loaded == own
    assert loaded.by_name("kidney_left").snomed["type"] == Code("SCT", "64033007", "Kidney")
    assert loaded.color_table()[2].tolist() == [1, 2, 3]


@pytest.mark.parametrize(("text", "message"), [
    ('name = "x"\n[[classes]]\nindex = 1\nname = "a"\n[[classes]]\nindex = 1\nname = "b"\n',
     r"duplicate class index\(s\) \[1\]"),
    ('name = "x"\n[[classes]]\nindex = 1\nname = "a"\ncategory = "gland"\n',
     "label class 'a' category 'gland': expected one of organ, bone, muscle, vessel, other"),
    ('name = "x"\n[[classes]]\nindex = 1\nname = "a_left"\ncounterpart = "a_right"\n',
     "names counterpart 'a_right', which is not in the set"),
    ('name = "x"\n[[classes]]\nindex = 1\nname = "a"\nhu = [300, 100, 0.5]\n', "hu must be \\[low, high, fraction\\]"),
    ('name = "x"\n[[classes]]\nindex = 0\nname = "a"\n', "index must be an integer 1..65535"),
    ('name = "x"\n[[classes]]\nindex = 1\nname = "a b"\n', "without spaces or slashes"),
    ('name = "x"\n[[classes]]\nindex = 1\n', "class #1 has no name"),
    ('name = "x"\n[[classes]]\nindex = 1\nname = "a"\nshape = "round"\n', "unexpected keyword argument 'shape'"),
    ('name = "x"\nclasses = [', "not valid TOML"),
    ('name = "x"\n[[classes]]\nindex = 1\nname = "a"\nsnomed = { type = "64033007" }\n',
     "expected 'SCHEME:VALUE meaning'"),
])
def test_bad_label_set_files_are_refused_with_the_reason(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(LabelSetError, match=message):
        load_label_set(path)


def test_unknown_label_set_name() -> None:
    with pytest.raises(LabelSetError, match="not a built-in name .*total_v1, total_v2.* and no such file"):
        load_label_set("total_v3")
    with pytest.raises(LabelSetError, match="no class named 'heart'"):
        load_label_set("total_v2").by_name("heart").name and load_label_set("total_v1").by_name("heart")
