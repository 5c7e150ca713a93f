"""Label map storage: Slicer .seg.nrrd, mask folders, combining masks."""

from __future__ import annotations

from pathlib import Path

import nrrd
import numpy as np
import pytest

from curation import Volume, load_label_set, read_volume
from curation.errors import LabelIOError
from curation.labels.labelmap import (
    list_mask_files,
    masks_to_label_map,
    read_mask_folder,
    read_seg_nrrd,
    write_mask_folder,
    write_seg_nrrd,
)


@pytest.fixture(scope="module")
def real_v2(shared_data: Path) -> Volume:
    return read_volume(shared_data / "totalsegmentator" / "seg_v2_total117" / "example_seg_fast.nii.gz")


def test_seg_nrrd_carries_slicer_names_and_colours_and_reads_back(tmp_path: Path, real_v2: Volume) -> None:
    label_set = load_label_set("total_v2")
    path = tmp_path / "segmentation.seg.nrrd"
    write_seg_nrrd(path, real_v2, label_set)
    header = nrrd.read_header(str(path))
    liver = label_set.by_name("liver")
    n = [c.name for c in label_set].index("liver")
    assert header[f"Segment{n}_Name"] == "liver"
    assert header[f"Segment{n}_LabelValue"] == str(liver.index)
    assert [round(float(v) * 255) for v in header[f"Segment{n}_Color"].split()] == list(liver.color)
    assert header[f"Segment{n}_Layer"] == "0"
    assert "SCT^10200004^Liver" in header[f"Segment{n}_Tags"]
    assert header["Segmentation_MasterRepresentation"] == "Binary labelmap"
    extent = [int(v) for v in header[f"Segment{n}_Extent"].split()]
    zz, yy, xx = np.nonzero(real_v2.array == liver.index)
    assert extent == [xx.min(), xx.max(), yy.min(), yy.max(), zz.min(), zz.max()]
    labels, segments = read_seg_nrrd(path)
    assert np.array_equal(labels.array, real_v2.array)
    assert np.allclose(labels.origin, real_v2.origin, atol=1e-4) and np.allclose(labels.direction, real_v2.direction)
    assert [(s.name, s.label_value, s.color) for s in segments] == [(c.name, c.index, c.color) for c in label_set]


def test_seg_nrrd_refuses_values_outside_the_set(tmp_path: Path) -> None:
    volume = Volume(np.full((2, 3, 4), 200, dtype=np.uint8), (1, 1, 1), (0, 0, 0), np.eye(3))
    with pytest.raises(LabelIOError, match=r"label values \[200\] are not in label set 'total_v2'"):
        write_seg_nrrd(tmp_path / "x.seg.nrrd", volume, load_label_set("total_v2"))


def test_multi_layer_seg_nrrd_is_refused_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "layers.seg.nrrd"
    nrrd.write(str(path), np.zeros((2, 3, 3, 3), dtype=np.uint8), {"space": "left-posterior-superior",
                                                                    "kinds": ["list", "domain", "domain", "domain"]})
    with pytest.raises(LabelIOError, match="remove overlaps so all segments share one layer"):
        read_seg_nrrd(path)


@pytest.mark.parametrize("suffix", [".nrrd", ".nii.gz"])
def test_mask_folder_round_trip(tmp_path: Path, real_v2: Volume, suffix: str) -> None:
    label_set = load_label_set("total_v2")
    written = write_mask_folder(tmp_path / "segmentations", real_v2, label_set, suffix=suffix)
    assert len(written) == 117 and all(p.name.endswith(suffix) for p in written)
    masks = read_mask_folder(tmp_path / "segmentations")
    assert set(masks) == set(label_set.names)
    assert masks["liver"].array.dtype == np.uint8 and set(np.unique(masks["liver"].array)) == {0, 1}
    combined = masks_to_label_map(masks, label_set)
    assert np.array_equal(combined.array, real_v2.array)
    assert np.allclose(combined.origin, real_v2.origin, atol=1e-4)


def test_mask_folder_errors(tmp_path: Path) -> None:
    folder = tmp_path / "segmentations"
    folder.mkdir()
    (folder / "liver.nrrd").write_bytes(b"")
    (folder / "liver.nii.gz").write_bytes(b"")
    with pytest.raises(LabelIOError, match="structure 'liver' has two files"):
        list_mask_files(folder)
    label_set = load_label_set("total_v2")
    a = Volume(np.zeros((2, 2, 2), np.uint8), (1, 1, 1), (0, 0, 0), np.eye(3))
    b = Volume(np.zeros((2, 2, 3), np.uint8), (1, 1, 1), (0, 0, 0), np.eye(3))
    with pytest.raises(LabelIOError, match=r"masks \['brain_stem'\] are not classes of label set 'total_v2'"):
        masks_to_label_map({"brain_stem": a}, label_set)
    with pytest.raises(LabelIOError, match="mask 'spleen': shape .* differs"):
        masks_to_label_map({"liver": a, "spleen": b}, label_set)
    with pytest.raises(LabelIOError, match="mask suffix '.mha' unknown"):
        write_mask_folder(folder, a, label_set, suffix=".mha")
