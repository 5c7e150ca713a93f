"""Segmentations people already have, read into a workspace's label set and onto a case's CT grid.

Sources: a TotalSegmentator output folder (one NIfTI mask per class; masks of other tasks beside them, such
as ``lung_vessels``, are left out and named), one such mask file (named by its file name), its multi-label
file, any multi-label NIfTI or NRRD whose values are those of a built-in label set (``labels``, e.g.
``total_v1``; without it, the workspace's set, unless the structures' positions say they are another set's:
then the import is refused and names that set) or of a mapping file (``mapping``: JSON ``{"1": "spleen", ...}``
or CSV lines ``value,name``), and Slicer ``.seg.nrrd`` files (segments matched by name). Classes of another
built-in set are carried over by the shipped mapping (``total_v1`` -> ``total_v2``). Labels on another grid
are resampled onto the CT's (nearest neighbour), saying how much fell outside; labels whose field of view
does not overlap the CT's, and maps with no label at all, are refused.
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from curation.errors import ConversionError, LabelIOError, LabelSetError
from curation.image.orientation import reoriented_onto, same_grid
from curation.image.volume import Volume, read_volume, resample_labels
from curation.labels.anatomy import relations_held
from curation.labels.labelmap import label_dtype, list_mask_files, masks_to_label_map, read_labels
from curation.labels.labelmapping import load_label_mapping
from curation.labels.labelset import LabelSet, builtin_label_sets, load_label_set

__all__ = ["SourceLabels", "read_source", "onto_grid"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceLabels:
    """What was read: the labels in the workspace's set, and notes for the revision's comment."""

    labels: Volume
    notes: tuple[str, ...] = ()


def _read(path: Path) -> Volume:
    try:
        return read_volume(path)
    except ConversionError as exc:
        raise LabelIOError(str(exc)) from None


def _mask_set(names: set[str], label_set: LabelSet) -> LabelSet:
    """The built-in label set that names most of a folder's masks (the workspace's own on a tie)."""
    best, hits = label_set, len(names & {c.name for c in label_set})
    for name in builtin_label_sets():
        candidate = load_label_set(name)
        found = len(names & {c.name for c in candidate})
        if found > hits:
            best, hits = candidate, found
    return best


def _to_set(volume: Volume, source_set: LabelSet, label_set: LabelSet, source: Path) -> Volume:
    if source_set.name == label_set.name:
        return volume
    try:
        mapping = load_label_mapping(source_set.name, label_set.name)
    except LabelSetError:
        raise LabelIOError(f"{source}: its labels are {source_set.name!r}, the workspace's {label_set.name!r}, and no "
                           "mapping between them ships; give --mapping with value names") from None
    return mapping.apply(volume)


def _mapping_file(path: Path) -> dict[int, str]:
    """A value -> class name table from JSON or CSV."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LabelIOError(f"mapping {path}: cannot be read ({exc})") from None
    try:
        if path.suffix.lower() == ".json":
            raw = json.loads(text)
            return {int(k): str(v) for k, v in raw.items()}
        rows = [r for r in csv.reader(text.splitlines()) if r and not r[0].strip().startswith("#")]
        return {int(r[0]): r[1].strip() for r in rows if r[0].strip().isdigit()}
    except (ValueError, AttributeError, IndexError) as exc:
        raise LabelIOError(f"mapping {path}: expected JSON {{\"1\": \"spleen\", ...}} or CSV lines 'value,name' "
                           f"({exc})") from None


def _by_table(volume: Volume, table: dict[int, str], label_set: LabelSet, source: Path, what: str) -> Volume:
    unknown = sorted({n for n in table.values() if n not in label_set})
    if unknown:
        raise LabelIOError(f"{what}: names {unknown[:8]} are not classes of {label_set.name!r}; rename them to the "
                           "set's names (ctcurate qa labelsets)")
    array = np.rint(np.asarray(volume.array)).astype(np.int64)
    present = {int(v) for v in np.unique(array)} - {0}
    missing = sorted(present - set(table))
    if missing:
        raise LabelIOError(f"{source}: values {missing[:10]} have no name in {what}; add them (or 0 to drop them)")
    lookup = np.zeros(max(present | set(table) | {0}) + 1, dtype=np.int64)
    for value, name in table.items():
        lookup[value] = label_set.by_name(name).index if value else 0
    return Volume(lookup[array].astype(label_dtype(label_set.max_index)), volume.spacing, volume.origin,
                  volume.direction)


def read_source(source: str | Path, label_set: LabelSet, *, labels: str | None = None,
                mapping: str | Path | None = None) -> SourceLabels:
    """``source`` as one label map in ``label_set``'s values (see the module's text)."""
    source = Path(source)
    if labels is not None and mapping is not None:
        raise LabelIOError(f"{source}: give either the label set of its values or a mapping file, not both")
    if source.is_dir():
        files = list_mask_files(source)
        if not files:
            raise LabelIOError(f"{source}: no mask files (<structure>.nii.gz or .nrrd) in the folder")
        own = load_label_set(labels) if labels is not None else _mask_set(set(files), label_set)
        left = sorted(set(files) - {c.name for c in own})
        masks = {}
        for name, path in files.items():
            if name not in left:
                masks[name] = _read(path)
        if not masks:
            raise LabelIOError(f"{source}: none of its {len(files)} masks is a class of {own.name!r}")
        volume = _to_set(masks_to_label_map(masks, own), own, label_set, source)
        notes = [f"masks of {own.name}"] + ([f"left out {', '.join(left)} (not classes of {own.name})"]
                                            if left else [])
        if left:
            log.info("%s: masks left out (not classes of %s): %s", source, own.name, ", ".join(left))
        return SourceLabels(volume, tuple(notes))
    if mapping is not None:
        return SourceLabels(_by_table(_read(source), _mapping_file(Path(mapping)), label_set, source,
                                      f"mapping {mapping}"), (f"values named by {Path(mapping).name}",))
    if labels is not None and not source.name.endswith(".seg.nrrd"):
        own = load_label_set(labels)
        return SourceLabels(_to_set(read_labels(source, own), own, label_set, source), (f"values of {own.name}",))
    if source.name.endswith(".seg.nrrd"):
        return SourceLabels(read_labels(source, label_set), ("segments matched by name",))
    stem = source.name.removesuffix(".gz").removesuffix(".nii").removesuffix(".nrrd")
    volume = _read(source)
    values = {int(v) for v in np.unique(volume.array)}
    if stem in label_set and values <= {0, 1}:  # one structure's mask, named by its file
        return SourceLabels(masks_to_label_map({stem: volume}, label_set), (f"one mask: {stem}",))
    _same_set(volume, values, label_set, source)
    return SourceLabels(read_labels(source, label_set), (f"values of {label_set.name}",))


