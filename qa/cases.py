"""Find labelled cases in a workspace or in any folder in the release layout.

A case is a folder with a CT (``ct.nrrd``, ``ct.nii.gz`` or ``ct.nii``) and labels in one or both
storage forms: ``segmentations/<structure>.nrrd|.nii.gz`` (one binary mask per class) and/or one
multi-label file (``segmentation.seg.nrrd``, ``segmentation.nrrd``, ``segmentation.nii.gz``,
``segmentation.nii``, ``labels.nrrd``, ``labels.nii.gz``). The reference dataset's layout
(``s0000/ct.nii.gz``, ``s0000/segmentations/*.nii.gz``) is such a folder. In a workspace, a case
without label files in its folder is checked on its latest segmentation revision.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from curation import Workspace
from curation.annotation.revisions import RevisionStore
from curation.errors import QAError
from curation.workspace.layout import SETTINGS_FILE

__all__ = ["CaseFiles", "IMAGE_NAMES", "MULTILABEL_NAMES", "MASKS_FOLDER", "find_cases"]

IMAGE_NAMES = ("ct.nrrd", "ct.nii.gz", "ct.nii")
MULTILABEL_NAMES = ("segmentation.seg.nrrd", "segmentation.nrrd", "segmentation.nii.gz", "segmentation.nii",
                    "labels.nrrd", "labels.nii.gz")
MASKS_FOLDER = "segmentations"


@dataclass(frozen=True)
class CaseFiles:
    """The files of one case: image, mask folder and multi-label file (each may be missing)."""

    case: str
    folder: Path
    image: Path | None
    masks: Path | None
    multilabel: Path | None

    @classmethod
    def from_folder(cls, folder: Path) -> CaseFiles:
        image = next((folder / n for n in IMAGE_NAMES if (folder / n).is_file()), None)
        masks = folder / MASKS_FOLDER if (folder / MASKS_FOLDER).is_dir() else None
        multilabel = next((folder / n for n in MULTILABEL_NAMES if (folder / n).is_file()), None)
        return cls(folder.name, folder, image, masks, multilabel)

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
    ws = Workspace.open(root) if (root / SETTINGS_FILE).is_file() else None
    base = ws.cases_dir if ws else root
    if not base.is_dir():
        raise QAError(f"{base}: no cases folder; run 'ctcurate convert' first")
    store = RevisionStore(ws) if ws and (ws.root / "annotations.sqlite").is_file() else None
    found = []
    for folder in sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = CaseFiles.from_folder(folder)
        latest = store.latest(folder.name) if store else None
        if latest is not None and not files.has_labels:  # a workspace case: its latest revision
            files = replace(files, multilabel=store.path(latest))  # type: ignore[union-attr]
        if files.image is not None or files.has_labels:
            found.append(files)
    if cases:
        wanted = set(cases)
        missing = sorted(wanted - {c.case for c in found})
        if missing:
            raise QAError(f"{base}: case(s) {missing[:5]} not found; check the case ids")
        found = [c for c in found if c.case in wanted]
    if not found:
        raise QAError(f"{base}: no case folders with {' / '.join(IMAGE_NAMES)} or labels; expected "
                      f"<case>/ct.nrrd with <case>/{MASKS_FOLDER}/<structure>.nrrd or <case>/segmentation.seg.nrrd")
    return found
