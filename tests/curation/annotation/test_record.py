"""One truth for a case's labels: the labels of record, imported label files, one database of record,
revision files never replaced, and the migration between SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest

from ctcurate.cli import app
from curation import LabelClass, LabelSet, Volume, Workspace, load_label_set
from curation.annotation import (
    RevisionStore,
    Worklist,
    all_labels_of_record,
    import_case_folder_labels,
    import_labels,
    labels_of_record,
    pending_label_files,
    table_digests,
)
from curation.annotation.db import engine_for
from curation.atomic import sha256_file
from curation.errors import LabelIOError, WorkspaceError
from curation.image import read_nrrd, write_volume
from curation.image.volume import resample_labels
from curation.labels import read_seg_nrrd, write_mask_folder, write_seg_nrrd
from tests.cli_runner import CliRunner

runner = CliRunner()


@pytest.fixture()
def demo_copy(demo_run, tmp_path: Path) -> Workspace:
    """A copy of the demo workspace: three cases, each with the model's revision 0 and the phantom's labels
    imported as revision 1, QA run."""
    target = tmp_path / "demo"
    shutil.copytree(demo_run.workspace, target)
    return Workspace.open(target)


def test_labels_of_record_are_the_latest_approved_else_the_latest(demo_copy: Workspace) -> None:
    ws = demo_copy
    store = RevisionStore(ws)
    record = labels_of_record(store, "s0001")
    assert record is not None and record.number == 1 and record.status.value == "unreviewed"
    assert record.path == ws.revisions_dir("s0001") / "r0001.seg.nrrd" and record.sha256 == store.latest("s0001").sha256
    store.review("s0001", 0, "approved", reviewer="dr.b")
    record = labels_of_record(store, "s0001")
    assert record is not None and record.describe() == "revision 0 (approved)"
    store.review("s0001", 0, "rejected", reviewer="dr.b")
    assert labels_of_record(store, "s0001").number == 1  # type: ignore[union-attr]
    every = all_labels_of_record(ws)
    assert {c: (r.number, r.status, r.sha256) for c, r in every.items()} == {
        c: (r.number, r.status, r.sha256) for c in ws.case_ids() if (r := labels_of_record(store, c))}
    assert labels_of_record(store, "s0099") is None


def test_label_files_in_a_case_folder_become_a_revision_once(demo_copy: Workspace, tmp_path: Path) -> None:
    ws = demo_copy
    store = RevisionStore(ws)
    assert pending_label_files(ws) == {}  # the demo imported its phantom labels already
    truth, _ = read_seg_nrrd(store.path(store.latest("s0002")))
    edited = truth.array.copy()
    edited[edited == 5] = 0  # no spleen
    write_mask_folder(ws.masks_dir("s0002"), Volume(edited, truth.spacing, truth.origin, truth.direction),
                      ws.label_set())
    assert [p.name for p in pending_label_files(ws)["s0002"]] == ["segmentations"]
    (made,) = import_case_folder_labels(ws)
    revision = made.revision
    assert made.new and revision is not None and revision.number == 2 and revision.kind == "import"
    assert revision.author == "import:segmentations" and revision.changes == {"spleen": int((truth.array == 5).sum())}
    assert set(revision.files) == {"native", "1.5", "3"}
    assert pending_label_files(ws) == {} and import_case_folder_labels(ws) == []  # never twice
    # a Slicer file whose own label values differ is matched to the set by segment name
    label_set = ws.label_set()
    shuffled = dataclasses.replace(label_set, classes=tuple(dataclasses.replace(c, index=9 - c.index)
                                                            for c in label_set))
    renumbered = np.where(edited > 0, 9 - edited, 0).astype(np.uint8)
    other = tmp_path / "theirs.seg.nrrd"
    write_seg_nrrd(other, Volume(renumbered, truth.spacing, truth.origin, truth.direction), shuffled)
    again = import_labels(ws, "s0002", other).revision
    assert again is not None and again.number == 3 and again.changes == {}  # the same labels as revision 2
    twice = import_labels(ws, "s0002", other)
    assert not twice.new and twice.revision == again and "already imported as revision 3" in twice.describe()
    # going back to earlier labels: the model's revision 0 imported again becomes revision 4
    back = import_labels(ws, "s0002", store.path(store.history("s0002")[0]))
    assert back.new and back.revision is not None and back.revision.number == 4
    assert labels_of_record(store, "s0002").number == 4  # type: ignore[union-attr]
    # labels on another grid are resampled onto the CT's; labels elsewhere in space, of another label set, and a
    # missing file are refused, naming the fix
    coarse = resample_labels(truth, read_nrrd(ws.case_dir("s0002") / ws.ct_name(3.0)))
    off_grid = tmp_path / "coarse.nrrd"
    write_seg_nrrd(off_grid, coarse, label_set)
    resampled = import_labels(ws, "s0002", off_grid)
    assert resampled.new and "on another grid (size, spacing, origin): resampled onto the CT's" in resampled.describe()
    away = tmp_path / "away.nrrd"
    write_seg_nrrd(away, Volume(coarse.array, coarse.spacing, tuple(np.asarray(coarse.origin) + 5000.0),
                                coarse.direction), label_set)
    with pytest.raises(LabelIOError, match="case s0002: .*away.nrrd: its field of view .* does not overlap case "
                                           "s0002's CT .*wrong case or wrong file"):
        import_labels(ws, "s0002", away)
    with pytest.raises(LabelIOError, match=r"case s0002: .*segments \['heart'\] are not in label set 'demo'"):
        import_labels(ws, "s0002", _foreign_segmentation(tmp_path, truth))
    with pytest.raises(LabelIOError, match="case s0002: .*nothing.nrrd not found; give a mask folder or a multi-label"):
        import_labels(ws, "s0002", tmp_path / "nothing.nrrd")
    with pytest.raises(LabelIOError, match="case s0042: no such case"):
        import_labels(ws, "s0042", other)


def test_labels_stored_in_another_axis_order_are_moved_onto_the_ct_grid(demo_copy: Workspace,
                                                                        tmp_path: Path) -> None:
    """A map saved flipped (LAS instead of LPS, as NIfTI tools do) holds the CT's voxels: it imports voxel for
    voxel; a map shifted by a fraction of a voxel is resampled (nearest neighbour), and the revision says so."""
    ws = demo_copy
    store = RevisionStore(ws)
    truth, _ = read_seg_nrrd(store.path(store.latest("s0001")))
    flip = np.diag([1.0, -1.0, 1.0])
    origin = np.asarray(truth.origin) + truth.direction @ np.array([0.0, truth.spacing[1] * (truth.size[1] - 1), 0.0])
    flipped = Volume(truth.array[:, ::-1, :].copy(), truth.spacing, tuple(origin), truth.direction @ flip)
    path = tmp_path / "las.nii.gz"
    write_volume(path, flipped)
    made = import_labels(ws, "s0001", path)
    assert made.new and made.revision is not None and made.revision.changes == {}  # the same labels
    shifted = Volume(truth.array, truth.spacing, tuple(np.add(truth.origin, (0.3, 0.0, 0.0))), truth.direction)
    write_volume(tmp_path / "shifted.nii.gz", shifted)
    moved = import_labels(ws, "s0001", tmp_path / "shifted.nii.gz")
    assert moved.new and moved.revision is not None and "resampled onto the CT's" in moved.revision.comment
    twice = tmp_path / "twice.seg.nrrd"
    doubled = LabelSet("doubled", "1", (LabelClass(1, "liver", "organ"), LabelClass(2, "liver_copy", "organ")))
    write_seg_nrrd(twice, Volume(np.zeros(truth.array.shape, np.uint8), truth.spacing, truth.origin,
                                 truth.direction), doubled)
    twice.write_bytes(twice.read_bytes().replace(b"Segment1_Name:=liver_copy", b"Segment1_Name:=liver"))
    with pytest.raises(LabelIOError, match=r"segments named \['liver'\] more than once"):
        import_labels(ws, "s0001", twice)


def _foreign_segmentation(tmp_path: Path, grid: Volume) -> Path:
    label_set = LabelSet("other", "1", (LabelClass(1, "heart", "organ"),))
    path = tmp_path / "heart.seg.nrrd"
    array = np.zeros(grid.array.shape, np.uint8)
    array[0, 0, 0] = 1
    write_seg_nrrd(path, Volume(array, grid.spacing, grid.origin, grid.direction), label_set)
    return path


def test_qa_refuses_label_files_that_are_not_revisions(demo_copy: Workspace) -> None:
    ws = demo_copy
    shutil.copy(RevisionStore(ws).path(RevisionStore(ws).latest("s0003")), ws.case_dir("s0003") / "labels.nrrd")
    result = runner.invoke(app, ["qa", "labels", str(ws.root)])
    assert result.exit_code == 2
    assert "label files in case folders are not in the annotation store (s0003: labels.nrrd)" in \
        " ".join(result.output.split())
    assert "ctcurate annotate import -w" in " ".join(result.output.split())
    imported = runner.invoke(app, ["annotate", "import", "-w", str(ws.root)])
    assert imported.exit_code == 0 and "s0003: labels.nrrd imported as revision 2" in imported.output


def test_a_database_without_the_revisions_is_refused(demo_copy: Workspace, database: str) -> None:
    ws = demo_copy
    before = {p: sha256_file(p) for c in ws.case_ids() for p in ws.revisions_dir(c).iterdir()}
    ws.save_settings(dataclasses.replace(ws.settings, annotation=dataclasses.replace(ws.settings.annotation,
                                                                                      database_url=database)))
    with pytest.raises(WorkspaceError, match="holds no revisions, but .*r0000.seg.nrrd was written with another one.*"
                                             "ctcurate annotate db migrate --to URL"):
        RevisionStore(ws)
    result = runner.invoke(app, ["annotate", "status", "-w", str(ws.root)])
    assert result.exit_code == 2 and "annotate db migrate" in result.output
    assert {p: sha256_file(p) for p in before} == before  # nothing was written over the model's revision


def test_revision_files_are_never_replaced(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "ws")
    v2 = load_label_set("total_v2")
    labels = Volume(np.zeros((3, 4, 5), np.uint8), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), np.eye(3))
    store = RevisionStore(ws)
    # the file of a save killed before its row was committed (same database) is a leftover: replaced
    orphan = ws.revisions_dir("s0001") / "r0000.seg.nrrd"
    write_seg_nrrd(orphan, labels, v2, extra_fields={"ctcurate_store": store.store_id})
    first = store.add("s0001", {"native": labels}, v2, author="model:m", kind="model", parent=None)
    assert first.number == 0 and sha256_file(orphan) != ""
    # a file of another database is never replaced: the save is refused and the file kept
    foreign = ws.revisions_dir("s0001") / "r0001.seg.nrrd"
    write_seg_nrrd(foreign, labels, v2, extra_fields={"ctcurate_store": "another"})
    kept = sha256_file(foreign)
    with pytest.raises(WorkspaceError, match="r0001.seg.nrrd exists and was not written by this annotation database"):
        store.add("s0001", {"native": labels}, v2, author="dr.a", kind="human", parent=0)
    assert sha256_file(foreign) == kept and [r.number for r in store.history("s0001")] == [0]
    assert not [p for p in ws.revisions_dir("s0001").iterdir() if p.name.startswith(".tmp-")]


def test_migrate_to_postgresql_and_back_keeps_every_row(demo_copy: Workspace, postgres_server: str) -> None:
    import uuid

    import sqlalchemy as sa

    ws = demo_copy
    Worklist(ws).claim("s0002", "dr.a")
    Worklist(ws).set_status("s0001", "excluded", actor="dr.a", reason="anatomy_distorted")
    RevisionStore(ws).review("s0003", 1, "approved", reviewer="dr.b", comment="lungs checked")
    files = {p: sha256_file(p) for c in ws.case_ids() for p in ws.revisions_dir(c).iterdir()}
    status_before = runner.invoke(app, ["annotate", "status", "-w", str(ws.root), "--cases"]).output
    source = engine_for(f"sqlite:///{ws.database_file}")
    digests = table_digests(source)
    name = f"m{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(f"{postgres_server}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as db:
        db.execute(sa.text(f"CREATE DATABASE {name}"))
    admin.dispose()
    target = f"{postgres_server}/{name}"
    typed = target.replace("postgresql+psycopg://", "postgresql://")  # as users paste it: psycopg 3 is used
    result = runner.invoke(app, ["annotate", "db", "migrate", "--to", typed, "-w", str(ws.root)])
    assert result.exit_code == 0, result.output
    assert "revisions: 6 rows" in result.output and "database_url switched" in result.output
    assert ws.settings.annotation.database_url == target
    assert table_digests(engine_for(target)) == digests
    assert runner.invoke(app, ["annotate", "status", "-w", str(ws.root), "--cases"]).output == status_before
    assert {p: sha256_file(p) for p in files} == files
    # the copy goes on: new reviews and events get fresh ids on PostgreSQL
    RevisionStore(ws).review("s0002", 1, "approved", reviewer="dr.b")
    Worklist(ws).release("s0002", "dr.a")
    again = runner.invoke(app, ["annotate", "db", "migrate", "--to", target, "-w", str(ws.root)])
    assert again.exit_code == 2 and "is already the workspace's database" in again.output
    # into a database that holds rows: refused, nothing switched
    refused = runner.invoke(app, ["annotate", "db", "migrate", "--to", f"sqlite:///{ws.database_file}", "-w",
                                  str(ws.root)])
    assert refused.exit_code == 2 and "already holds rows in" in " ".join(refused.output.split())
    assert ws.settings.annotation.database_url == target
    # the SQLite file left behind is stale: set back by hand, it is refused (nothing written to its revisions)
    ws.save_settings(dataclasses.replace(ws.settings, annotation=dataclasses.replace(ws.settings.annotation,
                                                                                      database_url="")))
    stale = runner.invoke(app, ["review", "s0002", "approved", "--by", "dr.c", "-w", str(ws.root)])
    assert stale.exit_code == 2 and "its record was moved by 'ctcurate annotate db migrate' (to postgresql" in \
        " ".join(stale.output.split()) and "[annotation] database_url" in stale.output
    ws.save_settings(dataclasses.replace(ws.settings, annotation=dataclasses.replace(ws.settings.annotation,
                                                                                      database_url=target)))
    # back to a new SQLite file elsewhere
    back = ws.root / "moved.sqlite"
    on_postgres = table_digests(engine_for(target))
    result = runner.invoke(app, ["annotate", "db", "migrate", "--to", f"sqlite:///{back}", "-w", str(ws.root)])
    assert result.exit_code == 0, result.output
    assert table_digests(engine_for(f"sqlite:///{back}")) == on_postgres
    bad = runner.invoke(app, ["annotate", "db", "migrate", "--to", "/tmp/plain/path.sqlite", "-w", str(ws.root)])
    assert bad.exit_code == 2 and "not a database URL; expected postgresql+psycopg://" in " ".join(bad.output.split())
    assert labels_of_record(RevisionStore(ws), "s0002").status.value == "approved"  # type: ignore[union-attr]
