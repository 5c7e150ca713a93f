"""Fault injection: run a ctcurate command in a child process and kill it with SIGKILL at a chosen moment.

A moment is deterministic, not a time:

- ``Moment.event(n)``: the child kills itself at its n-th file event inside the workspace (an ``open``, rename,
  link, remove, mkdir or rmdir seen by a Python audit hook in the command's own process);
- ``Moment.after(suffix, n)``: the n-th such event after a file ending in ``suffix`` was opened for writing (e.g.
  inside the writing of a zip part);
- ``Moment.workers(n)``: the test kills the command once ``n`` pool workers run (descendants below its children:
  the pool's fork server starts them);
- ``Moment.appears(pattern)``: the test kills the command once a path matching the glob ``pattern`` exists in
  the workspace (e.g. a worker's half-written case folder).

:func:`start_paused` runs a command that stops right after it took the workspace lock, until the test lets it
go: the barrier the concurrency tests use.

Run as ``python -m tests.faults ROOT SPEC COUNT_FILE -- ctcurate-args...`` it is the child: it installs the hook
and runs the command line (``SPEC`` ``-`` only counts events, into ``COUNT_FILE``).
"""

from __future__ import annotations

import atexit
import contextlib
import fnmatch
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[1]
_EVENTS = {"open", "os.rename", "os.replace", "os.link", "os.remove", "os.unlink", "os.mkdir", "os.rmdir",
           "shutil.rmtree", "os.truncate"}
_CLOCK = {"created", "started", "ended", "time", "active_seconds", "since"}  # database columns that hold times
_IGNORED = {"logs", "ctcurate.lock"}
_VOLATILE = ("qa/gx/",)  # Great Expectations stamps its own run ids and times into every file it writes
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


@dataclass(frozen=True)
class Moment:
    kind: str
    value: Any = None
    count: int = 1

    @classmethod
    def event(cls, n: int) -> Moment:
        return cls("event", None, n)

    @classmethod
    def after(cls, suffix: str, n: int) -> Moment:
        return cls("after", suffix, n)

    @classmethod
    def workers(cls, n: int) -> Moment:
        return cls("workers", None, n)

    @classmethod
    def appears(cls, pattern: str) -> Moment:
        return cls("appears", pattern)

    def spec(self) -> str:
        return json.dumps([self.kind, self.value, self.count]) if self.kind in ("event", "after") else "-"

    def __str__(self) -> str:
        return f"{self.kind}({self.value if self.value is not None else ''}{',' if self.value else ''}{self.count})"


@dataclass
class KilledRun:
    killed: bool  # False when the command ended before the moment came
    returncode: int
    descendants: set[int]  # every process of the run seen while it ran
    alive_after: list[str]  # those still alive 10 s after the kill (name and pid)


@contextlib.contextmanager
def held_elsewhere(ws: Any, command: str, *, release_after_s: float | None = None) -> Iterator[None]:
    """Hold the workspace lock in another thread (within one thread it is re-entrant) while the block runs, or
    until ``release_after_s`` seconds have passed."""
    from curation.workspace import workspace_lock

    held, done = threading.Event(), threading.Event()

    def hold() -> None:
        with workspace_lock(ws, command):
            held.set()
            done.wait(release_after_s if release_after_s is not None else 120)

    thread = threading.Thread(target=hold)
    thread.start()
    assert held.wait(30), "the lock was not taken"
    try:
        yield
    finally:
        done.set()
        thread.join()


