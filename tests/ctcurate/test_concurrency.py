"""Two runs of each writing command at once: the first holds the workspace lock; a second one is refused with one
line naming the holder and changes nothing; a third, with --wait, runs once the first has finished; together
they leave exactly what the two runs one after the other leave (nothing lost).

The first run is held at a barrier right after it took the lock (see ``tests/faults.py``), so the race is the
same every time.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.faults import REPO, differences, start_paused, tree

from .conftest import WRITING, Writing


def _run(args: list[str]) -> tuple[int, str]:
    done = subprocess.run([sys.executable, "-m", "ctcurate.cli", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=600)
    return done.returncode, done.stdout + done.stderr


@pytest.mark.parametrize("command", WRITING, ids=str)
def test_two_runs_at_once_are_one_after_the_other(command: Writing, released_demo: Path, tmp_path: Path) -> None:
    sequential = tmp_path / "sequential" / "ws"
    shutil.copytree(released_demo, sequential)
    args = command.args(sequential, sequential.parent)  # once: the first run may change what they would be
    first, second = _run(args), _run(args)
    assert first[0] in (0, 1), f"{command}: {first[1][-1000:]}"

    racing = tmp_path / "racing" / "ws"
    shutil.copytree(released_demo, racing)
    args = command.args(racing, racing.parent)
    holder = start_paused(racing, args)
    try:
        before = tree(racing)
        code, output = _run(args)
        line = " ".join(output.split())
        assert code == 2, line
        assert "is writing to this workspace; run again when it has finished, or wait for it: 'ctcurate --wait" in line
        assert f"busy: '{command.command}' (pid {holder.process.pid} on " in line
        assert "Traceback" not in output
        assert differences(tree(racing), before) == []
        waiter = subprocess.Popen([sys.executable, "-m", "ctcurate.cli", "--wait", *args], cwd=REPO,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    finally:
        held = holder.release()
    waited = waiter.communicate(timeout=600)[0]
    assert (held[0], waiter.returncode) == (first[0], second[0]), f"{command}: {held[1][-800:]}\n{waited[-800:]}"
    ignored = {"raw"}  # the nnU-Net export folder sits beside the workspace, not in it
    deposition = {k for k in tree(racing) | tree(sequential) if k.endswith(".zenodo.json")}  # ids on the server
    assert differences(tree(racing), tree(sequential)) == sorted(deposition), command
    assert not [p for p in racing.parent.iterdir() if p.name not in ignored | {"ws"} and not p.name.startswith(".")]
