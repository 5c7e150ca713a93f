"""Reorient volumes to the canonical LPS-aligned array order and back.

In the canonical order the array's last axis runs to the patient's left (+x), the middle axis
posterior (+y) and the first axis superior (+z): ``direction`` is (close to) the identity. Models are
trained and run on canonical arrays, so a CT stored with flipped or permuted axes gives the same
result; :class:`Reorientation` maps arrays back to the stored order exactly (only transposes and
flips, no interpolation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from curation.errors import ConversionError

from .volume import Volume, resample_labels

__all__ = ["Reorientation", "to_canonical", "same_grid", "reoriented_onto"]


@dataclass(frozen=True)
class Reorientation:
    """How a stored array becomes canonical: a transpose of array axes, then flips of canonical array axes."""

    axes: tuple[int, int, int]     # canonical array axis k comes from stored array axis axes[k]
    flips: tuple[int, ...]         # canonical array axes flipped after the transpose

    def apply(self, array: np.ndarray) -> np.ndarray:
        """Stored (z, y, x) order -> canonical order (a view when possible)."""
        out = np.transpose(array, self.axes)
        return np.flip(out, axis=self.flips) if self.flips else out

    def invert(self, array: np.ndarray) -> np.ndarray:
        """Canonical order -> stored order (the exact inverse of :meth:`apply`)."""
        out = np.flip(array, axis=self.flips) if self.flips else array
        return np.transpose(out, np.argsort(self.axes))

    @property
    def is_identity(self) -> bool:
        return self.axes == (0, 1, 2) and not self.flips


def to_canonical(volume: Volume) -> tuple[Volume, Reorientation]:
    """The volume in canonical array order and the :class:`Reorientation` that made it.

    Raises :class:`ConversionError` when two index axes point mostly along the same patient axis
    (a volume oblique by about 45 degrees has no closest LPS order).
    """
    direction = volume.direction
    world_of = [int(np.argmax(np.abs(direction[:, i]))) for i in range(3)]  # patient axis of index axis i
    if sorted(world_of) != [0, 1, 2]:
        raise ConversionError(f"volume with direction {np.round(direction, 3).tolist()}: two axes point along the "
                              "same patient axis; reslice it to an axis-aligned grid first")
    source = [world_of.index(j) for j in range(3)]  # canonical index axis j <- stored index axis source[j]
    signs = [float(np.sign(direction[j, source[j]])) for j in range(3)]
    axes = (2 - source[2], 2 - source[1], 2 - source[0])  # array axes are index axes reversed
    flips = tuple(2 - j for j in range(3) if signs[j] < 0)
    reorientation = Reorientation(axes, flips)
    size = volume.size
    first = np.zeros(3)
    for j in range(3):
        if signs[j] < 0:
            first[source[j]] = size[source[j]] - 1
    origin = volume.index_to_world(first)[0]
    new_direction = direction[:, source] * np.asarray(signs)
    spacing = tuple(volume.spacing[source[j]] for j in range(3))
    array = np.ascontiguousarray(reorientation.apply(volume.array))
    return Volume(array, spacing, tuple(origin), new_direction), reorientation  # type: ignore[arg-type]


def same_grid(a: Volume, b: Volume) -> bool:
    """Whether two volumes lie on the same grid (size, spacing, origin, direction within 1 um / 1e-4)."""
    return a.size == b.size and bool(np.allclose(a.spacing, b.spacing, atol=1e-3)
                                     and np.allclose(a.origin, b.origin, atol=1e-2)
                                     and np.allclose(a.direction, b.direction, atol=1e-4))


def reoriented_onto(labels: Volume, grid: Volume) -> Volume | None:
    """``labels`` moved voxel for voxel onto ``grid`` when they hold the same voxels stored in another axis
    order (a map saved flipped or transposed, e.g. LAS instead of LPS); None when the voxels differ."""
    try:
        same_voxels = same_grid(to_canonical(labels)[0], to_canonical(grid)[0])
    except ConversionError:
        return None
    return resample_labels(labels, grid) if same_voxels else None
