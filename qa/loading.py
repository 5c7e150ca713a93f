"""Read one case's image and labels, checking completeness, storage, geometry, agreement and overlap.

Everything that goes wrong while reading becomes a :class:`~qa.findings.Finding` naming the file;
nothing is resampled: a mask on another grid is reported and left out of the anatomical checks, and a
whole map on another grid is kept aside for a case verdict (:mod:`qa.verdicts`). Only a map that holds
the CT's very voxels in another axis order (saved LAS instead of LPS) is moved onto the CT's grid.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from curation import Volume
from curation.errors import ConversionError, LabelIOError
from curation.image.orientation import reoriented_onto
from curation.image.volume import nifti_nonfinite, read_volume, volume_suffix
from curation.labels.labelmap import Segment, label_dtype, list_mask_files, read_seg_nrrd
from curation.labels.labelset import LabelSet
from curation.workspace import MASKS_FOLDER

from .cases import CaseFiles
from .findings import Check, Finding, Severity

__all__ = ["GridTolerance", "LoadedCase", "compare_grids", "load_case"]


@dataclass(frozen=True)
class GridTolerance:
    """How far two voxel grids may differ and still count as the same grid."""

    origin_mm: float = 0.01
    spacing_rel: float = 1e-4
    direction: float = 1e-4


def compare_grids(a: Volume, b: Volume, tol: GridTolerance) -> dict[str, Any]:
    """Differences between the grids of ``a`` and ``b`` beyond ``tol`` (empty dict: same grid)."""
    out: dict[str, Any] = {}
    if a.size != b.size:
        out["size"] = (list(a.size), list(b.size))
    spacing_a, spacing_b = np.asarray(a.spacing), np.asarray(b.spacing)
    if np.max(np.abs(spacing_a - spacing_b) / spacing_b) > tol.spacing_rel:
        out["spacing"] = (spacing_a.round(4).tolist(), spacing_b.round(4).tolist())
    shift = np.asarray(a.origin) - np.asarray(b.origin)
    if np.linalg.norm(shift) > tol.origin_mm:
        out["origin"] = (np.asarray(a.origin).round(3).tolist(), np.asarray(b.origin).round(3).tolist())
        out["origin_shift_mm"] = float(np.linalg.norm(shift))
    if np.max(np.abs(a.direction - b.direction)) > tol.direction:
        out["direction"] = (a.direction.round(4).tolist(), b.direction.round(4).tolist())
    return out


def _grid_message(what: str, diff: dict[str, Any], against: str) -> str:
    parts = []
    for key, unit in (("size", ""), ("spacing", " mm"), ("origin", "")):
        if key in diff:
            first, second = diff[key]
            shift = f" (shifted {diff['origin_shift_mm']:.2f} mm)" if key == "origin" else ""
            parts.append(f"{key} {first} vs {second}{unit}{shift}")
    if "direction" in diff:
        parts.append("direction differs")
    return (f"{what} is not on the grid of the {against}: {'; '.join(parts)}; it does not overlay the {against}. "
            "Fix the file's header or regenerate the labels on the right grid (ctcurate never resamples labels "
            "to hide this)")


@dataclass
class LoadedCase:
    """A case ready for the anatomical checks."""

    case: str
    image: Volume | None
    labels: Volume | None            # integer multi-label volume on the reference grid
    source: str                      # "masks", "multilabel" or ""
    findings: list[Finding] = field(default_factory=list)
    overlaps: dict[tuple[int, int], int] = field(default_factory=dict)
    checked_classes: set[str] = field(default_factory=set)  # classes whose labels were read and are on the grid
    declared: set[str] = field(default_factory=set)  # classes a multi-label file names, each with its own entry
    drawn: dict[str, int] = field(default_factory=dict)  # voxels in each mask file (before overlaps are resolved)
    # the whole map on another grid than the CT: (the map on its own grid, the CT, the differences, the file)
    off_grid: tuple[Volume, Volume, dict[str, Any], str] | None = None

    @property
    def per_class(self) -> bool:
        """Whether every class came with its own entry (a mask file, or a segment of a Slicer file that names all
        of them): then an empty class is known empty, not merely absent."""
        return self.source == "masks" or (self.source == "multilabel" and bool(self.declared)
                                          and self.declared >= self.checked_classes)


def _read(path: Path, case: str, findings: list[Finding], structure: str = "") -> Volume | None:
    try:
        return read_volume(path)
    except (ConversionError, OSError, ValueError, RuntimeError) as exc:
        findings.append(Finding(case, Check.UNREADABLE, Severity.ERROR, f"{path.name}: cannot be read ({exc})",
                                structure=structure, file=str(path)))
        return None


def _finite(array: np.ndarray, path: Path, case: str, findings: list[Finding], structure: str = "") -> np.ndarray:
    """A float array with NaN and infinite voxels reported (counted from the file: ITK reads NIfTI NaN as 0)
    and set to 0."""
    finite = np.isfinite(array)
    hidden = nifti_nonfinite(path) if volume_suffix(path) != ".nrrd" else 0
    if hidden or not finite.all():
        n = max(int((~finite).sum()), hidden)
        findings.append(Finding(case, Check.NON_FINITE, Severity.ERROR, f"{path.name}: {n} voxels are NaN or "
                                "infinite", structure=structure, file=str(path), values={"voxels": n}))
        return np.where(finite, array, 0)
    return array


def _value_counts(array: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values and their counts (a bincount for small non-negative integers, which is fast)."""
    if array.dtype.kind in "iu" and array.size and array.min() >= 0 and array.max() < 1 << 20:
        counts = np.bincount(array.ravel())
        values = np.flatnonzero(counts)
        return values, counts[values]
    return np.unique(array, return_counts=True)


