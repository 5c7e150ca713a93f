"""Every writing command on a read-only workspace and on a full disk: one line naming the file and what to do, exit
code 2, and the workspace exactly as it was. Real volumes, not mocks: each workspace lies on a small tmpfs the
test mounts (as root, as CI runs), remounted read-only, or filled to the last byte."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults import REPO, differences, tree

from .conftest import WRITING, Writing


@contextlib.contextmanager
def tmpfs(mountpoint: Path, size_mb: int) -> Iterator[Path]:
    mountpoint.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0755", "tmpfs", str(mountpoint)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs at {mountpoint} ({done.stderr.strip()}); these tests run as root, as CI "
                    "does")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def _fill(volume: Path) -> Path:
    """Fill ``volume`` to the last byte; return the filler file."""
    filler = volume / "filler"
    block = b"\0" * (1 << 20)
    with filler.open("wb", buffering=0) as handle:
        for size in (1 << 20, 1 << 12, 1):
            while True:
                try:
                    handle.write(block[:size])
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC
                    break
    return filler


def _run(args: list[str]) -> tuple[int, str]:
    done = subprocess.run([sys.executable, "-m", "ctcurate.cli", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=600)
    return done.returncode, done.stdout + done.stderr


def _size_mb(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) // 2**20 + 1


def _one_line(output: str) -> str:
    assert "Traceback" not in output, output[-2000:]
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, output[-2000:]
    return " ".join(output[output.index("error:"):].split())


_EXPECTED = {
    "read-only": "cannot write {volume}/.*: a read-only file system; give this user write access to the workspace "
                 "\\(or copy it somewhere writable\\), then run the same command again",
    "full": "no space left on the device while writing {volume}/.* \\(the volume {volume}\\); free space there, "
            "then run the same command again",
}


@pytest.mark.parametrize("fault", list(_EXPECTED))
@pytest.mark.parametrize("command", WRITING, ids=str)
def test_a_read_only_or_full_volume(command: Writing, fault: str, released_demo: Path, tmp_path: Path) -> None:
    with tmpfs(tmp_path / "volume", _size_mb(released_demo) + 16) as volume:
        ws = volume / "ws"
        shutil.copytree(released_demo, ws)
        before = tree(ws)
        if fault == "full":
            _fill(volume)
        else:
            subprocess.run(["mount", "-o", "remount,ro", str(volume)], check=True)
        code, output = _run(command.args(ws, volume))
        if command.name == "split-freeze" and fault == "full":  # the split is frozen already: nothing to write
            assert code == 0 and output.strip() == "split 1.0.0 frozen" and differences(tree(ws), before) == []
            return
        line = _one_line(output)
        assert code == 2, output[-1000:]
        assert re.search(_EXPECTED[fault].format(volume=re.escape(str(volume))), line), line
        assert differences(tree(ws), before) == []


def test_convert_on_a_full_disk_names_the_workspace_volume_not_the_dicom(demo_export: Path, tmp_path: Path) -> None:
    from curation.catalog.scan import scan
    from curation.selection.filter import run_filter
    from curation.selection.sample import sample
    from curation.workspace import Workspace
    from curation.workspace.executor import SerialExecutor

    with tmpfs(tmp_path / "volume", 64) as volume:
        ws = Workspace.create(volume / "ws")
        scan(ws, [demo_export], executor=SerialExecutor())
        sample(ws, n=0, seed=11)
        run_filter(ws)
        filler = _fill(volume)
        os.truncate(filler, filler.stat().st_size - 256 * 2**10)  # room for the tables, not for a case
        code, output = _run(["convert", "-w", str(ws.root), "--workers", "2"])
        line = _one_line(output)
        assert code == 2 and f"no space left on the device while writing {ws.cases_dir}/s000" in line, line
        assert f"(the volume {volume})" in line and str(demo_export) not in line
        assert not list(ws.cases_dir.glob("s*/ct.nrrd")) or all(
            (p.parent / "case.json").is_file() for p in ws.cases_dir.glob("s*/ct.nrrd"))


def test_qa_meta_on_a_full_disk_leaves_great_expectations_whole(released_demo: Path, tmp_path: Path) -> None:
    """Great Expectations rewrites its files in place: on a full disk half-way through, its folder must stay as it
    was (qa meta works on a copy), and freeing space is all a rerun needs."""
    with tmpfs(tmp_path / "volume", _size_mb(released_demo) + 16) as volume:
        ws = volume / "ws"
        shutil.copytree(released_demo, ws)
        gx = ws / "qa" / "gx"
        before = {p: p.read_bytes() for p in gx.rglob("*") if p.is_file()}
        filler = _fill(volume)
        os.truncate(filler, filler.stat().st_size - 2**20)  # room to start, not to finish
        code, output = _run(["qa", "meta", str(ws)])
        line = _one_line(output)
        assert code == 2 and f"no space left on the device while writing {gx}" in line, line
        assert {p: p.read_bytes() for p in gx.rglob("*") if p.is_file()} == before
        filler.unlink()
        code, output = _run(["qa", "meta", str(ws)])
        assert code in (0, 1) and "Data Docs:" in output, output[-1000:]  # 1: an expectation failed (demo lungs)
        (gx / "great_expectations.yml").write_text("config_version: [unclosed")
        code, output = _run(["qa", "meta", str(ws)])
        line = _one_line(output)
        assert code == 2 and f"{gx}: the Great Expectations folder cannot be read" in line and \
            "move it aside and run 'ctcurate qa meta' again" in line, line
