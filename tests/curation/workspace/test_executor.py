"""Executors: a value many items carry is rebuilt once per worker; a pool with nothing to do starts no process."""

from __future__ import annotations

import os
import pickle
from typing import Any

from curation.workspace.executor import LocalExecutor, SerialExecutor, Shared


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
