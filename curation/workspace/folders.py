"""The layouts of folders that live in a workspace and also on their own: a case folder, a QA results folder
and a release. With :mod:`curation.workspace.layout`, this is the only place that spells their file names.

A case folder (in a workspace, in a release, or in someone else's dataset in the reference layout) holds a CT
(``ct.nrrd``, ``ct.nii.gz`` or ``ct.nii``) and labels as ``segmentations/<structure>.nrrd|.nii.gz`` and/or one
multi-label file. A QA folder holds what ``ctcurate qa`` writes for a workspace (``WS/qa``) or for any folder
(``--out``). A release folder is what ``ctcurate release`` seals under ``WS/releases/<version>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["CASE_IMAGE_NAMES", "CASE_METADATA", "MASKS_FOLDER", "MULTILABEL_NAMES", "multilabel_files",
           "REVISIONS_FOLDER", "SPLIT_FILE", "NNUNET_SPLIT_FILE", "DATASHEET_MARKDOWN", "DATASHEET_HTML", "QAFolder",
           "ReleaseFolder"]

CASE_IMAGE_NAMES = ("ct.nrrd", "ct.nii.gz", "ct.nii")
MULTILABEL_NAMES = ("segmentation.seg.nrrd", "segmentation.nrrd", "segmentation.nii.gz", "segmentation.nii",
                    "labels.nrrd", "labels.nii.gz")
MASKS_FOLDER = "segmentations"
#: stems (file names without .nrrd/.nii.gz/.nii, lower case) of the multi-label files users have besides those
#: above: Slicer's ``*.seg.nrrd``, ``seg.nrrd``, TotalSegmentator's ``segmentations.nii`` (``--ml``), ``labels*``,
#: ``segmentation*``, ``totalseg*``, ``mask``, ``*_seg`` / ``*-seg`` / ``*_labels``
_LABEL_STEMS = ("seg", "segmentation", "segmentations", "label", "labels", "labelmap", "label_map", "mask", "masks",
                "multilabel")
_LABEL_PREFIXES = ("seg_", "seg-", "segmentation", "label", "totalseg", "mask_", "mask-")
_LABEL_ENDINGS = (".seg", "_seg", "-seg", "_labels", "-labels", "_label", "_labelmap", "_segmentation",
                  "_segmentations")
CASE_METADATA = "case.json"
REVISIONS_FOLDER = "revisions"
SPLIT_FILE = "splits.json"
DATASHEET_MARKDOWN = "datasheet.md"
DATASHEET_HTML = "datasheet.html"
GX_DATA_DOCS = "uncommitted/data_docs/local_site/index.html"  # where Great Expectations puts its Data Docs
NNUNET_SPLIT_FILE = "splits_final.json"


def multilabel_files(folder: Path) -> list[Path]:
    """The multi-label files of a case folder, the one to read first: ctcurate's own names
    (:data:`MULTILABEL_NAMES`, in their order), then every other volume file whose name says it holds labels
    (``*.seg.nrrd``, ``seg.nrrd``, ``segmentation*``, ``segmentations.nii`` as TotalSegmentator writes it,
    ``labels*``, ``*_seg.nii.gz``, ...), sorted by name. Hidden files and the CT are not labels."""
    from curation.image.volume import volume_suffix

    own = [folder / n for n in MULTILABEL_NAMES if (folder / n).is_file()]
    others = []
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return own
    for path in entries:
        suffix = volume_suffix(path)
        if suffix is None or path.name.startswith(".") or path in own or path.name in CASE_IMAGE_NAMES \
                or not path.is_file():
            continue
        stem = path.name[: -len(suffix)].lower()
        if stem in _LABEL_STEMS or stem.startswith(_LABEL_PREFIXES) or stem.endswith(_LABEL_ENDINGS):
            others.append(path)
    return own + others


@dataclass(frozen=True)
class QAFolder:
    """Where ``ctcurate qa`` keeps its results: label findings and statistics, per-case results a rerun reuses,
    the run's record, the report and the Great Expectations context with its Data Docs."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def findings(self) -> Path:
        return self.root / "label_findings.parquet"

    @property
    def stats(self) -> Path:
        return self.root / "label_stats.parquet"

    @property
    def checked(self) -> Path:
        """Which labels each case was checked on (revision, review status, sha256)."""
        return self.root / "label_checked.parquet"

    @property
    def cases_dir(self) -> Path:
        """Per-case results with the fingerprint of the files they came from."""
        return self.root / "cases"

    @property
    def run_file(self) -> Path:
        """The folder and label set of the last ``qa labels`` run."""
        return self.root / "qa_run.json"

    @property
    def report_dir(self) -> Path:
        return self.root / "report"

    @property
    def gx_dir(self) -> Path:
        """The Great Expectations file context."""
        return self.root / "gx"

    @property
    def data_docs(self) -> Path:
        """The index page of the Data Docs that ``qa meta`` builds."""
        return self.gx_dir / GX_DATA_DOCS


@dataclass(frozen=True)
class ReleaseFolder:
    """A sealed release: case folders, tables, splits, datasheet, Croissant, zip parts, checksums of them all."""

    root: Path
    name: str = ""  # the version, when ``root`` is a staging folder whose name is not

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))
        object.__setattr__(self, "name", self.name or self.root.name)

    @property
    def version(self) -> str:
        return self.name

    def case_dir(self, case_id: str) -> Path:
        return self.root / case_id

    def masks_dir(self, case_id: str) -> Path:
        return self.case_dir(case_id) / MASKS_FOLDER

    @property
    def meta_csv(self) -> Path:
        """One row per case, semicolon separated, in the TotalSegmentator dataset's columns."""
        return self.root / "meta.csv"

    @property
    def record(self) -> Path:
        """``release.json``: version, split, label set, QA state, each case's split and labels."""
        return self.root / "release.json"

    @property
    def split(self) -> Path:
        return self.root / SPLIT_FILE

    @property
    def nnunet_split(self) -> Path:
        return self.root / NNUNET_SPLIT_FILE

    @property
    def croissant(self) -> Path:
        return self.root / "croissant.json"

    @property
    def checksums(self) -> Path:
        return self.root / "SHA256SUMS"

    @property
    def changelog(self) -> Path:
        return self.root / "CHANGELOG.md"

    @property
    def license(self) -> Path:
        return self.root / "LICENSE"

    @property
    def datasheet_dir(self) -> Path:
        return self.root / "datasheet"

    @property
    def datasheet(self) -> Path:
        """The datasheet's Markdown page (an HTML twin and the figures beside it)."""
        return self.datasheet_dir / DATASHEET_MARKDOWN

    @property
    def archives_dir(self) -> Path:
        """The zip parts of the case folders, sealed with the release: ``archives/<version>-partNN.zip``."""
        return self.root / "archives"

    @property
    def zenodo_state(self) -> Path:
        """The Zenodo deposition this release is uploaded to, beside the release folder."""
        return self.root.parent / f"{self.version}.zenodo.json"

    def archive(self, part: int) -> Path:
        return self.archives_dir / f"{self.version}-part{part:02d}.zip"

    @property
    def datasheet_archive(self) -> Path:
        """The datasheet folder as one zip part, so that a flat file store (Zenodo) holds it too."""
        return self.archives_dir / f"{self.version}-datasheet.zip"
