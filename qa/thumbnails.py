"""Small pictures of a structure: three orthogonal CT slices through it with the mask outline.

Displayed in radiological convention: axial with the patient's left on the right of the picture,
coronal and sagittal with superior up (arrays are (z, y, x), LPS).
"""

from __future__ import annotations

import io

import numpy as np
from matplotlib.figure import Figure

from curation import Volume
from curation.labels.labelset import Category, LabelClass

__all__ = ["structure_thumbnail", "window_for"]


def window_for(cls: LabelClass) -> tuple[float, float]:
    """(level, width) in HU: lung, bone or soft-tissue window."""
    if cls.may_contain_air and cls.hu is not None and cls.hu[0] < -500:
        return -600.0, 1500.0
    if cls.category is Category.BONE:
        return 400.0, 1800.0
    return 40.0, 400.0


def structure_thumbnail(image: Volume | None, labels: Volume, cls: LabelClass, *, dpi: int = 72) -> bytes | None:
    """PNG bytes of axial, coronal and sagittal slices through ``cls`` (None when it has no voxels)."""
    mask = labels.array == cls.index
    if not mask.any():
        return None
    background = image.array if image is not None else np.zeros(mask.shape, dtype=np.int16)
    # flip array axes that run against L, P or S so that every picture has the same orientation
    flips = tuple(2 - i for i in range(3) if labels.direction[np.argmax(np.abs(labels.direction[:, i])), i] < 0)
    if flips:
        mask, background = np.flip(mask, axis=flips), np.flip(background, axis=flips)
    # on each axis, the slice that cuts most of the structure
    k, j, i = (int(np.argmax(mask.sum(axis=tuple(a for a in range(3) if a != axis)))) for axis in range(3))
    sx, sy, sz = labels.spacing
    level, width = window_for(cls)
    views = [  # rows run posterior (axial) or superior (others, drawn upwards); columns run left or posterior
        ("axial", background[k], mask[k], sy / sx, "upper"),
        ("coronal", background[:, j, :], mask[:, j, :], sz / sx, "lower"),
        ("sagittal", background[:, :, i], mask[:, :, i], sz / sy, "lower"),
    ]
    fig = Figure(figsize=(7.5, 2.6), dpi=dpi)
    axes = fig.subplots(1, 3)
    color = tuple(c / 255 for c in cls.color)
    for ax, (name, pixels, outline, aspect, origin) in zip(axes, views, strict=True):
        ax.imshow(pixels, cmap="gray", vmin=level - width / 2, vmax=level + width / 2, aspect=aspect,
                  origin=origin, interpolation="nearest")
        if outline.any():
            ax.contour(outline.astype(np.float32), levels=[0.5], colors=[color], linewidths=1.2, origin=origin)
        ax.set_title(name, fontsize=8)
        ax.set_axis_off()
    fig.suptitle(cls.name + ("" if image is not None else " (no CT on this grid)"), fontsize=9)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()
