"""Acceptance 4: NRRD geometry and voxels agree with SimpleITK and dcm2niix; resampled copies cover the
same extent. Also the executor paths (local pool and a real Dask LocalCluster)."""

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from curation.cases.convert import convert
from curation.image.volume import Volume, read_nrrd
from curation.workspace.executor import DaskExecutor, LocalExecutor, SerialExecutor

TS = "totalsegmentator/example_ct_dicom"


def reorient_like(other: Volume, reference: Volume) -> np.ndarray:
    """``other``'s array in ``reference``'s index order; fails unless the grids coincide by a signed
    permutation of axes."""
    to_other = np.linalg.inv(other.direction * np.asarray(other.spacing))
    mapping = to_other @ (reference.direction * np.asarray(reference.spacing))
    rounded = np.round(mapping)
    assert np.allclose(mapping, rounded, atol=1e-4), mapping
    array = other.array  # (z, y, x) = index axes (2, 1, 0)
    axes_zyx = []
    flips = []
    for ref_axis in (2, 1, 0):  # reference z, y, x
        column = rounded[:, ref_axis]
        other_axis = int(np.flatnonzero(column)[0])
        axes_zyx.append(2 - other_axis)
        flips.append(column[other_axis] < 0)
    out = np.transpose(array, axes_zyx)
    for axis, flip in enumerate(flips):
        if flip:
            out = np.flip(out, axis=axis)
    return out


def _corner_sets_match(a: Volume, b: Volume, tol: float) -> None:
    ca = sorted(map(tuple, np.round(a.corners(), 6)))
    cb = sorted(map(tuple, np.round(b.corners(), 6)))
    assert np.abs(np.asarray(ca) - np.asarray(cb)).max() < tol


@pytest.fixture()
def converted_ts(copy_series, filtered_workspace):
    ws = filtered_workspace(copy_series(TS))
    result = convert(ws, executor=SerialExecutor())
    assert result.converted == ("s0001",) and not result.failed
    return ws


def test_native_matches_simpleitk(converted_ts, shared_data: Path) -> None:
    ours = read_nrrd(converted_ts.case_dir("s0001") / "ct.nrrd")
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(shared_data / TS)))
    theirs = Volume.from_sitk(reader.Execute())
    _corner_sets_match(ours, theirs, 1e-3)
    assert np.array_equal(reorient_like(theirs, ours), ours.array)
    assert ours.array.dtype == np.int16


def test_native_matches_dcm2niix(converted_ts, shared_data: Path, tmp_path: Path) -> None:
    exe = shutil.which("dcm2niix") or str(Path(__import__("sys").executable).parent / "dcm2niix")
    subprocess.run([exe, "-e", "y", "-z", "y", "-f", "ct", "-o", str(tmp_path), str(shared_data / TS)],
                   check=True, capture_output=True)
    header = next(tmp_path.glob("ct.nhdr"))
    theirs = read_nrrd(header)
    ours = read_nrrd(converted_ts.case_dir("s0001") / "ct.nrrd")
    _corner_sets_match(ours, theirs, 1e-3)
    assert np.array_equal(reorient_like(theirs, ours), ours.array)


def test_resampled_copies_cover_same_extent(converted_ts) -> None:
    case = converted_ts.case_dir("s0001")
    native = read_nrrd(case / "ct.nrrd")
    for spacing in (1.5, 3.0):
        copy = read_nrrd(case / f"ct_{spacing:g}mm.nrrd")
        assert copy.spacing == pytest.approx((spacing,) * 3)
        assert np.allclose(copy.direction, native.direction)
        assert np.abs(copy.corners() - native.corners()).max() <= spacing / 2 + 1e-6
        assert abs(float(copy.array.mean()) - float(native.array.mean())) < 20
    meta = json.loads((case / "case.json").read_text())
    assert set(meta["volume"]["files"]) == {"ct.nrrd", "ct_1.5mm.nrrd", "ct_3mm.nrrd"}
    table = pd.read_parquet(converted_ts.meta_table)
    assert list(table["case_id"]) == ["s0001"]
    assert (converted_ts.meta_csv.read_text().splitlines()[0]).startswith("case_id;")


def test_rerun_skips_finished_cases(converted_ts) -> None:
    before = (converted_ts.case_dir("s0001") / "ct.nrrd").stat().st_mtime_ns
    result = convert(converted_ts, executor=SerialExecutor())
    assert result.skipped == ("s0001",) and not result.converted
    assert (converted_ts.case_dir("s0001") / "ct.nrrd").stat().st_mtime_ns == before


def _demo_outputs(ws) -> dict[str, bytes]:
    return {str(p.relative_to(ws.releasable)): p.read_bytes() for p in sorted(ws.cases_dir.rglob("*")) if p.is_file()}


def test_local_pool_and_dask_give_same_cases(demo_export: Path, filtered_workspace) -> None:
    from distributed import LocalCluster

    serial_ws = filtered_workspace(demo_export, "serial")
    convert(serial_ws, executor=SerialExecutor())
    pool_ws = filtered_workspace(demo_export, "pool")
    shutil.copy(serial_ws.secret_path, pool_ws.secret_path)
    with LocalExecutor(2) as pool:
        convert(pool_ws, executor=pool)
    dask_ws = filtered_workspace(demo_export, "dask")
    shutil.copy(serial_ws.secret_path, dask_ws.secret_path)
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    with cluster, DaskExecutor(cluster.scheduler_address) as executor:
        assert executor.workers == 2
        result = convert(dask_ws, executor=executor)
    assert len(result.converted) == 3
    reference = _demo_outputs(serial_ws)
    assert _demo_outputs(pool_ws) == reference
    assert _demo_outputs(dask_ws) == reference


def test_unreachable_scheduler() -> None:
    from curation.errors import ExecutorError

    with pytest.raises(ExecutorError, match="cannot connect"):
        DaskExecutor("tcp://127.0.0.1:1", timeout_s=1)


def test_a_case_failing_unforeseen_is_one_line_and_its_traceback_is_logged(
        copy_series, filtered_workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    module = sys.modules["curation.cases.convert"]  # the package's 'convert' is the function

    def broken(task):
        raise RuntimeError("simulated fault inside the conversion")

    ws = filtered_workspace(copy_series(TS))
    monkeypatch.setattr(module, "convert_case", broken)
    result = convert(ws, executor=SerialExecutor())
    assert list(result.failed) == ["s0001"]
    assert result.failed["s0001"].endswith(f"RuntimeError: simulated fault inside the conversion "
                                           f"(details: {ws.error_log})")
    log = ws.error_log.read_text()
    assert " convert s0001\n" in log and "in broken" in log and "Traceback" in log
