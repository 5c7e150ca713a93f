"""Moving the annotation record to another database (SQLite <-> PostgreSQL) without losing a row.

``ctcurate annotate db migrate --to URL`` copies every table of the annotation store (revisions, reviews,
case status, claims, structure review states, worklist events and the store's identity, so the revision
files stay its own) from the workspace's current database to an empty one, checks that every table holds
the same rows on both sides, and only then points the settings' ``[annotation] database_url`` at the new
database. The source is left as it was; a failed or interrupted migration changes no setting.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from curation.errors import WorkspaceError
from curation.workspace.layout import Workspace
from curation.workspace.settings import database_driver

from . import revisions, worklist  # noqa: F401  (their tables join METADATA)
from .db import METADATA, database_url, engine_for, mark_migrated, now_iso, refuse_if_migrated, shown_url

__all__ = ["MigrationResult", "migrate_database", "table_digests"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MigrationResult:
    source: str
    target: str
    rows: dict[str, int]


def _rows(engine: sa.Engine, table: sa.Table) -> list[dict[str, Any]]:
    with engine.connect() as db:
        return [dict(r._mapping) for r in db.execute(sa.select(table).order_by(*table.primary_key.columns))]


def table_digests(engine: sa.Engine) -> dict[str, tuple[int, str]]:
    """Rows and a sha256 of the rows' content, per table of the annotation store."""
    out = {}
    for table in METADATA.sorted_tables:
        digest = hashlib.sha256()
        rows = _rows(engine, table)
        for row in rows:
            digest.update(repr(sorted(row.items())).encode())
        out[table.name] = (len(rows), digest.hexdigest())
    return out


def _reset_sequences(engine: sa.Engine) -> None:
    """PostgreSQL: serial columns continue after the copied ids."""
    if engine.dialect.name != "postgresql":
        return
    with engine.begin() as db:
        for table in METADATA.sorted_tables:
            for column in table.primary_key.columns:
                if column.autoincrement is True:
                    db.execute(sa.text(f"SELECT setval(pg_get_serial_sequence('{table.name}', '{column.name}'), "
                                       f"COALESCE((SELECT MAX({column.name}) FROM {table.name}), 0) + 1, false)"))


def migrate_database(ws: Workspace, target_url: str) -> MigrationResult:
    """Copy the workspace's annotation database to ``target_url`` (which must hold no rows), verify every
    table, then make it the workspace's database."""
    source_url = database_url(ws)
    target_url = database_driver(target_url)
    try:
        target = sa.make_url(target_url)
    except sa.exc.ArgumentError:
        raise WorkspaceError(f"annotate db migrate --to {target_url!r}: not a database URL; expected "
                             "postgresql+psycopg://USER@HOST[:PORT]/DB or sqlite:////absolute/path.sqlite") from None
    if target.drivername.startswith("sqlite") and not target.database:
        raise WorkspaceError(f"annotate db migrate --to {target_url!r}: an SQLite URL needs a file: "
                             "sqlite:////absolute/path.sqlite")
    if target == sa.make_url(source_url):
        raise WorkspaceError(f"annotate db migrate: {shown_url(target_url)} is already the workspace's database")
    source, destination = engine_for(source_url), engine_for(target_url)
    refuse_if_migrated(source)
    # the store table alone (an identity made by an earlier version on a refused open) holds no record
    filled = [t.name for t in METADATA.sorted_tables if t.name != "store" and _rows(destination, t)]
    if filled:
        raise WorkspaceError(f"annotate db migrate: {shown_url(target_url)} already holds rows in {', '.join(filled)}; "
                             "migrate into an empty database, or a new SQLite file (nothing was copied)")
    try:
        with destination.begin() as db:
            db.execute(sa.delete(METADATA.tables["store"]))
            for table in METADATA.sorted_tables:
                rows = _rows(source, table)
                for start in range(0, len(rows), 1000):
                    db.execute(table.insert(), rows[start:start + 1000])
    except sa.exc.SQLAlchemyError as exc:
        raise WorkspaceError(f"annotate db migrate: copying into {shown_url(target_url)} failed "
                             f"({str(getattr(exc, 'orig', exc)).strip().splitlines()[0]}); nothing was switched") \
            from None
    _reset_sequences(destination)
    before, after = table_digests(source), table_digests(destination)
    differ = sorted(name for name in before if before[name] != after.get(name))
    if differ:
        raise WorkspaceError(f"annotate db migrate: {shown_url(target_url)} differs from the source in "
                             f"{', '.join(differ)} "
                             "after copying; the setting was not switched")
    settings = ws.settings
    chosen = "" if target == sa.make_url(f"sqlite:///{ws.database_file}") else target_url
    ws.save_settings(dataclasses.replace(settings, annotation=dataclasses.replace(settings.annotation,
                                                                                  database_url=chosen)))
    mark_migrated(source, f"to {shown_url(target_url)} at {now_iso()}")  # the old copy can no longer be used
    log.info("annotation database migrated from %s to %s", shown_url(source_url), shown_url(target_url))
    return MigrationResult(shown_url(source_url), shown_url(target_url), {k: v[0] for k, v in after.items()})
