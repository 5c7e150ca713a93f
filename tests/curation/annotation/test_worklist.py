"""The annotation store on SQLite and on PostgreSQL: status, claims (one winner of two processes), structure
review states, stale saves refused, a save killed half-way, and SQLite refused on a network share."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from curation import Volume, Workspace, load_label_set
from curation.annotation.db import engine_for, filesystem_type
from curation.annotation.revisions import RevisionStore
from curation.annotation.worklist import CaseStatus, Worklist
from curation.errors import AnnotationError, WorkspaceError
from curation.labels.labelmap import read_seg_nrrd

V2 = load_label_set("total_v2")


def _labels(value: int, rows: int) -> Volume:
    array = np.zeros((4, 5, 6), dtype=np.uint8)
    array[:rows] = value
    return Volume(array, (1.0, 1.0, 2.0), (0.0, 0.0, 0.0), np.eye(3))


def test_status_claims_and_structure_states(tmp_path: Path, database: str) -> None:
    ws = Workspace.create(tmp_path / "ws")
    work = Worklist(ws, database)
    assert work.status("s0001") == (CaseStatus.TODO, None)
    work.claim("s0001", "dr.a")
    assert work.status("s0001") == ("in_progress", None) and work.claim_of("s0001").claimant == "dr.a"
    with pytest.raises(AnnotationError, match="case s0001: claimed by dr.a since .* UTC; open it read-only"):
        Worklist(ws, database).claim("s0001", "dr.b")
    with pytest.raises(AnnotationError, match="dr.a is editing it"):
        work.set_status("s0001", "done", actor="dr.b")
    work.claim("s0001", "dr.a")  # renewing one's own claim is fine
    work.renew("s0001", "dr.a")
    with pytest.raises(AnnotationError, match="dr.b holds no claim on it any more"):
        work.renew("s0001", "dr.b")
    with pytest.raises(AnnotationError, match="breaking a claim needs a reason"):
        work.break_claim("s0001", "dr.b", " ")
    assert work.break_claim("s0001", "dr.b", "dr.a is on holiday").claimant == "dr.a"
    assert work.claim_of("s0001") is None
    work.claim("s0001", "dr.b")
    work.set_structure("s0001", "liver", "corrected", actor="dr.b")
    work.set_structure("s0001", "liver", "OK", actor="dr.b")
    work.set_structure("s0001", "spleen", "absent_in_fov", actor="dr.b")
    assert work.structures("s0001") == {"liver": "ok", "spleen": "absent_in_fov"}
    with pytest.raises(AnnotationError, match="review state 'fixed': expected one of unreviewed, ok, corrected"):
        work.set_structure("s0001", "liver", "fixed", actor="dr.b")
    with pytest.raises(AnnotationError, match="excluding needs a reason, one of anatomy_distorted, extremity"):
        work.set_status("s0001", "excluded", actor="dr.b")
    work.set_status("s0001", "excluded", actor="dr.b", reason="anatomy_distorted", comment="large tumour")
    assert work.status("s0001") == ("excluded", "anatomy_distorted")
    work.release("s0001", "dr.b")
    kinds = [(e["kind"], e["actor"]) for e in work.events("s0001")]
    assert kinds == [("claim", "dr.a"), ("claim", "dr.a"), ("break_claim", "dr.b"), ("claim", "dr.b"),
                     ("structure", "dr.b"), ("structure", "dr.b"), ("structure", "dr.b"), ("status", "dr.b"),
                     ("release", "dr.b")]
    assert work.events("s0001")[2]["detail"] == {"holder": "dr.a", "reason": "dr.a is on holiday"}
    with pytest.raises(AnnotationError, match="status 'finished': expected one of todo, in_progress, done"):
        work.set_status("s0002", "finished", actor="dr.b")


def test_a_lapsed_claim_can_be_taken_over(tmp_path: Path, database: str) -> None:
    ws = Workspace.create(tmp_path / "ws")
    short = Worklist(ws, database, expiry=timedelta(seconds=1))
    short.claim("s0001", "dr.a")
    time.sleep(1.2)
    assert short.claim_of("s0001") is None and short.claims() == {}
    assert short.claim("s0001", "dr.b").claimant == "dr.b"
    assert short.events("s0001")[-1]["detail"] == {"took_over": "dr.a"}


def _claimer(root: str, url: str, case_id: str, who: str, barrier, results) -> None:
    work = Worklist(Workspace.open(root), url)
    barrier.wait()
    try:
        work.claim(case_id, who)
        results.put((case_id, who, "won"))
    except AnnotationError:
        results.put((case_id, who, "lost"))


def test_two_processes_claim_the_same_case_exactly_one_wins(tmp_path: Path, database: str) -> None:
    ws = Workspace.create(tmp_path / "ws")
    Worklist(ws, database)  # tables exist before the race
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    for round_ in range(3):
        case_id = f"s000{round_ + 1}"
        barrier = ctx.Barrier(2)
        workers = [ctx.Process(target=_claimer, args=(str(ws.root), database, case_id, who, barrier, results))
                   for who in ("dr.a", "dr.b")]
        for w in workers:
            w.start()
        for w in workers:
            w.join(60)
        outcome = sorted(results.get(timeout=10)[2] for _ in workers)
        assert outcome == ["lost", "won"], case_id
        assert Worklist(ws, database).claim_of(case_id) is not None


def test_stale_parent_refused_on_both_databases(tmp_path: Path, database: str) -> None:
    ws = Workspace.create(tmp_path / "ws")
    one, two = RevisionStore(ws, database), RevisionStore(ws, database)
    one.add("s0001", {"native": _labels(5, 1)}, V2, author="model:x@v1", kind="model", parent=None)
    one.add("s0001", {"native": _labels(5, 2)}, V2, author="dr.a", kind="human", parent=0,
            previous=_labels(5, 1).array)
    with pytest.raises(WorkspaceError, match="cannot save on top of revision 0: the latest is 1 .*dr.a"):
        two.add("s0001", {"native": _labels(5, 3)}, V2, author="dr.b", kind="human", parent=0)
    latest = two.latest("s0001")
    assert latest.changes == {"liver": 30} and latest.changes_vs_model == {"liver": 30}


KILLED_SAVE = r"""
import sys, time
from pathlib import Path
import numpy as np
from curation import Volume, Workspace, load_label_set
import curation.annotation.revisions as revisions
root, url, signal_file = sys.argv[1:4]
real = revisions.write_seg_nrrd
def slow(path, volume, label_set, **kwargs):
    real(path, volume, label_set, **kwargs)
    Path(signal_file).write_text("one file written")
    time.sleep(120)
