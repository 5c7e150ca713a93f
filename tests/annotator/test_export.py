"""``export nnunet``: reviewed revisions as an nnU-Net raw dataset that follows the workspace split."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from annotator.export import dataset_folder_name, export_nnunet
from ctcurate.cli import app
from curation import Volume, Workspace, read_nrrd
from curation.annotation.revisions import RevisionStore
from curation.cases.casemeta import case_splits, update_case_metadata, write_meta_table
from curation.errors import ModelError, WorkspaceError
from curation.image.orientation import to_canonical
from curation.labels.labelmap import read_seg_nrrd
from tests.cli_runner import CliRunner

runner = CliRunner()


def _split(ws: Workspace, assignment: dict[str, str]) -> None:
    for case_id, split in assignment.items():
        update_case_metadata(ws, case_id, "split", split)
    write_meta_table(ws)


def _correct(ws: Workspace, case_id: str) -> int:
    """A physician's correction: the phantom's true labels as the next revision (native and 3 mm grids)."""
    store = RevisionStore(ws)
    truth, _ = read_seg_nrrd(ws.segmentation_file(case_id))
    latest = store.latest(case_id)
    assert latest is not None
    model, _ = read_seg_nrrd(store.path(latest))
    coarse, _ = read_seg_nrrd(store.path(latest, "3"))
    from curation.image.volume import resample_labels

    on_coarse = resample_labels(truth, read_nrrd(ws.case_dir(case_id) / ws.ct_name(3.0)))
    made = store.add(case_id, {"native": truth, "3": on_coarse}, ws.label_set(), author="dr.demo", kind="human",
                     parent=latest.number, previous=model.array, comment="phantom truth")
    assert coarse.array.shape == on_coarse.array.shape
    return made.number


def test_export_takes_approved_revisions_and_follows_the_split(demo_ws: Workspace, tmp_path: Path) -> None:
    ws = demo_ws
    _split(ws, {"s0001": "train", "s0002": "val", "s0003": "test"})
    assert case_splits(ws) == {"s0001": "train", "s0002": "val", "s0003": "test"}
    with pytest.raises(ModelError, match="no case has a approved revision; review cases"):
        export_nnunet(ws, tmp_path / "raw", 950)
    corrected = _correct(ws, "s0001")
    store = RevisionStore(ws)
    store.review("s0001", corrected, "approved", reviewer="dr.b")
    store.review("s0002", 0, "rejected", reviewer="dr.b")
    only_approved = export_nnunet(ws, tmp_path / "raw", 950)
    assert only_approved.training == {"s0001": corrected} and only_approved.test == {}
    assert "no approved revision" in only_approved.skipped["s0002"] and only_approved.splits is None
    with pytest.raises(ModelError, match="an export is already there; choose another dataset id or pass --overwrite"):
        export_nnunet(ws, tmp_path / "raw", 950)
    store.review("s0002", 0, "unreviewed", reviewer="dr.b", comment="rejected by mistake")
    result = runner.invoke(app, ["export", "nnunet", str(tmp_path / "raw"), "-w", str(ws.root), "--fallback",
                                 "unreviewed", "--overwrite", "--grid", "3"])
    assert result.exit_code == 0, result.output
    assert "2 training and 1 test cases, 8 labels; splits_final.json: one fold (1 train, 1 val cases)" in \
        " ".join(result.output.split())
    folder = tmp_path / "raw" / "Dataset950_Ctcurate"
    assert json.loads((folder / "splits_final.json").read_text()) == [{"train": ["s0001"], "val": ["s0002"]}]
    dataset = json.loads((folder / "dataset.json").read_text())
    assert dataset["labels"] == {"background": 0, **{n: i for i, n in enumerate(ws.label_set().names, 1)}}
    assert dataset["file_ending"] == ".nrrd" and dataset["numTraining"] == 2
    assert sorted(p.name for p in (folder / "imagesTr").iterdir()) == ["s0001_0000.nrrd", "s0002_0000.nrrd"]
    assert [p.name for p in (folder / "imagesTs").iterdir()] == ["s0003_0000.nrrd"]
    record = json.loads((folder / "ctcurate_export.json").read_text())
    assert record["cases"]["s0001"]["revision"] == corrected and record["cases"]["s0001"]["status"] == "approved"
    assert record["cases"]["s0002"]["status"] == "unreviewed" and record["cases"]["s0003"]["split"] == "test"
    # the exported label is the approved revision on the 3 mm grid, in canonical order, in world space
    exported = read_nrrd(folder / "labelsTr" / "s0001.nrrd")
    revision, _ = read_seg_nrrd(store.path(store.history("s0001")[corrected], "3"))
    canonical, _ = to_canonical(revision)
    assert np.array_equal(exported.array, canonical.array) and np.allclose(exported.origin, canonical.origin)
    image = read_nrrd(folder / "imagesTr" / "s0001_0000.nrrd")
    assert image.array.shape == exported.array.shape and np.allclose(image.direction, exported.direction)
    from nnunetv2.experiment_planning.verify_dataset_integrity import verify_dataset_integrity

    verify_dataset_integrity(str(folder), num_processes=1)  # raises on any problem


def test_structures_are_renumbered_and_unsplit_cases_are_skipped(demo_ws: Workspace, tmp_path: Path) -> None:
    ws = demo_ws
    result = export_nnunet(ws, tmp_path / "raw", 7, "Kidneys", fallback="unreviewed",
                           structures=["kidney_left", "kidney_right"])
    assert result.labels == {"background": 0, "kidney_right": 1, "kidney_left": 2}  # the label set's order
    assert result.splits is None and set(result.training) == {"s0001", "s0002", "s0003"}
    store = RevisionStore(ws)
    labels = read_nrrd(result.folder / "labelsTr" / "s0001.nrrd").array
    source, _ = read_seg_nrrd(store.path(store.latest("s0001")))
    index = ws.label_set().index_of()
    assert int((labels == 2).sum()) == int((source.array == index["kidney_left"]).sum())
    assert set(np.unique(labels)) <= {0, 1, 2}
    _split(ws, {"s0001": "train", "s0002": "val"})
    partial = export_nnunet(ws, tmp_path / "raw", 8, fallback="unreviewed")
    assert partial.skipped == {"s0003": "not in the workspace's split; make the split again"}


def test_export_errors(demo_ws: Workspace, tmp_path: Path, damaged_revision) -> None:
    with pytest.raises(ModelError, match="structures \\['kidney'\\]: not classes of label set 'demo'"):
        export_nnunet(demo_ws, tmp_path, 950, structures=["kidney"])
    with pytest.raises(ModelError, match="dataset id 1000: nnU-Net needs 1..999"):
        dataset_folder_name(1000, "X")
    with pytest.raises(ModelError, match="dataset name 'my_set': use letters, digits and '-' only"):
        dataset_folder_name(5, "my_set")
    with pytest.raises(WorkspaceError, match="review status 'good'"):
        export_nnunet(demo_ws, tmp_path, 950, status="good")
    update_case_metadata(demo_ws, "s0001", "split", "holdout")
    write_meta_table(demo_ws)
    with pytest.raises(WorkspaceError, match="split values \\['holdout'\\] found, expected train, val, test"):
        case_splits(demo_ws)
    # a revision file replaced on disk by one off the CT's grid is skipped with the reason, the rest export
    store = RevisionStore(demo_ws)
    update_case_metadata(demo_ws, "s0001", "split", None)
    write_meta_table(demo_ws)
    wrong = Volume(np.zeros((3, 4, 5), np.uint8), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), np.eye(3))
    with pytest.raises(WorkspaceError, match=r"labels of shape \(3, 4, 5\) do not match revision 0's"):
        store.add("s0002", {"native": wrong}, demo_ws.label_set(), author="dr.x", kind="human",
                  parent=store.latest("s0002").number)
    from curation.labels.labelmap import write_seg_nrrd

    damaged_revision(store.path(store.latest("s0002")))
    write_seg_nrrd(store.path(store.latest("s0002")), wrong, demo_ws.label_set())
    result = export_nnunet(demo_ws, tmp_path, 951, fallback="unreviewed")
    assert "labels on grid 'native' do not match ct.nrrd" in result.skipped["s0002"] and "s0001" in result.training
    for case_id in demo_ws.case_ids():  # when every case fails, the export says why, not 'no revision'
        (demo_ws.case_dir(case_id) / demo_ws.ct_name()).write_bytes(b"NRRD0004\ncut short")
    with pytest.raises(ModelError, match="no case could be exported, 3 failed: s0001: "):
        export_nnunet(demo_ws, tmp_path, 952, fallback="unreviewed")


def test_review_command(demo_ws: Workspace) -> None:
    ok = runner.invoke(app, ["review", "s0001", "approved", "--by", "dr.b", "-w", str(demo_ws.root)])
    assert ok.exit_code == 0
    assert "case s0001 revision 1 (import:segmentation.seg.nrrd): approved by dr.b" in " ".join(ok.output.split())
    bad = runner.invoke(app, ["review", "s0001", "fine", "--by", "dr.b", "-w", str(demo_ws.root)])
    assert bad.exit_code == 2 and "review status 'fine'" in " ".join(bad.output.split())
