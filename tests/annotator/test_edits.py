"""Correction helpers on the real TotalSegmentator label map of example_ct, with known expected voxels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from annotator.edits import erase_box, fill_holes, interpolate_slices, remove_islands
from curation import load_label_set, read_volume
from curation.errors import AnnotationError

V2 = load_label_set("total_v2")
LIVER, KIDNEY = V2.by_name("liver").index, V2.by_name("kidney_left").index


@pytest.fixture()
def labels(ts: Path) -> np.ndarray:
    return read_volume(ts / "seg_v2_total117" / "example_seg_fast_force_split.nii.gz").array.astype(np.uint8)


def test_remove_islands_keeps_the_largest_piece(labels: np.ndarray) -> None:
    pieces, n = ndimage.label(labels == LIVER, structure=np.ones((3, 3, 3)))
    sizes = np.bincount(pieces.ravel())[1:]
    already = int(sizes.sum() - sizes.max())  # the map's own small liver pieces
    assert labels[5:8, 5:8, 5:8].max() == 0
    labels[5:8, 5:8, 5:8] = LIVER  # a 27-voxel island far from the liver
    before = labels.copy()
    assert remove_islands(labels, LIVER) == already + 27
    assert labels[5:8, 5:8, 5:8].max() == 0 and (labels == LIVER).sum() == sizes.max()
    assert np.array_equal(labels[before != LIVER], before[before != LIVER])  # other structures untouched
    labels[5:8, 5:8, 5:8] = LIVER
    assert remove_islands(labels, LIVER, min_voxels=28) == 27  # only pieces under 28 voxels
    assert remove_islands(labels, 200) == 0  # a structure the map does not hold


def test_fill_holes_fills_exactly_the_carved_hole(labels: np.ndarray) -> None:
    fill_holes(labels, LIVER)  # whatever cavities the map had
    normal = labels.copy()
    depth = ndimage.distance_transform_edt(np.pad(labels == LIVER, 1))[1:-1, 1:-1, 1:-1]  # the array's edge is outside
    z, y, x = np.unravel_index(int(depth.argmax()), depth.shape)  # the liver's deepest voxel
    assert depth.max() > 5
    zz, yy, xx = np.ogrid[:labels.shape[0], :labels.shape[1], :labels.shape[2]]
    ball = ((zz - z) ** 2 + (yy - y) ** 2 + (xx - x) ** 2 <= 9) & (labels == LIVER)
    assert ball.sum() > 100 and ndimage.binary_erosion(labels == LIVER)[ball].all()  # enclosed by liver
    labels[ball] = 0
    assert fill_holes(labels, LIVER) == int(ball.sum())
    assert np.array_equal(labels, normal)


def test_interpolation_restores_erased_slices(labels: np.ndarray) -> None:
    zs = np.flatnonzero((labels == KIDNEY).any(axis=(1, 2)))
    first, last = int(zs[len(zs) // 2 - 3]), int(zs[len(zs) // 2 + 3])
    original = labels.copy()
    between = slice(first + 1, last)
    erased = labels[between] == KIDNEY
    labels[between][erased] = 0
    added = interpolate_slices(labels, KIDNEY, last, first)  # either order
    restored = labels[between] == KIDNEY
    dice = 2 * (restored & erased).sum() / (restored.sum() + erased.sum())
    assert dice > 0.85 and added == int(restored.sum())
    others = (original != 0) & (original != KIDNEY)
    assert np.array_equal(labels[others], original[others])  # only background was claimed
    assert interpolate_slices(labels, KIDNEY, first, first + 1) == 0  # nothing in between
    with pytest.raises(AnnotationError, match=r"label 3: slice 0 holds none of it; draw it on both end slices"):
        interpolate_slices(labels, KIDNEY, 0, first)
    with pytest.raises(AnnotationError, match="slices 0 and 500: outside 0..111"):
        interpolate_slices(labels, KIDNEY, 0, 500)


def test_erase_box_removes_only_that_structure_inside(labels: np.ndarray) -> None:
    z, y, x = (int(round(c)) for c in ndimage.center_of_mass(labels == KIDNEY))
    box = ((z - 4, z + 4), (y + 6, y - 6), (0, labels.shape[2] + 50))  # unordered and clipped ends are fine
    region = np.s_[z - 4:z + 5, y - 6:y + 7, :]
    expected = int((labels[region] == KIDNEY).sum())
    before = labels.copy()
    assert erase_box(labels, KIDNEY, box) == expected > 0
    assert not (labels[region] == KIDNEY).any()
    assert np.array_equal(labels[before != KIDNEY], before[before != KIDNEY])
    with pytest.raises(AnnotationError, match="expected three \\(start, stop\\) pairs"):
        erase_box(labels, KIDNEY, ((0, 1), (0, 1)))
    with pytest.raises(AnnotationError, match="label 0: choose a structure"):
        erase_box(labels, 0, box)
    with pytest.raises(AnnotationError, match="expected a 3D \\(z, y, x\\) array, found 2D"):
        fill_holes(labels[0], LIVER)
