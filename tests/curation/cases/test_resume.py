"""Acceptance 6: killing convert mid-run and rerunning gives the same outputs as an uninterrupted run."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from curation.atomic import TMP_PREFIX
from curation.cases.convert import convert
from curation.workspace.executor import SerialExecutor


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_kill_and_rerun(demo_export: Path, filtered_workspace, tmp_path: Path) -> None:
    reference = filtered_workspace(demo_export, "reference")
    pristine = tmp_path / "pristine"
    shutil.copytree(reference.root, pristine)
    convert(reference, executor=SerialExecutor())
    from curation.workspace.layout import Workspace

    killed_root = tmp_path / "killed"
    saw_partial = False
    for _ in range(5):  # the kill must land inside a case; on a busy machine a try can miss the window
        shutil.rmtree(killed_root, ignore_errors=True)
        shutil.copytree(pristine, killed_root)
        killed = Workspace.open(killed_root)
        proc = subprocess.Popen([sys.executable, "-m", "ctcurate.cli", "convert", "-w", str(killed_root),
                                 "--workers", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            finished = [p for p in killed.cases_dir.glob("*/case.json") if not p.parent.name.startswith(TMP_PREFIX)]
            partial = [p for p in killed.cases_dir.iterdir() if p.name.startswith(TMP_PREFIX)]
            if finished and partial:
                saw_partial = True
                os.kill(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.001)
        proc.wait(timeout=30)
        if saw_partial:
            break
    assert saw_partial, "convert finished before it could be killed mid-case"
    visible = [p.name for p in killed.cases_dir.iterdir() if not p.name.startswith(TMP_PREFIX)]
    for name in visible:  # every visible case is complete
        assert (killed.cases_dir / name / "case.json").is_file()
    result = convert(killed, executor=SerialExecutor())
    assert result.skipped and result.converted
    assert not [p for p in killed.releasable.rglob("*") if p.name.startswith(TMP_PREFIX)]
    assert _tree(killed.releasable) == _tree(reference.releasable)
