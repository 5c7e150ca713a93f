"""Executors: a value many items carry is rebuilt once per worker; a pool with nothing to do starts no process; a
Dask scheduler that cannot be reached fails in seconds, in one line."""

from __future__ import annotations

import os
import pickle
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from curation.errors import ExecutorError
from curation.workspace.executor import DaskExecutor, LocalExecutor, SerialExecutor, Shared


class _Counted:
    """Counts how often this process rebuilt one from its pickle."""

    rebuilt = 0

    def __init__(self, payload: list[int]) -> None:
        self.payload = payload

    def __setstate__(self, state: dict[str, Any]) -> None:
        type(self).rebuilt += 1
        self.__dict__.update(state)


def _rebuilt_so_far(item: tuple[Shared[_Counted], int]) -> tuple[int, int, int]:
    shared, index = item
    return os.getpid(), _Counted.rebuilt, shared.value.payload[index]


def test_a_shared_value_is_rebuilt_once_per_process() -> None:
    value = _Counted(list(range(100)))
    shared = Shared(value)
    first = pickle.loads(pickle.dumps(shared))
    before = _Counted.rebuilt
    again = pickle.loads(pickle.dumps(Shared(value)))  # the same bytes: the copy this process already made
    assert again.value is first.value and _Counted.rebuilt == before
    assert first.value.payload == value.payload
    with LocalExecutor(2) as pool:
        seen = [r for _, r in pool.imap_unordered(_rebuilt_so_far, [(shared, i) for i in range(12)])]
    assert sorted(r[2] for r in seen) == list(range(12))  # every item saw the value
    by_worker: dict[int, int] = {}
    for pid, rebuilt, _ in seen:
        by_worker[pid] = max(by_worker.get(pid, 0), rebuilt)
    assert set(by_worker.values()) == {1}  # each worker rebuilt it once, however many items it ran
    serial = list(SerialExecutor().imap_unordered(_rebuilt_so_far, [(shared, 3)]))
    assert serial[0][1][2] == 3 and serial[0][1][1] == _Counted.rebuilt  # in this process: the value as given


def test_a_pool_with_nothing_to_do_starts_no_worker() -> None:
    with LocalExecutor(2) as pool:
        assert list(pool.imap_unordered(_rebuilt_so_far, [])) == []
        assert not getattr(pool._pool, "_processes", None)


def test_an_unreachable_scheduler_fails_within_the_connect_timeout_in_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Connecting waited distributed's 20 s; it now gives up after CONNECT_TIMEOUT_S (shortened here to 1 s)."""
    from ctcurate.cli import app
    from curation.workspace import Workspace, executor
    from tests.cli_runner import CliRunner

    assert executor.CONNECT_TIMEOUT_S <= 5
    monkeypatch.setattr(executor, "CONNECT_TIMEOUT_S", 1.0)
    export = tmp_path / "export"
    export.mkdir()
    ws = Workspace.create(tmp_path / "ws")
    with socket.socket() as unused:  # a local port bound by no listener: every connection is refused
        unused.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{unused.getsockname()[1]}"
        start = time.monotonic()
        out = CliRunner().invoke(app, ["scan", str(export), "-w", str(ws.root), "--scheduler", address])
        took = time.monotonic() - start
    assert out.exit_code == 2 and took < 10
    assert out.output.strip() == (f"error: Dask scheduler '{address}': cannot connect within 1 s; start the "
                                  "scheduler at that address or fix the address (--scheduler, or [executor] "
                                  "scheduler in ctcurate.toml; left empty, the local pool is used)")
    assert ws.settings.sources == ()  # refused before the export was added


@pytest.mark.parametrize("address", ["http://127.0.0.1:8786", "127.0.0.1", "tcp://127.0.0.1:port"])
def test_a_malformed_scheduler_address_is_refused_at_once(address: str) -> None:
    start = time.monotonic()
    with pytest.raises(ExecutorError, match=rf"Dask scheduler '{address}': not a scheduler address \(.+\); give "
                                            r"one like tcp://host:8786 \(--scheduler, or \[executor\] scheduler"):
        DaskExecutor(address)
    assert time.monotonic() - start < 5
