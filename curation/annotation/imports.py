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
from dataclasses import dataclass
from pathlib import Path

from curation.errors import LabelIOError, LabelSetError
from curation.image.orientation import same_grid
from curation.image.volume import Volume, read_nrrd_grid, resample_labels
from curation.labels.labelmap import list_mask_files, read_seg_nrrd
from curation.workspace.folders import multilabel_files
from curation.workspace.layout import Workspace

from .revisions import Revision, RevisionStore
from .sources import onto_grid, read_source

__all__ = ["Imported", "case_grids", "case_label_files", "import_labels", "import_case_folder_labels",
           "pending_label_files"]

log = logging.getLogger(__name__)
IMPORT_AUTHOR = "import:"


def case_grids(ws: Workspace, case_id: str, native: Volume) -> dict[str, Volume]:
    """A revision's labels on every grid of a case: ``native`` and each isotropic copy's (nearest neighbour)."""
    grids = {"native": native}
    for spacing in ws.settings.conversion.spacings_mm:
        copy = ws.case_dir(case_id) / ws.ct_name(spacing)
        if copy.is_file():
            grid = read_nrrd_grid(copy)
            grids[f"{spacing:g}"] = native if same_grid(grid, native) else resample_labels(native, grid)
    return grids


def case_label_files(ws: Workspace, case_id: str) -> list[Path]:
    """Label files in a case's folder: its mask folder (when it holds masks) and its multi-label files."""
    found = multilabel_files(ws.case_dir(case_id))
    masks = ws.masks_dir(case_id)
    if masks.is_dir() and list_mask_files(masks):
        found.insert(0, masks)
    return found


def _digest(source: Path, how: str = "") -> str:
    """The content of a label source: a file's bytes, or a mask folder's file names and bytes (and ``how`` it is
    read: the label set of its values or a mapping file's text)."""
    digest = hashlib.sha256(how.encode())
    files = sorted(list_mask_files(source).values()) if source.is_dir() else [source]
    for path in files:
        if source.is_dir():
            digest.update(path.name.encode())
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _imported(history: list[Revision], digest: str) -> Revision | None:
    return next((r for r in history if r.author.startswith(IMPORT_AUTHOR) and digest in r.comment), None)


@dataclass(frozen=True)
class Imported:
    """The outcome of importing one source into one case: the revision it is, or why it could not be."""

    case_id: str
    source: Path
    revision: Revision | None = None
    new: bool = False          # False: the same content was imported before (``revision`` is that one)
    error: str = ""
    notes: tuple[str, ...] = ()  # how it was read: masks left out, values mapped, resampled

    def describe(self) -> str:
        if self.revision is None:
            return f"{self.case_id}: {self.source.name}: {self.error}"
        what = "imported as" if self.new else "already imported as"
        notes = f" ({'; '.join(self.notes)})" if self.notes else ""
        return f"{self.case_id}: {self.source.name} {what} revision {self.revision.number}{notes}"


def import_labels(ws: Workspace, case_id: str, source: str | Path, *, store: RevisionStore | None = None,
                  comment: str = "", once: bool = False, labels: str | None = None,
                  mapping: str | Path | None = None) -> Imported:
    """Store the labels of ``source`` as the case's next revision (see :mod:`curation.annotation.sources` for
    what it may be, ``labels`` and ``mapping``); on another grid they are resampled onto the CT's.

    Nothing is stored when the latest revision is an import of the same content, or, with ``once`` (label files
    found in a case folder), when any earlier import was. Raises :class:`LabelIOError` naming the case and the
    file.
    """
    source = Path(source)
    store = store or RevisionStore(ws)
    if not ws.case_dir(case_id).is_dir():
        raise LabelIOError(f"case {case_id}: no such case in {ws.cases_dir}; check the case id")
    if not source.exists():
        raise LabelIOError(f"case {case_id}: {source} not found; give a mask folder or a multi-label file")
    how = f"labels={labels}" if labels else ""
    if mapping is not None:
        try:
            how = "mapping=" + Path(mapping).read_text(encoding="utf-8")
        except OSError as exc:
            raise LabelIOError(f"case {case_id}: mapping {mapping} cannot be read ({exc})") from None
    digest = _digest(source, how)
    history = store.history(case_id)
    done = _imported(history if once else history[-1:], digest)
    if done is not None:
        return Imported(case_id, source, done, new=False)
    label_set = ws.label_set()
    try:
        read = read_source(source, label_set, labels=labels, mapping=mapping)
        native, moved = onto_grid(read.labels, read_nrrd_grid(ws.case_dir(case_id) / ws.ct_name()), source,
                                  f"case {case_id}")
    except (LabelIOError, LabelSetError) as exc:
        raise LabelIOError(f"case {case_id}: {exc}") from None
    latest = history[-1] if history else None
    previous = read_seg_nrrd(store.path(latest))[0].array if latest is not None else None
    notes = [*read.notes, moved] if moved else list(read.notes)
    note = (f"imported from {source.name} (sha256 {digest})" + "".join(f"; {n}" for n in notes)
            + (f"; {comment}" if comment else ""))
    revision = store.add(case_id, case_grids(ws, case_id, native), label_set, author=f"{IMPORT_AUTHOR}{source.name}",
                         kind="import", parent=latest.number if latest else None, comment=note, previous=previous)
    log.info("case %s: %s imported as revision %d", case_id, source.name, revision.number)
    return Imported(case_id, source, revision, new=True, notes=tuple(notes))


def pending_label_files(ws: Workspace, *, store: RevisionStore | None = None) -> dict[str, list[Path]]:
    """Label files in case folders whose content was never imported into the annotation store, by case."""
    candidates = {c: files for c in ws.case_ids() if (files := case_label_files(ws, c))}
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
                              cases: list[str] | None = None) -> list[Imported]:
    """Import every label file found in the case folders (the named cases, default all) that was never imported;
    one outcome per file (a file that cannot be imported is reported, the others go on)."""
    store = store or RevisionStore(ws)
    out = []
    for case_id, files in pending_label_files(ws, store=store).items():
        if cases is not None and case_id not in cases:
            continue
        for source in files:
            try:
                out.append(import_labels(ws, case_id, source, store=store, once=True))
            except LabelIOError as exc:
                out.append(Imported(case_id, source, error=str(exc)))
                log.error("%s", exc)
    return out
