"""Error paths of the QA building blocks, and the same findings from every executor."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from curation import Volume, load_label_set
from curation.errors import ConfigError, QAError
from curation.workspace.executor import DaskExecutor, LocalExecutor, SerialExecutor
from qa import Finding, GridTolerance, LabelQASettings, Severity, compare_grids, find_cases, run_label_qa


def test_find_cases_errors(tmp_path: Path, make_case, ts: Path) -> None:
    with pytest.raises(QAError, match="no such folder; pass a workspace or a folder of case folders"):
        find_cases(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(QAError, match="no case folders with ct.nrrd / ct.nii.gz / ct.nii or labels"):
        find_cases(tmp_path / "empty")
    from curation import Workspace

    ws = Workspace.create(tmp_path / "ws")
    with pytest.raises(QAError, match=r"this workspace has no converted case yet; run 'ctcurate convert -w .*ws', "
                                      r"then 'ctcurate presegment' \(or import labels\)"):
        find_cases(ws.root)
    root = make_case("s0001", ts / "example_ct_sm.nii.gz").parent
    with pytest.raises(QAError, match=r"case\(s\) \['s0009'\] not found"):
        find_cases(root, cases=["s0009"])
    (root / ".tmp-s0002").mkdir()  # a temporary folder is not a case
    assert [c.case for c in find_cases(root)] == ["s0001"]


def test_finding_and_severity_errors() -> None:
    with pytest.raises(QAError, match="unknown check code 'laterality.flipped'"):
        Finding("s0001", "laterality.flipped", "error", "x")
    with pytest.raises(QAError, match="finding fov.tiny: severity 'fatal': expected one of error, warning, info"):
        Finding("s0001", "fov.tiny", "fatal", "x")
    with pytest.raises(ConfigError, match="severity 'fatal': expected one of error, warning, info"):
        Severity.parse("fatal")
    row = Finding("s0001", "fov.tiny", "WARNING", "m", values={"x": float("nan"), "v": np.float64(2.5)}).to_row()
    assert row["severity"] == "warning" and row["family"] == "fov" and row["values"] == '{"v": 2.5, "x": null}'


def test_compare_grids_tolerances() -> None:
    a = Volume(np.zeros((2, 3, 4), np.uint8), (1.0, 1.0, 2.0), (0.0, 0.0, 0.0), np.eye(3))
    same = Volume(np.zeros((2, 3, 4), np.uint8), (1.0, 1.0, 2.00001), (0.005, 0, 0), np.eye(3))
    assert compare_grids(a, same, GridTolerance()) == {}
    moved = Volume(np.zeros((2, 3, 4), np.uint8), (1.0, 1.0, 2.0), (0.0, 0.0, 3.0), np.diag([1.0, -1.0, -1.0]))
    diff = compare_grids(a, moved, GridTolerance())
    assert diff["origin_shift_mm"] == pytest.approx(3.0) and "direction" in diff and "size" not in diff


def test_unreadable_ct_is_a_finding_and_labels_are_still_checked(tmp_path: Path, make_case, ts: Path) -> None:
    case = make_case("s0001", None, multilabel=ts / "seg_v2_total117" / "example_seg_fast.nii.gz")
    (case / "ct.nii.gz").write_bytes(b"\x00" * 100)
    findings, stats = run_label_qa(find_cases(case.parent), LabelQASettings(load_label_set("total_v2")))
    unreadable = findings[findings["check"] == "storage.unreadable"]
    assert len(unreadable) == 1 and unreadable["file"].iloc[0].endswith("ct.nii.gz")
    assert len(stats) == 40 and stats["hu_mean"].isna().all()


def test_local_pool_and_dask_give_the_same_findings(tmp_path: Path, make_case, ts: Path, v2_map) -> None:
    from distributed import LocalCluster

    labels = v2_map.array.copy()
    labels[labels == 29] = 30  # vertebrae_L3 labelled as L2
    make_case("s0002", ts / "example_ct.nii.gz", multilabel=Volume(labels, v2_map.spacing, v2_map.origin,
                                                                  v2_map.direction))
    root = make_case("s0001", ts / "example_ct_sm.nii.gz",
                     masks=ts / "seg_v2_total117" / "example_seg_fast").parent
    cases = find_cases(root)
    settings = LabelQASettings(load_label_set("total_v2"))
    serial, serial_stats = run_label_qa(cases, settings, executor=SerialExecutor())
    with LocalExecutor(2) as pool:
        pooled, _ = run_label_qa(cases, settings, executor=pool, out_dir=tmp_path / "pool")
    assert sorted(p.name for p in (tmp_path / "pool" / "cases").iterdir()) == ["s0001.json", "s0002.json"]
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    with cluster, DaskExecutor(cluster.scheduler_address) as executor:
        dasked, dask_stats = run_label_qa(cases, settings, executor=executor, out_dir=tmp_path / "out")
    pd.testing.assert_frame_equal(serial, pooled)
    pd.testing.assert_frame_equal(serial, dasked)
    pd.testing.assert_frame_equal(serial_stats, dask_stats)
    assert "spine.missing_level" in set(serial["check"])
    assert (tmp_path / "out" / "label_findings.parquet").is_file()


def test_rerun_reuses_unchanged_cases_and_rechecks_edited_ones(tmp_path: Path, make_case, ts: Path, v2_map,
                                                                monkeypatch) -> None:
    import qa.labels

    root = make_case("s0001", ts / "example_ct.nii.gz",
                     multilabel=ts / "seg_v2_total117" / "example_seg_fast_force_split.nii.gz").parent
    make_case("s0002", ts / "example_ct.nii.gz", multilabel=v2_map)
    settings = LabelQASettings(load_label_set("total_v2"))
    first, first_stats = run_label_qa(find_cases(root), settings, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out" / "cases").iterdir()) == ["s0001.json", "s0002.json"]
    checked: list[str] = []
    real = qa.labels.check_case
    monkeypatch.setattr(qa.labels, "check_case",
                        lambda files, s, **kw: checked.append(files.case) or real(files, s, **kw))
    again, again_stats = run_label_qa(find_cases(root), settings, tmp_path / "out")
    assert checked == []
    pd.testing.assert_frame_equal(first, again)
    pd.testing.assert_frame_equal(first_stats, again_stats)
    labels = v2_map.array.copy()
    labels[labels == 3] = 0  # kidney_left removed from s0002
    (root / "s0002" / "segmentation.nii.gz").unlink()
    from curation import write_volume

    write_volume(root / "s0002" / "segmentation.nii.gz", Volume(labels, v2_map.spacing, v2_map.origin,
                                                                v2_map.direction))
    edited, _ = run_label_qa(find_cases(root), settings, tmp_path / "out")
    assert checked == ["s0002"]
    assert "fov.expected" in set(edited.loc[edited["case"] == "s0002", "check"])
    kept = tmp_path / "out" / "cases" / "s0001.json"  # results kept in another form (an older version's rows)
    data = json.loads(kept.read_text())
    for row in data["findings"]:
        del row["family"]
    kept.write_text(json.dumps(data))
    checked.clear()
    rechecked, _ = run_label_qa(find_cases(root), settings, tmp_path / "out")
    assert checked == ["s0001"]
    pd.testing.assert_frame_equal(rechecked, edited)


def test_slicer_file_maps_segments_by_name_and_reports_unknown_ones(tmp_path: Path, make_case, ts: Path) -> None:
    from curation import LabelSet, read_volume
    from curation.labels.labelmap import write_seg_nrrd

    v2 = load_label_set("total_v2")
    real = read_volume(ts / "seg_v2_total117" / "example_seg_fast.nii.gz")
    # a Slicer file numbering its segments 1, 2, 3 ... in its own order, plus one segment we do not know
    mine = LabelSet("slicer", "1", tuple(
        type(c)(n + 1, c.name, c.category, color=c.color) for n, c in enumerate(
            [v2.by_name("liver"), v2.by_name("spleen"), v2.by_name("kidney_left")])) + (
        type(v2.by_name("liver"))(4, "tumour", "other"),))
    array = np.zeros_like(real.array)
    for n, name in enumerate(("liver", "spleen", "kidney_left"), 1):
        array[real.array == v2.by_name(name).index] = n
    array[0, 0, :5] = 4
    case = make_case("s0001", ts / "example_ct_sm.nii.gz")
    write_seg_nrrd(case / "segmentation.seg.nrrd", Volume(array, real.spacing, real.origin, real.direction), mine)
    findings, stats = run_label_qa(find_cases(case.parent), LabelQASettings(v2))
    assert set(stats["structure"]) == {"liver", "spleen", "kidney_left"}
    liver = stats[stats["structure"] == "liver"].iloc[0]
    assert liver["index"] == v2.by_name("liver").index and liver["voxels"] == (real.array == 5).sum()
    unknown = findings[findings["check"] == "completeness.unknown_value"]
    assert set(unknown["structure"]) == {"tumour", ""} and (unknown["severity"] == "error").all()


def test_negative_values_in_a_label_map_are_reported_as_they_are(tmp_path: Path, make_case, ts: Path,
                                                                  v2_map) -> None:
    labels = v2_map.array.astype(np.int16)
    labels[0, 0, 0] = -1
    case = make_case("s0001", ts / "example_ct.nii.gz",
                     multilabel=Volume(labels, v2_map.spacing, v2_map.origin, v2_map.direction))
    findings, _ = run_label_qa(find_cases(case.parent), LabelQASettings(load_label_set("total_v2")))
    unknown = findings[findings["check"] == "completeness.unknown_value"]
    assert len(unknown) == 1 and "value -1 (1 voxels)" in unknown["message"].iloc[0]


def test_checks_failing_unforeseen_are_a_finding_and_the_traceback_is_logged(
        tmp_path: Path, make_case, ts: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import qa.labels

    def broken(*args: object, **kwargs: object) -> None:
        raise KeyError("simulated")

    case = make_case("s0001", None, multilabel=ts / "seg_v2_total117" / "example_seg_fast.nii.gz")
    monkeypatch.setattr(qa.labels, "load_case", broken)
    log = tmp_path / "qa-failures.log"  # any file given as error_log
    findings, _ = run_label_qa(find_cases(case.parent), LabelQASettings(load_label_set("total_v2")), error_log=log)
    assert findings["message"].tolist() == [f"{case}: checks could not run (KeyError: 'simulated') (details: {log})"]
    assert " qa labels s0001\n" in log.read_text() and "in broken" in log.read_text()
