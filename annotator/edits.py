"""Correction helpers beyond a brush: each edits one structure of a label array (z, y, x) in place.

- :func:`remove_islands`: drop the pieces of a structure apart from its largest (26-connected, as
  ``qa labels`` counts fragments), or those under a size.
- :func:`fill_holes`: fill cavities enclosed by the structure, in 3D (background voxels only).
- :func:`interpolate_slices`: fill the slices between two edited slices by shape-based interpolation
  (signed distances of the two outlines, blended linearly).
- :func:`erase_box`: remove the structure inside a box of voxel indices.

Each returns the number of voxels it changed; none touches voxels of other structures, except that
filling and interpolating may claim background only.
"""

from __future__ import annotations

import cc3d
import numpy as np
from scipy import ndimage

from curation.errors import AnnotationError

__all__ = ["remove_islands", "fill_holes", "interpolate_slices", "erase_box"]


def _check(labels: np.ndarray, label: int) -> None:
    if labels.ndim != 3:
        raise AnnotationError(f"labels: expected a 3D (z, y, x) array, found {labels.ndim}D")
    if label <= 0:
        raise AnnotationError(f"label {label}: choose a structure (values above 0) to edit")


def _box(mask: np.ndarray, margin: int = 1) -> tuple[slice, ...] | None:
    found = ndimage.find_objects(mask.astype(np.uint8))
    if not found or found[0] is None:
        return None
    return tuple(slice(max(s.start - margin, 0), min(s.stop + margin, n)) for s, n in zip(found[0], mask.shape,
                                                                                       strict=True))


def remove_islands(labels: np.ndarray, label: int, *, min_voxels: int | None = None) -> int:
    """Remove pieces of ``label`` other than the largest (``min_voxels``: only pieces smaller than that)."""
    _check(labels, label)
    box = _box(labels == label, 0)
    if box is None:
        return 0
    crop = labels[box]
    pieces, n = cc3d.connected_components(crop == label, connectivity=26, return_N=True)
    if n <= 1 and min_voxels is None:
        return 0
    sizes = np.bincount(pieces.ravel())
    sizes[0] = 0
    drop = sizes < min_voxels if min_voxels is not None else np.arange(len(sizes)) != int(sizes.argmax())
    drop[0] = False
    remove = drop[pieces]
    crop[remove] = 0
    return int(remove.sum())


def fill_holes(labels: np.ndarray, label: int) -> int:
    """Fill background cavities that ``label`` encloses in 3D; returns the voxels added."""
    _check(labels, label)
    box = _box(labels == label)
    if box is None:
        return 0
    crop = labels[box]
    mask = crop == label
    added = ndimage.binary_fill_holes(mask) & ~mask & (crop == 0)
    crop[added] = label
    return int(added.sum())


def _signed_distance(mask: np.ndarray) -> np.ndarray:
    inside = ndimage.distance_transform_edt(mask)
    outside = ndimage.distance_transform_edt(~mask)
    return np.asarray(outside - inside, dtype=np.float32)  # negative inside


def interpolate_slices(labels: np.ndarray, label: int, first: int, last: int) -> int:
    """Fill ``label`` on the axial slices strictly between slices ``first`` and ``last`` (z indices).

    Both end slices must hold the structure. On each slice between, a voxel joins the structure where
    the linear blend of the two end slices' signed distances is inside; only background changes.
    """
    _check(labels, label)
    first, last = sorted((int(first), int(last)))
    if first < 0 or last >= labels.shape[0]:
        raise AnnotationError(f"slices {first} and {last}: outside 0..{labels.shape[0] - 1}")
    if last - first < 2:
        return 0
    top, bottom = labels[first] == label, labels[last] == label
    empty = [z for z, m in ((first, top), (last, bottom)) if not m.any()]
    if empty:
        raise AnnotationError(f"label {label}: slice {empty[0]} holds none of it; draw it on both end slices "
                              "first, then interpolate")
    d0, d1 = _signed_distance(top), _signed_distance(bottom)
    changed = 0
    for z in range(first + 1, last):
        t = (z - first) / (last - first)
        inside = ((1 - t) * d0 + t * d1) <= 0
        add = inside & (labels[z] == 0)
        labels[z][add] = label
        changed += int(add.sum())
    return changed


def erase_box(labels: np.ndarray, label: int, box: tuple[tuple[int, int], ...]) -> int:
    """Remove ``label`` inside ``box`` ((z0, z1), (y0, y1), (x0, x1)), ends included; returns voxels erased."""
    _check(labels, label)
    if len(box) != 3:
        raise AnnotationError(f"box {box}: expected three (start, stop) pairs for z, y and x")
    region = tuple(slice(max(min(a, b), 0), min(max(a, b), n - 1) + 1) for (a, b), n in zip(box, labels.shape,
                                                                                              strict=True))
    crop = labels[region]
    hit = crop == label
    crop[hit] = 0
    return int(hit.sum())
