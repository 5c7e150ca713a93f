"""Segment one CT with one or more nnU-Net model parts and bring the result back to the CT's grid.

Each part runs on the CT in canonical LPS array order at the part's own spacing (a stored copy at
that spacing is used when one is given, else the CT is resampled), its label values are mapped to the
workspace's label set by name, and its labels are carried back onto the CT's own grid (and onto any
other grid asked for) by nearest neighbour in world coordinates. Parts are merged in order; a voxel
keeps the first part's label.
"""

from __future__ import annotations

import difflib
import logging
from dataclasses import dataclass

import numpy as np

from curation import Volume
from curation.errors import ModelError
from curation.image.orientation import to_canonical
from curation.image.volume import resample_image, resample_labels
from curation.labels.labelmap import label_dtype
from curation.labels.labelset import LabelSet

from .predict import ModelFolder, NnunetModel

__all__ = ["ModelPart", "map_labels", "segment_ct"]

log = logging.getLogger(__name__)


def map_labels(folder: ModelFolder, label_set: LabelSet, renames: dict[str, str] | None = None) -> dict[int, int]:
    """Model label value -> label set index, by name (``renames`` maps model names to class names first).

    Raises :class:`ModelError` listing every model label that names no class of the set.
    """
    renames = renames or {}
    index = label_set.index_of()
    wrong = [f"{name}={target}" for name, target in renames.items() if name in folder.labels and target not in index]
    if wrong:
        close = difflib.get_close_matches(wrong[0].split("=", 1)[1], label_set.names, n=3)
        raise ModelError(f"--map {', '.join(wrong[:5])}: not a class of label set {label_set.name!r}"
                         + (f" (close: {', '.join(close)})" if close else "") + "; 'ctcurate qa labelsets "
                         f"{label_set.name}' lists its classes")
    unmapped = [name for name in folder.labels if renames.get(name, name) not in index]
    if unmapped:
        raise ModelError(f"model {folder.path.name}: labels {unmapped[:8]} are not classes of label set "
                         f"{label_set.name!r}; map them with --map MODEL_LABEL=CLASS (e.g. "
                         f"{unmapped[0]}={label_set.names[0]})")
    targets: dict[str, list[str]] = {}
    for name in folder.labels:
        targets.setdefault(renames.get(name, name), []).append(name)
    for target, names in targets.items():
        if len(names) > 1:  # a coarser label set may merge labels; a slip of --map looks the same, so say it
            log.warning("model %s: labels %s are merged into class %r", folder.path.name, " and ".join(names), target)
    return {value: index[renames.get(name, name)] for name, value in folder.labels.items()}


@dataclass
class ModelPart:
    """A loaded model and how its values map to the label set."""

    model: NnunetModel
    mapping: dict[int, int]

    def table(self) -> np.ndarray:
        table = np.zeros(max(self.mapping, default=0) + 1, dtype=np.int64)
        for source, target in self.mapping.items():
            table[source] = target
        return table


def _input(ct: Volume, spacing: tuple[float, float, float], ready: list[Volume], max_voxels: int) -> Volume:
    """The CT in canonical order at ``spacing``: a ready copy when one matches, else resampled."""
    for copy in ready:
        canonical, _ = to_canonical(copy)
        if np.allclose(canonical.spacing, spacing, rtol=1e-3):
            return canonical
    canonical, _ = to_canonical(ct)
    if np.allclose(canonical.spacing, spacing, rtol=1e-3):
        return canonical
    extent = np.asarray(canonical.size) * np.asarray(canonical.spacing)
    voxels = int(np.prod(np.maximum(1, np.round(extent / np.asarray(spacing)))))
    if voxels > max_voxels:
        raise ModelError(f"CT of {canonical.size} voxels at {canonical.spacing} mm would be {voxels / 1e6:.0f} M "
                         f"voxels at the model's {spacing} mm, over the limit of {max_voxels / 1e6:.0f} M; crop the "
                         "CT or raise the limit")
    return resample_image(canonical.to_sitk(), spacing)


def segment_ct(parts: list[ModelPart], ct: Volume, label_set: LabelSet, *, ready: list[Volume] | None = None,
               grids: list[Volume] | None = None, max_voxels: int = 400_000_000) -> list[Volume]:
    """Label volumes of ``ct``: first on the CT's own grid, then on each of ``grids`` (e.g. the 1.5/3 mm copies).

    ``ready`` are stored copies of the CT that a part may use as its input when the spacing matches.
    """
    if not parts:
        raise ModelError("segment: no model parts given")
    targets = [ct, *(grids or [])]
    dtype = label_dtype(label_set.max_index)
    merged = [np.zeros(t.array.shape, dtype=dtype) for t in targets]
    for part in parts:
        source = _input(ct, part.model.spacing, ready or [], max_voxels)
        values = part.model.predict(source)
        table = part.table()
        known = values < len(table)
        values = np.where(known, table[np.where(known, values, 0)], 0).astype(dtype)  # unmapped values -> 0
        predicted = Volume(values, source.spacing, source.origin, source.direction)
        for target, out in zip(targets, merged, strict=True):
            on_grid = resample_labels(predicted, target).array
            free = (out == 0) & (on_grid != 0)
            out[free] = on_grid[free]
    return [Volume(out, t.spacing, t.origin, t.direction) for out, t in zip(merged, targets, strict=True)]