def _database_rows(path: Path) -> str:
    connection = sqlite3.connect(path)
    try:
        out = []
        for (table,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"):
            cursor = connection.execute(f'SELECT * FROM "{table}"')
            names = [d[0] for d in cursor.description]
            rows = sorted(json.dumps({k: v for k, v in zip(names, row, strict=True) if k not in _CLOCK}, sort_keys=True)
                          for row in cursor)
            out.append(f"{table}: {rows}")
        return "\n".join(out)
    finally:
        connection.close()


def _without_clock(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_clock(v) for k, v in value.items() if k not in _CLOCK}
    if isinstance(value, list):
        return [_without_clock(v) for v in value]
    return value


def tree(root: Path) -> dict[str, str]:
    """sha256 of every file of a workspace but its logs, lock and Great Expectations folder (the database: of its
    rows, JSON files: of their content, without the fields that hold clock times, HTML pages: without the workspace's
    own path), to compare what runs left."""
    out = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if not path.is_file() or relative.split("/")[0] in _IGNORED or relative.endswith("-journal"):
            continue
        if relative.startswith(_VOLATILE):
            continue
        if path.suffix == ".sqlite":
            data = _database_rows(path).encode()
        elif path.suffix == ".json":
            data = json.dumps(_without_clock(json.loads(path.read_bytes())), sort_keys=True).encode()
        elif path.suffix == ".html":  # pages name their workspace (the command that opens a case there)
            data = path.read_bytes().replace(str(root.resolve()).encode(), b"<workspace>")
        else:
            data = path.read_bytes()
        out[relative] = hashlib.sha256(data).hexdigest()
    return out


def differences(a: dict[str, str], b: dict[str, str]) -> list[str]:
    """The paths whose digests differ between two :func:`tree` results (or that only one has)."""
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def _tree_pids(pid: int) -> set[int]:
    try:
        return {p.pid for p in psutil.Process(pid).children(recursive=True)}
    except psutil.Error:
        return set()


def _child_pids(pid: int) -> set[int]:
    try:
        return {p.pid for p in psutil.Process(pid).children()}
    except psutil.Error:
        return set()


def _alive(pids: set[int]) -> list[str]:
    out = []
    for pid in sorted(pids):
        try:
            proc = psutil.Process(pid)
            if proc.status() != psutil.STATUS_ZOMBIE:
                out.append(f"{proc.name()} ({pid})")
        except psutil.Error:
            continue
    return out


def _command(root: Path, spec: str, count_file: Path, args: list[str]) -> list[str]:
    return [sys.executable, "-m", "tests.faults", str(root), spec, str(count_file), "--", *args]


def count_events(root: Path, args: list[str], count_file: Path, timeout_s: float = 600) -> tuple[int, int]:
    """Run the command to its end, counting its file events in the workspace; (events, exit code)."""
    done = subprocess.run(_command(root, "-", count_file, args), cwd=REPO, capture_output=True, text=True,
                          timeout=timeout_s)
    return int(count_file.read_text()), done.returncode


def run_and_kill(root: Path, args: list[str], moment: Moment, timeout_s: float = 600) -> KilledRun:
    """Run the command and kill -9 it at ``moment``; then wait up to 10 s for every process of the run to end."""
    count_file = root.parent / f".{root.name}.events"
    proc = subprocess.Popen(_command(root, moment.spec(), count_file, args), cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    seen: set[int] = set()
    deadline = time.monotonic() + timeout_s
    killed = False
    while proc.poll() is None and time.monotonic() < deadline:
        seen |= _tree_pids(proc.pid)
        if moment.kind == "workers":
            killed = len(_alive(_tree_pids(proc.pid) - _child_pids(proc.pid))) >= moment.count
        elif moment.kind == "appears":
            killed = any(fnmatch.fnmatch(p.relative_to(root).as_posix(), moment.value) for p in root.rglob("*"))
        if killed:
            seen |= _tree_pids(proc.pid)
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.005)
    proc.wait(timeout=60)
    killed = killed or proc.returncode == -signal.SIGKILL
    end = time.monotonic() + 10
    while _alive(seen) and time.monotonic() < end:
        time.sleep(0.1)
    return KilledRun(killed, proc.returncode, seen, _alive(seen))


@dataclass
class PausedRun:
    """A command held right after it took the workspace lock; :meth:`release` lets it go on."""

    process: subprocess.Popen[str]
    go: Path

    def release(self, timeout_s: float = 600) -> tuple[int, str]:
        self.go.touch()
        out, err = self.process.communicate(timeout=timeout_s)
        return self.process.returncode, out + err


def start_paused(root: Path, args: list[str], timeout_s: float = 120) -> PausedRun:
    """Start a command and return once it holds the workspace lock and waits at the barrier."""
    barrier = root.parent / f".{root.name}.barrier"
    go, paused = Path(f"{barrier}.go"), Path(f"{barrier}.paused")
    go.unlink(missing_ok=True)
    paused.unlink(missing_ok=True)
    spec = json.dumps(["pause", str(barrier), 0])
    proc = subprocess.Popen(_command(root, spec, Path(f"{barrier}.events"), args), cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout_s
    while not paused.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"{args}: did not reach the barrier (exit {proc.returncode}): "
                                 f"{proc.communicate()[1][-1000:]}")
        time.sleep(0.01)
    return PausedRun(proc, go)


def _as_in_a_terminal() -> None:
    """Ctrl-C as a terminal's command gets it: not ignored, not blocked. A test run started in the background
    (``pytest ... &`` in a script) ignores SIGINT, and a child would inherit that and never see the Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def interrupt(args: list[str], workers: int, timeout_s: float = 600) -> tuple[int, str, list[str]]:
    """Run a command in a session of its own, press Ctrl-C (SIGINT to its process group, as a terminal does) once
    ``workers`` pool workers run; (exit code, output, processes of the run alive 10 s later)."""
    proc = subprocess.Popen([sys.executable, "-m", "ctcurate.cli", *args], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True, preexec_fn=_as_in_a_terminal)
    seen: set[int] = set()
    deadline = time.monotonic() + timeout_s
    while proc.poll() is None and time.monotonic() < deadline:
        seen |= _tree_pids(proc.pid)
        if len(_alive(_tree_pids(proc.pid) - _child_pids(proc.pid))) >= workers:
            os.killpg(proc.pid, signal.SIGINT)
            break
        time.sleep(0.005)
    output = proc.communicate(timeout=120)[0]
    end = time.monotonic() + 10
    while _alive(seen) and time.monotonic() < end:
        time.sleep(0.1)
    return proc.returncode, output, _alive(seen)


def _child(root: str, spec: str, count_file: str, args: list[str]) -> None:
    """Install the audit hook that counts (and at the chosen event, kills or pauses), then run the command line."""
    base = os.path.realpath(root) + os.sep
    target = json.loads(spec) if spec != "-" else None
    state = {"n": 0, "armed": target is None or target[0] == "event", "locked": False}
    lock_file = os.path.join(os.path.realpath(root), "ctcurate.lock")

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event not in _EVENTS or not args or not isinstance(args[0], (str, bytes, os.PathLike)):
            return
        path = os.path.abspath(os.fsdecode(args[0]))
        if not path.startswith(base):
            return
        if target is not None and target[0] == "pause":
            if path == lock_file:
                state["locked"] = True
            elif state["locked"]:  # the lock is held: wait at the barrier, once
                state["locked"] = False
                Path(target[1] + ".paused").touch()
                while not os.path.exists(target[1] + ".go"):
                    time.sleep(0.01)
            return
        if target is not None and target[0] == "after" and not state["armed"]:
            flags = args[2] if event == "open" and len(args) > 2 and isinstance(args[2], int) else 0
            mode = str(args[1]) if event == "open" and len(args) > 1 else ""
            if path.endswith(target[1]) and (flags & _WRITE_FLAGS or any(c in mode for c in "wax+")):
                state["armed"] = True
            return
        state["n"] += 1
        if target is not None and state["armed"] and state["n"] >= target[2]:
            os.kill(os.getpid(), signal.SIGKILL)

    if target is None:
        atexit.register(lambda: Path(count_file).write_text(str(state["n"])))
    sys.addaudithook(hook)
    from ctcurate.cli import main

    sys.argv = ["ctcurate", *args]
    main()


if __name__ == "__main__":
    split = sys.argv.index("--")
    _child(*sys.argv[1:4], sys.argv[split + 1:])
