"""Segmentation revisions of a workspace's cases: label files plus an append-only table.

Each case's segmentation is a list of revisions. Revision 0 is a model's result; each save adds the
next one (author, start and end time, parent, comment, voxels changed per structure against the
parent). Label files are multi-label Slicer segmentations under the case folder
(``revisions/r0000.seg.nrrd`` on the CT's own grid and ``r0000_<s>mm.seg.nrrd`` on each isotropic
copy's grid); the table lives in a database (SQLite in the workspace by default; any SQLAlchemy URL).
A revision is never overwritten, and a save whose parent is not the latest revision is refused.

Revisions are written row first: the row claims the next number inside a transaction, the files are
written (each atomically), then the transaction commits, so a second client saving the same number at
once fails before writing any file, and a save killed half-way leaves no row and the previous
revision intact. The database is :mod:`curation.annotation.db`'s (SQLite or PostgreSQL).

A revision's review status (``unreviewed`` until someone reviews it, then ``approved`` or
``rejected``) is kept as an append-only list of review events in a second table; the last event
counts. Exports for retraining take the latest *approved* revision of each case.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import nrrd
import numpy as np
import sqlalchemy as sa

from curation.atomic import atomic_create
from curation.enums import parse_enum
from curation.errors import WorkspaceError
from curation.image.volume import Volume
from curation.labels.labelmap import write_seg_nrrd
from curation.labels.labelset import LabelSet
from curation.workspace.layout import Workspace

from .db import METADATA, engine_for, ensure_tables, now_iso, refuse_if_migrated, shown_url, store_id, store_value
from .db import database_url as database_url_of

__all__ = ["Revision", "RevisionStore", "ReviewStatus", "voxel_changes"]

log = logging.getLogger(__name__)
REVISION_KINDS = ("model", "human", "import")  # a model's result, an annotator's correction, labels brought in

_REVISIONS = sa.Table(
    "revisions", METADATA,
    sa.Column("case_id", sa.String(32), primary_key=True),
    sa.Column("number", sa.Integer, primary_key=True),
    sa.Column("parent", sa.Integer, nullable=True),
    sa.Column("author", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # model | human | import
    sa.Column("created", sa.String(32), nullable=False),
    sa.Column("started", sa.String(32), nullable=True),
    sa.Column("ended", sa.String(32), nullable=True),
    sa.Column("active_seconds", sa.Float, nullable=True),
    sa.Column("comment", sa.Text, nullable=False, default=""),
    sa.Column("files", sa.Text, nullable=False),      # JSON: {"native": "r0000.seg.nrrd", "1.5": ...}
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("changes", sa.Text, nullable=False),    # JSON: structure -> voxels changed vs the parent
    sa.Column("changes_vs_model", sa.Text, nullable=False, server_default="{}"),  # ... vs revision 0
)
_REVIEWS = sa.Table(
    "reviews", METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("case_id", sa.String(32), nullable=False, index=True),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("reviewer", sa.String(200), nullable=False),
    sa.Column("time", sa.String(32), nullable=False),
    sa.Column("comment", sa.Text, nullable=False, default=""),
)


class ReviewStatus(StrEnum):
    """Review status of one revision; every revision starts ``unreviewed``."""

    UNREVIEWED = "unreviewed"
    APPROVED = "approved"
    REJECTED = "rejected"

    @classmethod
    def parse(cls, value: ReviewStatus | str) -> ReviewStatus:
        return parse_enum(cls, value, "review status", WorkspaceError)


@dataclass(frozen=True)
class Revision:
    """One stored revision of a case's segmentation."""

    case_id: str
    number: int
    parent: int | None
    author: str
    kind: str
    created: str
    started: str | None
    ended: str | None
    active_seconds: float | None
    comment: str
    files: dict[str, str]
    sha256: str
    changes: dict[str, int]
    changes_vs_model: dict[str, int]


def voxel_changes(before: np.ndarray | None, after: np.ndarray, label_set: LabelSet) -> dict[str, int]:
    """Voxels changed per structure (gained or lost) from ``before`` to ``after``; all voxels when no ``before``."""
    n = label_set.max_index + 1
    if before is None:
        counts = np.bincount(after.ravel().astype(np.int64), minlength=n)
    else:
        differ = before != after
        counts = np.bincount(before[differ].astype(np.int64), minlength=n) + \
            np.bincount(after[differ].astype(np.int64), minlength=n)
    return {c.name: int(counts[c.index]) for c in label_set if c.index < len(counts) and counts[c.index]}