def _as_labels(volume: Volume, path: Path, case: str, label_set: LabelSet, findings: list[Finding],
               seg_map: dict[int, int] | None) -> Volume:
    """Integer multi-label volume with unknown values reported and zeroed."""
    array = volume.array
    if array.dtype.kind == "f":
        array = _finite(array, path, case, findings)
        if np.any(array != np.round(array)):
            findings.append(Finding(case, Check.NON_BINARY, Severity.ERROR,
                                    f"{path.name}: label map holds non-integer values; labels must be whole numbers",
                                    file=str(path)))
        findings.append(Finding(case, Check.DTYPE, Severity.WARNING,
                                f"{path.name}: label map stored as {volume.array.dtype} (whole numbers); store it as "
                                "an unsigned integer type to save space and avoid rounding", file=str(path),
                                values={"dtype": str(volume.array.dtype)}))
        array = np.round(array).astype(np.int64)
    values, counts = _value_counts(array)
    # values that name no class: for a Slicer file, those of no named segment; else those not in the set
    known = set(seg_map) if seg_map is not None else {c.index for c in label_set}
    unknown = [(int(v), int(n)) for v, n in zip(values, counts, strict=True) if v != 0 and int(v) not in known]
    for value, n in unknown:
        findings.append(Finding(case, Check.UNKNOWN_VALUE, Severity.ERROR,
                                f"{path.name}: value {value} ({n} voxels) is not a class of label set "
                                f"{label_set.name!r}", file=str(path), values={"value": value, "voxels": n}))
    if unknown:
        array = np.where(np.isin(array, [v for v, _ in unknown]), 0, array)
    if seg_map:  # Slicer segment label values -> label set indices (by segment name)
        table = np.zeros(max(int(array.max(initial=0)), max(seg_map)) + 1, dtype=np.int64)
        for src, dst in seg_map.items():
            table[src] = dst
        array = table[array]
    out = array.astype(label_dtype(max(label_set.max_index, 1)), copy=False)
    return Volume(out, volume.spacing, volume.origin, volume.direction)


def _read_multilabel(path: Path, case: str, label_set: LabelSet, findings: list[Finding],
                     declared: set[str]) -> Volume | None:
    """The label map of a multi-label file; the classes a Slicer file names go into ``declared``."""
    seg_map = None
    segments: list[Segment] = []
    if volume_suffix(path) == ".nrrd":  # a Slicer segmentation names its segments in the header, whatever its name
        try:
            volume, segments = read_seg_nrrd(path)
        except LabelIOError as exc:
            findings.append(Finding(case, Check.UNREADABLE, Severity.ERROR, str(exc), file=str(path)))
            return None
    if segments:
        index = label_set.index_of()
        seg_map = {}
        declared.update(seg.name for seg in segments)
        for seg in segments:
            if seg.name in index:
                seg_map[seg.label_value] = index[seg.name]
            else:
                findings.append(Finding(case, Check.UNKNOWN_VALUE, Severity.ERROR,
                                        f"{path.name}: segment {seg.name!r} is not a class of label set "
                                        f"{label_set.name!r}", structure=seg.name, file=str(path)))
    elif volume_suffix(path) != ".nrrd":
        read = _read(path, case, findings)
        if read is None:
            return None
        volume = read
    return _as_labels(volume, path, case, label_set, findings, seg_map)


