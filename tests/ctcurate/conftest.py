"""Fixtures of the command-line tests: the released demo workspace, and every command that writes to a
workspace with arguments that work on it (the concurrency and disk-fault tests run each of them)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


@dataclass(frozen=True)
class Writing:
    """A writing command: its name and its arguments for a workspace (with the test's scratch folder)."""

    name: str
    args: Callable[[Path, Path], list[str]]

    def __str__(self) -> str:
        return self.name

    @property
    def command(self) -> str:
        """The command as the lock names its holder, e.g. 'ctcurate qa labels'."""
        return "ctcurate " + self.name.replace("-", " ")


# every command decorated with @writes, run so that it does real work on the released demo workspace
WRITING = [
    Writing("scan", lambda ws, tmp: ["scan", "-w", str(ws), "--workers", "1", "--full"]),
    Writing("sample", lambda ws, tmp: ["sample", "-w", str(ws), "--n", "2", "--seed", "5"]),
    Writing("filter", lambda ws, tmp: ["filter", "-w", str(ws)]),
    Writing("convert", lambda ws, tmp: ["convert", "-w", str(ws), "--workers", "1"]),
    Writing("presegment", lambda ws, tmp: ["presegment", "small", "-w", str(ws), "--workers", "1"]),
    Writing("phase", lambda ws, tmp: ["phase", "-w", str(ws)]),
    Writing("annotate-import", lambda ws, tmp: ["annotate", "import", "-w", str(ws), "--case", "s0001", "--file",
                                                str(ws / "releasable/cases/s0001/revisions/r0000.seg.nrrd")]),
    Writing("model-add", lambda ws, tmp: ["model", "add", "again", str(_small_model()), "-w", str(ws)]),
    Writing("qa-labels", lambda ws, tmp: ["qa", "labels", str(ws), "--workers", "1"]),
    Writing("qa-meta", lambda ws, tmp: ["qa", "meta", str(ws)]),
    Writing("qa-report", lambda ws, tmp: ["qa", "report", str(ws)]),
    Writing("review", lambda ws, tmp: ["review", "s0001", "approved", "--by", "Dr Second", "-w", str(ws)]),
    Writing("export-nnunet", lambda ws, tmp: ["export", "nnunet", str(tmp / "raw"), "-w", str(ws), "--status",
                                              "unreviewed"]),
    Writing("split", lambda ws, tmp: ["split", "-w", str(ws), "--version", "1.1.0"]),  # unchanged: saved by number
    Writing("split-freeze", lambda ws, tmp: ["split", "freeze", "1.0.0", "-w", str(ws)]),
    Writing("datasheet", lambda ws, tmp: ["datasheet", "-w", str(ws)]),
    Writing("release", lambda ws, tmp: ["release", "1.1.0", "-w", str(ws), "--force-qa"]),
    Writing("publish", lambda ws, tmp: ["publish", "1.0.0", "-w", str(ws), "--zenodo", *_zenodo()]),
    Writing("sources", lambda ws, tmp: ["sources", "-w", str(ws), "--remove", _first_source(ws)]),
]
_ZENODO: list[Any] = []


def _zenodo() -> list[str]:
    """The options that point 'publish' at this test session's local Zenodo server (started on first use)."""
    from tests.datacard.fake_zenodo import FakeZenodo

    if not _ZENODO:
        _ZENODO.append(FakeZenodo())
    token = Path(tempfile.gettempdir()) / f"ctcurate-test-token-{os.getpid()}"
    token.write_text(_ZENODO[0].token)
    return ["--url", _ZENODO[0].url, "--token-file", str(token)]


def _first_source(ws: Path) -> str:
    from curation.catalog.sources import source_states
    from curation.workspace import Workspace

    return source_states(Workspace.open(ws))[0].path


def _small_model() -> Path:
    from annotator.small_model import SMALL_MODEL_FOLDER

    return SMALL_MODEL_FOLDER


@pytest.fixture(scope="session")
def released_demo(demo_run, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo workspace with its split 1.0.0 and release 1.0.0 (a copy; the demo's own stays as it was)."""
    from ctcurate.demo import run_demo_release

    root = tmp_path_factory.mktemp("released_demo") / "workspace"
    shutil.copytree(demo_run.workspace, root)
    run_demo_release(root)
    return root
