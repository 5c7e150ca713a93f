"""Which labels of a case are of record: the one definition that QA, releases, exports, the datasheet,
the contrast phase and the annotation tools share.

A case's labels of record are its latest *approved* revision, else its latest revision (whatever its
review status). They are named by the revision's number, its current review status and the sha256 of
its files as stored when the revision was written, so that a result computed on them (a QA run) can
later be matched against the labels a release ships.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from curation.workspace.layout import Workspace

from .db import has_annotation_database
from .revisions import ReviewStatus, Revision, RevisionStore

__all__ = ["LabelsOfRecord", "labels_of_record", "all_labels_of_record"]


@dataclass(frozen=True)
class LabelsOfRecord:
    """A case's labels of record: the revision, its review status and where its native-grid file is."""

    revision: Revision
    status: ReviewStatus
    path: Path

    @property
    def case_id(self) -> str:
        return self.revision.case_id

    @property
    def number(self) -> int:
        return self.revision.number

    @property
    def sha256(self) -> str:
        return self.revision.sha256

    def describe(self) -> str:
        """``revision 2 (approved)``."""
        return f"revision {self.number} ({self.status.value})"


def _choose(history: list[Revision], statuses: dict[int, ReviewStatus]) -> tuple[Revision, ReviewStatus] | None:
    if not history:
        return None
    approved = [r for r in history if statuses.get(r.number) is ReviewStatus.APPROVED]
    chosen = approved[-1] if approved else history[-1]
    return chosen, statuses.get(chosen.number, ReviewStatus.UNREVIEWED)


def labels_of_record(store: RevisionStore, case_id: str) -> LabelsOfRecord | None:
    """The labels of record of one case, or None when it has no revision."""
    chosen = _choose(store.history(case_id), store.statuses(case_id))
    if chosen is None:
        return None
    return LabelsOfRecord(chosen[0], chosen[1], store.path(chosen[0]))


def all_labels_of_record(ws: Workspace, *, store: RevisionStore | None = None,
                         database_url: str | None = None) -> dict[str, LabelsOfRecord]:
    """The labels of record of every case that has a revision (two queries in all); empty when the
    workspace has no annotation database yet."""
    if store is None:
        if database_url is None and not has_annotation_database(ws):
            return {}
        store = RevisionStore(ws, database_url)
    histories: dict[str, list[Revision]] = {}
    for revision in store.all_revisions():
        histories.setdefault(revision.case_id, []).append(revision)
    statuses: dict[str, dict[int, ReviewStatus]] = {}
    for (case_id, number), status in store.all_statuses().items():
        statuses.setdefault(case_id, {})[number] = status
    out = {}
    for case_id, history in histories.items():
        chosen = _choose(history, statuses.get(case_id, {}))
        if chosen is not None:
            out[case_id] = LabelsOfRecord(chosen[0], chosen[1], store.path(chosen[0]))
    return out
