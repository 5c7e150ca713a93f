"""Fixtures of the annotator tests: a private copy of the demo workspace (pre-segmented by the small model)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from curation import Workspace


@pytest.fixture()
def demo_ws(demo_run, tmp_path: Path) -> Workspace:
    """A copy of the demo workspace: three converted phantom cases, each with the small model's revision 0."""
    target = tmp_path / "demo_ws"
    shutil.copytree(demo_run.workspace, target)
    return Workspace.open(target)
