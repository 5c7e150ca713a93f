"""The editing session's data model on a real case (no screen): claims, edits, saves, recovery, status."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from annotator.session import CaseSession
from curation import Workspace
from curation.annotation.revisions import RevisionStore
from curation.annotation.worklist import Worklist
from curation.errors import AnnotationError, WorkspaceError
from curation.labels.labelmap import read_seg_nrrd, write_seg_nrrd


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_edit_save_reopen(real_case_ws: Workspace) -> None:
    ws = real_case_ws
    clock = Clock()
    session = CaseSession(ws, "s0001", "dr.a", clock=clock)
    assert not session.read_only and session.parent == 0
    liver = ws.label_set().by_name("liver").index
    rows = {r.name: r for r in session.structure_rows()}
    assert rows["liver"].voxels == int((session.labels == liver).sum()) > 40000 and rows["liver"].state == "unreviewed"
    assert rows["liver"].color == ws.label_set().by_name("liver").color
    # world geometry: index (0, 0, 0) is the CT's origin, in (z, y, x) order
    assert np.allclose(session.affine[:3, 3], session.ct.origin[::-1])
    session.note_activity()
    clock.now += 30  # thirty seconds of work ...
    removed = session.remove_islands("liver")
    clock.now += 600  # ... then a coffee break that does not count
    session.note_activity()
    clock.now += 15
    block = np.s_[0:4, 0:5, 0:6]
    assert not session.labels[block].any()
    session.labels[block] = liver  # painted outside the body: 120 voxels
    assert session.changed() == {"liver": removed + 120}
    revision = session.save("liver island removed, test paint")
    assert revision.number == 1 and revision.changes == {"liver": removed + 120}
    assert revision.changes_vs_model == {"liver": removed + 120} and revision.active_seconds == 45.0
    assert set(revision.files) == {"native", "3"}
    assert Worklist(ws).structures("s0001") == {"liver": "corrected"}
    session.close()
    again = CaseSession(ws, "s0001", "dr.a")
    assert again.parent == 1 and np.array_equal(again.labels, session.labels)
    coarse, _ = read_seg_nrrd(RevisionStore(ws).path(revision, "3"))
    assert coarse.array[0, 0, 0] == liver  # the 3 mm grid got the painted block too


def test_second_annotator_is_read_only(real_case_ws: Workspace) -> None:
    first = CaseSession(real_case_ws, "s0001", "dr.a")
    second = CaseSession(real_case_ws, "s0001", "dr.b")
    assert second.read_only and "claimed by dr.a since" in second.read_only_reason
    with pytest.raises(AnnotationError, match="open read-only: case s0001: claimed by dr.a"):
        second.fill_holes("liver")
    with pytest.raises(AnnotationError, match="open read-only"):
        second.save()
    first.close()
    assert not CaseSession(real_case_ws, "s0001", "dr.b").read_only


def test_stale_save_keeps_edits(real_case_ws: Workspace) -> None:
    session = CaseSession(real_case_ws, "s0001", "dr.a")
    session.labels[0:2, 0:2, 0:2] = 5
    Worklist(real_case_ws).break_claim("s0001", "admin", "test")
    other = CaseSession(real_case_ws, "s0001", "dr.b")
    other.labels[0, 0, 0] = 1
    other.save()
    with pytest.raises(WorkspaceError, match="cannot save on top of revision 0: the latest is 1 .*dr.b"):
        session.save()
    assert (session.labels[0:2, 0:2, 0:2] == 5).all()  # the edits are still there


def test_autosave_and_recovery(real_case_ws: Workspace) -> None:
    session = CaseSession(real_case_ws, "s0001", "dr.a")
    assert session.autosave() is None  # nothing to keep
    session.labels[0:3, 0:3, 0:3] = 5
    path = session.autosave()
    assert path is not None and path.name == ".recovery-dr.a.seg.nrrd"
    session.close()  # the viewer crashed before a save
    reopened = CaseSession(real_case_ws, "s0001", "dr.a")
    assert reopened.recovery() is not None and reopened.restore_recovery() == 27
    assert reopened.save().number == 1 and not path.exists()
    with pytest.raises(AnnotationError, match="no recovery slot for dr.a"):
        reopened.restore_recovery()


def test_done_and_exclude(real_case_ws: Workspace) -> None:
    session = CaseSession(real_case_ws, "s0001", "dr.a")
    session.labels[0, 0, 0] = 5
    with pytest.raises(AnnotationError, match="unsaved edits \\(1 voxels\\); save them first"):
        session.mark_done()
    session.save()
    session.set_structure_state("spleen", "ok")
    session.mark_done("all good")
    work = Worklist(real_case_ws)
    assert work.status("s0001") == ("done", None) and work.claim_of("s0001") is None
    excluder = CaseSession(real_case_ws, "s0001", "dr.b")
    with pytest.raises(AnnotationError, match="exclusion reason 'tumour': expected one of anatomy_distorted"):
        excluder.exclude("tumour")
    excluder.exclude("anatomy_distorted", "large mass")
    assert work.status("s0001") == ("excluded", "anatomy_distorted")


def test_labels_off_the_grid_or_the_label_set_are_refused(real_case_ws: Workspace, tmp_path: Path,
                                                          damaged_revision) -> None:
    store = RevisionStore(real_case_ws)
    path = store.path(store.latest("s0001"))
    damaged_revision(path)
    labels, _ = read_seg_nrrd(path)
    from curation import Volume, load_label_set

    shifted = Volume(labels.array, labels.spacing, tuple(np.add(labels.origin, (15.0, 0, 0))), labels.direction)
    write_seg_nrrd(path, shifted, real_case_ws.label_set())
    with pytest.raises(AnnotationError, match="revision 0: geometry.grid: labels .* do not match the CT"):
        CaseSession(real_case_ws, "s0001", "dr.a")
    assert Worklist(real_case_ws).claim_of("s0001") is None  # not left claimed
    write_seg_nrrd(path, labels, real_case_ws.label_set())  # back on the grid
    import dataclasses

    settings = real_case_ws.settings  # now the workspace uses the 104-class set, the file holds v2 values
    real_case_ws.save_settings(dataclasses.replace(settings, labels=dataclasses.replace(settings.labels,
                                                                                        label_set="total_v1")))
    assert load_label_set("total_v1").max_index == 104
    with pytest.raises(AnnotationError, match=r"completeness.unknown_value: values \[110, 111"):
        CaseSession(real_case_ws, "s0001", "dr.a")
    with pytest.raises(AnnotationError, match="give your name"):
        CaseSession(real_case_ws, "s0001", " ")
    with pytest.raises(AnnotationError, match="s0009.*not found; run 'ctcurate convert'"):
        CaseSession(real_case_ws, "s0009", "dr.a")


def test_a_failed_write_keeps_the_edits_and_the_previous_revision(real_case_ws: Workspace, monkeypatch) -> None:
    import curation.annotation.revisions as revisions

    session = CaseSession(real_case_ws, "s0001", "dr.a")
    session.labels[0:2, 0:2, 0:2] = 5

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    real = revisions.write_seg_nrrd
    monkeypatch.setattr(revisions, "write_seg_nrrd", disk_full)
    with pytest.raises(WorkspaceError, match="revision 1 could not be written .*No space left on device.*revision 0 "
                                             "is intact and the edits are still open"):
        session.save()
    assert (session.labels[0:2, 0:2, 0:2] == 5).all() and session.parent == 0
    assert [r.number for r in RevisionStore(real_case_ws).history("s0001")] == [0]
    monkeypatch.setattr(revisions, "write_seg_nrrd", real)
    assert session.save().number == 1


def test_excluding_while_annotating_feeds_the_exclusion_flow(demo_ws: Workspace) -> None:
    from curation.selection.filter import flow_counts

    sampled, excluded, included = flow_counts(demo_ws)
    assert (sampled, included) == (6, 3) and "anatomy distorted by abnormality" not in excluded
    before = dict(excluded)
    png = demo_ws.figures_dir / "exclusion_flow.png"
    stamp = png.stat().st_mtime_ns
    CaseSession(demo_ws, "s0002", "dr.a").exclude("anatomy_distorted", "large mass")
    CaseSession(demo_ws, "s0003", "dr.a").exclude("extremity", "only the knee")
    sampled, excluded, included = flow_counts(demo_ws)
    assert (sampled, included) == (6, 1)
    assert excluded["anatomy distorted by abnormality"] == 1
    assert excluded["upper/lower extremity"] == before.get("upper/lower extremity", 0) + 1  # merged with the filter's
    assert png.stat().st_mtime_ns != stamp  # the figure was drawn again
