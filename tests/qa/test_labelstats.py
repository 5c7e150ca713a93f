"""The one-pass label statistics equal a straightforward per-class computation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from curation import Volume, read_volume
from qa.labelstats import compute_label_stats


def _brute(labels: np.ndarray, image: np.ndarray, label: int) -> dict:
    mask = labels == label
    components, n = ndimage.label(mask, structure=np.ones((3, 3, 3)))
    sizes = sorted(np.bincount(components.ravel())[1:].tolist(), reverse=True)
    zz, yy, xx = np.nonzero(mask)
    return {"voxels": int(mask.sum()), "sizes": sizes, "bbox": [zz.min(), zz.max(), yy.min(), yy.max(), xx.min(),
                                                                  xx.max()],
            "centroid": [zz.mean(), yy.mean(), xx.mean()], "bone": float((image[mask] >= 150).mean()),
            "median": float(np.median(image[mask])),
            "holes": int(ndimage.binary_fill_holes(mask).sum() - mask.sum())}


def test_stats_equal_a_per_class_loop_on_the_real_map(ts) -> None:
    labels = read_volume(ts / "seg_v2_total117" / "example_seg_fast_force_split.nii.gz")
    image = read_volume(ts / "example_ct.nii.gz").array
    liver, kidney = 5, 2
    stats = compute_label_stats(labels, image)
    for label in np.unique(labels.array)[1:]:
        expected = _brute(labels.array, image, int(label))
        assert stats.voxels[label] == expected["voxels"]
        assert stats.components[label].tolist() == expected["sizes"]
        assert stats.bbox[label].tolist() == expected["bbox"]
        assert np.allclose(stats.centroid_index[label], expected["centroid"])
        assert stats.hu_fraction(int(label), 150, 3071) == pytest.approx(expected["bone"])
        assert abs(stats.hu_median(int(label)) - expected["median"]) <= 1.0
    assert stats.holes[liver] == _brute(labels.array, image, liver)["holes"]
    assert stats.holes[kidney] == _brute(labels.array, image, kidney)["holes"]
    world = labels.index_to_world(stats.centroid_index[liver][::-1])[0]
    assert np.allclose(stats.centroid_world[liver], world)


def test_contacts_count_shared_faces() -> None:
    labels = np.zeros((4, 4, 6), dtype=np.uint8)
    labels[1:3, 1:3, 0:3] = 1
    labels[1:3, 1:3, 3:5] = 2
    labels[0, 0, 5] = 3  # touches nobody
    stats = compute_label_stats(Volume(labels, (1, 1, 1), (0, 0, 0), np.eye(3)))
    assert stats.contacts == {(1, 2): 4}
    assert stats.hu_hist is None and np.isnan(stats.hu_fraction(1, 0, 1))
    with pytest.raises(TypeError, match="expected an integer label array"):
        compute_label_stats(Volume(labels.astype(np.float32), (1, 1, 1), (0, 0, 0), np.eye(3)))
