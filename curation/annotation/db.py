"""The annotation database: one SQLAlchemy engine per URL, the shared schema, and the network-share guard.

Revisions, reviews, case status, claims and per-structure review states live in one database:
SQLite in the workspace by default (``WS/annotations.sqlite``), or PostgreSQL when annotators work
at several workstations (``[annotation] database_url`` in the settings). SQLite's file locks cannot
be trusted on a network file system, so a workspace whose SQLite file would sit on NFS, SMB/CIFS and
the like is refused with a message that points to PostgreSQL. Times are stored as UTC ISO strings of
one fixed width, so they compare as text in either database.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from curation.errors import WorkspaceError
from curation.workspace.layout import Workspace
from curation.workspace.settings import database_driver

__all__ = ["METADATA", "NETWORK_FILESYSTEMS", "database_url", "engine_for", "ensure_tables", "filesystem_type",
           "has_annotation_database", "mark_migrated", "now_iso", "refuse_if_migrated", "shown_url", "store_id",
           "store_value"]

METADATA = sa.MetaData()
NETWORK_FILESYSTEMS = frozenset({"nfs", "nfs4", "cifs", "smb3", "smbfs", "fuse.sshfs", "9p", "ceph", "glusterfs",
                                 "fuse.glusterfs", "afs", "lustre", "gpfs", "beegfs", "fuse.s3fs", "davfs",
                                 "fuse.rclone"})
_ENGINES: dict[tuple[str, int], sa.Engine] = {}
_STORE = sa.Table(
    "store", METADATA,
    sa.Column("key", sa.String(32), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)
MOUNTS = Path("/proc/mounts")


def now_iso() -> str:
    """Now, as a fixed-width UTC ISO string (microseconds), so that times sort as text."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def filesystem_type(path: str | Path, mounts: Path = MOUNTS) -> str:
    """File system type of the mount holding ``path`` (``unknown`` where the mount table cannot be read)."""
    try:
        lines = mounts.read_text().splitlines()
    except OSError:
        return "unknown"
    target = os.path.realpath(path)
    best, kind = "", "unknown"
    for line in lines:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) > len(best):
            best, kind = point, fields[2]
    return kind


def database_url(ws: Workspace, override: str | None = None) -> str:
    """The workspace's annotation database URL: ``override``, else the settings, else SQLite in the workspace."""
    url = override or ws.settings.annotation.database_url
    return url or f"sqlite:///{ws.database_file}"


def has_annotation_database(ws: Workspace) -> bool:
    """Whether the workspace has an annotation database (a URL in the settings, or the SQLite file)."""
    return bool(ws.settings.annotation.database_url) or ws.database_file.is_file()


def engine_for(url: str, *, mounts: Path = MOUNTS) -> sa.Engine:
    """One engine per URL and process, with every table of :data:`METADATA` created."""
    url = database_driver(url)
    key = (url, os.getpid())
    if key not in _ENGINES:
        if url.startswith("sqlite:///"):
            path = Path(url.removeprefix("sqlite:///"))
            kind = filesystem_type(path.parent, mounts)
            if kind in NETWORK_FILESYSTEMS:
                raise WorkspaceError(f"{path}: the annotation database would be SQLite on a network file system "
                                     f"({kind}), whose locks cannot be trusted; set [annotation] database_url to a "
                                     "PostgreSQL server (postgresql+psycopg://USER@HOST/DB) for annotators who "
                                     "share a workspace")
            engine = sa.create_engine(url, connect_args={"timeout": 60})
        else:
            engine = sa.create_engine(url, pool_pre_ping=True)
        try:
            ensure_tables(engine)
        except sa.exc.OperationalError as exc:
            raise WorkspaceError(f"annotation database {engine.url.render_as_string(hide_password=True)}: cannot "
                                 f"connect ({str(exc.orig).strip().splitlines()[0]}); check the server and "
                                 "[annotation] database_url") from None
        _ENGINES[key] = engine
    return _ENGINES[key]


def store_value(engine: sa.Engine, key: str) -> str | None:
    """One entry of the store table (``store_id``, ``migrated_to``), None when it is not set."""
    with engine.connect() as db:
        found = db.execute(sa.select(_STORE.c.value).where(_STORE.c.key == key)).scalar()
    return None if found is None else str(found)


def shown_url(url: str | sa.URL) -> str:
    """A database URL fit to print: the password hidden."""
    return sa.make_url(url).render_as_string(hide_password=True)


def refuse_if_migrated(engine: sa.Engine) -> None:
    """A database whose record 'annotate db migrate' moved elsewhere is stale: refuse it, naming where it went."""
    moved = store_value(engine, "migrated_to")
    if moved:
        raise WorkspaceError(f"annotation database {shown_url(engine.url)}: its record was moved by 'ctcurate annotate "
                             f"db migrate' ({moved}); set [annotation] database_url to that database")


def mark_migrated(engine: sa.Engine, note: str) -> None:
    with engine.begin() as db:
        db.execute(_STORE.delete().where(_STORE.c.key == "migrated_to"))
        db.execute(_STORE.insert().values(key="migrated_to", value=note))


def store_id(engine: sa.Engine) -> str:
    """The identity of an annotation database, made once; every revision file it writes carries it, so files
    of another database (a switched ``database_url``) are told from those of an interrupted write."""
    select = sa.select(_STORE.c.value).where(_STORE.c.key == "store_id")
    found = store_value(engine, "store_id")
    if found is not None:
        return found
    try:
        with engine.begin() as db:
            db.execute(_STORE.insert().values(key="store_id", value=uuid.uuid4().hex))
    except sa.exc.IntegrityError:  # another client made it first
        pass
    with engine.begin() as db:
        return str(db.execute(select).scalar_one())


def ensure_tables(engine: sa.Engine) -> None:
    """Create the tables of :data:`METADATA` that do not exist yet (two clients may race to do it)."""
    for attempt in range(3):
        try:
            METADATA.create_all(engine)
            return
        except (sa.exc.ProgrammingError, sa.exc.IntegrityError):  # the other client created it first
            if attempt == 2:
                raise
