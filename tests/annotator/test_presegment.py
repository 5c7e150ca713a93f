"""``presegment`` on a workspace: revision 0 by the model on every grid, reruns skip, bad cases are recorded."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from annotator.registry import register_model
from ctcurate.cli import app
from curation import Workspace, load_label_set, read_volume, resample_isotropic, write_nrrd
from curation.annotation.revisions import RevisionStore
from curation.labels.labelmap import read_seg_nrrd
from tests.cli_runner import CliRunner

from .test_segment import LEARNED, SMALL, dice

V2 = load_label_set("total_v2")
runner = CliRunner()


def _workspace(tmp_path: Path, ts: Path) -> Workspace:
    ws = Workspace.create(tmp_path / "ws")
    ct = read_volume(ts / "example_ct.nii.gz")
    ct = type(ct)(ct.array.astype(np.int16), ct.spacing, ct.origin, ct.direction)
    write_nrrd(ws.case_dir("s0001") / "ct.nrrd", ct)
    for spacing in (1.5, 3.0):
        write_nrrd(ws.case_dir("s0001") / ws.ct_name(spacing), resample_isotropic(ct, spacing))
    (ws.case_dir("s0002")).mkdir(parents=True)
    (ws.case_dir("s0002") / "ct.nrrd").write_bytes(b"NRRD0004\nbroken")
    register_model(ws, "small", [SMALL])
    return ws


def test_presegment_stores_revision_zero_on_every_grid(tmp_path: Path, ts: Path) -> None:
    ws = _workspace(tmp_path, ts)
    result = runner.invoke(app, ["presegment", "small", "-w", str(ws.root), "--workers", "1"])
    assert result.exit_code == 1, result.output  # s0002 is broken
    assert "1 segmented, 0 already had a revision, 1 failed" in result.output and "s0002" in result.output
    store = RevisionStore(ws)
    revision = store.latest("s0001")
    assert revision is not None and revision.number == 0 and revision.author == "model:small@v1"
    assert set(revision.files) == {"native", "1.5", "3"}
    truth = read_volume(ts / "seg_v2_total117" / "example_seg_fast_force_split.nii.gz")
    labels, segments = read_seg_nrrd(store.path(revision))
    assert len(segments) == 117
    for name in LEARNED:
        k = V2.by_name(name).index
        assert dice(labels.array == k, truth.array == k) >= 0.8, name
    fine, _ = read_seg_nrrd(store.path(revision, "1.5"))
    ct_fine = read_volume(ws.case_dir("s0001") / "ct_1.5mm.nrrd")
    assert fine.array.shape == ct_fine.array.shape and np.allclose(fine.origin, ct_fine.origin, atol=1e-3)
    assert revision.changes["liver"] > 1000
    again = runner.invoke(app, ["presegment", "small", "-w", str(ws.root), "--workers", "1", "--case", "s0001"])
    assert again.exit_code == 0 and "0 segmented, 1 already had a revision" in again.output
    assert len(store.history("s0001")) == 1
    # QA of the workspace checks the latest revision of each case
    from qa import find_cases

    files = {c.case: c for c in find_cases(ws.root)}
    assert files["s0001"].multilabel == store.path(revision)


def test_kill_mid_batch_then_rerun_completes_without_duplicates(tmp_path: Path, ts: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    ws = Workspace.create(tmp_path / "ws")
    ct = read_volume(ts / "example_ct_sm.nii.gz")
    for case_id in ("s0001", "s0002", "s0003"):
        write_nrrd(ws.case_dir(case_id) / "ct.nrrd", ct)
    register_model(ws, "small", [SMALL])
    store = RevisionStore(ws)
    proc = subprocess.Popen([sys.executable, "-m", "ctcurate.cli", "presegment", "small", "-w", str(ws.root),
                             "--workers", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and not store.cases_with_revisions():
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    finished = store.cases_with_revisions()
    assert 1 <= len(finished) < 3, "the batch must be killed after its first case and before its last"
    result = runner.invoke(app, ["presegment", "small", "-w", str(ws.root), "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert f"{3 - len(finished)} segmented, {len(finished)} already had a revision, 0 failed" in result.output
    for case_id in ("s0001", "s0002", "s0003"):
        assert [r.number for r in store.history(case_id)] == [0]
        names = sorted(p.name for p in store.folder(case_id).iterdir())
        assert names == ["r0000.seg.nrrd"]  # no temporaries, no second copy


def test_presegment_on_a_dask_cluster_gives_the_same_labels(tmp_path: Path, ts: Path) -> None:
    from distributed import LocalCluster

    from annotator.presegment import presegment
    from curation.workspace.executor import DaskExecutor, SerialExecutor

    results = []
    for name, make in (("serial", None), ("dask", "dask")):
        ws = Workspace.create(tmp_path / name)
        write_nrrd(ws.case_dir("s0001") / "ct.nrrd", read_volume(ts / "example_ct_sm.nii.gz"))
        register_model(ws, "small", [SMALL])
        if make is None:
            result = presegment(ws, "small", executor=SerialExecutor())
        else:
            cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None)
            with cluster, DaskExecutor(cluster.scheduler_address) as executor:
                result = presegment(ws, "small", executor=executor)
        assert result.done == ["s0001"] and not result.failed
        store = RevisionStore(ws)
        results.append(read_seg_nrrd(store.path(store.latest("s0001")))[0].array)
    assert np.array_equal(results[0], results[1]) and (results[0] == V2.by_name("liver").index).sum() > 1000


def test_a_case_failing_unforeseen_is_one_line_and_its_traceback_is_logged(tmp_path: Path, ts: Path,
                                                                           monkeypatch) -> None:
    import annotator.presegment as module
    from curation.workspace.executor import SerialExecutor

    def broken(*args: object, **kwargs: object) -> None:
        raise ValueError("simulated fault inside the model")

    ws = _workspace(tmp_path, ts)
    monkeypatch.setattr(module, "presegment_case", broken)
    result = module.presegment(ws, "small", cases=["s0001"], executor=SerialExecutor())
    assert result.failed == {"s0001": f"ValueError: simulated fault inside the model (details: {ws.error_log})"}
    assert " presegment s0001\n" in ws.error_log.read_text()


def test_a_model_changed_since_registration_stops_the_batch_with_one_line(tmp_path: Path, ts: Path) -> None:
    import shutil

    ws = _workspace(tmp_path, ts)
    (ws.case_dir("s0002") / "ct.nrrd").unlink()
    shutil.copytree(ws.case_dir("s0001"), ws.case_dir("s0002"), dirs_exist_ok=True)
    model = tmp_path / SMALL.name
    shutil.copytree(SMALL, model)
    register_model(ws, "copy", [model])
    with open(model / "fold_all" / "checkpoint_final.pth", "ab") as handle:
        handle.write(b"\0")
    result = runner.invoke(app, ["presegment", "copy", "-w", str(ws.root), "--workers", "1"])
    assert result.exit_code == 2, result.output
    assert result.output.count("changed since it was registered") == 1 and "s0002" not in result.output
