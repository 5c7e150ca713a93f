"""Per-class statistics of one label map in a fixed number of passes over the volume.

Everything the label checks need comes from:

1. one ``bincount`` of (label, HU) codes: voxel counts, mean and median HU, fraction of voxels in any
   HU range, for every class at once;
2. one multi-label connected-components pass (26-connectivity, ``cc3d``) with its statistics:
   components per class, their sizes, bounding boxes and centroids;
3. one comparison of each axis with its shifted self: which classes touch which (contact areas);
4. one connected-components pass over the background: pieces enclosed by one class are its holes.

Arrays are (z, y, x); world positions are LPS millimetres.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cc3d
import numpy as np

from curation import Volume

__all__ = ["HU_MIN", "HU_MAX", "LabelStats", "compute_label_stats"]

HU_MIN, HU_MAX = -1024, 3071
_NBINS = HU_MAX - HU_MIN + 1


@dataclass
class LabelStats:
    """Statistics of a label map, each array indexed by label value (0 = background)."""

    shape: tuple[int, int, int]
    voxel_volume_ml: float
    voxels: np.ndarray                     # (K,) voxel counts
    hu_hist: np.ndarray | None             # (K, 4096) HU histogram (HU_MIN..HU_MAX), None without an image
    components: dict[int, np.ndarray]      # label -> component sizes, largest first
    component_boxes: dict[int, np.ndarray]  # label -> (n, 6) [z0, z1, y0, y1, x0, x1] inclusive, same order
    component_centroids: dict[int, np.ndarray]  # label -> (n, 3) index (z, y, x), same order
    bbox: np.ndarray                       # (K, 6) class bounding box, -1 when empty
    centroid_index: np.ndarray             # (K, 3) (z, y, x), nan when empty
    centroid_world: np.ndarray             # (K, 3) LPS mm, nan when empty
    contacts: dict[tuple[int, int], int] = field(default_factory=dict)  # (a, b) with a < b -> faces shared
    holes: dict[int, int] = field(default_factory=dict)  # class -> background voxels it alone encloses
    spacing_zyx: tuple[float, float, float] = (1.0, 1.0, 1.0)
    slice_voxels: np.ndarray | None = None  # (K, nz) voxels of each class in each slice (array axis 0)

    def present(self) -> list[int]:
        return [int(v) for v in np.flatnonzero(self.voxels) if v > 0]

    def hu_fraction(self, label: int, low: float, high: float) -> float:
        """Fraction of the class's voxels with low <= HU <= high (nan without an image or voxels)."""
        if self.hu_hist is None or self.voxels[label] == 0:
            return float("nan")
        lo = int(np.clip(np.ceil(low) - HU_MIN, 0, _NBINS))
        hi = int(np.clip(np.floor(high) - HU_MIN + 1, 0, _NBINS))
        return float(self.hu_hist[label, lo:hi].sum() / self.voxels[label])

    def hu_median(self, label: int) -> float:
        if self.hu_hist is None or self.voxels[label] == 0:
            return float("nan")
        cumulative = np.cumsum(self.hu_hist[label])
        n = int(self.voxels[label])
        lower = np.searchsorted(cumulative, (n - 1) // 2 + 1)  # bins of the two middle voxels (0-based ranks)
        upper = np.searchsorted(cumulative, n // 2 + 1)
        return float((lower + upper) / 2 + HU_MIN)

    def hu_mean(self, label: int) -> float:
        if self.hu_hist is None or self.voxels[label] == 0:
            return float("nan")
        return float(self.hu_hist[label] @ np.arange(HU_MIN, HU_MAX + 1) / self.voxels[label])


def _hu_histogram(labels: np.ndarray, image: np.ndarray, n_labels: int) -> np.ndarray:
    hu = np.asarray(image)
    if hu.dtype.kind == "f":
        hu = np.rint(np.nan_to_num(hu, nan=HU_MIN))
    codes = np.clip(hu, HU_MIN, HU_MAX).astype(np.int32)
    codes -= HU_MIN
    codes += labels.astype(np.int32) * _NBINS
    return np.bincount(codes.ravel(), minlength=n_labels * _NBINS).reshape(n_labels, _NBINS)


def _contacts(labels: np.ndarray, n_labels: int) -> dict[tuple[int, int], int]:
    counts = np.zeros(n_labels * n_labels, dtype=np.int64)
    for axis in range(3):
        a = labels[tuple(slice(None, -1) if d == axis else slice(None) for d in range(3))]
        b = labels[tuple(slice(1, None) if d == axis else slice(None) for d in range(3))]
        differ = (a != b) & (a != 0) & (b != 0)
        lo = np.minimum(a[differ], b[differ]).astype(np.int64)
        hi = np.maximum(a[differ], b[differ]).astype(np.int64)
        counts += np.bincount(lo * n_labels + hi, minlength=n_labels * n_labels)
    out = {}
    for code in np.flatnonzero(counts):
        out[(int(code // n_labels), int(code % n_labels))] = int(counts[code])
    return out


def _enclosed_background(array: np.ndarray, n_labels: int) -> dict[int, int]:
    """Voxels of background enclosed by one class alone (holes), per class, in one pass for all classes.

    Background pieces (6-connected) that touch the volume border are outside every structure; each other
    piece that only one class surrounds is a hole of that class.
    """
    background = array == 0
    pieces, n = cc3d.connected_components(background, connectivity=6, return_N=True)
    if n == 0:
        return {}
    faces = [pieces[0], pieces[-1], pieces[:, 0], pieces[:, -1], pieces[:, :, 0], pieces[:, :, -1]]
    outside = np.unique(np.concatenate([f.ravel() for f in faces]))
    inner = np.ones(n + 1, dtype=bool)
    inner[outside] = False
    inner[0] = False
    if not inner.any():
        return {}
    pieces = np.where(inner[pieces], pieces, 0)
    codes = []
    for axis in range(3):
        lead = tuple(slice(None, -1) if d == axis else slice(None) for d in range(3))
        tail = tuple(slice(1, None) if d == axis else slice(None) for d in range(3))
        for here, there in ((lead, tail), (tail, lead)):
            p, labels = pieces[here], array[there]
            touch = (p > 0) & (labels > 0)
            codes.append(p[touch].astype(np.int64) * n_labels + labels[touch])
    pairs = np.unique(np.concatenate(codes))
    piece_ids, piece_labels = pairs // n_labels, pairs % n_labels
    ids, first, count = np.unique(piece_ids, return_index=True, return_counts=True)
    sizes = np.bincount(pieces.ravel(), minlength=n + 1)
    holes: dict[int, int] = {}
    for piece, start, k in zip(ids, first, count, strict=True):
        if k == 1:  # surrounded by one class only
            label = int(piece_labels[start])
            holes[label] = holes.get(label, 0) + int(sizes[piece])
    return holes


def compute_label_stats(labels: Volume, image: np.ndarray | None = None, *, contacts: bool = True) -> LabelStats:
    """Compute :class:`LabelStats` of an integer multi-label volume (and the CT on the same grid).

    Parameters
    ----------
    labels : Volume
        Integer label values, (z, y, x).
    image : ndarray, optional
        CT in HU on the same grid; without it the HU statistics are left out.
    contacts : bool
        Whether to count the faces shared between classes.
    """
    array = np.ascontiguousarray(labels.array)
    if array.dtype.kind not in "iu":
        raise TypeError(f"compute_label_stats: expected an integer label array, found {array.dtype}")
    n_labels = int(array.max(initial=0)) + 1
    voxels = np.bincount(array.ravel(), minlength=n_labels)
    hist = _hu_histogram(array, image, n_labels) if image is not None else None

    cc, n = cc3d.connected_components(array, connectivity=26, return_N=True)
    comp_label = np.zeros(n + 1, dtype=np.int64)
    comp_label[cc.ravel()] = array.ravel()
    cstats = cc3d.statistics(cc, no_slice_conversion=True)
    del cc
    sizes = np.asarray(cstats["voxel_counts"], dtype=np.int64)
    boxes = np.asarray(cstats["bounding_boxes"], dtype=np.int64).reshape(-1, 6)
    centroids = np.asarray(cstats["centroids"], dtype=float).reshape(-1, 3)

    components: dict[int, np.ndarray] = {}
    component_boxes: dict[int, np.ndarray] = {}
    component_centroids: dict[int, np.ndarray] = {}
    bbox = np.full((n_labels, 6), -1, dtype=np.int64)
    centroid_index = np.full((n_labels, 3), np.nan)
    order = np.argsort(comp_label[1:], kind="stable") + 1
    bounds = np.searchsorted(comp_label[order], np.arange(n_labels + 1))
    for label in range(1, n_labels):
        ids = order[bounds[label]:bounds[label + 1]]
        if not len(ids):
            continue
        ids = ids[np.argsort(-sizes[ids], kind="stable")]
        components[label] = sizes[ids]
        component_boxes[label] = boxes[ids]
        component_centroids[label] = centroids[ids]
        b = boxes[ids]
        bbox[label] = [b[:, 0].min(), b[:, 1].max(), b[:, 2].min(), b[:, 3].max(), b[:, 4].min(), b[:, 5].max()]
        centroid_index[label] = (centroids[ids] * sizes[ids, None]).sum(axis=0) / sizes[ids].sum()

    xyz = centroid_index[:, ::-1]
    world = np.asarray(labels.origin) + (xyz * np.asarray(labels.spacing)) @ labels.direction.T

    holes = _enclosed_background(array, n_labels)
    nz = array.shape[0]
    per_slice = np.bincount(np.add(array.reshape(nz, -1).astype(np.int64) * nz, np.arange(nz)[:, None]).ravel(),
                            minlength=n_labels * nz).reshape(n_labels, nz)
    spacing = labels.spacing
    return LabelStats(
        shape=array.shape, voxel_volume_ml=float(np.prod(spacing)) / 1000.0, voxels=voxels, hu_hist=hist,
        components=components, component_boxes=component_boxes, component_centroids=component_centroids,
        bbox=bbox, centroid_index=centroid_index, centroid_world=world,
        contacts=_contacts(array, n_labels) if contacts else {}, holes=holes,
        spacing_zyx=(spacing[2], spacing[1], spacing[0]), slice_voxels=per_slice)