def _read_masks(folder: Path, case: str, label_set: LabelSet, reference: Volume | None, against: str,
                tol: GridTolerance, loaded: LoadedCase) -> Volume | None:
    findings = loaded.findings
    try:
        files = list_mask_files(folder)
    except LabelIOError as exc:
        findings.append(Finding(case, Check.UNREADABLE, Severity.ERROR, str(exc), file=str(folder)))
        return None
    index = label_set.index_of()
    for name in sorted(set(files) - set(index)):
        findings.append(Finding(case, Check.UNKNOWN_FILE, Severity.WARNING,
                                f"{files[name].name}: not a class of label set {label_set.name!r}; rename it to a "
                                "class name or move it out of the masks folder", structure=name, file=str(files[name])))
    for name in [c.name for c in label_set if c.name not in files]:
        findings.append(Finding(case, Check.MISSING, Severity.ERROR,
                                f"no mask file for {name!r} in {folder.name}/ (an empty mask must still be written)",
                                structure=name, file=str(folder)))
    labels: np.ndarray | None = None
    geometry: Volume | None = reference
    pair_counts: Counter[tuple[int, int]] = Counter()
    float_files: list[str] = []
    off_grid: dict[str, list[tuple[str, Path]]] = {}
    reoriented: list[str] = []
    for cls in label_set:
        if cls.name not in files:
            continue
        path = files[cls.name]
        volume = _read(path, case, findings, cls.name)
        if volume is None:
            continue
        if geometry is None:
            geometry = volume
        diff = compare_grids(volume, geometry, tol)
        if diff:
            moved = reoriented_onto(volume, geometry)
            if moved is None:
                off_grid.setdefault(json.dumps(diff, sort_keys=True), []).append((cls.name, path))
                continue
            reoriented.append(path.name)
            volume = moved
        array = volume.array
        if array.dtype.kind == "f":
            array = _finite(array, path, case, findings, cls.name)
            float_files.append(path.name)
        extra = [float(v) for v in np.unique(array[(array != 0) & (array != 1)])]
        if extra:
            findings.append(Finding(case, Check.NON_BINARY, Severity.ERROR,
                                    f"{path.name}: mask holds values {extra[:5]} besides 0 and 1; a mask must be "
                                    "binary (nonzero voxels are counted as inside)", structure=cls.name,
                                    file=str(path), values={"values": extra[:10]}))
        inside = array != 0
        if labels is None:
            labels = np.zeros(array.shape, dtype=label_dtype(label_set.max_index))
        previous = labels[inside]
        taken = previous[previous != 0]
        if taken.size:
            for other, n in zip(*np.unique(taken, return_counts=True), strict=True):
                pair_counts[(int(other), cls.index)] += int(n)
        labels[inside] = cls.index
        loaded.checked_classes.add(cls.name)
        loaded.drawn[cls.name] = int(np.count_nonzero(inside))
    if labels is None and reference is not None and against == "CT" and len(off_grid) == 1:
        # every mask is off the CT's grid, alike: the map is judged on its own grid, the grid by a verdict
        scratch = LoadedCase(case, None, None, "")
        own = _read_masks(folder, case, label_set, None, against, tol, scratch)
        if own is not None:
            loaded.off_grid = (own, reference, json.loads(next(iter(off_grid))), str(folder))
            loaded.checked_classes |= scratch.checked_classes
            loaded.overlaps = scratch.overlaps
            return own
    if reoriented:
        findings.append(Finding(case, Check.ORIENTATION, Severity.INFO,
                                f"{len(reoriented)} mask(s) (e.g. {reoriented[0]}) store the CT's voxels in another "
                                "axis order; read onto the CT's grid voxel for voxel", file=str(folder),
                                values={"masks": len(reoriented)}))
    for key, members in off_grid.items():
        diff = json.loads(key)
        where = against if reference else "other masks"
        if len(members) <= 3:
            for name, path in members:
                findings.append(Finding(case, Check.GEOMETRY, Severity.ERROR,
                                        _grid_message(f"mask {path.name}", diff, where), structure=name,
                                        file=str(path), values=diff))
        else:
            names = [name for name, _ in members]
            findings.append(Finding(case, Check.GEOMETRY, Severity.ERROR,
                                    _grid_message(f"{len(members)} masks (e.g. {members[0][1].name})", diff, where),
                                    file=str(folder), values={**diff, "masks": len(members), "structures": names}))
    if float_files:
        findings.append(Finding(case, Check.DTYPE, Severity.WARNING,
                                f"{len(float_files)} mask files are stored as floating point with values 0/1 "
                                f"(e.g. {float_files[0]}); store masks as uint8", file=str(folder),
                                values={"files": len(float_files)}))
    loaded.overlaps = dict(pair_counts)
    if labels is None or geometry is None:
        return None
    return Volume(labels, geometry.spacing, geometry.origin, geometry.direction)


