"""``ctcurate import``: segmentations people already have become a case's revision, on the case's grid and in the
workspace's label set (the shared TotalSegmentator v1 and v2 outputs onto the converted example CT)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ctcurate.cli import app
from curation import Volume, Workspace, read_volume, resample_isotropic, write_nrrd, write_volume
from curation.annotation import import_labels
from curation.annotation.revisions import RevisionStore
from curation.errors import LabelIOError
from curation.image.volume import resample_labels
from curation.labels.labelmap import read_seg_nrrd, write_seg_nrrd
from tests.cli_runner import CliRunner


@pytest.fixture()
def ws(tmp_path: Path, ts: Path) -> Workspace:
    """A total_v2 workspace with the example CT converted (native 3 mm grid) and no revision yet."""
    workspace = Workspace.create(tmp_path / "ws")
    ct = read_volume(ts / "example_ct.nii.gz")
    write_nrrd(workspace.case_dir("s0001") / "ct.nrrd", Volume(ct.array.astype(np.int16), ct.spacing, ct.origin,
                                                               ct.direction))
    return workspace


def _stored(ws: Workspace) -> np.ndarray:
    store = RevisionStore(ws)
    return read_seg_nrrd(store.path(store.latest("s0001")))[0].array


def _v2(ts: Path) -> np.ndarray:
    return np.rint(read_volume(ts / "seg_v2_total117" / "example_seg_fast_force_split.nii.gz").array).astype(int)


def test_a_totalsegmentator_v1_output_folder_into_a_v2_workspace(ws: Workspace, ts: Path) -> None:
    folder = ts / "seg_v1_total104" / "example_seg"
    result = CliRunner().invoke(app, ["import", "s0001", str(folder), "-w", str(ws.root)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "s0001: example_seg imported as revision 0 (masks of total_v1; left out lung, lung_trachea_bronchia, " \
           "lung_vessels (not classes of total_v1))" in text
    revision = RevisionStore(ws).latest("s0001")
    assert revision.author == "import:example_seg" and revision.kind == "import"
    stored, v2 = _stored(ws), ws.label_set()
    liver = np.rint(read_volume(folder / "liver.nii.gz").array) > 0
    assert np.array_equal(stored == v2.by_name("liver").index, liver)
    # the same labels as v1's multi-label file read with --labels total_v1; without it, the positions tell
    v1_file = ts / "seg_v1_total104" / "example_seg.nii.gz"
    with pytest.raises(LabelIOError, match=r"its values look like total_v1's, not total_v2's \(98% of the anatomical "
                                           r"relations hold read as total_v1, 66% as total_v2\); give --labels "
                                           "total_v1"):
        import_labels(ws, "s0001", v1_file)
    again = import_labels(ws, "s0001", v1_file, labels="total_v1")
    assert again.new and again.revision.changes == {} and "values of total_v1" in again.describe()
    # one mask file of the folder: named by its file name
    one = import_labels(ws, "s0001", folder / "spleen.nii.gz")
    assert "one mask: spleen" in one.describe()
    assert set(np.unique(_stored(ws))) == {0, v2.by_name("spleen").index}


def test_v2_files_slicer_and_a_mapping(ws: Workspace, ts: Path, tmp_path: Path) -> None:
    v2 = _v2(ts)
    made = import_labels(ws, "s0001", ts / "seg_v2_total117" / "example_seg_fast_force_split.nii.gz")
    assert made.revision.number == 0 and np.array_equal(_stored(ws), v2) and "values of total_v2" in made.describe()
    ct = read_volume(ws.case_dir("s0001") / "ct.nrrd")
    slicer = tmp_path / "edited.seg.nrrd"
    edited = v2.copy()
    edited[edited == ws.label_set().by_name("spleen").index] = 0
    write_seg_nrrd(slicer, Volume(edited.astype(np.uint8), ct.spacing, ct.origin, ct.direction), ws.label_set())
    spleen = int((v2 == ws.label_set().by_name("spleen").index).sum())
    assert import_labels(ws, "s0001", slicer).revision.changes == {"spleen": spleen}
    own = tmp_path / "two.nrrd"
    two = np.where(v2 == ws.label_set().by_name("liver").index, 7, np.where(v2 == 1, 9, 0)).astype(np.uint8)
    write_volume(own, Volume(two, ct.spacing, ct.origin, ct.direction))
    names = tmp_path / "names.json"
    names.write_text(json.dumps({"7": "liver"}))
    with pytest.raises(LabelIOError, match="case s0001: .*two.nrrd: values \\[9\\] have no name in mapping"):
        import_labels(ws, "s0001", own, mapping=names)
    names.write_text(json.dumps({"7": "liver", "9": "spleeen"}))
    with pytest.raises(LabelIOError, match="names \\['spleeen'\\] are not classes of 'total_v2'"):
        import_labels(ws, "s0001", own, mapping=names)
    table = tmp_path / "names.csv"
    table.write_text("# value,name\n7,liver\n9,spleen\n")
    mapped = import_labels(ws, "s0001", own, mapping=table)
    stored = _stored(ws)
    assert mapped.new and set(np.unique(stored)) == {0, ws.label_set().by_name("liver").index,
                                                     ws.label_set().by_name("spleen").index}


def test_labels_on_another_grid_are_resampled_and_elsewhere_refused(ws: Workspace, ts: Path, tmp_path: Path) -> None:
    ct = read_volume(ws.case_dir("s0001") / "ct.nrrd")
    v2 = Volume(_v2(ts).astype(np.uint8), ct.spacing, ct.origin, ct.direction)
    fine = resample_labels(v2, resample_isotropic(ct, 1.5))
    path = tmp_path / "fine.nii.gz"
    write_volume(path, fine)
    made = import_labels(ws, "s0001", path)
    assert "on another grid (size, spacing, origin): resampled onto the CT's (nearest neighbour)" in made.describe()
    assert "outside the CT's field of view" not in made.describe()
    labelled = v2.array > 0
    assert (_stored(ws)[labelled] == v2.array[labelled]).mean() > 0.95
    away = tmp_path / "away.nii.gz"
    write_volume(away, Volume(v2.array, v2.spacing, tuple(np.add(v2.origin, (0.0, 0.0, 2000.0))), v2.direction))
    result = CliRunner().invoke(app, ["import", "s0001", str(away), "-w", str(ws.root)])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "does not overlap case s0001's CT" in " ".join(result.output.split())
    half = tmp_path / "half.nii.gz"  # moved up by half the scan: that half falls outside and is left out
    write_volume(half, Volume(v2.array, v2.spacing, tuple(np.add(v2.origin, (0.0, 0.0, 168.0))), v2.direction))
    partly = import_labels(ws, "s0001", half)
    assert "on another grid (origin)" in partly.describe()
    assert "of the labelled volume lies outside the CT's field of view and was left out" in partly.describe()
    nothing = tmp_path / "zeros.nii.gz"
    write_volume(nothing, Volume(np.zeros_like(v2.array), v2.spacing, v2.origin, v2.direction))
    with pytest.raises(LabelIOError, match="zeros.nii.gz: holds no label at all"):
        import_labels(ws, "s0001", nothing)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(LabelIOError, match="no mask files"):
        import_labels(ws, "s0001", empty)
