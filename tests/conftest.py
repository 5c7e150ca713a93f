"""Shared fixtures. The real third-party data is read from one place: ``--shared-data``, else the
``CTCURATE_SHARED_DATA`` environment variable, else ``../shared/data`` beside the repository."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--shared-data", default=None, help="folder of the shared real test data")


@pytest.fixture(scope="session")
def shared_data(request: pytest.FixtureRequest) -> Path:
    option = request.config.getoption("--shared-data")
    path = Path(option or os.environ.get("CTCURATE_SHARED_DATA") or REPO.parent / "shared" / "data")
    if not (path / "MANIFEST_series.json").is_file():
        pytest.fail(f"shared data not found at {path}: pass --shared-data or set CTCURATE_SHARED_DATA")
    return path


@pytest.fixture(scope="session")
def ts(shared_data: Path) -> Path:
    """The real TotalSegmentator CT and label maps of the shared data."""
    return shared_data / "totalsegmentator"


@pytest.fixture(scope="session")
def demo_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ctcurate.demo import build_demo_export

    return build_demo_export(tmp_path_factory.mktemp("demo") / "export")


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory):
    """The whole demo (export, curation, demo labels, pre-segmentation, QA) run once; its :class:`DemoResult`."""
    from ctcurate.demo import run_demo, run_demo_presegment, run_demo_qa

    result = run_demo(tmp_path_factory.mktemp("demo_run"), workers=1)
    run_demo_presegment(result.workspace)
    run_demo_qa(result.workspace)
    return result


@pytest.fixture()
def copy_series(tmp_path: Path, shared_data: Path):
    """Copy one real series folder (relative to the shared data) into a fresh export folder."""

    def _copy(relative: str, name: str = "export") -> Path:
        target = tmp_path / name / Path(relative).name
        shutil.copytree(shared_data / relative, target)
        for path in target.rglob("*"):
            path.chmod(0o644 if path.is_file() else 0o755)
        target.chmod(0o755)
        return target.parent

    return _copy


@pytest.fixture()
def filtered_workspace(tmp_path: Path):
    """Make a workspace from an export folder with scan, sample (all exams) and filter done."""
    from curation.catalog.scan import scan
    from curation.selection.filter import run_filter
    from curation.selection.sample import sample
    from curation.workspace.executor import SerialExecutor
    from curation.workspace.layout import Workspace

    def _make(export: Path, name: str = "ws"):
        ws = Workspace.create(tmp_path / name)
        scan(ws, [export], executor=SerialExecutor())
        sample(ws, n=0, seed=11)
        run_filter(ws)
        return ws

    return _make


_REVISION_FILES: dict[Path, str] = {}


@pytest.fixture(scope="session", autouse=True)
def revision_files_never_change():
    """Every revision file written in this session is hashed when written and again at the end: none may change
    (a revision file is never replaced). Tests that damage one on purpose say so with ``damaged_revision``."""
    from curation.annotation import revisions
    from curation.atomic import sha256_file

    original = revisions.RevisionStore.add

    def add(self, case_id, *args, **kwargs):
        made = original(self, case_id, *args, **kwargs)
        for name in made.files.values():
            _REVISION_FILES[self.folder(case_id) / name] = sha256_file(self.folder(case_id) / name)
        return made

    revisions.RevisionStore.add = add
    yield _REVISION_FILES
    revisions.RevisionStore.add = original
    changed = sorted(str(p) for p, digest in _REVISION_FILES.items() if p.is_file() and sha256_file(p) != digest)
    assert changed == [], f"revision files changed after they were written: {changed}"


@pytest.fixture()
def damaged_revision():
    """Call with a revision file's path before damaging it on purpose (the session's check then skips it)."""
    return lambda path: _REVISION_FILES.pop(Path(path), None)
