"""``ctcurate export nnunet``: the workspace's reviewed segmentations as an nnU-Net v2 raw dataset.

Each case contributes its labels of record (:mod:`curation.annotation.record`: the latest approved
revision, else the latest revision) when they are approved, or, with ``fallback``, when their review
status is the fallback's. Images and labels are written in the canonical LPS array order
that :mod:`annotator.segment` feeds every model, as ``.nrrd``; label values are renumbered 1..K in
the order of the label set (nnU-Net wants consecutive values), and ``dataset.json`` names them. When
the workspace has a train/val/test split (the cases table's ``split`` column), test cases go to
``imagesTs``/``labelsTs`` and ``splits_final.json`` holds one fold whose validation cases are the
split's ``val`` cases, so nnU-Net validates on the patients the release calls validation (five-fold
cross-validation over the training cases when the split has none: :mod:`annotator.folds`); copy it
into ``nnUNet_preprocessed/DatasetNNN_Name/`` (``ctcurate retrain`` does). ``ctcurate_export.json``
records which revision of which case went in. The dataset folder is built aside and renamed into
place, so a reader never sees half an export.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from curation import Volume, Workspace
from curation.annotation.record import labels_of_record
from curation.annotation.revisions import ReviewStatus, Revision, RevisionStore
from curation.atomic import WRITE_FAULTS, atomic_directory, atomic_write_text
from curation.cases.casemeta import case_splits
from curation.errors import CtcurateError, ModelError
from curation.image.orientation import to_canonical
from curation.image.volume import read_nrrd, write_nrrd
from curation.labels.labelmap import read_seg_nrrd
from curation.workspace.folders import NNUNET_SPLIT_FILE

from .folds import describe_folds, nnunet_folds

__all__ = ["NnunetExport", "export_nnunet", "dataset_folder_name"]

log = logging.getLogger(__name__)
FILE_ENDING = ".nrrd"


@dataclass(frozen=True)
class NnunetExport:
    """What an export wrote: the dataset folder, case -> revision per part, skipped cases and why."""

    folder: Path
    training: dict[str, int]
    test: dict[str, int]
    skipped: dict[str, str] = field(default_factory=dict)
    splits: list[dict[str, list[str]]] | None = None
    labels: dict[str, int] = field(default_factory=dict)

    @property
    def dataset_id(self) -> int:
        return int(self.folder.name[7:10])


def dataset_folder_name(dataset_id: int, name: str) -> str:
    """``DatasetNNN_Name`` as nnU-Net spells it; raises for ids or names it cannot use."""
    if not 1 <= dataset_id <= 999:
        raise ModelError(f"dataset id {dataset_id}: nnU-Net needs 1..999 (three digits)")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9-]*", name):
        raise ModelError(f"dataset name {name!r}: use letters, digits and '-' only (nnU-Net splits names at '_')")
    return f"Dataset{dataset_id:03d}_{name}"


def _pick(store: RevisionStore, case_id: str, status: ReviewStatus,
          fallback: ReviewStatus | None) -> Revision | None:
    """The case's labels of record when their review status is ``status`` (or ``fallback``)."""
    record = labels_of_record(store, case_id)
    if record is None or record.status not in {status, fallback}:
        return None
    return record.revision


def _ct_path(ws: Workspace, case_id: str, grid: str) -> Path:
    return ws.case_dir(case_id) / (ws.ct_name() if grid == "native" else ws.ct_name(float(grid)))


