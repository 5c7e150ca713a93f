"""Segmentation revisions: append-only, files atomic, stale parents refused, changes counted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from curation import Volume, Workspace, load_label_set
from curation.annotation.revisions import RevisionStore, voxel_changes
from curation.errors import WorkspaceError
from curation.labels.labelmap import read_seg_nrrd

V2 = load_label_set("total_v2")


def _labels(value: int, region: slice) -> Volume:
    array = np.zeros((4, 5, 6), dtype=np.uint8)
    array[region] = value
    return Volume(array, (1.0, 1.0, 2.0), (0.0, 0.0, 0.0), np.eye(3))


def test_revisions_append_and_refuse_a_stale_parent(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "ws")
    store = RevisionStore(ws)
    model = _labels(5, np.s_[0:2])
    first = store.add("s0001", {"native": model, "3": model}, V2, author="model:small@v1", kind="model", parent=None)
    assert first.number == 0 and first.files == {"native": "r0000.seg.nrrd", "3": "r0000_3mm.seg.nrrd"}
    assert first.changes == {"liver": 60}
    corrected = _labels(5, np.s_[0:3])
    second = store.add("s0001", {"native": corrected}, V2, author="dr.a", kind="human", parent=0,
                       previous=model.array, comment="liver extended")
    assert second.number == 1 and second.changes == {"liver": 30}
    with pytest.raises(WorkspaceError, match="cannot save on top of revision 0: the latest is 1 .*dr.a"):
        store.add("s0001", {"native": corrected}, V2, author="dr.b", kind="human", parent=0)
    again = RevisionStore(ws)  # a second connection sees the same history
    assert [r.number for r in again.history("s0001")] == [0, 1] and again.latest("s0001").author == "dr.a"
    labels, segments = read_seg_nrrd(again.path(first))
    assert np.array_equal(labels.array, model.array) and segments[4].name == "liver"
    assert again.cases_with_revisions() == {"s0001"}
    with pytest.raises(WorkspaceError, match="no labels on grid '1.5'"):
        again.path(first, "1.5")
    with pytest.raises(WorkspaceError, match="needs labels on the CT's own grid"):
        store.add("s0002", {"3": model}, V2, author="x", kind="model", parent=None)
    with pytest.raises(WorkspaceError, match="kind must be one of model, human, import, found 'robot'"):
        store.add("s0002", {"native": model}, V2, author="x", kind="robot", parent=None)


def test_voxel_changes_counts_both_sides() -> None:
    before = np.array([0, 5, 5, 1, 1])
    after = np.array([5, 5, 0, 1, 2])
    assert voxel_changes(before, after, V2) == {"liver": 2, "spleen": 1, "kidney_right": 1}
    assert voxel_changes(None, after, V2) == {"liver": 2, "spleen": 1, "kidney_right": 1}


def test_review_status_is_an_append_only_history(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "ws")
    store = RevisionStore(ws)
    model = _labels(5, np.s_[0:2])
    store.add("s0001", {"native": model}, V2, author="model:small@v1", kind="model", parent=None)
    store.add("s0001", {"native": _labels(5, np.s_[0:3])}, V2, author="dr.a", kind="human", parent=0)
    assert store.statuses("s0001") == {0: "unreviewed", 1: "unreviewed"}
    assert store.latest_with_status("s0001", "approved") is None
    assert store.review("s0001", 0, "APPROVED", reviewer="dr.b").number == 0
    assert store.latest_with_status("s0001", "approved").number == 0
    store.review("s0001", None, "approved", reviewer="dr.b")  # the latest
    store.review("s0001", 0, "rejected", reviewer="dr.c", comment="kidney missed")
    assert store.statuses("s0001") == {0: "rejected", 1: "approved"}
    assert RevisionStore(ws).latest_with_status("s0001", "approved", "unreviewed").number == 1
    with pytest.raises(WorkspaceError, match="review status 'done': expected one of unreviewed, approved"):
        store.review("s0001", 1, "done", reviewer="dr.b")
    with pytest.raises(WorkspaceError, match="no revision 7 \\(have 0..1\\)"):
        store.review("s0001", 7, "approved", reviewer="dr.b")
    with pytest.raises(WorkspaceError, match="s0002: no such case in .*; check the case id"):
        store.review("s0002", None, "approved", reviewer="dr.b")
    ws.case_dir("s0002").mkdir(parents=True)
    with pytest.raises(WorkspaceError, match="s0002: no revisions to review"):
        store.review("s0002", None, "approved", reviewer="dr.b")
    with pytest.raises(WorkspaceError, match="needs the reviewer's name"):
        store.review("s0001", None, "approved", reviewer=" ")
