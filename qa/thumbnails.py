"""Pictures of a structure: three orthogonal CT slices through it with the mask outlined and tinted.

Displayed in radiological convention: axial with the patient's left on the right of the picture,
coronal and sagittal with superior up (arrays are (z, y, x), LPS).

Which slices and how much of them (:func:`thumbnail_view`): through a finding's point when one is
given (``at_lps``, a world point in LPS millimetres: the island, the hole, the shifted edge), cropped
around it and marked; else through most of the structure, cropped around it when it is small (a
structure a few millimetres across is invisible on a whole slice), the whole slice otherwise.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from curation import Volume
from curation.labels.labelset import Category, LabelClass

__all__ = ["ThumbnailView", "display_planes", "marker_positions", "structure_thumbnail", "thumbnail_view", "window_for",
           "world_to_index"]

ZOOM_MM = 25.0
"""Half-width of the cropped view around a finding's point (millimetres, on each axis)."""
ZOOM_MIN_VOXELS = 8
"""Half-width of a cropped view in voxels at least (coarse grids)."""
TINY_MM = 40.0
"""A structure whose bounding box is at most this long on every axis is shown cropped around it."""


@dataclass(frozen=True)
class ThumbnailView:
    """What a picture shows, in array indices (z, y, x) of the label volume.

    ``slices`` = (k, j, i): the axial picture is slice k, the coronal j, the sagittal i. ``box`` is
    the cropped region (the whole array when not cropped); each picture shows the box's extent on its
    two in-plane axes. ``marked``: the slices' crossing point is a finding's point and is marked.
    """

    slices: tuple[int, int, int]
    box: tuple[slice, slice, slice]
    marked: bool = False
    cropped: bool = False

    def contains(self, index: Sequence[int]) -> bool:
        """Whether the array index (z, y, x) lies inside the box."""
        return all(s.start <= int(v) < s.stop for s, v in zip(self.box, index, strict=True))


def window_for(cls: LabelClass) -> tuple[float, float]:
    """(level, width) in HU: lung, bone or soft-tissue window."""
    if cls.may_contain_air and cls.hu is not None and cls.hu[0] < -500:
        return -600.0, 1500.0
    if cls.category is Category.BONE:
        return 400.0, 1800.0
    return 40.0, 400.0


def world_to_index(volume: Volume, lps: Sequence[float] | np.ndarray) -> np.ndarray:
    """Continuous (i, j, k) = (x, y, z) indices of LPS points, shape (n, 3); the inverse of
    :meth:`Volume.index_to_world` (world = origin + (ijk * spacing) @ D.T, D orthonormal)."""
    points = np.atleast_2d(np.asarray(lps, dtype=float))
    return ((points - np.asarray(volume.origin)) @ volume.direction) / np.asarray(volume.spacing)


def _box(centre: Sequence[int], half: Sequence[int], shape: Sequence[int]) -> tuple[slice, slice, slice]:
    """A box of half-widths ``half`` around ``centre``, moved (not shrunk) to lie inside ``shape``."""
    out = []
    for c, h, n in zip(centre, half, shape, strict=True):
        size = min(2 * h + 1, n)
        start = min(max(c - h, 0), n - size)
        out.append(slice(start, start + size))
    return out[0], out[1], out[2]


def _half_widths(labels: Volume, mm: Sequence[float]) -> list[int]:
    """Half-widths in voxels on the array axes (z, y, x) of ``mm`` millimetres (given per array axis)."""
    spacing_zyx = labels.spacing[::-1]
    return [max(ZOOM_MIN_VOXELS, math.ceil(m / s)) for m, s in zip(mm, spacing_zyx, strict=True)]


