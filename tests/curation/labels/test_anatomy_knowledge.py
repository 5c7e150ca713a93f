"""Anatomical knowledge of the shipped label sets (spans, relations, sides, HU per phase) against the real
TotalSegmentator maps of the shared data, and the checks a label set's anatomy fields go through."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from annotator.phase import PHASE_STRUCTURES, phase_table
from curation import LabelSet, load_label_set, read_volume
from curation.enums import ContrastPhase
from curation.errors import LabelSetError
from curation.labels import Pieces, Side
from curation.labels.anatomy import RELATIONS
from curation.labels.labelset import LabelClass

SETS = {name: load_label_set(name) for name in ("total_v1", "total_v2")}
#: the real maps: v1 on the example_ct grid, v2 on example_ct (force split), example_ct_sm and the DICOM series
MAPS = (("total_v1", "seg_v1_total104/example_seg.nii.gz"), ("total_v1", "seg_v1_total104/example_seg_fast.nii.gz"),
        ("total_v2", "seg_v2_total117/example_seg_fast_force_split.nii.gz"),
        ("total_v2", "seg_v2_total117/example_seg.nii.gz"), ("total_v2", "seg_v2_total117/example_seg_fast.nii.gz"),
        ("total_v2", "seg_v2_total117/example_seg_dicom.nii.gz"))
MIN_VOXELS = 50
#: a relation must hold by this much between the real centroids (the knowledge claims a clear margin, ~15 mm)
MARGIN_MM = 10.0
#: a class's centre must lie within its span widened by this many levels
LEVEL_SLACK = 1.5
#: LPS world axes (+x patient left, +y posterior, +z superior): relation -> (axis, sign of this minus other)
AXIS = {"above": (2, 1.0), "below": (2, -1.0), "anterior": (1, -1.0), "posterior": (1, 1.0), "right_of": (0, -1.0),
        "left_of": (0, 1.0)}
#: the highest spine_level that is a vertebra's position on the level scale (S1); the sacrum's 26 is its rank
LAST_VERTEBRA = 25


@dataclass(frozen=True)
class Structure:
    voxels: int
    centroid: np.ndarray  # LPS world (x, y, z), mm
    border: bool          # touches a face of the volume: cut by the field of view

    @property
    def usable(self) -> bool:
        return self.voxels >= MIN_VOXELS and not self.border


@pytest.fixture(scope="module")
def measured(ts: Path) -> dict[str, tuple[LabelSet, dict[str, Structure]]]:
    """Per real map: its label set and every class present in it, measured once."""
    out = {}
    for set_name, rel in MAPS:
        label_set = SETS[set_name]
        volume = read_volume(ts / rel)
        labels = np.rint(volume.array).astype(np.int32)  # v1 example_seg is stored as float64
        boxes = ndimage.find_objects(labels)
        present = {}
        for cls in label_set:
            box = boxes[cls.index - 1] if cls.index <= len(boxes) else None
            if box is None:
                continue
            mask = labels[box] == cls.index
            zyx = np.argwhere(mask).mean(axis=0) + [s.start for s in box]
            border = any(s.start == 0 or s.stop == n for s, n in zip(box, labels.shape, strict=True))
            present[cls.name] = Structure(int(mask.sum()), volume.index_to_world(zyx[::-1])[0], border)
        out[rel] = (label_set, present)
    return out


def _level_scale(label_set: LabelSet, present: dict[str, Structure]):
    """z (mm) -> level: linear between the centres of the usable vertebrae, beyond them at their mean level
    height (the scale goes on below S1 by a typical lumbar level). ``None`` with fewer than two vertebrae."""
    anchors = sorted((present[c.name].centroid[2], float(c.spine_level)) for c in label_set
                     if c.spine_level is not None and c.spine_level <= LAST_VERTEBRA and c.name in present
                     and present[c.name].usable)
    if len(anchors) < 2:
        return None
    zs, levels = np.array([a[0] for a in anchors]), np.array([a[1] for a in anchors])
    mm_per_level = (zs[-1] - zs[0]) / (levels[0] - levels[-1])

    def level(z: float) -> float:
        if z < zs[0]:
            return float(levels[0] + (zs[0] - z) / mm_per_level)
        if z > zs[-1]:
            return float(levels[-1] - (z - zs[-1]) / mm_per_level)
        return float(np.interp(z, zs, levels))

    return level


# (d) the knowledge is complete and well formed ------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(SETS))
def test_every_class_has_a_span_and_relations_name_classes_of_the_set(name: str, tmp_path: Path) -> None:
    label_set = SETS[name]
    assert all(c.levels is not None for c in label_set), [c.name for c in label_set if c.levels is None]
    for cls in label_set:
        assert set(cls.relations) <= set(RELATIONS)
        for others in cls.relations.values():
            assert set(others) <= set(label_set.names), cls.name
        if cls.spine_level is not None and cls.spine_level <= LAST_VERTEBRA:
            assert cls.levels == (cls.spine_level - 0.5, cls.spine_level + 0.5), cls.name
    path = tmp_path / f"{name}.toml"
    label_set.save(path)
    assert load_label_set(path) == label_set
    assert load_label_set(path).to_toml() == label_set.to_toml()
    assert sum(len(v) for c in label_set for v in c.relations.values()) >= 100


@pytest.mark.parametrize("name", sorted(SETS))
def test_above_and_below_agree_with_the_spans(name: str) -> None:
    label_set = SETS[name]

    def middle(cls_name: str) -> float:
        levels = label_set.by_name(cls_name).levels
        assert levels is not None
        return sum(levels) / 2

    for cls in label_set:
        for other in cls.relations.get("above", ()):
            assert middle(cls.name) < middle(other), (cls.name, "above", other)
        for other in cls.relations.get("below", ()):
            assert middle(cls.name) > middle(other), (cls.name, "below", other)


def test_the_knowledge_says_what_anatomy_says() -> None:
    v1, v2 = SETS["total_v1"], SETS["total_v2"]
    for label_set in (v1, v2):
        assert [label_set.by_name(n).side for n in ("liver", "gallbladder", "spleen", "stomach",
                                                      "inferior_vena_cava")] == ["right", "right", "left", "left",
                                                                                 "right"]
        assert label_set.by_name("aorta").side is None and label_set.by_name("pancreas").side is None
        assert all(label_set.by_name(n).required for n in ("liver", "spleen", "kidney_left", "aorta", "pancreas",
                                                           "vertebrae_L3", "hip_left", "femur_right"))
        assert not any(label_set.by_name(n).required for n in ("gallbladder", "humerus_left", "scapula_right",
                                                               "clavicula_left"))
        assert all(label_set.by_name(n).one_piece for n in ("lung_upper_lobe_left", "rib_left_3", "sacrum"))
        assert not any(label_set.by_name(n).one_piece for n in ("small_bowel", "colon", "duodenum"))
        assert label_set.by_name("vertebrae_T12").levels == (18.5, 19.5)
    assert v1.by_name("heart_ventricle_left").one_piece and not v2.by_name("kidney_cyst_left").one_piece
    assert v2.by_name("costal_cartilages").pieces is Pieces.SEVERAL and v2.by_name("heart").side is Side.LEFT
    assert not v2.by_name("prostate").required and v2.by_name("prostate").one_piece
    # pieces left out: derived as before (bone, muscle, solid, vertebra: one piece; vessels: several)
    assert v2.by_name("femur_left").pieces is None and v2.by_name("femur_left").one_piece
    assert v2.by_name("aorta").pieces is None and not v2.by_name("aorta").one_piece
    assert v2.by_name("lung_middle_lobe_right").one_piece  # the QA fragmentation checks follow pieces


def test_relations_of_turns_the_other_classes_relations_round() -> None:
    v2 = SETS["total_v2"]
    stomach = v2.relations_of("stomach")
    assert "spleen" in stomach["right_of"] and "liver" in stomach["left_of"]  # stated by spleen and liver
    assert "esophagus" in stomach["below"] and "kidney_left" in stomach["anterior"]  # its own
    assert {"spleen", "liver", "esophagus", "kidney_left"} <= set(v2.neighbours("stomach"))
    assert v2.neighbours("vertebrae_L3") == []


def test_phase_values_come_from_the_label_set_unchanged() -> None:
    """The values the phase estimate used before they moved into the label sets, to the HU."""
    native, arterial, portal, late = ContrastPhase
    before = {"aorta": ((42, 12), (300, 80), (165, 35), (115, 20)),
              "portal_vein_and_splenic_vein": ((42, 12), (120, 40), (170, 35), (115, 20)),
              "inferior_vena_cava": ((42, 12), (70, 25), (130, 40), (110, 20)),
              "kidney_left": ((30, 10), (160, 50), (170, 40), (150, 40)),
              "kidney_right": ((30, 10), (160, 50), (170, 40), (150, 40)),
              "urinary_bladder": ((10, 10), (10, 10), (12, 12), (90, 90)),
              "liver": ((55, 10), (75, 15), (105, 20), (95, 15)),
              "spleen": ((45, 8), (120, 30), (115, 25), (95, 15))}
    assert set(before) == set(PHASE_STRUCTURES)
    for label_set in SETS.values():
        table = phase_table(label_set)
        for name, values in before.items():
            assert label_set.by_name(name).hu_phase == dict(zip((native, arterial, portal, late), values,
                                                                strict=True)), name
            assert table[name] == label_set.by_name(name).hu_phase
        assert {"aorta-portal", "aorta-liver"} <= set(table)
        for name in ("pancreas", "iliac_artery_left", "gluteus_maximus_left"):
            assert set(label_set.by_name(name).hu_phase) == set(ContrastPhase), name
    # a user's set: its own hu_phase wins; a phase structure without one takes the built-in total_v2 values
    mine = LabelSet("x", "1", (LabelClass(1, "aorta"), LabelClass(2, "liver", hu_phase={
        p: (50.0, 10.0) for p in ContrastPhase}), LabelClass(3, "pancreas")))
    table = phase_table(mine)
    assert list(table) == ["aorta", "liver", "aorta-liver"]
    assert table["aorta"] == SETS["total_v2"].by_name("aorta").hu_phase
    assert table["liver"][ContrastPhase.LATE] == (50, 10)


# (a), (b), (c) against the real maps ------------------------------------------------------------------------------
@pytest.mark.parametrize("rel", [m[1] for m in MAPS])
def test_relations_hold_between_the_real_centroids(measured, rel: str) -> None:
    label_set, present = measured[rel]
    wrong = []
    for cls in label_set:
        for key, others in cls.relations.items():
            for other in others:
                a, b = present.get(cls.name), present.get(other)
                if a is None or b is None or not (a.usable and b.usable):
                    continue  # how many pairs the maps check together: the next test
                axis, sign = AXIS[key]
                margin = sign * float(a.centroid[axis] - b.centroid[axis])
                if margin < MARGIN_MM:
                    wrong.append(f"{cls.name} {key} {other}: {margin:.1f} mm")
    assert wrong == [], wrong


def test_the_real_maps_check_many_relations(measured) -> None:
    pairs = {(c.name, k, o) for set_name, rel in MAPS for c in measured[rel][0] for k, others in c.relations.items()
             for o in others if c.name in measured[rel][1] and o in measured[rel][1]
             and measured[rel][1][c.name].usable and measured[rel][1][o].usable}
    assert len(pairs) >= 25


@pytest.mark.parametrize("rel", [m[1] for m in MAPS])
def test_spans_agree_with_the_real_maps(measured, rel: str) -> None:
    label_set, present = measured[rel]
    level = _level_scale(label_set, present)
    if level is None:
        assert rel.endswith(("example_seg.nii.gz", "example_seg_fast.nii.gz", "dicom.nii.gz")) and "v2" in rel
        pytest.skip("fewer than two vertebrae wholly inside the field of view: no level scale")
    checked, wrong = 0, []
    for cls in label_set:
        found = present.get(cls.name)
        if found is None or not found.usable:
            continue
        assert cls.levels is not None
        top, bottom = cls.levels
        at = level(float(found.centroid[2]))
        checked += 1
        if not top - LEVEL_SLACK <= at <= bottom + LEVEL_SLACK:
            wrong.append(f"{cls.name}: centre at level {at:.2f}, span {list(cls.levels)}")
    assert wrong == [], wrong
    assert checked >= 15


@pytest.mark.parametrize("rel", [m[1] for m in MAPS])
def test_sides_hold_against_the_spine(measured, rel: str) -> None:
    label_set, present = measured[rel]
    xs = [present[c.name].centroid[0] for c in label_set if c.spine_level is not None and c.name in present
          and present[c.name].voxels >= MIN_VOXELS]
    midline = float(np.median(xs))
    checked = 0
    for cls in label_set:
        found = present.get(cls.name)
        if cls.side is None or found is None or found.voxels < MIN_VOXELS:
            continue  # a structure cut by the field of view still lies on its side: border-touching ones count
        offset = float(found.centroid[0] - midline) * (1 if cls.side is Side.LEFT else -1)
        assert offset > 0, f"{cls.name} should lie {cls.side} of the spine; its centre is {offset:.1f} mm the other way"
        checked += 1
    assert checked >= 4


# validation -------------------------------------------------------------------------------------------------------
def _cls(**anatomy) -> LabelClass:
    return LabelClass(1, "liver", **anatomy)


@pytest.mark.parametrize(("anatomy", "message"), [
    ({"levels": [22.0, 15.0]}, r"'liver': levels must be \[top, bottom\] with top < bottom \(top is cranial\), found "
                               r"\[22.0, 15.0\]; swap them"),
    ({"levels": [15.0]}, r"'liver': levels must be \[top, bottom\], two numbers .* found \[15.0\]; write e.g."),
    ({"levels": ["T8", "L2"]}, r"'liver': levels must be \[top, bottom\], two numbers .* found \['T8', 'L2'\]"),
    ({"levels": [-20.0, 5.0]}, r"'liver': levels must lie within -6.0..60.0 .* found \[-20.0, 5.0\]; fix the values"),
    ({"required": "yes"}, r"'liver': required must be true or false, found 'yes'; write required = true"),
    ({"pieces": "two"}, r"'liver' pieces 'two': expected one of one, several"),
    ({"side": "middle"}, r"'liver' side 'middle': expected one of right, left"),
    ({"relations": {"behind": ["aorta"]}}, r"'liver': unknown relation\(s\) \['behind'\]; expected some of above, "
                                           "below, anterior, posterior, right_of, left_of"),
    ({"relations": {"above": "kidney_right"}}, r"'liver': relation above must be a list of class names, found "
                                               r"'kidney_right'; write e.g. above = \[\"liver\"\]"),
    ({"relations": {"above": ["liver"]}}, r"'liver': relation above names the class itself; drop 'liver'"),
    ({"relations": {"above": ["colon", "colon"]}}, r"'liver': relation above names \['colon'\] more than once"),
    ({"relations": {"above": ["colon"], "below": ["colon"]}}, r"'liver': \['colon'\] named under both above and below"),
    ({"hu_phase": {"native": [55.0, 10.0]}}, r"'liver': hu_phase must give every phase \(native, arterial, "
                                             r"portal_venous, late\), found no arterial, portal_venous, late; add"),
    ({"hu_phase": {"venous": [55.0, 10.0]}}, r"'liver' hu_phase phase 'venous': expected one of native, arterial, "
                                             "portal_venous, late"),
    ({"hu_phase": {p.value: [55.0, 0.0] for p in ContrastPhase}},
     r"'liver': hu_phase native must be \[mean, spread\] with spread > 0 \(HU\), found \[55.0, 0.0\]; write e.g."),
])
def test_invalid_anatomy_is_refused_with_the_fix(anatomy: dict, message: str) -> None:
    with pytest.raises(LabelSetError, match=message):
        _cls(**anatomy)


def test_side_only_for_unpaired_classes() -> None:
    with pytest.raises(LabelSetError, match=r"'kidney_left': side is for unpaired structures \(laterality none\), "
                                            r"found side = 'left' on a class with a laterality; drop side"):
        LabelClass(3, "kidney_left", laterality="left", side="left")
    assert LabelClass(5, "liver", side="RIGHT").side is Side.RIGHT


def test_relations_must_name_classes_of_the_set_and_agree() -> None:
    liver = LabelClass(1, "liver", relations={"above": ("kidney_right",)})
    with pytest.raises(LabelSetError, match=r"label set 'x': class 'liver' says it lies above 'kidney_right', which "
                                            "is not in the set; fix the name or drop it from relations"):
        LabelSet("x", "1", (liver,))
    kidney = LabelClass(2, "kidney_right", relations={"above": ("liver",)})
    with pytest.raises(LabelSetError, match=r"label set 'x': 'kidney_right' lies above 'liver' and 'liver' lies above "
                                            "'kidney_right'; they contradict"):
        LabelSet("x", "1", (liver, kidney))
    agreeing = dataclasses.replace(kidney, relations={"below": ("liver",), "posterior": ("liver",)})
    assert LabelSet("x", "1", (liver, agreeing)).relations_of("liver") == {"above": ["kidney_right"],
                                                                            "anterior": ["kidney_right"]}


def test_a_user_file_with_anatomy_loads_and_a_wrong_one_names_the_class(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text('name = "mine"\n\n[[classes]]\nindex = 1\nname = "liver"\nlevels = [15, 22]\nrequired = true\n'
                    'side = "right"\nrelations = { right_of = ["spleen"] }\n\n[[classes]]\nindex = 2\n'
                    'name = "spleen"\nlevels = [17, 21.0]\npieces = "one"\n')
    mine = load_label_set(path)
    assert mine.by_name("liver").levels == (15.0, 22.0) and mine.by_name("liver").side is Side.RIGHT
    assert mine.relations_of("spleen") == {"left_of": ["liver"]} and mine.by_name("spleen").pieces is Pieces.ONE
    assert "levels = [15.0, 22.0]" in mine.to_toml() and "required = true" in mine.to_toml()
    assert "required" not in mine.by_name("spleen").to_dict() and "pieces" not in mine.by_name("liver").to_dict()
    path.write_text('name = "mine"\n\n[[classes]]\nindex = 1\nname = "liver"\nlevels = [22, 15]\n')
    with pytest.raises(LabelSetError, match=r"label class 'liver': levels must be \[top, bottom\] with top < bottom"):
        load_label_set(path)
