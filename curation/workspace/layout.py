"""The on-disk workspace: one folder per curation project.

Layout (``WS`` is the workspace root)::

    WS/ctcurate.toml                 typed settings (see curation.workspace.settings)
    WS/private/                      anything that can identify a patient; never released
        secret.key                   key of the keyed hashes (fingerprints, pseudonyms)
        catalog/files.parquet        one row per scanned file (paths, UIDs, header facts)
        catalog/series.parquet       one row per series (grouped, with geometry)
        catalog/pacs_studies.parquet candidate studies of a PACS query ('ctcurate pull') and pacs_query.json
        catalog/pacs_metadata/<study>.parquet   headers (DICOMweb metadata) of a drawn study, one row per instance
        catalog/pacs_series.parquet  the drawn studies' series on the PACS: verdicts, what was retrieved
        exports/pacs/<study UID>/<series UID>/<SOP UID>.dcm   series retrieved from the PACS
        sample/manifest.json         seed, parameters and members of the current draw
        sample/sample.parquet        the drawn exams with their rank
        filter/verdicts.parquet      series -> included/excluded, reason codes and details
        filter/exams.parquet         exam -> included/excluded, chosen series
        linkage.parquet              case id <-> source series (the re-identification key)
        sites.parquet                institution -> site pseudonym
    WS/releasable/                   de-identified; what a release is built from
        cases/<case>/ct.nrrd         native resolution, int16 HU, LPS geometry
        cases/<case>/ct_1.5mm.nrrd   isotropic copies, one per configured spacing
        cases/<case>/case.json       de-identified metadata and lineage
        cases/<case>/segmentations/<structure>.nrrd   one binary mask per class (when labelled)
        cases/<case>/segmentation.seg.nrrd            or one multi-label Slicer segmentation
        cases/<case>/revisions/r0000.seg.nrrd         revision 0 (a model's), then corrections, per grid
        tables/meta.parquet|.csv     all cases (from each case.json; see curation.cases.casemeta)
        figures/exclusion_flow.png|.svg|.json
    WS/annotations.sqlite            revisions and their reviews (curation.annotation.revisions)
    WS/models/<name>/v<N>.json       registered segmentation models (folders, label mapping, fingerprint, lineage)
    WS/models/<name>/v<N>/           trained-model folder of a version made by 'ctcurate retrain'
    WS/nnunet/                       nnU-Net's raw, preprocessed and results folders of 'ctcurate retrain'
    WS/qa/                           label findings and statistics, QA report, Data Docs
    WS/logs/                         run logs

The boundary is strict: nothing under ``releasable/`` holds names, ids, birth dates, full dates,
UIDs, institution names or accession numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from curation.errors import WorkspaceError

from .folders import (
    CASE_METADATA,
    MASKS_FOLDER,
    NNUNET_SPLIT_FILE,
    REVISIONS_FOLDER,
    SPLIT_FILE,
    QAFolder,
    ReleaseFolder,
)
from .settings import Settings
from .settings_file import load_settings, save_settings

if TYPE_CHECKING:
    from curation.labels.labelset import LabelSet

__all__ = ["Workspace", "SETTINGS_FILE"]

SETTINGS_FILE = "ctcurate.toml"


def _format_spacing(spacing: float) -> str:
    return f"{spacing:g}"


@dataclass(frozen=True)
class Workspace:
    """Paths of one workspace, and its settings.

    Build one with :meth:`open` (existing) or :meth:`create` (new).
    """

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root).resolve())

    # -- construction -------------------------------------------------------------------------------
    @classmethod
    def create(cls, root: str | Path, settings: Settings | None = None, *, exist_ok: bool = False) -> Workspace:
        """Create the folders, the settings file and the secret key of a new workspace."""
        ws = cls(Path(root))
        if ws.settings_path.exists() and not exist_ok:
            raise WorkspaceError(
                f"{ws.root}: a workspace already exists here ({SETTINGS_FILE} found); "
                "open it instead, or choose another folder"
            )
        if ws.root.exists() and not ws.root.is_dir():
            raise WorkspaceError(f"{ws.root}: expected a folder for the workspace, found a file")
        for folder in (ws.private, ws.catalog_dir, ws.sample_dir, ws.filter_dir, ws.releasable, ws.cases_dir,
                       ws.tables_dir, ws.figures_dir, ws.logs_dir):
            folder.mkdir(parents=True, exist_ok=True)
        if not ws.settings_path.exists():
            save_settings(settings or Settings(), ws.settings_path)
        if not ws.secret_path.exists():
            import secrets

            from curation.atomic import atomic_write_bytes

            atomic_write_bytes(ws.secret_path, secrets.token_bytes(32))
            ws.secret_path.chmod(0o600)
        return ws

    @classmethod
    def open(cls, root: str | Path) -> Workspace:
        """Open an existing workspace; the settings file must exist."""
        ws = cls(Path(root))
        if ws.root.exists() and not ws.root.is_dir():
            raise WorkspaceError(f"{ws.root}: a file, not a workspace folder; pass the folder 'ctcurate init' made "
                                 "(-w WS)")
        if not ws.root.is_dir():
            raise WorkspaceError(f"{ws.root}: workspace folder not found; create it with 'ctcurate init'")
        if not ws.settings_path.is_file():
            raise WorkspaceError(
                f"{ws.root}: not a ctcurate workspace ({SETTINGS_FILE} missing); run 'ctcurate init {root}'"
            )
        return ws

    # -- settings and secret ------------------------------------------------------------------------
    @property
    def settings_path(self) -> Path:
        return self.root / SETTINGS_FILE

    @property
    def settings(self) -> Settings:
        """The settings, read from disk each time (they are small and may be edited)."""
        return load_settings(self.settings_path)

    def save_settings(self, settings: Settings) -> None:
        save_settings(settings, self.settings_path)

    @property
    def secret(self) -> bytes:
        """The workspace's secret key; it never leaves ``private/``."""
        try:
            key = self.secret_path.read_bytes()
        except FileNotFoundError:
            raise WorkspaceError(
                f"{self.secret_path}: secret key missing; restore it from a backup (pseudonyms and "
                "fingerprints depend on it) or re-create the workspace"
            ) from None
        if len(key) < 16:
            raise WorkspaceError(f"{self.secret_path}: secret key too short ({len(key)} bytes, expected 32)")
        return key

    # -- private part --------------------------------------------------------------------------------
    @property
    def private(self) -> Path:
        return self.root / "private"

    @property
    def secret_path(self) -> Path:
        return self.private / "secret.key"

    @property
    def catalog_dir(self) -> Path:
        return self.private / "catalog"

    @property
    def files_table(self) -> Path:
        return self.catalog_dir / "files.parquet"

    @property
    def series_table(self) -> Path:
        return self.catalog_dir / "series.parquet"

    @property
    def pacs_studies_table(self) -> Path:
        """Candidate studies of the last PACS query."""
        return self.catalog_dir / "pacs_studies.parquet"

    @property
    def pacs_query_file(self) -> Path:
        """The PACS and the query that gave the candidate studies."""
        return self.catalog_dir / "pacs_query.json"

    @property
    def pacs_metadata_dir(self) -> Path:
        """Instance headers of drawn studies, read from the PACS: ``<study key>.parquet``."""
        return self.catalog_dir / "pacs_metadata"

    @property
    def pacs_series_table(self) -> Path:
        """Series of the drawn studies on the PACS, their verdicts and retrieval state."""
        return self.catalog_dir / "pacs_series.parquet"

    @property
    def pacs_export_dir(self) -> Path:
        """Where series retrieved from the PACS are saved (a private export folder)."""
        return self.private / "exports" / "pacs"

    @property
    def skipped_folders_file(self) -> Path:
        """Folders the last scan could not list (their files are not in the catalog), with the reason."""
        return self.catalog_dir / "skipped_folders.json"

    @property
    def sample_dir(self) -> Path:
        return self.private / "sample"

    @property
    def sample_manifest(self) -> Path:
        return self.sample_dir / "manifest.json"

    @property
    def sample_table(self) -> Path:
        return self.sample_dir / "sample.parquet"

    @property
    def filter_dir(self) -> Path:
        return self.private / "filter"

    @property
    def verdicts_table(self) -> Path:
        return self.filter_dir / "verdicts.parquet"

    @property
    def exams_table(self) -> Path:
        return self.filter_dir / "exams.parquet"

    @property
    def linkage_table(self) -> Path:
        return self.private / "linkage.parquet"

    @property
    def sites_table(self) -> Path:
        return self.private / "sites.parquet"

    # -- releasable part -----------------------------------------------------------------------------
    @property
    def releasable(self) -> Path:
        return self.root / "releasable"

    @property
    def cases_dir(self) -> Path:
        return self.releasable / "cases"

    def case_dir(self, case_id: str) -> Path:
        return self.cases_dir / case_id

    @staticmethod
    def ct_name(spacing_mm: float | None = None) -> str:
        """File name of the CT volume: ``ct.nrrd`` (native) or ``ct_<spacing>mm.nrrd``."""
        return "ct.nrrd" if spacing_mm is None else f"ct_{_format_spacing(spacing_mm)}mm.nrrd"

    def masks_dir(self, case_id: str) -> Path:
        """Folder of one binary mask per class: ``cases/<case>/segmentations``."""
        return self.case_dir(case_id) / MASKS_FOLDER

    def case_metadata(self, case_id: str) -> Path:
        """De-identified metadata and lineage of a case: ``cases/<case>/case.json``."""
        return self.case_dir(case_id) / CASE_METADATA

    def revisions_dir(self, case_id: str) -> Path:
        """Label files of a case's segmentation revisions: ``cases/<case>/revisions``."""
        return self.case_dir(case_id) / REVISIONS_FOLDER

    def case_id(self, number: int) -> str:
        """The case id of a case number: the settings' prefix and digits (``s0001``)."""
        conversion = self.settings.conversion
        return f"{conversion.case_prefix}{number:0{conversion.case_digits}d}"

    def case_number(self, name: str) -> int | None:
        """The number of a case id of this workspace (``s0001`` -> 1), or None for any other name."""
        prefix = self.settings.conversion.case_prefix
        rest = name[len(prefix):] if name.startswith(prefix) else ""
        return int(rest) if rest.isascii() and rest.isdigit() else None

    def is_case_id(self, name: str) -> bool:
        return self.case_number(name) is not None

    def case_ids(self) -> list[str]:
        """The cases of the workspace: folders under ``releasable/cases`` named as case ids, sorted."""
        if not self.cases_dir.is_dir():
            return []
        return sorted(p.name for p in self.cases_dir.iterdir() if p.is_dir() and self.is_case_id(p.name))

    def segmentation_file(self, case_id: str) -> Path:
        """Multi-label Slicer segmentation of a case: ``cases/<case>/segmentation.seg.nrrd``."""
        return self.case_dir(case_id) / "segmentation.seg.nrrd"

    @property
    def models_dir(self) -> Path:
        """Registered segmentation models: ``models/<name>/v<version>.json``."""
        return self.root / "models"

    @property
    def nnunet_dir(self) -> Path:
        """nnU-Net's folders for retraining: ``nnunet/nnUNet_raw``, ``nnUNet_preprocessed``, ``nnUNet_results``."""
        return self.root / "nnunet"

    @property
    def qa_dir(self) -> Path:
        """Label findings, label statistics, the QA report and Data Docs."""
        return self.root / "qa"

    @property
    def qa(self) -> QAFolder:
        """The workspace's QA results (``WS/qa``)."""
        return QAFolder(self.qa_dir)

    @property
    def database_file(self) -> Path:
        """The annotation database when it is SQLite in the workspace (the default)."""
        return self.root / "annotations.sqlite"

    @property
    def labels_dir(self) -> Path:
        """User label sets (TOML) that the settings' ``[labels] label_set`` may name."""
        return self.root / "labels"

    @property
    def answers_file(self) -> Path:
        """The steward's free-text datasheet answers (YAML)."""
        return self.root / "datasheet_answers.yaml"

    @property
    def splits_dir(self) -> Path:
        """Split versions ``v<semver>.json``, the current split and nnU-Net's one fold of it."""
        return self.releasable / "splits"

    def split_file(self, version: str) -> Path:
        return self.splits_dir / f"v{version}.json"

    def split_files(self) -> list[Path]:
        """Every split version's file (in no particular order)."""
        return list(self.splits_dir.glob("v*.json"))

    @property
    def current_split(self) -> Path:
        return self.splits_dir / SPLIT_FILE

    @property
    def nnunet_split(self) -> Path:
        return self.splits_dir / NNUNET_SPLIT_FILE

    @property
    def datasheet_dir(self) -> Path:
        """The datasheet built from the workspace (``ctcurate datasheet``)."""
        return self.releasable / "datasheet"

    @property
    def releases_dir(self) -> Path:
        return self.root / "releases"

    def release(self, version: str) -> ReleaseFolder:
        """The folder of a release (``WS/releases/<version>``); it may not exist yet."""
        return ReleaseFolder(self.releases_dir / version)

    @property
    def withdrawn_dir(self) -> Path:
        """Cases withdrawn after conversion (their exam became excluded): ``withdrawn/<case>/`` with the reason."""
        return self.root / "withdrawn"

    def withdrawn_case_dir(self, case_id: str) -> Path:
        return self.withdrawn_dir / case_id

    def withdrawal_record(self, case_id: str) -> Path:
        """Why and when a case was withdrawn."""
        return self.withdrawn_case_dir(case_id) / "withdrawal.json"

    def withdrawn_case_ids(self) -> list[str]:
        if not self.withdrawn_dir.is_dir():
            return []
        return sorted(p.name for p in self.withdrawn_dir.iterdir() if p.is_dir() and self.is_case_id(p.name))

    @property
    def flow_figure(self) -> Path:
        """The exclusion flow figure without its suffix (``.png`` and ``.svg`` are written, its counts as ``.json``)."""
        return self.figures_dir / "exclusion_flow"

    @property
    def convert_failures_table(self) -> Path:
        return self.private / "convert_failures.parquet"

    def pacs_metadata_file(self, study_key: str) -> Path:
        return self.pacs_metadata_dir / f"{study_key}.parquet"

    def retrain_logs_dir(self, run: str) -> Path:
        """Output of each nnU-Net command of one retraining run."""
        return self.logs_dir / "retrain" / run

    @property
    def tables_dir(self) -> Path:
        return self.releasable / "tables"

    @property
    def meta_table(self) -> Path:
        return self.tables_dir / "meta.parquet"

    @property
    def meta_csv(self) -> Path:
        return self.tables_dir / "meta.csv"

    @property
    def figures_dir(self) -> Path:
        return self.releasable / "figures"

    @property
    def lock_file(self) -> Path:
        """The write lock (flock) and the name of its holder."""
        return self.root / "ctcurate.lock"

    @property
    def error_log(self) -> Path:
        """Tracebacks of unexpected errors; the command line's one-line message names it."""
        return self.logs_dir / "errors.log"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    def label_set(self) -> LabelSet:
        """The workspace's label set (settings ``labels.label_set``: a built-in name, or a path relative to
        the workspace root)."""
        from curation.labels.labelset import builtin_label_sets, load_label_set

        name = self.settings.labels.label_set
        if name in builtin_label_sets():
            return load_label_set(name)
        path = Path(name)
        return load_label_set(path if path.is_absolute() else self.root / path)

    def require(self, path: Path, step: str) -> Path:
        """Return ``path`` if it exists, else explain which step produces it."""
        if not path.exists():
            raise WorkspaceError(
                f"{path}: not found; run 'ctcurate {step}' on this workspace first"
            )
        return path
