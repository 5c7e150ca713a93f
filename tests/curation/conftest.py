"""Fixtures of the curation tests: annotation databases on SQLite and on a real PostgreSQL server, and a
real PACS (Orthanc with its DICOMweb plugin, see :mod:`curation.pacs.local`).

The PostgreSQL server is Debian's (``.ci/run`` installs it): ``initdb`` into a temporary folder and
``pg_ctl start`` on 127.0.0.1 at a free port, once per test session (as the ``postgres`` user when
the tests run as root, which PostgreSQL refuses to run as); each test gets a database of its own.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from curation.pacs.local import LocalOrthanc, free_port, orthanc_installed


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """Base URL (without database) of a PostgreSQL server started for this session."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        pytest.fail("PostgreSQL server not installed (apt-get install postgresql); .ci/run installs it")
    bin_dir = Path(found[-1]).parent
    root = Path(tempfile.mkdtemp(prefix="ctcurate-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", free_port()
    subprocess.run([*as_user, str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "ctcurate",
                    "--no-sync"], check=True, capture_output=True)
    subprocess.run([*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-w", "-l", str(root / "server.log"),
                    "-o", f"-h 127.0.0.1 -p {port} -k {data} -F", "start"], check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg://ctcurate@127.0.0.1:{port}"
    finally:
        subprocess.run([*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty annotation database URL: SQLite in a temporary folder, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'annotations.sqlite'}"
    import sqlalchemy as sa

    base = request.getfixturevalue("postgres_server")
    name = f"t{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as db:
        db.execute(sa.text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return f"{base}/{name}"


@pytest.fixture(scope="session")
def orthanc(shared_data: Path) -> Iterator[LocalOrthanc]:
    """Debian's Orthanc with its DICOMweb plugin on free loopback ports with a temporary storage folder,
    loaded with every file of the shared data through the REST API (it refuses what is not DICOM)."""
    server = _orthanc()
    try:
        server.start().load(p for p in shared_data.rglob("*") if p.is_file())
        yield server
    finally:
        server.close()


def _orthanc(users: dict[str, str] | None = None, **options: Any) -> LocalOrthanc:
    if not orthanc_installed():
        pytest.fail("Orthanc with its DICOMweb plugin is not installed (apt-get install orthanc orthanc-dicomweb); "
                    ".ci/run installs them")
    return LocalOrthanc(users, **options)


@pytest.fixture
def make_orthanc() -> Iterator[Any]:
    """Start Orthancs of a test's own (``make_orthanc(users=..., check_called_aet=...)``); they are stopped and
    removed after it."""
    servers: list[LocalOrthanc] = []

    def make(users: dict[str, str] | None = None, **options: Any) -> LocalOrthanc:
        servers.append(_orthanc(users, **options).start())
        return servers[-1]

    yield make
    for server in servers:
        server.close()
