"""Whether the process that owns a lock or a temporary still runs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from curation.lifetime import pid_alive


def test_a_running_process_is_alive_and_an_ended_one_is_not() -> None:
    assert pid_alive(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not pid_alive(child.pid)


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="process states come from /proc (Linux)")
def test_a_zombie_counts_as_ended() -> None:
    """A process killed a moment ago may wait as a zombie until its parent collects it; its temporaries are stale
    (a rerun right after a kill -9 must clean them up)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    stat = Path(f"/proc/{child.pid}/stat")
    deadline = time.monotonic() + 30
    while stat.read_text().rpartition(")")[2].split()[0] != "Z":  # ended, not yet collected by us
        assert time.monotonic() < deadline, "the child did not end"
        time.sleep(0.01)
    try:
        os.kill(child.pid, 0)  # the kernel still knows the pid
        assert not pid_alive(child.pid)
    finally:
        child.wait()
