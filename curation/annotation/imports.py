"""Label files found in a case folder enter the annotation store as a revision, so that they are no second truth.

A workspace's labels are its revisions. A segmentation someone already has (a ``segmentations/`` folder of
masks, a ``segmentation.seg.nrrd`` or another multi-label file in the case folder, or any such file given by
path) is imported as the case's next revision, authored ``import:<file name>``, on the CT's own grid and
carried onto each isotropic copy's grid. The import is recorded with the sha256 of what was read, so a
rerun imports nothing twice; files left in the case folder are never read by QA or releases.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np

from curation.errors import LabelIOError
from curation.image.volume import Volume, read_nrrd_grid, resample_labels
from curation.labels.labelmap import list_mask_files, read_labels, read_seg_nrrd
from curation.workspace.folders import MULTILABEL_NAMES
from curation.workspace.layout import Workspace

from .revisions import Revision, RevisionStore

__all__ = ["case_grids", "case_label_files", "import_labels", "import_case_folder_labels", "pending_label_files"]

log = logging.getLogger(__name__)
IMPORT_AUTHOR = "import:"


def case_grids(ws: Workspace, case_id: str, native: Volume) -> dict[str, Volume]:
    """A revision's labels on every grid of a case: ``native`` and each isotropic copy's (nearest neighbour)."""
    grids = {"native": native}
    for spacing in ws.settings.conversion.spacings_mm:
        copy = ws.case_dir(case_id) / ws.ct_name(spacing)
        if copy.is_file():
            grid = read_nrrd_grid(copy)
            same = grid.size == native.size and np.allclose(grid.spacing, native.spacing) and \
                np.allclose(grid.origin, native.origin) and np.allclose(grid.direction, native.direction)
            grids[f"{spacing:g}"] = native if same else resample_labels(native, grid)
    return grids


def case_label_files(ws: Workspace, case_id: str) -> list[Path]:
    """Label files in a case's folder: its mask folder (when it holds masks) and its multi-label files."""
    found = [ws.case_dir(case_id) / name for name in MULTILABEL_NAMES if (ws.case_dir(case_id) / name).is_file()]
    masks = ws.masks_dir(case_id)
    if masks.is_dir() and list_mask_files(masks):
        found.insert(0, masks)
    return found


def _digest(source: Path) -> str:
    digest = hashlib.sha256()
    files = sorted(list_mask_files(source).values()) if source.is_dir() else [source]
    for path in files:
        digest.update(path.name.encode())
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _imported(history: list[Revision], digest: str) -> Revision | None:
    return next((r for r in history if r.author.startswith(IMPORT_AUTHOR) and digest in r.comment), None)


def import_labels(ws: Workspace, case_id: str, source: str | Path, *, store: RevisionStore | None = None,
                  comment: str = "") -> Revision:
    """Store the labels of ``source`` (mask folder or multi-label file) as the case's next revision.

    The labels must lie on the CT's own grid. Importing the same content again returns the revision it
    became the first time.
    """
    source = Path(source)
    store = store or RevisionStore(ws)
    if not ws.case_dir(case_id).is_dir():
        raise LabelIOError(f"case {case_id}: no such case in {ws.cases_dir}; check the case id")
    if not source.exists():
        raise LabelIOError(f"{source}: not found; give a mask folder or a multi-label file")
    digest = _digest(source)
    history = store.history(case_id)
    done = _imported(history, digest)
    if done is not None:
        return done
    label_set = ws.label_set()
    labels = read_labels(source, label_set)
    ct = read_nrrd_grid(ws.case_dir(case_id) / ws.ct_name())
    if labels.size != ct.size or not (np.allclose(labels.spacing, ct.spacing, atol=1e-3)
                                      and np.allclose(labels.origin, ct.origin, atol=1e-2)
                                      and np.allclose(labels.direction, ct.direction, atol=1e-4)):
        spacing = tuple(round(s, 3) for s in labels.spacing)
        raise LabelIOError(f"{source}: labels of size {labels.size}, spacing {spacing}"
                           f" do not lie on case {case_id}'s CT grid (size {ct.size}, spacing "
                           f"{tuple(round(s, 3) for s in ct.spacing)}); resample them onto {ws.ct_name()} first")
    native = Volume(labels.array, ct.spacing, ct.origin, ct.direction)
    latest = history[-1] if history else None
    previous = read_seg_nrrd(store.path(latest))[0].array if latest is not None else None
    note = f"imported from {source.name} (sha256 {digest})" + (f"; {comment}" if comment else "")
    revision = store.add(case_id, case_grids(ws, case_id, native), label_set, author=f"{IMPORT_AUTHOR}{source.name}",
                         kind="import", parent=latest.number if latest else None, comment=note, previous=previous)
    log.info("case %s: %s imported as revision %d", case_id, source.name, revision.number)
    return revision


def pending_label_files(ws: Workspace, *, store: RevisionStore | None = None) -> dict[str, list[Path]]:
    """Label files in case folders that are not in the annotation store yet, by case."""
    cases = ws.case_ids()
    candidates = {c: case_label_files(ws, c) for c in cases}
    candidates = {c: files for c, files in candidates.items() if files}
    if not candidates:
        return {}
    store = store or RevisionStore(ws)
    out = {}
    for case_id, files in candidates.items():
        history = store.history(case_id)
        left = [f for f in files if _imported(history, _digest(f)) is None]
        if left:
            out[case_id] = left
    return out


def import_case_folder_labels(ws: Workspace, *, store: RevisionStore | None = None,
                              cases: list[str] | None = None) -> dict[str, Revision | str]:
    """Import every label file found in the case folders (the named cases, default all); returns, by case,
    the revision made or the reason it could not be (the other cases go on)."""
    store = store or RevisionStore(ws)
    out: dict[str, Revision | str] = {}
    for case_id, files in pending_label_files(ws, store=store).items():
        if cases is not None and case_id not in cases:
            continue
        for source in files:
            try:
                out[case_id] = import_labels(ws, case_id, source, store=store)
            except LabelIOError as exc:
                out[case_id] = str(exc)
                log.error("%s", exc)
    return out
