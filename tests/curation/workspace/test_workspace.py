from pathlib import Path

import pytest

from curation.errors import WorkspaceError
from curation.workspace.layout import Workspace


def test_create_and_open(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "ws")
    assert ws.settings_path.is_file()
    assert len(ws.secret) == 32
    assert (ws.secret_path.stat().st_mode & 0o777) == 0o600
    assert Workspace.open(tmp_path / "ws").root == ws.root
    assert ws.ct_name() == "ct.nrrd" and ws.ct_name(1.5) == "ct_1.5mm.nrrd" and ws.ct_name(3.0) == "ct_3mm.nrrd"


def test_create_twice_refused(tmp_path: Path) -> None:
    Workspace.create(tmp_path / "ws")
    with pytest.raises(WorkspaceError, match="a workspace already exists here"):
        Workspace.create(tmp_path / "ws")


def test_open_missing(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="workspace folder not found"):
        Workspace.open(tmp_path / "nothing")
    (tmp_path / "notes.md").write_text("")
    with pytest.raises(WorkspaceError, match=r"notes.md: a file, not a workspace folder; pass the folder 'ctcurate "
                                             r"init' made \(-w WS\)"):
        Workspace.open(tmp_path / "notes.md")


def test_open_not_a_workspace(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="not a ctcurate workspace"):
        Workspace.open(tmp_path)


def test_require_names_step(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "ws")
    with pytest.raises(WorkspaceError, match="run 'ctcurate scan'"):
        ws.require(ws.series_table, "scan")


def test_missing_secret(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "ws")
    ws.secret_path.unlink()
    with pytest.raises(WorkspaceError, match="secret key missing"):
        _ = ws.secret
