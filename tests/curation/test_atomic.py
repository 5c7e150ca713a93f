"""Atomic writes: temporaries named by the run that owns them and removed only once it has ended, volume errors
that name their file, files and folders that follow the umask, and helper processes that end with their parent."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from curation.atomic import (
    TMP_PREFIX,
    is_temporary,
    remove_stale_temporaries,
    temporary_name,
    writing_to,
)


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_only_temporaries_of_ended_runs_are_removed(tmp_path: Path) -> None:
    mine = tmp_path / temporary_name("meta.parquet")
    host = mine.name.split("-")[1]
    dead = tmp_path / "deep" / f"{TMP_PREFIX}{host}-{_dead_pid()}-0a0b0c0d-case.json"
    elsewhere = tmp_path / f"{TMP_PREFIX}ffffff-1-0a0b0c0d-split.json"  # another workstation's run
    unowned = tmp_path / f"{TMP_PREFIX}s0001.abc123"  # named before runs were
    sealed = tmp_path / "releases" / "1.0.0" / f"{TMP_PREFIX}{host}-{_dead_pid()}-0a0b0c0d-x"
    for path in (mine, dead, elsewhere, unowned, sealed):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("partial")
    assert all(is_temporary(p.name) for p in (mine, dead, elsewhere, unowned)) and not is_temporary("meta.parquet")
    assert remove_stale_temporaries(tmp_path) == [unowned]  # not recursive: this folder only
    removed = remove_stale_temporaries(tmp_path, recursive=True, skip=lambda p: p.name == "releases")
    assert removed == [dead]
    assert mine.exists() and elsewhere.exists() and sealed.exists()


def test_the_lock_holder_sweeps_what_a_killed_run_left(tmp_path: Path) -> None:
    from curation.workspace import Workspace, workspace_lock

    ws = Workspace.create(tmp_path / "ws")
    target = ws.meta_table
    script = textwrap.dedent(f"""
        import sys, time
        from curation.atomic import atomic_path
        with atomic_path({str(target)!r}) as tmp:
            tmp.write_text("half")
            print(tmp, flush=True)
            time.sleep(600)
    """)
    writer = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        partial = Path(writer.stdout.readline().strip())  # type: ignore[union-attr]
        with workspace_lock(ws, "ctcurate test"):
            assert partial.exists()  # its run still writes: not stale
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        assert partial.exists()  # nobody removes it but the next lock holder
        with workspace_lock(ws, "ctcurate test"):
            assert not partial.exists()
        assert not target.exists()
    finally:
        writer.kill()


def test_volume_errors_name_the_file_they_were_writing(tmp_path: Path) -> None:
    target = tmp_path / "tables" / "meta.parquet"
    with pytest.raises(OSError, match=f"No space left on device: '{target}'") as caught, writing_to(target):
        raise OSError(errno.ENOSPC, "No space left on device")
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(target)
    with pytest.raises(ValueError, match="not a volume error"), writing_to(target):
        raise ValueError("not a volume error")
    with pytest.raises(OSError, match="'/source/ct.nrrd'"), writing_to(target):  # no permission: may be the source
        raise OSError(errno.EACCES, "Permission denied", "/source/ct.nrrd")
    with pytest.raises(OSError, match=f"'{target}'"), writing_to(target):  # a full volume is the target's
        raise OSError(errno.ENOSPC, "No space left on device", "/source/ct.nrrd")


def test_files_and_folders_follow_the_umask(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import os
        from pathlib import Path
        from curation.atomic import atomic_directory, atomic_write_text, copy_file
        os.umask(0o002)
        root = Path({str(tmp_path)!r})
        with atomic_directory(root / "case") as tmp:
            (tmp / "inner").mkdir()
            atomic_write_text(tmp / "case.json", "{{}}")
        copy_file(root / "case" / "case.json", root / "copy.json")
    """)
    subprocess.run([sys.executable, "-c", script], check=True)
    modes = {p.name: p.stat().st_mode & 0o777 for p in tmp_path.rglob("*")}
    assert modes == {"case": 0o775, "inner": 0o775, "case.json": 0o664, "copy.json": 0o664}


def test_a_helper_process_ends_with_its_parent() -> None:
    script = textwrap.dedent("""
        import subprocess, sys, time
        from curation.lifetime import die_with_parent
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], preexec_fn=die_with_parent)
        print(child.pid, flush=True)
        time.sleep(600)
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())  # type: ignore[union-attr]
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        if Path(f"/proc/{child}/stat").read_text().split()[2] == "Z":
            break
        time.sleep(0.05)
    else:
        os.kill(child, signal.SIGKILL)
        pytest.fail("the child outlived its killed parent by 10 s")


def test_a_failed_write_leaves_no_folder_it_made(tmp_path: Path) -> None:
    from curation.atomic import atomic_directory, atomic_path

    target = tmp_path / "models" / "small2" / "v1.json"
    with pytest.raises(OSError, match=f"No space left on device: '{target}'"), atomic_path(target):
        raise OSError(errno.ENOSPC, "No space left on device")
    assert list(tmp_path.iterdir()) == []  # neither models/ nor models/small2/ stays behind
    with pytest.raises(OSError, match="Read-only file system: '.*releases/1.0.0'"), \
            atomic_directory(tmp_path / "releases" / "1.0.0"):
        raise OSError(errno.EROFS, "Read-only file system", "/ws/releases/.tmp-abc/s0001/ct.nrrd")
    assert list(tmp_path.iterdir()) == []