revisions.write_seg_nrrd = slow
array = np.zeros((4, 5, 6), dtype=np.uint8); array[:4] = 5
labels = Volume(array, (1.0, 1.0, 2.0), (0.0, 0.0, 0.0), np.eye(3))
store = revisions.RevisionStore(Workspace.open(root), url)
store.add("s0001", {"native": labels, "3": labels}, load_label_set("total_v2"), author="dr.a", kind="human", parent=0)
"""


def test_kill_during_save_keeps_the_previous_revision(tmp_path: Path, database: str) -> None:
    ws = Workspace.create(tmp_path / "ws")
    store = RevisionStore(ws, database)
    first = store.add("s0001", {"native": _labels(5, 1)}, V2, author="model:x@v1", kind="model", parent=None)
    signal_file = tmp_path / "written"
    child = subprocess.Popen([sys.executable, "-c", KILLED_SAVE, str(ws.root), database, str(signal_file)],
                             cwd=Path(__file__).resolve().parents[3])
    deadline = time.time() + 60
    while not signal_file.exists() and time.time() < deadline and child.poll() is None:
        time.sleep(0.05)
    assert signal_file.exists(), "the save never started"
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    after = RevisionStore(ws, database)
    assert [r.number for r in after.history("s0001")] == [0]
    labels, _ = read_seg_nrrd(after.path(first))
    assert np.array_equal(labels.array, _labels(5, 1).array)
    again = after.add("s0001", {"native": _labels(5, 2)}, V2, author="dr.b", kind="human", parent=0)
    assert again.number == 1 and np.array_equal(read_seg_nrrd(after.path(again))[0].array, _labels(5, 2).array)


def test_sqlite_on_a_network_share_is_refused(tmp_path: Path) -> None:
    mounts = tmp_path / "mounts"
    share = tmp_path / "share"
    share.mkdir()
    mounts.write_text(f"/dev/sda1 / ext4 rw 0 0\nserver:/export {share} nfs4 rw 0 0\n")
    assert filesystem_type(share / "ws", mounts) == "nfs4" and filesystem_type(tmp_path, mounts) == "ext4"
    with pytest.raises(WorkspaceError, match="SQLite on a network file system \\(nfs4\\).*PostgreSQL server"):
        engine_for(f"sqlite:///{share / 'annotations.sqlite'}", mounts=mounts)
    assert filesystem_type(tmp_path, tmp_path / "no-such-file") == "unknown"


def test_the_database_comes_from_the_settings(tmp_path: Path) -> None:
    import dataclasses

    ws = Workspace.create(tmp_path / "ws")
    url = f"sqlite:///{tmp_path / 'shared.sqlite'}"
    ws.save_settings(dataclasses.replace(ws.settings, annotation=dataclasses.replace(ws.settings.annotation,
                                                                                     database_url=url)))
    Worklist(ws).claim("s0001", "dr.a")
    assert (tmp_path / "shared.sqlite").is_file() and not (ws.root / "annotations.sqlite").exists()
    assert RevisionStore(ws).url == url
    with pytest.raises(WorkspaceError, match="cannot connect"):
        RevisionStore(ws, "postgresql+psycopg://nobody@127.0.0.1:1/none")