def _centres(volume: Volume, values: set[int]) -> dict[int, np.ndarray]:
    """LPS centre (mm) of every value's voxels, in one pass."""
    array = np.rint(np.asarray(volume.array)).astype(np.int64)
    flat = array.ravel()
    counts = np.bincount(flat)
    out = {}
    grids = np.indices(array.shape, sparse=True)
    sums = [np.bincount(flat, weights=np.broadcast_to(g, array.shape).ravel(), minlength=len(counts))
            for g in grids]
    for value in values - {0}:
        if counts[value]:
            index_zyx = np.array([sums[a][value] / counts[value] for a in range(3)])
            out[value] = volume.index_to_world(index_zyx[::-1][None])[0]
    return out


def _same_set(volume: Volume, values: set[int], label_set: LabelSet, source: Path) -> None:
    """Refuse a map whose values are another built-in set's: the stated relations between structures hold far
    more often read that way (a total_v1 map read as total_v2 puts the aorta where the pancreas is)."""
    centres = _centres(volume, values)

    def fit(candidate: LabelSet) -> tuple[float, int]:
        names = {v: candidate.by_index(v).name for v in centres if v <= candidate.max_index
                 and v in {c.index for c in candidate}}
        held, judged = relations_held({c.name: c.relations for c in candidate},
                                      {names[v]: xyz for v, xyz in centres.items() if v in names})
        return (held / judged if judged else 0.0), judged

    own, judged = fit(label_set)
    if judged < 10:  # the workspace's set states too few relations among these structures to tell
        return
    for name in builtin_label_sets():
        if name == label_set.name:
            continue
        other = load_label_set(name)
        if max(values) > other.max_index:
            continue
        share, counted = fit(other)
        if counted >= 10 and share >= own + 0.15:
            raise LabelIOError(f"{source}: its values look like {name}'s, not {label_set.name}'s ({share:.0%} of the "
                               f"anatomical relations hold read as {name}, {own:.0%} as {label_set.name}); give "
                               f"--labels {name} (or --labels {label_set.name} to read them as the workspace's set)")


def onto_grid(labels: Volume, ct: Volume, source: Path, what: str) -> tuple[Volume, str]:
    """The labels on the CT's grid and how they got there: as they are, moved voxel for voxel (the same voxels
    in another axis order), or resampled by nearest neighbour (saying how much of the labelled volume fell
    outside the CT); refused when the fields of view do not meet or no label is left."""
    if not np.any(labels.array):
        raise LabelIOError(f"{source}: holds no label at all (every voxel is background); nothing to import")
    if same_grid(labels, ct):
        return Volume(labels.array, ct.spacing, ct.origin, ct.direction), ""
    moved = reoriented_onto(labels, ct)
    if moved is not None:
        return moved, "reoriented onto the CT's axes"
    low_l, high_l = labels.corners().min(axis=0), labels.corners().max(axis=0)
    low_c, high_c = ct.corners().min(axis=0), ct.corners().max(axis=0)
    overlap = np.clip(np.minimum(high_l, high_c) - np.maximum(low_l, low_c), 0, None)
    if not np.all(overlap > 0):
        raise LabelIOError(f"{source}: its field of view (LPS {np.round(low_l, 1).tolist()} to "
                           f"{np.round(high_l, 1).tolist()} mm) does not overlap {what}'s CT "
                           f"({np.round(low_c, 1).tolist()} to {np.round(high_c, 1).tolist()} mm); wrong case or "
                           "wrong file?")
    out = resample_labels(labels, ct)
    before = float(np.count_nonzero(labels.array)) * float(np.prod(labels.spacing))
    after = float(np.count_nonzero(out.array)) * float(np.prod(ct.spacing))
    if not np.any(out.array):
        raise LabelIOError(f"{source}: none of its labels lies inside {what}'s CT (the fields of view only touch); "
                           "wrong case or wrong file?")
    differ = [name for name, a, b in (("size", labels.size, ct.size), ("spacing", labels.spacing, ct.spacing),
                                      ("origin", labels.origin, ct.origin),
                                      ("direction", labels.direction, ct.direction))
              if np.shape(a) != np.shape(b) or not np.allclose(a, b, atol=1e-3)]
    note = f"on another grid ({', '.join(differ)}): resampled onto the CT's (nearest neighbour)"
    outside = 1.0 - after / before if before else 0.0
    if outside > 0.01:
        note += f"; {outside:.0%} of the labelled volume lies outside the CT's field of view and was left out"
        log.warning("%s: %.0f%% of the labelled volume lies outside %s's CT", source, 100 * outside, what)
    return out, note