def thumbnail_view(labels: Volume, cls: LabelClass, at_lps: Sequence[float] | None = None) -> ThumbnailView | None:
    """The slices and crop of ``cls``'s picture (None when it has no voxels); see the module docstring.

    With ``at_lps`` the slices go through the voxel holding that point (clipped to the grid) and the
    box spans :data:`ZOOM_MM` around it on each axis.
    """
    mask = labels.array == cls.index
    if not mask.any():
        return None
    shape = mask.shape
    if at_lps is not None:
        i, j, k = np.rint(world_to_index(labels, at_lps)[0]).astype(int)
        centre = [int(np.clip(v, 0, n - 1)) for v, n in zip((k, j, i), shape, strict=True)]
        return ThumbnailView((centre[0], centre[1], centre[2]),
                             _box(centre, _half_widths(labels, [ZOOM_MM] * 3), shape), marked=True, cropped=True)
    # on each axis, the slice that cuts most of the structure
    k, j, i = (int(np.argmax(mask.sum(axis=tuple(a for a in range(3) if a != axis)))) for axis in range(3))
    where = np.nonzero(mask)
    lo = np.array([w.min() for w in where])
    hi = np.array([w.max() for w in where])
    extent_mm = (hi - lo + 1) * np.asarray(labels.spacing[::-1])
    if np.all(extent_mm <= TINY_MM):
        half = _half_widths(labels, [max(ZOOM_MM, e / 2 + 10.0) for e in extent_mm])
        return ThumbnailView((k, j, i), _box([int(c) for c in (lo + hi) // 2], half, shape), cropped=True)
    return ThumbnailView((k, j, i), (slice(0, shape[0]), slice(0, shape[1]), slice(0, shape[2])))


def structure_thumbnail(image: Volume | None, labels: Volume, cls: LabelClass, *,
                        at_lps: Sequence[float] | None = None, dpi: int = 80) -> bytes | None:
    """PNG bytes of axial, coronal and sagittal slices of ``cls`` (None when it has no voxels), chosen by
    :func:`thumbnail_view`; each of the three panels is about 260 pixels at the default ``dpi``."""
    view = thumbnail_view(labels, cls, at_lps)
    if view is None:
        return None
    mask = labels.array == cls.index
    background = image.array if image is not None else np.zeros(mask.shape, dtype=np.int16)
    sx, sy, sz = labels.spacing
    level, width = window_for(cls)
    panels = [  # rows run posterior (axial) or superior (others, drawn upwards); columns run left or posterior
        ("axial", sy / sx, "upper"), ("coronal", sz / sx, "lower"), ("sagittal", sz / sy, "lower")]
    fig = Figure(figsize=(10.5, 3.9), dpi=dpi)
    axes = fig.subplots(1, 3)
    color = tuple(c / 255 for c in cls.color)
    for ax, (name, aspect, origin), pixels, outline, (row, column) in zip(
            axes, panels, display_planes(background, labels, view), display_planes(mask, labels, view),
            marker_positions(labels, view), strict=True):
        ax.imshow(pixels, cmap="gray", vmin=level - width / 2, vmax=level + width / 2, aspect=aspect,
                  origin=origin, interpolation="nearest")
        if outline.any():
            ax.imshow(np.ma.masked_where(~outline, outline), cmap=ListedColormap([color]), alpha=0.35,
                      aspect=aspect, origin=origin, interpolation="nearest")
            if min(outline.shape) >= 2:  # contour coordinates are pixel centres, like imshow's, for either origin
                ax.contour(outline.astype(np.float32), levels=[0.5], colors=[color], linewidths=1.2)
        if view.marked:
            ax.plot([column], [row], marker="o", markersize=56, markerfacecolor="none",
                    markeredgecolor="yellow", markeredgewidth=1.5)
        ax.set_title(name, fontsize=9)
        ax.set_axis_off()
    where = " at the finding's point" if view.marked else " (zoomed)" if view.cropped else ""
    fig.suptitle(cls.name + where + ("" if image is not None else " (no CT on this grid)"), fontsize=10)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _flipped_axes(labels: Volume) -> set[int]:
    """Array axes (0 z, 1 y, 2 x) that run against S, P or L: flipped so that every picture has the same
    orientation."""
    return {2 - i for i in range(3) if labels.direction[np.argmax(np.abs(labels.direction[:, i])), i] < 0}


def display_planes(array: np.ndarray, labels: Volume, view: ThumbnailView) -> list[np.ndarray]:
    """The axial, coronal and sagittal planes of ``array`` (on ``labels``'s grid) as drawn: the view's
    slices, cropped to its box, oriented for display (row 0 is drawn at the top of the axial picture and
    at the bottom of the others)."""
    flipped = _flipped_axes(labels)
    planes = []
    for axis in range(3):
        rest = [a for a in range(3) if a != axis]
        plane = np.take(array, view.slices[axis], axis=axis)[view.box[rest[0]], view.box[rest[1]]]
        for n, a in enumerate(rest):
            if a in flipped:
                plane = np.flip(plane, axis=n)
        planes.append(plane)
    return planes


def marker_positions(labels: Volume, view: ThumbnailView) -> list[tuple[int, int]]:
    """(row, column) of the view's crossing point (the finding's point when marked) in each plane of
    :func:`display_planes`."""
    flipped = _flipped_axes(labels)
    out = []
    for axis in range(3):
        position = []
        for a in (a for a in range(3) if a != axis):
            box, offset = view.box[a], view.slices[a] - view.box[a].start
            position.append(box.stop - box.start - 1 - offset if a in flipped else offset)
        out.append((position[0], position[1]))
    return out
