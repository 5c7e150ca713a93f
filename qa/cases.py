"""Find labelled cases in a workspace or in any folder in the release layout.

A case is a folder with a CT (``ct.nrrd``, ``ct.nii.gz`` or ``ct.nii``) and labels in one or both
storage forms: ``segmentations/<structure>.nrrd|.nii.gz`` (one binary mask per class) and/or one
multi-label file (``segmentation.seg.nrrd``, ``segmentation.nii.gz``, any ``*.seg.nrrd``, ``seg.nrrd``,
TotalSegmentator's ``segmentations.nii``, ``labels*``, ...: :func:`curation.workspace.multilabel_files`;
the first is read, further ones are reported). The reference dataset's layout
(``s0000/ct.nii.gz``, ``s0000/segmentations/*.nii.gz``) is such a folder.

In a workspace, a case is checked on its labels of record (:func:`curation.annotation.labels_of_record`:
the latest approved revision, else the latest revision), and the revision, its review status and its
sha256 go with the case into the results. Label files lying in a workspace's case folders are not read:
they must be imported as revisions first (``ctcurate annotate import``), which this module asks for.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from curation import Workspace
from curation.annotation import RevisionStore, all_labels_of_record, has_annotation_database, pending_label_files
from curation.errors import QAError, WorkspaceError
from curation.workspace import CASE_IMAGE_NAMES, MASKS_FOLDER, SETTINGS_FILE, multilabel_files

__all__ = ["CaseFiles", "find_cases"]


@dataclass(frozen=True)
class CaseFiles:
    """The files of one case: image, mask folder and multi-label file (each may be missing)."""

    case: str
    folder: Path
    image: Path | None
    masks: Path | None
    multilabel: Path | None
    revision: int | None = None
    review: str | None = None
    labels_sha256: str | None = None
    other_labels: tuple[Path, ...] = ()  # further multi-label files, not read (reported)
    in_workspace: bool = False  # a workspace's case: its labels are its revisions (none: no revision yet)

    @classmethod
    def from_folder(cls, folder: Path) -> CaseFiles:
        image = next((folder / n for n in CASE_IMAGE_NAMES if (folder / n).is_file()), None)
        masks = folder / MASKS_FOLDER if (folder / MASKS_FOLDER).is_dir() else None
        found = multilabel_files(folder)
        return cls(folder.name, folder, image, masks, found[0] if found else None, other_labels=tuple(found[1:]))

    @property
    def has_labels(self) -> bool:
        return self.masks is not None or self.multilabel is not None


def find_cases(root: str | Path, *, cases: list[str] | None = None) -> list[CaseFiles]:
    """Cases under ``root``: a workspace (its ``releasable/cases``) or a folder of case folders.

    ``cases`` limits the result to those case ids. Case folders whose names start with ``.`` are
    skipped (temporaries). Raises :class:`QAError` when ``root`` holds no case at all.
    """
    root = Path(root)
    if not root.is_dir():
        raise QAError(f"{root}: no such folder; pass a workspace or a folder of case folders")
    if (root / SETTINGS_FILE).is_file():
        ws = Workspace.open(root)
        found, base = _workspace_cases(ws), ws.cases_dir
    else:
        base = root
        found = [f for f in (CaseFiles.from_folder(p) for p in sorted(root.iterdir())
                             if p.is_dir() and not p.name.startswith(".")) if f.image is not None or f.has_labels]
    if cases:
        wanted = set(cases)
        missing = sorted(wanted - {c.case for c in found})
        if missing:
            raise QAError(f"{base}: case(s) {missing[:5]} not found; check the case ids")
        found = [c for c in found if c.case in wanted]
    if not found and (root / SETTINGS_FILE).is_file():
        raise QAError(f"{base}: this workspace has no converted case yet; run 'ctcurate convert -w {root}', then "
                      "'ctcurate presegment' (or import labels) to have labels to check")
    if not found:
        raise QAError(f"{base}: no case folders with {' / '.join(CASE_IMAGE_NAMES)} or labels; expected "
                      f"<case>/ct.nrrd with <case>/{MASKS_FOLDER}/<structure>.nrrd or <case>/segmentation.seg.nrrd")
    return found


def _workspace_cases(ws: Workspace) -> list[CaseFiles]:
    """A workspace's cases, each with its labels of record; refused while case folders hold label files
    that are not in the annotation store."""
    if not ws.cases_dir.is_dir():
        raise QAError(f"{ws.cases_dir}: no cases folder; run 'ctcurate convert' first")
    pending = pending_label_files(ws)
    if pending:
        shown = "; ".join(f"{c}: {', '.join(p.name for p in files)}" for c, files in list(pending.items())[:3])
        raise QAError(f"{ws.root}: label files in case folders are not in the annotation store ({shown}"
                      f"{'; ...' if len(pending) > 3 else ''}); a workspace's labels are its revisions: run "
                      f"'ctcurate annotate import -w {ws.root}' to add them, or remove them")
    store = RevisionStore(ws) if has_annotation_database(ws) else None
    records = all_labels_of_record(ws, store=store)
    found = []
    for case_id in ws.case_ids():
        folder = ws.case_dir(case_id)
        image = next((folder / n for n in CASE_IMAGE_NAMES if (folder / n).is_file()), None)
        record = records.get(case_id)
        if record is not None and store is not None:
            try:
                store.verify(record.revision)  # QA checks what was written, or nothing
            except WorkspaceError as exc:
                raise QAError(str(exc)) from None
        if record is None:
            found.append(CaseFiles(case_id, folder, image, None, None, in_workspace=True))
        else:
            found.append(CaseFiles(case_id, folder, image, None, record.path, record.number, record.status.value,
                                   record.sha256, in_workspace=True))
    return found
