"""The annotation store: one database (SQLite in the workspace or PostgreSQL) holding segmentation
revisions and their reviews, case status, claims and structure review states.
"""

from __future__ import annotations

from .db import METADATA, NETWORK_FILESYSTEMS, database_url, engine_for, ensure_tables, filesystem_type, now_iso
from .revisions import ReviewStatus, Revision, RevisionStore, voxel_changes
from .worklist import EXCLUSION_REASONS, CaseStatus, Claim, StructureState, Worklist

__all__ = [
    "METADATA", "NETWORK_FILESYSTEMS", "database_url", "engine_for", "ensure_tables", "filesystem_type",
    "now_iso", "Revision", "RevisionStore", "ReviewStatus", "voxel_changes", "CaseStatus", "StructureState",
    "Claim", "Worklist", "EXCLUSION_REASONS"
]
