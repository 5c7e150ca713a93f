"""Label map storage: one multi-label volume, a folder of one binary mask per class, 3D Slicer ``.seg.nrrd``.

- A **multi-label volume** holds each class's index (0 = background) in one integer volume
  (``.nrrd``, ``.nii.gz``).
- A **mask folder** holds ``<class name>.nrrd`` or ``<class name>.nii.gz``, one binary (0/1) uint8
  volume per class, as the reference dataset's ``segmentations/`` folders do.
- A **Slicer segmentation** (``.seg.nrrd``) is a multi-label NRRD whose header names each segment
  (``Segment<N>_Name``, ``_Color``, ``_LabelValue``, ...), so the file opens in 3D Slicer with names
  and colours. Only single-layer (3-D) files are read.

Readers return volumes with the voxel type as stored; QA decides what a float or non-binary mask means.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from curation.errors import ConversionError, LabelIOError
from curation.image.volume import (
    VOLUME_SUFFIXES,
    Volume,
    read_nrrd_with_header,
    read_volume,
    volume_suffix,
    write_nrrd,
    write_volume,
)

from .labelset import LabelSet

__all__ = ["Segment", "list_mask_files", "read_seg_nrrd", "write_seg_nrrd", "write_mask_folder",
           "read_mask_folder", "masks_to_label_map", "label_dtype", "read_labels"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Segment:
    """One segment of a Slicer segmentation file."""

    name: str
    label_value: int
    color: tuple[int, int, int]


def label_dtype(max_index: int) -> np.dtype:
    """The smallest unsigned type that holds ``max_index``."""
    return np.dtype(np.uint8) if max_index <= 255 else np.dtype(np.uint16)


def list_mask_files(folder: str | Path) -> dict[str, Path]:
    """Mask files of a folder by structure name (file name without ``.nrrd``/``.nii.gz``/``.nii``).

    Raises :class:`LabelIOError` when one name has two files (``liver.nrrd`` and ``liver.nii.gz``).
    """
    folder = Path(folder)
    out: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        suffix = volume_suffix(path)
        if suffix is None or path.name.startswith(".") or not path.is_file():
            continue
        name = path.name[: -len(suffix)]
        if name.endswith(".seg"):
            continue
        if name in out:
            raise LabelIOError(f"{folder}: structure {name!r} has two files ({out[name].name}, {path.name}); "
                               "keep one")
        out[name] = path
    return out


def _extents(array: np.ndarray) -> dict[int, str]:
    """Slicer extent ``xmin xmax ymin ymax zmin zmax`` of every label value of a (z, y, x) array, in one pass."""
    out = {}
    for value, box in enumerate(ndimage.find_objects(array), 1):
        if box is not None:
            z, y, x = box
            out[value] = f"{x.start} {x.stop - 1} {y.start} {y.stop - 1} {z.start} {z.stop - 1}"
    return out


def _terminology(label_set: LabelSet, name: str) -> str:
    cls = label_set.by_name(name)
    category = cls.snomed.get("category")
    kind = cls.snomed.get("type")
    if not (category and kind):
        return ""
    modifier = cls.snomed.get("modifier")
    mod = f"{modifier.scheme}^{modifier.value}^{modifier.meaning}" if modifier else "^^"
    return ("TerminologyEntry:Segmentation category and type - DICOM master list"
            f"~{category.scheme}^{category.value}^{category.meaning}~{kind.scheme}^{kind.value}^{kind.meaning}"
            f"~{mod}~Anatomic codes - DICOM master list~^^~^^|")


def write_seg_nrrd(path: str | Path, labels: Volume, label_set: LabelSet, *,
                   extra_fields: dict[str, str] | None = None) -> None:
    """Write a multi-label volume as a Slicer ``.seg.nrrd`` naming every class of ``label_set``.

    Raises :class:`LabelIOError` when the volume holds a value that is not a class of the set.
    """
    array = labels.array
    if array.dtype.kind not in "ui":
        raise LabelIOError(f"{path}: label volume of type {array.dtype}; expected integers")
    extents = _extents(array)  # one pass over the voxels: which values are present, and where
    unknown = sorted(set(extents) - {c.index for c in label_set})
    if unknown:
        raise LabelIOError(f"{path}: label values {unknown[:10]} are not in label set {label_set.name!r}; "
                           "map or remove them before writing")
    array = array.astype(label_dtype(label_set.max_index), copy=False)
    fields = {"Segmentation_MasterRepresentation": "Binary labelmap",
              "Segmentation_ContainedRepresentationNames": "Binary labelmap|",
              "Segmentation_ReferenceImageExtentOffset": "0 0 0",
              "ctcurate_label_set": f"{label_set.name} {label_set.version}"}
    for n, cls in enumerate(label_set):
        key = f"Segment{n}_"
        fields.update({
            key + "ID": f"Segment_{cls.index}",
            key + "Name": cls.name,
            key + "NameAutoGenerated": "0",
            key + "Color": " ".join(f"{c / 255:.6g}" for c in cls.color),
            key + "ColorAutoGenerated": "0",
            key + "LabelValue": str(cls.index),
            key + "Layer": "0",
            key + "Extent": extents.get(cls.index, "0 -1 0 -1 0 -1"),
            key + "Tags": _terminology(label_set, cls.name),
        })
    fields.update(extra_fields or {})
    write_nrrd(path, Volume(array, labels.spacing, labels.origin, labels.direction), fields=fields)


def read_seg_nrrd(path: str | Path) -> tuple[Volume, list[Segment]]:
    """Read a single-layer Slicer ``.seg.nrrd``: the label volume and its segments."""
    path = Path(path)

    def one_layer(header: dict[str, Any]) -> None:
        if int(header.get("dimension", 3)) != 3:
            raise LabelIOError(f"{path}: a {header.get('dimension')}-D segmentation (overlapping segments in "
                               "several layers) is not supported; in Slicer, remove overlaps so all segments share "
                               "one layer")

    try:
        volume, header = read_nrrd_with_header(path, one_layer)
    except ConversionError as exc:
        raise LabelIOError(str(exc)) from None
    segments = []
    n = 0
    while f"Segment{n}_Name" in header:
        key = f"Segment{n}_"
        try:
            value = int(header.get(key + "LabelValue", n + 1))
            rgb = [float(v) for v in str(header.get(key + "Color", "0.5 0.5 0.5")).split()]
        except ValueError as exc:
            raise LabelIOError(f"{path}: segment {n} has a malformed header field ({exc})") from None
        if int(header.get(key + "Layer", 0)) != 0:
            raise LabelIOError(f"{path}: segment {header[key + 'Name']!r} is on layer {header[key + 'Layer']}; "
                               "only single-layer files are read")
        color = (int(round(rgb[0] * 255)), int(round(rgb[1] * 255)), int(round(rgb[2] * 255)))
        segments.append(Segment(str(header[key + "Name"]), value, color))
        n += 1
    return volume, segments


def write_mask_folder(folder: str | Path, labels: Volume, label_set: LabelSet, *, suffix: str = ".nrrd") -> list[Path]:
    """Write one binary uint8 mask per class of ``label_set`` (empty ones too) into ``folder``."""
    if suffix not in VOLUME_SUFFIXES:
        raise LabelIOError(f"{folder}: mask suffix {suffix!r} unknown; use one of {', '.join(VOLUME_SUFFIXES)}")
    folder = Path(folder)
    written = []
    for cls in label_set:
        mask = (labels.array == cls.index).astype(np.uint8)
        path = folder / f"{cls.name}{suffix}"
        write_volume(path, Volume(mask, labels.spacing, labels.origin, labels.direction))
        written.append(path)
    return written


def read_mask_folder(folder: str | Path) -> dict[str, Volume]:
    """Read every mask file of a folder (see :func:`list_mask_files`), keyed by structure name."""
    out = {}
    for name, path in list_mask_files(folder).items():
        try:
            out[name] = read_volume(path)
        except ConversionError as exc:
            raise LabelIOError(str(exc)) from None
    return out


def masks_to_label_map(masks: dict[str, Volume], label_set: LabelSet) -> Volume:
    """Combine binary masks into one multi-label volume (classes later in the set win overlaps).

    Raises :class:`LabelIOError` for a name that is not in the set or masks on different grids.
    """
    if not masks:
        raise LabelIOError("masks_to_label_map: no masks given")
    index = label_set.index_of()
    unknown = sorted(set(masks) - set(index))
    if unknown:
        raise LabelIOError(f"masks {unknown[:5]} are not classes of label set {label_set.name!r}")
    first = next(iter(masks.values()))
    out = np.zeros(first.array.shape, dtype=label_dtype(label_set.max_index))
    for name in sorted(masks, key=lambda n: index[n]):
        volume = masks[name]
        if volume.array.shape != out.shape:
            raise LabelIOError(f"mask {name!r}: shape {volume.array.shape} differs from {out.shape}; masks of one "
                               "label map must share a grid")
        out[volume.array > 0] = index[name]
    return Volume(out, first.spacing, first.origin, first.direction)


def read_labels(source: str | Path, label_set: LabelSet) -> Volume:
    """Labels in any storage form as one multi-label volume in ``label_set``'s values.

    ``source`` is a folder of binary masks (``<structure>.nrrd|.nii.gz``), a Slicer ``.seg.nrrd`` (segments
    matched to the set by name, so its own label values may differ), or a multi-label NRRD or NIfTI file
    whose values are the set's. Raises :class:`LabelIOError` naming what does not fit the set.
    """
    source = Path(source)
    if source.is_dir():
        return masks_to_label_map(read_mask_folder(source), label_set)
    if source.name.endswith(".seg.nrrd"):
        volume, segments = read_seg_nrrd(source)
        by_name = {c.name: c.index for c in label_set}
        names = [s.name for s in segments]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise LabelIOError(f"{source}: segments named {twice} more than once; give each segment its own name "
                               "(two segments of one name would merge)")
        unknown = sorted(s.name for s in segments if s.name not in by_name)
        if unknown:
            raise LabelIOError(f"{source}: segments {unknown[:10]} are not in label set {label_set.name!r}; rename "
                               "them to the set's names (ctcurate qa labelsets " + label_set.name + ")")
        if segments and any(s.label_value != by_name[s.name] for s in segments):
            lookup = np.arange(max(int(volume.array.max(initial=0)), max(s.label_value for s in segments)) + 1)
            lookup[:] = 0
            for s in segments:
                lookup[s.label_value] = by_name[s.name]
            array = lookup[volume.array].astype(label_dtype(label_set.max_index))
            volume = Volume(array, volume.spacing, volume.origin, volume.direction)
    else:
        try:
            volume = read_volume(source)
        except ConversionError as exc:
            raise LabelIOError(str(exc)) from None
    array = volume.array
    if not np.issubdtype(array.dtype, np.integer):
        if not np.array_equal(array, np.round(array)):
            raise LabelIOError(f"{source}: label values are not whole numbers ({array.dtype}); expected a label map")
        array = array.astype(np.int64)
    present = {int(v) for v in np.unique(array)} - {0}
    unknown_values = sorted(present - {c.index for c in label_set})
    if unknown_values:
        raise LabelIOError(f"{source}: label values {unknown_values[:10]} are not in label set {label_set.name!r} "
                           f"(values 1..{label_set.max_index}); map them to the set first")
    return Volume(array.astype(label_dtype(label_set.max_index), copy=False), volume.spacing, volume.origin,
                  volume.direction)
