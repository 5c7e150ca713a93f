"""Canonical LPS array order: every permutation and flip of a real CT gives the same canonical volume."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from curation import Volume, read_volume
from curation.errors import ConversionError
from curation.image.orientation import to_canonical
from curation.image.volume import resample_image, resample_labels


def test_all_axis_orders_and_flips_give_one_canonical_volume(ts: Path) -> None:
    ct = read_volume(ts / "example_ct.nii.gz")  # stored RAS-like: x and y run against L and P
    canonical, reorientation = to_canonical(ct)
    assert np.allclose(canonical.direction, np.eye(3)) and reorientation.flips and not reorientation.is_identity
    assert np.array_equal(reorientation.invert(canonical.array), ct.array)
    for axes in itertools.permutations(range(3)):
        for flips in ((), (0,), (1, 2), (0, 1, 2)):
            image = sitk.PermuteAxes(ct.to_sitk(), list(axes))
            image = sitk.Flip(image, [a in flips for a in range(3)])
            stored = Volume.from_sitk(image)
            again, how = to_canonical(stored)
            assert np.array_equal(again.array, canonical.array), (axes, flips)
            assert np.allclose(again.origin, canonical.origin, atol=1e-4)
            assert np.allclose(again.spacing, canonical.spacing) and np.allclose(again.direction, np.eye(3))
            assert np.array_equal(how.invert(again.array), stored.array)
    # world positions are kept: the same voxel value at the same LPS point
    point = ct.index_to_world(np.array([10, 20, 30]))[0]
    index = np.rint(np.linalg.solve(canonical.direction * np.asarray(canonical.spacing),
                                    point - np.asarray(canonical.origin))).astype(int)
    assert canonical.array[index[2], index[1], index[0]] == ct.array[30, 20, 10]


def test_oblique_45_degrees_is_refused() -> None:
    c = np.sqrt(0.5)
    direction = np.array([[c, -c, 0], [c, c, 0], [0, 0, 1.0]])
    with pytest.raises(ConversionError, match="two axes point along the same patient axis"):
        to_canonical(Volume(np.zeros((2, 2, 2)), (1, 1, 1), (0, 0, 0), direction))


def test_anisotropic_resampling_and_labels_onto_another_grid(ts: Path) -> None:
    labels = read_volume(ts / "seg_v2_total117" / "example_seg_fast_force_split.nii.gz")
    coarse = resample_image(read_volume(ts / "example_ct.nii.gz").to_sitk(), (6.0, 6.0, 3.0))
    assert coarse.spacing == (6.0, 6.0, 3.0) and coarse.array.shape == (112, 50, 61)
    moved = resample_labels(labels, coarse)
    assert moved.array.shape == coarse.array.shape and moved.array.dtype == labels.array.dtype
    back = resample_labels(moved, labels)
    liver = 5
    a, b = back.array == liver, labels.array == liver
    assert 2 * (a & b).sum() / (a.sum() + b.sum()) > 0.9