class RevisionStore:
    """The revisions of one workspace (``database_url`` defaults to ``WS/annotations.sqlite``)."""

    def __init__(self, workspace: Workspace, database_url: str | None = None) -> None:
        self.workspace = workspace
        self.url = database_url_of(workspace, database_url)
        self.engine = engine_for(self.url)
        _add_missing_columns(self.engine)
        refuse_if_migrated(self.engine)
        self._refuse_foreign_files(store_value(self.engine, "store_id"))
        self.store_id = store_id(self.engine)  # made only once the database is known to be the record

    def _refuse_foreign_files(self, own: str | None) -> None:
        """A database that holds no revisions while revision files of another database exist is not the
        record: refuse it (writing nothing to it), naming the migration."""
        with self.engine.connect() as db:
            if db.execute(sa.select(_REVISIONS.c.case_id).limit(1)).first() is not None:
                return
        for case_id in self.workspace.case_ids():
            for path in sorted(self.folder(case_id).glob("r[0-9]*.seg.nrrd")):
                if own is None or file_store(path) != own:
                    shown = shown_url(self.url)
                    raise WorkspaceError(
                        f"{self.workspace.root}: the annotation database {shown} holds no revisions, but {path} was "
                        "written with another one; set [annotation] database_url back to the database that holds "
                        "the revisions, then copy them with 'ctcurate annotate db migrate --to URL -w "
                        f"{self.workspace.root}'")

    def folder(self, case_id: str) -> Path:
        return self.workspace.revisions_dir(case_id)

    def _row(self, row: Any) -> Revision:
        data = dict(row._mapping)
        return Revision(**{**data, "files": json.loads(data["files"]), "changes": json.loads(data["changes"]),
                           "changes_vs_model": json.loads(data["changes_vs_model"])})

    def history(self, case_id: str) -> list[Revision]:
        """All revisions of a case, oldest first."""
        with self.engine.connect() as db:
            rows = db.execute(sa.select(_REVISIONS).where(_REVISIONS.c.case_id == case_id)
                              .order_by(_REVISIONS.c.number)).all()
        return [self._row(r) for r in rows]

    def all_revisions(self) -> list[Revision]:
        """Every revision of every case, by case then number."""
        with self.engine.connect() as db:
            rows = db.execute(sa.select(_REVISIONS).order_by(_REVISIONS.c.case_id, _REVISIONS.c.number)).all()
        return [self._row(r) for r in rows]

    def latest(self, case_id: str) -> Revision | None:
        history = self.history(case_id)
        return history[-1] if history else None

    def cases_with_revisions(self) -> set[str]:
        with self.engine.connect() as db:
            return {r[0] for r in db.execute(sa.select(_REVISIONS.c.case_id).distinct())}

    def path(self, revision: Revision, grid: str = "native") -> Path:
        """The label file of a revision on a grid (``native`` or a spacing such as ``1.5``)."""
        if grid not in revision.files:
            raise WorkspaceError(f"case {revision.case_id} revision {revision.number}: no labels on grid {grid!r} "
                                 f"(has {', '.join(revision.files)})")
        return self.folder(revision.case_id) / revision.files[grid]

    def add(self, case_id: str, labels: dict[str, Volume], label_set: LabelSet, *, author: str, kind: str,
            parent: int | None, comment: str = "", started: str | None = None, ended: str | None = None,
            active_seconds: float | None = None, previous: np.ndarray | None = None,
            model: np.ndarray | None = None) -> Revision:
        """Store a new revision; refused if ``parent`` is not the latest revision.

        ``labels`` maps a grid name (``native``, ``1.5``, ``3``) to the label volume on that grid;
        ``previous`` is the parent's native labels and ``model`` revision 0's (read from its file when
        not given), for the per-structure change counts.
        """
        if "native" not in labels:
            raise WorkspaceError(f"case {case_id}: a revision needs labels on the CT's own grid ('native')")
        if kind not in REVISION_KINDS:
            raise WorkspaceError(f"case {case_id}: revision kind must be one of {', '.join(REVISION_KINDS)}, found "
                                 f"{kind!r}")
        latest = self.latest(case_id)
        expected = latest.number if latest else None
        if parent != expected:
            raise WorkspaceError(f"case {case_id}: cannot save on top of revision {parent}: the latest is "
                                 f"{expected} (saved by {latest.author if latest else 'nobody'}); reopen the case "
                                 "and redo the change on the latest revision")
        number = 0 if latest is None else latest.number + 1
        after = labels["native"].array
        if number > 0 and model is None:
            from curation.labels.labelmap import read_seg_nrrd

            model = read_seg_nrrd(self.path(self.history(case_id)[0]))[0].array
        for what, other in (("the parent's", previous), ("revision 0's", model)):
            if other is not None and other.shape != after.shape:
                raise WorkspaceError(f"case {case_id}: labels of shape {after.shape} do not match {what} "
                                     f"{other.shape}; a revision must lie on the CT's own grid")
        files = {grid: f"r{number:04d}.seg.nrrd" if grid == "native" else f"r{number:04d}_{grid}mm.seg.nrrd"
                 for grid in labels}
        revision = Revision(case_id, number, parent, author, kind, now_iso(), started, ended, active_seconds, comment,
                            files, "", voxel_changes(previous, after, label_set),
                            voxel_changes(model, after, label_set) if model is not None else {})
        row = {**revision.__dict__, "files": json.dumps(files), "changes": json.dumps(revision.changes),
               "changes_vs_model": json.dumps(revision.changes_vs_model)}
        digest = hashlib.sha256()
        try:
            with self.engine.begin() as db:
                db.execute(_REVISIONS.insert().values(**row))  # claims the number; a rival save now fails
                written: dict[int, Path] = {}
                stamp = {"ctcurate_store": self.store_id, "ctcurate_revision": f"{case_id} {number}"}
                for grid, volume in labels.items():
                    path = self.folder(case_id) / files[grid]
                    # created, never replaced; a file of this store without a row is a killed save's
                    with atomic_create(path, leftover=lambda p: file_store(p) == self.store_id) as tmp:
                        if id(volume) in written:  # the same labels on an identical grid: copy the file
                            tmp.write_bytes(written[id(volume)].read_bytes())
                        else:
                            write_seg_nrrd(tmp, volume, label_set, extra_fields=stamp)
                            written[id(volume)] = path
                    digest.update(path.read_bytes())
                this = (_REVISIONS.c.case_id == case_id) & (_REVISIONS.c.number == number)
                db.execute(_REVISIONS.update().where(this).values(sha256=digest.hexdigest()))
        except sa.exc.IntegrityError:
            raise WorkspaceError(f"case {case_id}: revision {number} was saved by someone else a moment ago; "
                                 "reopen the case") from None
        except FileExistsError as exc:
            raise WorkspaceError(f"case {case_id}: {exc.filename} exists and was not written by this annotation "
                                 "database; no revision file is ever replaced: check [annotation] database_url "
                                 "('ctcurate annotate db migrate' copies a database)") from None
        except OSError as exc:
            raise WorkspaceError(f"case {case_id}: revision {number} could not be written ({exc}); revision "
                                 f"{expected} is intact and the edits are still open: free space or fix the "
                                 "folder's permissions and save again") from None
        log.info("case %s: revision %d by %s", case_id, number, author)
        return dataclasses.replace(revision, sha256=digest.hexdigest())

    def verify(self, revision: Revision) -> None:
        """Check that a revision's files hold what was written (their sha256 as stored with the revision)."""
        digest = hashlib.sha256()
        for grid in revision.files:
            path = self.path(revision, grid)
            try:
                with path.open("rb") as handle:
                    for block in iter(lambda: handle.read(1 << 20), b""):
                        digest.update(block)
            except FileNotFoundError:
                raise WorkspaceError(f"case {revision.case_id} revision {revision.number}: {path} is missing; restore "
                                     "it from a backup (revision files are never removed)") from None
        if digest.hexdigest() != revision.sha256:
            raise WorkspaceError(f"case {revision.case_id} revision {revision.number}: its files "
                                 f"({', '.join(revision.files.values())}) changed on disk since they were written; "
                                 "restore them from a backup: a revision is never edited in place (save a correction "
                                 "as a new revision, or bring labels in with 'ctcurate annotate import')")

    # -- review ------------------------------------------------------------------------------------------
    def review(self, case_id: str, number: int | None, status: ReviewStatus | str, *, reviewer: str,
               comment: str = "") -> Revision:
        """Record a review of revision ``number`` (default: the latest) and return that revision."""
        status = ReviewStatus.parse(status)
        if not reviewer.strip():
            raise WorkspaceError(f"case {case_id}: a review needs the reviewer's name")
        history = self.history(case_id)
        if not history and not self.workspace.case_dir(case_id).is_dir():
            raise WorkspaceError(f"case {case_id}: no such case in {self.workspace.cases_dir}; check the case id")
        if not history:
            raise WorkspaceError(f"case {case_id}: no revisions to review; run 'ctcurate presegment' first")
        found = history[-1] if number is None else next((r for r in history if r.number == number), None)
        if found is None:
            raise WorkspaceError(f"case {case_id}: no revision {number} (have 0..{history[-1].number})")
        if status is ReviewStatus.APPROVED and not self.workspace.settings.annotation.self_review:
            from .worklist import done_by

            why = "wrote it" if found.author == reviewer else (
                "marked the case done" if done_by(self.engine, case_id) == reviewer else "")
            if why:
                raise WorkspaceError(f"case {case_id} revision {found.number}: {reviewer} {why} and cannot approve it "
                                     "(two-person rule); a second physician approves it, or set [annotation] "
                                     "self_review = true where one physician works alone")
        with self.engine.begin() as db:
            db.execute(_REVIEWS.insert().values(case_id=case_id, number=found.number, status=status.value,
                                                reviewer=reviewer, time=now_iso(), comment=comment))
        log.info("case %s: revision %d %s by %s", case_id, found.number, status.value, reviewer)
        return found

    def reviews(self, case_id: str | None = None) -> list[dict[str, Any]]:
        """Review events (case_id, number, status, reviewer, time, comment), oldest first; of one case or all."""
        query = sa.select(_REVIEWS).order_by(_REVIEWS.c.id)
        if case_id is not None:
            query = query.where(_REVIEWS.c.case_id == case_id)
        with self.engine.connect() as db:
            rows = db.execute(query).all()
        return [{k: v for k, v in r._mapping.items() if k != "id"} for r in rows]

    def statuses(self, case_id: str) -> dict[int, ReviewStatus]:
        """Current review status of every revision of a case (the last review event counts)."""
        out = {r.number: ReviewStatus.UNREVIEWED for r in self.history(case_id)}
        with self.engine.connect() as db:
            rows = db.execute(sa.select(_REVIEWS.c.number, _REVIEWS.c.status).where(_REVIEWS.c.case_id == case_id)
                              .order_by(_REVIEWS.c.id)).all()
        for number, status in rows:
            out[number] = ReviewStatus(status)
        return out

    def all_statuses(self) -> dict[tuple[str, int], ReviewStatus]:
        """Current review status of every revision of every case, keyed by (case, number)."""
        out = {(r.case_id, r.number): ReviewStatus.UNREVIEWED for r in self.all_revisions()}
        with self.engine.connect() as db:
            rows = db.execute(sa.select(_REVIEWS.c.case_id, _REVIEWS.c.number, _REVIEWS.c.status)
                              .order_by(_REVIEWS.c.id)).all()
        for case_id, number, status in rows:
            out[(case_id, number)] = ReviewStatus(status)
        return out

    def latest_with_status(self, case_id: str, *statuses: ReviewStatus | str) -> Revision | None:
        """The newest revision of a case whose current status is one of ``statuses``."""
        wanted = {ReviewStatus.parse(s) for s in statuses}
        current = self.statuses(case_id)
        matching = [r for r in self.history(case_id) if current.get(r.number) in wanted]
        return matching[-1] if matching else None


def file_store(path: Path) -> str | None:
    """The annotation database that wrote a revision file (None for files of earlier versions)."""
    try:
        value = nrrd.read_header(str(path)).get("ctcurate_store")
    except (OSError, nrrd.NRRDError):
        return None
    return str(value) if value else None


def _add_missing_columns(engine: sa.Engine) -> None:
    """Bring a revisions table made by an earlier version up to date (added columns only)."""
    columns = {c["name"] for c in sa.inspect(engine).get_columns("revisions")}
    if "changes_vs_model" not in columns:
        with engine.begin() as db:
            db.execute(sa.text("ALTER TABLE revisions ADD COLUMN changes_vs_model TEXT NOT NULL DEFAULT '{}'"))
    ensure_tables(engine)
