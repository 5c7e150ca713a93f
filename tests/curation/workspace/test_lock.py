"""The workspace lock across workstations: with the annotation database on PostgreSQL, a writing command also
holds the database's advisory lock, so a second workstation (whose flock the first cannot see) is refused with
the holder named, may wait, and gets the lock the moment the holder is killed."""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from curation.errors import WorkspaceBusyError, WorkspaceError
from curation.workspace import Workspace, workspace_lock
from curation.workspace.settings import AnnotationSettings
from tests.faults import held_elsewhere


def _on_database(ws: Workspace, url: str) -> Workspace:
    ws.save_settings(dataclasses.replace(ws.settings, annotation=AnnotationSettings(database_url=url)))
    return ws


@pytest.fixture()
def two_workstations(postgres_server: str, tmp_path: Path) -> tuple[Workspace, Workspace]:
    """One workspace as two workstations see it: the same files (copied, so that their flocks do not meet, as on
    a network file system) and the same PostgreSQL database."""
    import sqlalchemy as sa

    name = f"l{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(f"{postgres_server}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as db:
        db.execute(sa.text(f"CREATE DATABASE {name}"))
    admin.dispose()
    first = _on_database(Workspace.create(tmp_path / "a" / "ws"), f"{postgres_server}/{name}")
    second = Workspace.open(shutil.copytree(first.root, tmp_path / "b" / "ws"))
    return first, second


def test_a_second_workstation_is_refused_naming_the_holder(two_workstations: tuple[Workspace, Workspace]) -> None:
    first, second = two_workstations
    with held_elsewhere(first, "ctcurate convert"), \
            pytest.raises(WorkspaceBusyError, match=f"busy: 'ctcurate convert' \\(pid {os.getpid()} on "
                                                    f"{socket.gethostname()[:20]}, since .*\\) is writing"), \
            workspace_lock(second, "ctcurate split"):
        pass
    started = time.monotonic()
    with held_elsewhere(first, "ctcurate convert", release_after_s=0.5), \
            workspace_lock(second, "ctcurate split", wait=True):
        assert time.monotonic() - started >= 0.4  # it waited for the other workstation


def test_a_killed_holder_frees_the_database_lock(two_workstations: tuple[Workspace, Workspace]) -> None:
    first, second = two_workstations
    script = textwrap.dedent(f"""
        import time
        from curation.workspace import Workspace, workspace_lock
        with workspace_lock(Workspace.open({str(first.root)!r}), "ctcurate release"):
            print("held", flush=True)
            time.sleep(600)
    """)
    holder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(WorkspaceBusyError, match="busy: 'ctcurate release'"), workspace_lock(second, "x"):
            pass
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        deadline = time.monotonic() + 10  # the server notices the closed connection at once
        while True:
            try:
                with workspace_lock(second, "ctcurate split"):
                    break
            except WorkspaceBusyError:
                assert time.monotonic() < deadline, "the killed holder's database lock was not freed"
                time.sleep(0.1)
    finally:
        holder.kill()


def test_an_unreachable_database_is_named(tmp_path: Path) -> None:
    ws = _on_database(Workspace.create(tmp_path / "ws"), "postgresql://nobody@127.0.0.1:1/none")
    with pytest.raises(WorkspaceError, match="postgresql\\+psycopg://nobody@127.0.0.1:1/none: cannot connect to "
                                             "take the workspace lock .*; check the server and \\[annotation\\] "
                                             "database_url"), workspace_lock(ws, "ctcurate convert"):
        pass
    assert ws.lock_file.read_text() == ""  # nothing held, nobody named


def test_a_folder_in_place_of_the_lock_file_is_named(tmp_path: Path) -> None:
    """It reached the user as 'unexpected IsADirectoryError'."""
    ws = Workspace.create(tmp_path / "ws")
    ws.lock_file.mkdir()
    expected = (rf"{ws.lock_file.name}: a folder where the workspace's lock file belongs; remove it \(no command "
                r"holds a lock through it\) and run again")
    with pytest.raises(WorkspaceError, match=expected), workspace_lock(ws, "ctcurate sample"):
        pass