def export_nnunet(ws: Workspace, raw_dir: str | Path, dataset_id: int, name: str = "Ctcurate", *,
                  status: ReviewStatus | str = ReviewStatus.APPROVED, fallback: ReviewStatus | str | None = None,
                  grid: str = "native", structures: list[str] | None = None, overwrite: bool = False,
                  database_url: str | None = None) -> NnunetExport:
    """Write ``raw_dir/DatasetNNN_Name`` from the workspace's reviewed revisions.

    ``grid`` is ``native`` or one of the stored isotropic spacings (``1.5``, ``3``); ``structures``
    limits the classes (default: the whole label set; others become background).
    """
    status = ReviewStatus.parse(status)
    fallback = ReviewStatus.parse(fallback) if fallback is not None else None
    label_set = ws.label_set()
    chosen = list(structures) if structures else list(label_set.names)
    unknown = [s for s in chosen if s not in label_set.index_of()]
    if unknown:
        raise ModelError(f"structures {unknown[:8]}: not classes of label set {label_set.name!r}")
    order = [c for c in label_set if c.name in set(chosen)]
    table = np.zeros(label_set.max_index + 1, dtype=np.uint16)
    for value, label in enumerate(order, 1):
        table[label.index] = value
    labels = {"background": 0, **{c.name: v for v, c in enumerate(order, 1)}}
    target = Path(raw_dir) / dataset_folder_name(dataset_id, name)
    if target.exists() and not overwrite:
        raise ModelError(f"{target}: an export is already there; choose another dataset id or pass --overwrite")
    store = RevisionStore(ws, database_url)
    splits = case_splits(ws)
    cases = ws.case_ids()
    training: dict[str, int] = {}
    test: dict[str, int] = {}
    skipped: dict[str, str] = {}
    failed: dict[str, str] = {}  # the skipped cases that could not be read or written
    lineage: dict[str, Any] = {}
    dtype = np.uint8 if len(order) < 256 else np.uint16
    with atomic_directory(target, replace=overwrite) as tmp:
        for case_id in cases:
            revision = _pick(store, case_id, status, fallback)
            if revision is None:
                skipped[case_id] = f"no {status.value}" + (f" or {fallback.value}" if fallback else "") + " revision"
                continue
            if splits and case_id not in splits:
                skipped[case_id] = "not in the workspace's split; make the split again"
                continue
            part = "Ts" if splits.get(case_id) == "test" else "Tr"
            try:
                ct = read_nrrd(_ct_path(ws, case_id, grid))
                seg, _ = read_seg_nrrd(store.path(revision, grid))
                if seg.array.shape != ct.array.shape or not np.allclose(seg.origin, ct.origin, atol=1e-3):
                    raise ModelError(f"case {case_id} revision {revision.number}: labels on grid {grid!r} do not "
                                     f"match {_ct_path(ws, case_id, grid).name}; run 'ctcurate qa labels'")
                image, _ = to_canonical(ct)
                mapped = table[np.minimum(seg.array, label_set.max_index)].astype(dtype)
                label_volume, _ = to_canonical(Volume(mapped, seg.spacing, seg.origin, seg.direction))
                write_nrrd(tmp / f"images{part}" / f"{case_id}_0000{FILE_ENDING}", image)
                write_nrrd(tmp / f"labels{part}" / f"{case_id}{FILE_ENDING}", label_volume)
            except (CtcurateError, OSError, ValueError) as exc:
                if isinstance(exc, OSError) and exc.errno in WRITE_FAULTS:
                    raise  # the export's volume is full or read-only: every later case would fail the same way
                skipped[case_id] = failed[case_id] = str(exc)
                log.error("case %s: %s", case_id, exc)
                continue
            (test if part == "Ts" else training)[case_id] = revision.number
            lineage[case_id] = {"revision": revision.number, "author": revision.author, "sha256": revision.sha256,
                                "status": store.statuses(case_id)[revision.number].value,
                                "split": splits.get(case_id)}
        if not training and failed:
            raise ModelError(f"{ws.root}: no case could be exported, {len(failed)} failed: "
                             + "; ".join(f"{c}: {e}" for c, e in list(failed.items())[:3]))
        if not training:
            raise ModelError(f"{ws.root}: no case has a {status.value} revision"
                             + (f" (nor {fallback.value})" if fallback else "")
                             + "; review cases ('ctcurate review') or export with --fallback unreviewed")
        dataset = {"channel_names": {"0": "CT"}, "labels": labels, "numTraining": len(training),
                   "file_ending": FILE_ENDING, "name": name, "overwrite_image_reader_writer": "SimpleITKIO",
                   "description": f"exported by ctcurate from {ws.settings.name or ws.root.name}",
                   "label_set": f"{label_set.name} {label_set.version}"}
        atomic_write_text(tmp / "dataset.json", json.dumps(dataset, indent=1))
        folds = None
        if splits:
            folds = nnunet_folds((c for c in training if splits.get(c) == "train"),
                                 (c for c in training if splits.get(c) == "val"))
            if folds is not None:
                atomic_write_text(tmp / NNUNET_SPLIT_FILE, json.dumps(folds, indent=1))
            else:
                log.warning("%s: %s", target, describe_folds(folds))
        record = {"workspace": str(ws.root), "label_set": label_set.name, "grid": grid, "status": status.value,
                  "fallback": fallback.value if fallback else None, "cases": lineage, "skipped": skipped}
        atomic_write_text(tmp / "ctcurate_export.json", json.dumps(record, indent=1))
    log.info("exported %d training and %d test cases to %s (%d skipped)", len(training), len(test), target,
             len(skipped))
    return NnunetExport(target, training, test, skipped, folds, labels)

