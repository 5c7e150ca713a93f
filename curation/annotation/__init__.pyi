"""Names of :mod:`curation.annotation` for type checkers; the package loads them when first used."""

from .db import (
    METADATA,
    NETWORK_FILESYSTEMS,
    database_url,
    engine_for,
    ensure_tables,
    filesystem_type,
    has_annotation_database,
    now_iso,
    store_id,
)
from .imports import (
    Imported,
    case_grids,
    case_label_files,
    import_case_folder_labels,
    import_labels,
    pending_label_files,
)
from .migrate import MigrationResult, migrate_database, table_digests
from .record import LabelsOfRecord, all_labels_of_record, labels_of_record
from .revisions import ReviewStatus, Revision, RevisionStore, voxel_changes
from .worklist import EXCLUSION_REASONS, CaseStatus, Claim, StructureState, Worklist

__all__ = [
    "MigrationResult", "migrate_database", "table_digests", "store_id",
    "Imported", "case_grids", "case_label_files", "import_case_folder_labels", "import_labels", "pending_label_files",
    "LabelsOfRecord", "all_labels_of_record", "labels_of_record",
    "METADATA", "NETWORK_FILESYSTEMS", "database_url", "engine_for", "ensure_tables", "filesystem_type",
    "has_annotation_database",
    "now_iso", "Revision", "RevisionStore", "ReviewStatus", "voxel_changes", "CaseStatus", "StructureState",
    "Claim", "Worklist", "EXCLUSION_REASONS"
]
