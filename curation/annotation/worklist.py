"""The annotators' worklist: per case a status, a claim, and a review state per structure.

A case goes ``todo`` -> ``in_progress`` -> ``done``, or is ``excluded`` with a reason from
:data:`EXCLUSION_REASONS` (these feed the exclusion flow). Opening a case to edit it claims it: one
annotator at a time; a claim lapses after ``[annotation] claim_expiry_minutes`` without a save or
renewal, and can be broken on purpose (recorded, with the reason). Each structure of a case is
``unreviewed``, ``ok``, ``corrected`` or ``absent_in_fov``. Every change is also appended to an
event log. Claims are taken with one conditional statement, so of two clients claiming at once
exactly one wins, on SQLite and on PostgreSQL alike.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from curation.enums import parse_enum
from curation.errors import AnnotationError
from curation.reasons import ReasonSource, reasons_of
from curation.workspace.layout import Workspace

from .db import METADATA, database_url, engine_for, ensure_tables, now_iso, refuse_if_migrated

__all__ = ["CaseStatus", "StructureState", "Claim", "Worklist", "EXCLUSION_REASONS"]

log = logging.getLogger(__name__)

#: reason code -> wording; the codes also name the exclusion flow's boxes
EXCLUSION_REASONS = reasons_of(ReasonSource.ANNOTATOR)  # the codes an annotator may exclude a case with

_STATUS = sa.Table(
    "case_status", METADATA,
    sa.Column("case_id", sa.String(32), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("reason", sa.String(32), nullable=True),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("time", sa.String(40), nullable=False),
)
_CLAIMS = sa.Table(
    "claims", METADATA,
    sa.Column("case_id", sa.String(32), primary_key=True),
    sa.Column("claimant", sa.String(200), nullable=False),
    sa.Column("since", sa.String(40), nullable=False),
    sa.Column("renewed", sa.String(40), nullable=False),
)
_STRUCTURES = sa.Table(
    "structure_reviews", METADATA,
    sa.Column("case_id", sa.String(32), primary_key=True),
    sa.Column("structure", sa.String(100), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("time", sa.String(40), nullable=False),
)
_EVENTS = sa.Table(
    "worklist_events", METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("case_id", sa.String(32), nullable=False, index=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("time", sa.String(40), nullable=False),
    sa.Column("detail", sa.Text, nullable=False, default="{}"),
)


class CaseStatus(StrEnum):
    TODO = "todo"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    EXCLUDED = "excluded"


class StructureState(StrEnum):
    UNREVIEWED = "unreviewed"
    OK = "ok"
    CORRECTED = "corrected"
    ABSENT = "absent_in_fov"


@dataclass(frozen=True)
class Claim:
    """Who holds a case, since when, and when the claim was last renewed (by a save or autosave)."""

    case_id: str
    claimant: str
    since: str
    renewed: str


def done_by(engine: Any, case_id: str) -> str | None:
    """Who marked a case done (None when it is not done): the two-person rule keeps them from approving it."""
    with engine.connect() as db:
        row = db.execute(sa.select(_STATUS.c.status, _STATUS.c.actor).where(_STATUS.c.case_id == case_id)).first()
    return str(row[1]) if row and row[0] == CaseStatus.DONE.value else None


class Worklist:
    """Case status, claims and structure review states of one workspace (same database as the revisions)."""

    def __init__(self, workspace: Workspace, database_url_: str | None = None, *,
                 expiry: timedelta | None = None) -> None:
        self.workspace = workspace
        self.url = database_url(workspace, database_url_)
        self.engine = engine_for(self.url)
        ensure_tables(self.engine)
        refuse_if_migrated(self.engine)
        self.expiry = expiry or timedelta(minutes=workspace.settings.annotation.claim_expiry_minutes)

    def _event(self, db: Any, case_id: str, kind: str, actor: str, **detail: Any) -> None:
        db.execute(_EVENTS.insert().values(case_id=case_id, kind=kind, actor=actor, time=now_iso(),
                                           detail=json.dumps(detail, sort_keys=True)))

    def _cutoff(self) -> str:
        return (datetime.now(UTC) - self.expiry).isoformat(timespec="microseconds")

    # -- status -----------------------------------------------------------------------------------------
    def status(self, case_id: str) -> tuple[CaseStatus, str | None]:
        """A case's status and exclusion reason (``todo`` until anyone sets it)."""
        with self.engine.connect() as db:
            row = db.execute(sa.select(_STATUS.c.status, _STATUS.c.reason).where(_STATUS.c.case_id == case_id)).first()
        return (CaseStatus(row[0]), row[1]) if row else (CaseStatus.TODO, None)

    def statuses(self) -> dict[str, tuple[CaseStatus, str | None]]:
        with self.engine.connect() as db:
            rows = db.execute(sa.select(_STATUS.c.case_id, _STATUS.c.status, _STATUS.c.reason)).all()
        return {r[0]: (CaseStatus(r[1]), r[2]) for r in rows}

    def set_status(self, case_id: str, status: CaseStatus | str, *, actor: str, reason: str | None = None,
                   comment: str = "") -> CaseStatus:
        """Set a case's status; ``excluded`` needs a reason code of :data:`EXCLUSION_REASONS`."""
        chosen: CaseStatus = parse_enum(CaseStatus, status, f"case {case_id}: status", AnnotationError)
        if chosen is CaseStatus.EXCLUDED and reason not in EXCLUSION_REASONS:
            raise AnnotationError(f"case {case_id}: excluding needs a reason, one of {', '.join(EXCLUSION_REASONS)}; "
                                  f"found {reason!r}")
        if chosen is not CaseStatus.EXCLUDED:
            reason = None
        holder = self.claim_of(case_id)
        if holder is not None and holder.claimant != actor:
            raise AnnotationError(f"case {case_id}: {holder.claimant} is editing it (since {holder.since[:16]} UTC); "
                                  "only they can change its status until they release it or the claim lapses")
        values = {"status": chosen.value, "reason": reason, "actor": actor, "time": now_iso()}
        with self.engine.begin() as db:
            done = db.execute(_STATUS.update().where(_STATUS.c.case_id == case_id).values(**values)).rowcount
            if not done:
                db.execute(_STATUS.insert().values(case_id=case_id, **values))
            self._event(db, case_id, "status", actor, status=chosen.value, reason=reason, comment=comment)
        return chosen

    # -- claims -----------------------------------------------------------------------------------------
    def claim_of(self, case_id: str) -> Claim | None:
        """The live claim on a case (a lapsed claim counts as none)."""
        with self.engine.connect() as db:
            row = db.execute(sa.select(_CLAIMS).where((_CLAIMS.c.case_id == case_id)
                                                      & (_CLAIMS.c.renewed >= self._cutoff()))).first()
        return Claim(*row) if row else None

    def claims(self) -> dict[str, Claim]:
        with self.engine.connect() as db:
            rows = db.execute(sa.select(_CLAIMS).where(_CLAIMS.c.renewed >= self._cutoff())).all()
        return {r[0]: Claim(*r) for r in rows}

    def claim(self, case_id: str, who: str) -> Claim:
        """Claim a case for editing (renews one's own claim, takes over a lapsed one); raises if someone holds it."""
        if not who.strip():
            raise AnnotationError(f"case {case_id}: a claim needs the annotator's name")
        now = now_iso()
        mine_or_lapsed = (_CLAIMS.c.case_id == case_id) & ((_CLAIMS.c.claimant == who)
                                                           | (_CLAIMS.c.renewed < self._cutoff()))
        try:
            with self.engine.begin() as db:
                previous = db.execute(sa.select(_CLAIMS.c.claimant).where(mine_or_lapsed)).scalar()
                taken = db.execute(_CLAIMS.update().where(mine_or_lapsed)
                                   .values(claimant=who, since=now, renewed=now)).rowcount
                if not taken:
                    db.execute(_CLAIMS.insert().values(case_id=case_id, claimant=who, since=now, renewed=now))
                self._event(db, case_id, "claim", who, took_over=previous if previous not in (None, who) else None)
                status = db.execute(sa.select(_STATUS.c.status).where(_STATUS.c.case_id == case_id)).scalar()
                if status in (None, CaseStatus.TODO.value):
                    values = {"status": CaseStatus.IN_PROGRESS.value, "reason": None, "actor": who, "time": now}
                    if status is None:
                        db.execute(_STATUS.insert().values(case_id=case_id, **values))
                    else:
                        db.execute(_STATUS.update().where(_STATUS.c.case_id == case_id).values(**values))
        except sa.exc.IntegrityError:
            holder = self.claim_of(case_id)
            held = f"{holder.claimant} since {holder.since[:16]} UTC" if holder else "another annotator"
            raise AnnotationError(f"case {case_id}: claimed by {held}; open it read-only, or break the claim "
                                  "if they have left (recorded with your reason)") from None
        return Claim(case_id, who, now, now)

    def renew(self, case_id: str, who: str) -> None:
        """Keep one's claim alive (a save or autosave does this)."""
        with self.engine.begin() as db:
            kept = db.execute(_CLAIMS.update().where((_CLAIMS.c.case_id == case_id) & (_CLAIMS.c.claimant == who))
                              .values(renewed=now_iso())).rowcount
        if not kept:
            raise AnnotationError(f"case {case_id}: {who} holds no claim on it any more (it lapsed or was broken); "
                                  "claim it again before saving")

    def release(self, case_id: str, who: str) -> None:
        with self.engine.begin() as db:
            gone = db.execute(_CLAIMS.delete().where((_CLAIMS.c.case_id == case_id)
                                                     & (_CLAIMS.c.claimant == who))).rowcount
            if gone:
                self._event(db, case_id, "release", who)

    def break_claim(self, case_id: str, who: str, reason: str) -> Claim | None:
        """Remove someone else's claim on purpose; the event names who, whose claim and why."""
        if not reason.strip():
            raise AnnotationError(f"case {case_id}: breaking a claim needs a reason (it is recorded)")
        holder = self.claim_of(case_id)
        if holder is None:
            return None  # nothing to break, nothing to record
        with self.engine.begin() as db:
            db.execute(_CLAIMS.delete().where(_CLAIMS.c.case_id == case_id))
            self._event(db, case_id, "break_claim", who, holder=holder.claimant, reason=reason)
        log.warning("case %s: claim of %s broken by %s (%s)", case_id, holder.claimant, who, reason)
        return holder

    # -- structures -------------------------------------------------------------------------------------
    def set_structure(self, case_id: str, structure: str, state: StructureState | str, *, actor: str) -> None:
        chosen: StructureState = parse_enum(StructureState, state, f"case {case_id} {structure}: review state",
                                             AnnotationError)
        values = {"state": chosen.value, "actor": actor, "time": now_iso()}
        this = (_STRUCTURES.c.case_id == case_id) & (_STRUCTURES.c.structure == structure)
        with self.engine.begin() as db:
            if not db.execute(_STRUCTURES.update().where(this).values(**values)).rowcount:
                db.execute(_STRUCTURES.insert().values(case_id=case_id, structure=structure, **values))
            self._event(db, case_id, "structure", actor, structure=structure, state=chosen.value)

    def structures(self, case_id: str) -> dict[str, StructureState]:
        """Review state of each structure someone reviewed (the others are ``unreviewed``)."""
        with self.engine.connect() as db:
            rows = db.execute(sa.select(_STRUCTURES.c.structure, _STRUCTURES.c.state)
                              .where(_STRUCTURES.c.case_id == case_id)).all()
        return {r[0]: StructureState(r[1]) for r in rows}

    def comment(self, case_id: str, structure: str, text: str, *, actor: str) -> None:
        """Keep a reviewer's (or annotator's) comment on one structure of a case."""
        if not text.strip():
            raise AnnotationError(f"case {case_id} {structure}: the comment is empty; write what should change")
        with self.engine.begin() as db:
            self._event(db, case_id, "comment", actor, structure=structure, text=text.strip())

    def comments(self, case_id: str) -> list[dict[str, Any]]:
        """Comments on a case's structures, oldest first: structure, text, actor, time."""
        return [{"structure": e["detail"]["structure"], "text": e["detail"]["text"], "actor": e["actor"],
                 "time": e["time"]} for e in self.events(case_id) if e["kind"] == "comment"]

    def events(self, case_id: str) -> list[dict[str, Any]]:
        """The case's event log, oldest first."""
        with self.engine.connect() as db:
            rows = db.execute(sa.select(_EVENTS).where(_EVENTS.c.case_id == case_id).order_by(_EVENTS.c.id)).all()
        return [{**dict(r._mapping), "detail": json.loads(r.detail)} for r in rows]