def load_case(files: CaseFiles, label_set: LabelSet, tol: GridTolerance | None = None) -> LoadedCase:
    """Read a case; see the module docstring. Never raises for bad input: it becomes findings."""
    tol = tol or GridTolerance()
    loaded = LoadedCase(files.case, None, None, "")
    findings = loaded.findings
    if files.image is not None:
        loaded.image = _read(files.image, files.case, findings)
    if not files.has_labels and files.in_workspace:  # label files in its folder count only once imported
        findings.append(Finding(files.case, Check.NO_LABELS, Severity.ERROR,
                                f"{files.case}: no labels: the annotation store holds no revision of this case; run "
                                "'ctcurate presegment MODEL' or import labels ('ctcurate import CASE SOURCE')",
                                file=str(files.folder)))
        return loaded
    if not files.has_labels:
        others = sorted(p.name for p in files.folder.iterdir() if volume_suffix(p) and p != files.image
                        and not p.name.startswith("."))
        found = f"; found {', '.join(others[:5])}, not named as labels" if others else ""
        findings.append(Finding(files.case, Check.NO_LABELS, Severity.ERROR,
                                f"{files.folder.name}: no labels: neither {MASKS_FOLDER}/<structure>.nrrd|.nii.gz "
                                "nor a multi-label file (segmentation.nii.gz, seg.nrrd, <name>.seg.nrrd, "
                                f"labels.nii.gz, segmentations.nii, <name>_seg.nii.gz, ...){found}; rename it to one "
                                "of those",
                                file=str(files.folder)))
        return loaded
    image = loaded.image
    multi = None
    checked_file = files.multilabel.name if files.multilabel else "the masks"
    for other in files.other_labels:
        findings.append(Finding(files.case, Check.UNKNOWN_FILE, Severity.WARNING,
                                f"{other.name}: a second multi-label file, not checked ({checked_file} was); keep "
                                "one label file per case", file=str(other)))
    if files.multilabel is not None:
        multi = _read_multilabel(files.multilabel, files.case, label_set, findings, loaded.declared)
        if multi is not None and image is not None:
            diff = compare_grids(multi, image, tol)
            moved = reoriented_onto(multi, image) if diff else None
            if moved is not None:
                findings.append(Finding(files.case, Check.ORIENTATION, Severity.INFO,
                                        f"{files.multilabel.name} stores the CT's voxels in another axis order; read "
                                        "onto the CT's grid voxel for voxel", file=str(files.multilabel)))
                multi = moved
            elif diff:
                loaded.off_grid = (multi, image, diff, str(files.multilabel))
                image = None  # HU checks would be meaningless
    masks = None
    if files.masks is not None:
        reference = image if image is not None else multi
        masks = _read_masks(files.masks, files.case, label_set, reference, "CT" if image is not None else
                            "multi-label map", tol, loaded)
    if loaded.off_grid is not None:
        image = None  # HU checks would be meaningless
    if masks is not None and multi is not None and masks.array.shape == multi.array.shape:
        _compare_forms(masks.array, multi.array, files, label_set, loaded)
    if masks is not None:
        loaded.labels, loaded.source = masks, "masks"
    elif multi is not None:
        loaded.labels, loaded.source = multi, "multilabel"
        loaded.checked_classes = set(label_set.names)
    loaded.image = image
    return loaded


def _compare_forms(masks: np.ndarray, multi: np.ndarray, files: CaseFiles, label_set: LabelSet,
                   loaded: LoadedCase) -> None:
    differ = masks != multi
    if not differ.any():
        return
    n_labels = label_set.max_index + 1
    only_masks = np.bincount(masks[differ].astype(np.int64), minlength=n_labels)
    only_multi = np.bincount(multi[differ].astype(np.int64), minlength=n_labels)
    for cls in label_set:
        a, b = int(only_masks[cls.index]), int(only_multi[cls.index])
        if a or b:
            loaded.findings.append(Finding(
                files.case, Check.DISAGREE, Severity.ERROR,
                f"{cls.name}: the mask file and {files.multilabel.name if files.multilabel else 'the label map'} "
                f"disagree on {a + b} voxels ({a} only in the mask, {b} only in the label map)",
                structure=cls.name, file=str(files.masks), values={"only_mask": a, "only_multilabel": b}))
