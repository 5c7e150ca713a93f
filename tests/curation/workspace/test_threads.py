"""The libraries' threads of each worker: the machine's cores shared out among the workers (or the settings')."""

from __future__ import annotations

import pytest
import SimpleITK as sitk
from threadpoolctl import threadpool_info

from curation.errors import ConfigError, ExecutorError
from curation.workspace import threads as threads_module
from curation.workspace.executor import DaskExecutor, LocalExecutor, SerialExecutor, make_executor
from curation.workspace.settings import ExecutorSettings
from curation.workspace.threads import (
    apply_thread_budget,
    available_cores,
    limited_threads,
    thread_budget,
    threads_per_worker,
)


def _seen(_: object = None) -> tuple[int, int, tuple[int, ...]]:
    """What a task sees: its budget, SimpleITK's thread count, and the sizes of the BLAS/OpenMP pools."""
    return thread_budget(), sitk.ProcessObject.GetGlobalDefaultNumberOfThreads(), \
        tuple(sorted({pool["num_threads"] for pool in threadpool_info()}))


def test_the_cores_are_shared_out_among_the_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threads_module, "available_cores", lambda: 16)
    assert [threads_per_worker(n) for n in (1, 2, 3, 16, 40)] == [16, 8, 5, 1, 1]
    assert threads_per_worker(2, threads=3) == 3  # the settings' count wins
    with pytest.raises(ExecutorError, match=r"expected workers >= 1 and threads >= 0, found workers=0, threads=0; "
                                            r"give at least one worker"):
        threads_per_worker(0)
    with pytest.raises(ExecutorError, match=r"expected at least 1 thread, found 0; set --threads or \[executor\] "
                                            r"threads to 1 or more"):
        apply_thread_budget(0)
    with pytest.raises(ConfigError, match=r"setting 'executor.threads': expected 0 \(the cores shared out among "
                                          r"the workers\) or a positive count, found -1"):
        ExecutorSettings(threads=-1)


def test_a_block_limits_the_threads_and_puts_them_back() -> None:
    before = _seen()
    with limited_threads(1):
        budget, itk, pools = _seen()
        assert budget == 1 and itk == 1 and pools in ((1,), ())
    assert _seen() == before


def test_the_serial_executor_limits_threads_only_while_it_runs() -> None:
    before = _seen()
    items = SerialExecutor(threads=1).imap_unordered(_seen, [0, 1])
    _, first = next(items)
    assert first[:2] == (1, 1) and _seen() == before  # between items (and when the caller stops) the limits are back
    assert {s[:2] for _, s in items} == {(1, 1)}
    assert _seen() == before
    default = SerialExecutor()  # none given: the libraries stay as they are
    assert default.threads == 0 and {s for _, s in default.imap_unordered(_seen, [0])} == {before}


def test_each_pool_worker_gets_its_share() -> None:
    share = max(1, available_cores() // 2)
    with make_executor(ExecutorSettings(workers=2)) as pool:
        assert isinstance(pool, LocalExecutor) and pool.threads == share
        seen = {result for _, result in pool.imap_unordered(_seen, range(6))}
    assert seen == {(share, share, (share,))}
    with LocalExecutor(2, threads=3) as pool:
        assert {r[:2] for _, r in pool.imap_unordered(_seen, range(4))} == {(3, 3)}


def test_a_dask_task_runs_with_one_thread_unless_told_otherwise() -> None:
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with DaskExecutor(cluster.scheduler_address) as executor:
            assert {r[:2] for _, r in executor.imap_unordered(_seen, range(2))} == {(1, 1)}
        with DaskExecutor(cluster.scheduler_address, threads=2) as executor:
            assert {r[:2] for _, r in executor.imap_unordered(_seen, range(2))} == {(2, 2)}


def test_nrrd_compression_keeps_to_the_budget(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker's volumes are compressed on its share of the cores (it had taken up to 4 threads whatever its
    share, so 2 workers on 2 cores ran 4 busy threads, and a run told to use 1 thread used 2)."""
    import numpy as np

    from curation.image import volume as volume_module

    used: list[int] = []
    write = volume_module._write_gzip
    monkeypatch.setattr(volume_module, "_write_gzip", lambda *a: (used.append(a[3]), write(*a))[1])
    image = volume_module.Volume(np.zeros((20, 4, 4), np.int16), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), np.eye(3))
    with limited_threads(1):
        volume_module.write_nrrd(tmp_path / "one.nrrd", image)
    volume_module.write_nrrd(tmp_path / "told.nrrd", image, threads=3)
    volume_module.write_nrrd(tmp_path / "free.nrrd", image)
    assert used == [1, 3, min(4, sitk.ProcessObject.GetGlobalDefaultNumberOfThreads())]
