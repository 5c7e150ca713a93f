"""Scan and convert benchmarks, each against baselines measured in the same run on the same data.

1. Builds an export of >= 10,000 files by copying real 512 x 512 CT slices from the shared data under
   new UIDs (one patient/study/series per copy of the source series).
2. Scan throughput (files/s): ``ctcurate scan`` as a whole (walk, header reading on the local pool,
   catalog, Parquet) on 1 and 2 workers (best of runs in one process; also the first run, whose pool starts the
   fork server), the whole command in a fresh process on 1 and 2 workers (Python's start, imports and the pool's
   start included; a new workspace each run, 1 and 2 workers alternating, the fastest of ``--rounds`` kept), and
   its header reader alone on one process, beside (a) a naive
   loop reading every file whole with pydicom and decoding its pixels, (b) a pydicom header-only loop
   (``stop_before_pixels``) and (c) GDCM's C++ scanner (``gdcm.Scanner``) on the same files and tags, on
   one process and on two. Warm cache for all; bytes read per file for ours, (a) and (b).
3. Native conversion time of one real series vs ``dcm2niix -e y`` (NRRD, gzip) on the same series.
4. Convert on a Dask LocalCluster with 2 workers vs 1 worker.

Usage: ``.venv/bin/python bench/bench_scan_convert.py [--files 10000] [--rounds 3] [--shared-data PATH]``; the
shared data default to ``$CTCURATE_SHARED_DATA``, else ``../shared/data`` beside the repository. Dask's scratch
space goes into the run's temporary folder, removed at the end.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pydicom
from bench_args import OneLineParser, at_least
from pydicom.uid import generate_uid

from curation.catalog.scan import IN_PROCESS_BELOW, read_headers, scan
from curation.dicom.tags import FIELDS
from curation.workspace.executor import DaskExecutor, LocalExecutor
from curation.workspace.layout import Workspace

REPO = Path(__file__).resolve().parent.parent
SOURCE = "dcm_qa_ct/In/Philips/S21570/S2010"  # real 512 x 512 x 28 CT series of the shared data
TS_DICOM = "totalsegmentator/example_ct_dicom"  # real JPEG 2000 512 x 512 x 20 CT series of the shared data


class CountingReader(io.FileIO):
    """A raw file that counts the bytes read through it."""

    total = 0

    def read(self, size: int = -1) -> bytes:  # type: ignore[override]
        data = super().read(size)
        CountingReader.total += len(data)
        return data

    def readinto(self, buffer) -> int:  # type: ignore[override]
        n = super().readinto(buffer)
        CountingReader.total += n or 0
        return n or 0


def build_export(source: Path, target: Path, n_files: int) -> list[Path]:
    slices = sorted(p for p in source.iterdir() if p.is_file() and p.name != "DIRFILE")
    datasets = [pydicom.dcmread(p) for p in slices]
    written: list[Path] = []
    copy = 0
    while len(written) < n_files:
        study, series, frame = generate_uid(), generate_uid(), generate_uid()
        folder = target / f"P{copy:04d}" / "ST1" / "SE1"
        folder.mkdir(parents=True)
        for i, ds in enumerate(datasets):
            ds.PatientID = f"BENCH{copy:05d}"
            ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
            ds.SOPInstanceUID = generate_uid()
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            path = folder / f"IM{i:04d}.dcm"
            ds.save_as(path)
            written.append(path)
        copy += 1
    return written


def naive_loop(paths: list[Path]) -> tuple[float, int]:
    CountingReader.total = 0
    start = time.perf_counter()
    for p in paths:
        with CountingReader(p) as raw:
            ds = pydicom.dcmread(io.BufferedReader(raw))
            _ = ds.pixel_array
    return time.perf_counter() - start, CountingReader.total


def header_loop(paths: list[Path]) -> tuple[float, int]:
    CountingReader.total = 0
    start = time.perf_counter()
    for p in paths:
        with CountingReader(p) as raw:
            pydicom.dcmread(io.BufferedReader(raw), stop_before_pixels=True)
    return time.perf_counter() - start, CountingReader.total


def ctcurate_scan(root: Path, workers: int, tmp: Path) -> tuple[float, int]:
    """``ctcurate scan`` into a new workspace, timed from the walk to the written catalog (pool start included)."""
    ws = Workspace.create(tmp / f"scan-ws{workers}")
    start = time.perf_counter()
    with LocalExecutor(workers, preload=["curation.catalog.scan"]) as pool:  # as ``ctcurate scan`` starts it
        scan(ws, [root], executor=pool)
    elapsed = time.perf_counter() - start
    total = int(pd.read_parquet(ws.files_table, columns=["bytes_read"])["bytes_read"].sum())
    shutil.rmtree(ws.root)
    return elapsed, total


def ctcurate_command(root: Path, workers: int, tmp: Path) -> float:
    """The ``ctcurate scan`` command in a fresh process into a new workspace, timed as a user sees it (Python's
    start, the imports and the pool's start included)."""
    ws = Workspace.create(tmp / "scan-command")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "ctcurate", "scan", str(root), "-w", str(ws.root), "--workers",
                    str(workers)], check=True, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    shutil.rmtree(ws.root)
    return elapsed


def ctcurate_command_pairs(root: Path, tmp: Path, rounds: int) -> dict[int, float]:
    """The fresh-process command on 1 and 2 workers, alternating, ``rounds`` times; the fastest of each."""
    best = {1: float("inf"), 2: float("inf")}
    for _ in range(rounds):
        for workers in (1, 2):
            best[workers] = min(best[workers], ctcurate_command(root, workers, tmp))
    return best


def reader_alone(paths: list[Path]) -> float:
    start = time.perf_counter()
    read_headers([str(p) for p in paths])
    return time.perf_counter() - start


def _gdcm_scan(paths: list[str]) -> int:
    import gdcm

    scanner = gdcm.Scanner()
    for tag, _name, _kind in FIELDS:
        scanner.AddTag(gdcm.Tag(tag >> 16, tag & 0xFFFF))
    if not scanner.Scan(paths):
        raise RuntimeError("gdcm.Scanner failed")
    return len(paths)


def gdcm_scanner(paths: list[Path], processes: int) -> float:
    """GDCM's scanner on the catalog's tags, the files split evenly over ``processes`` processes."""
    names = [str(p) for p in paths]
    parts = [names[i::processes] for i in range(processes)]
    start = time.perf_counter()
    if processes == 1:
        _gdcm_scan(names)
    else:
        # forked: the fork server is left for ctcurate's pool, which starts it with its modules, as a command does
        with multiprocessing.get_context("fork").Pool(processes) as pool:
            pool.map(_gdcm_scan, parts)
    return time.perf_counter() - start


def convert_native(paths: list[str], out: Path, level: int) -> float:
    from curation.dicom.series import load_series
    from curation.image.volume import write_nrrd

    start = time.perf_counter()
    write_nrrd(out, load_series(paths), compression_level=level)
    return time.perf_counter() - start


def dcm2niix_exe() -> str | None:
    beside = Path(sys.executable).parent / "dcm2niix"
    return shutil.which("dcm2niix") or (str(beside) if beside.is_file() else None)


def dcm2niix(folder: Path, out: Path, level: int) -> float:
    exe = dcm2niix_exe()
    assert exe is not None  # checked before the run
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    subprocess.run([exe, "-e", "y", "-z", "y", f"-{level}", "-f", "ct", "-o", str(out), str(folder)], check=True,
                   capture_output=True, text=True)
    return time.perf_counter() - start


def dask_convert(exports: list[Path], workers: int, tmp: Path) -> float:
    import dask
    from distributed import LocalCluster

    from curation.cases.convert import convert
    from curation.catalog.scan import scan
    from curation.selection.filter import run_filter
    from curation.selection.sample import sample
    from curation.workspace.executor import SerialExecutor
    from curation.workspace.layout import Workspace

    ws = Workspace.create(tmp / f"ws{workers}")
    scan(ws, exports, executor=SerialExecutor())
    sample(ws, n=0, seed=1)
    run_filter(ws)
    # the scheduler's and the workers' scratch space (dask-scratch-space) in the run's temporary folder, not TMPDIR
    with dask.config.set({"temporary-directory": str(tmp / "dask")}):
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
        with cluster, DaskExecutor(cluster.scheduler_address) as executor:
            start = time.perf_counter()
            convert(ws, executor=executor)
            return time.perf_counter() - start


def default_shared_data() -> Path:
    return Path(os.environ.get("CTCURATE_SHARED_DATA") or REPO.parent / "shared" / "data")


def check_inputs(shared: Path) -> str | None:
    """What the run needs and lacks, as one line naming the path and the fix; None if nothing is missing."""
    fix = "pass --shared-data PATH or set CTCURATE_SHARED_DATA"
    if not shared.is_dir():
        return f"shared data not found at {shared}: {fix}"
    for series in (SOURCE, TS_DICOM):
        folder = shared / series
        if not folder.is_dir() or not any(p.is_file() and p.name != "DIRFILE" for p in folder.iterdir()):
            return f"series not found at {folder}: {fix} (the folder holding {series.split('/')[0]}/)"
    if dcm2niix_exe() is None:
        return (f"dcm2niix not found on PATH nor beside {sys.executable}: install the test extra "
                "(pip install -e '.[test]')")
    return None


def main() -> None:
    parser = OneLineParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--files", type=at_least(1), default=10_000,
                        help="Files of the export built for the scan, 1 or more (whole copies of a real series of "
                             "28 slices, so rounded up to a multiple of 28; default 10000).")
    parser.add_argument("--rounds", type=at_least(1), default=3,
                        help="Runs of the 'ctcurate scan' command in a fresh process on each of 1 and 2 workers, "
                             "alternating; the fastest of each is shown (default 3).")
    parser.add_argument("--shared-data", type=Path, default=default_shared_data(),
                        help=f"Folder of the shared real DICOM (needs {SOURCE} and {TS_DICOM} in it; default "
                             "$CTCURATE_SHARED_DATA, else ../shared/data beside the repository: %(default)s).")
    args = parser.parse_args()
    problem = check_inputs(args.shared_data)
    if problem:
        sys.exit(f"{parser.prog}: {problem}")
    source = args.shared_data / SOURCE
    tmp = Path(tempfile.mkdtemp(prefix="ctcurate-bench-"))
    try:
        export = tmp / "export"
        paths = build_export(source, export, args.files)
        slice_bytes = paths[0].stat().st_size
        print(f"export: {len(paths)} files of ~{slice_bytes / 1024:.0f} KiB (512x512 CT slices from {source.name})")
        if len(paths) < IN_PROCESS_BELOW:
            print(f"  (fewer than {IN_PROCESS_BELOW} files: 'ctcurate scan' reads them in its own process on 2 workers "
                  "too, so its 2-worker figures below are not the pool's; ask for more --files)")
        for p in paths:  # warm the page cache for every contender
            p.read_bytes()
        sample_paths = paths[:: max(1, len(paths) // 1000)]
        t_naive, b_naive = naive_loop(sample_paths)
        t_header, b_header = header_loop(paths)
        t_reader = min(reader_alone(paths) for _ in range(2))
        t_gdcm1 = min(gdcm_scanner(paths, 1) for _ in range(2))
        t_gdcm2 = min(gdcm_scanner(paths, 2) for _ in range(2))
        runs2 = [ctcurate_scan(export, 2, tmp) for _ in range(4)]  # the first starts the pool's fork server
        runs1 = [ctcurate_scan(export, 1, tmp) for _ in range(2)]
        (t_one, _), (t_two, b_ours) = min(runs1), min(runs2[1:])
        t_first = runs2[0][0]
        commands = ctcurate_command_pairs(export, tmp, args.rounds)
        n = len(paths)
        naive_rate, header_rate = len(sample_paths) / t_naive, n / t_header
        gdcm1_rate, gdcm2_rate, two_rate = n / t_gdcm1, n / t_gdcm2, n / t_two
        print(f"scan (a) naive pydicom read + decode, 1 proc : {naive_rate:9.0f} files/s, "
              f"{b_naive / len(sample_paths):9.0f} bytes/file (on a subset)")
        print(f"scan (b) pydicom header-only, 1 proc        : {header_rate:9.0f} files/s, "
              f"{b_header / n:9.0f} bytes/file")
        print(f"scan (c) GDCM scanner (C++), 1 proc         : {gdcm1_rate:9.0f} files/s")
        print(f"scan (c) GDCM scanner (C++), 2 procs        : {gdcm2_rate:9.0f} files/s")
        print(f"scan ctcurate header reader alone, 1 proc   : {n / t_reader:9.0f} files/s")
        print(f"scan ctcurate scan, 1 worker (walk+catalog) : {n / t_one:9.0f} files/s")
        print(f"scan ctcurate scan, 2 workers (walk+catalog): {two_rate:9.0f} files/s, {b_ours / n:9.0f} bytes/file")
        print(f"scan ctcurate scan, 2 workers, the process's first (its pool's fork server starting and loading "
              f"the scan's modules): {n / t_first:.0f} files/s ({t_first:.2f} s)")
        for workers, seconds in commands.items():
            print(f"scan 'ctcurate scan --workers {workers}' command in a fresh process (Python's start, imports, pool "
                  f"start; new workspace, fastest of {args.rounds}): {n / seconds:.0f} files/s ({seconds:.2f} s)")
        print(f"  throughput ratios (above 1: ctcurate faster), ctcurate scan on 2 workers: vs (b) "
              f"{two_rate / header_rate:.2f}x, vs (c) 1 proc {two_rate / gdcm1_rate:.2f}x, vs (c) 2 procs "
              f"{two_rate / gdcm2_rate:.2f}x, vs (a) "
              f"{two_rate / naive_rate:.1f}x; 2 workers vs 1 (in one process, pool started): {t_one / t_two:.2f}x")
        print(f"  2 workers vs 1, the whole 'ctcurate scan' command in a fresh process (start included; 1 and 2 "
              f"alternating, fastest of {args.rounds} each): {commands[1] / commands[2]:.2f}x; in one process with "
              f"the pool started (walk+catalog only): {t_one / t_two:.2f}x")
        print(f"  bytes/file vs (a): 1/{(b_naive / len(sample_paths)) / (b_ours / n):.0f}")
        ts = args.shared_data / TS_DICOM
        for name, folder in (("Philips 512x512x28", source), ("TotalSegmentator J2K 512x512x20", ts)):
            files = [str(p) for p in sorted(folder.iterdir()) if p.name != "DIRFILE"]
            for level in (1, 6):
                ours = min(convert_native(files, tmp / "ours.nrrd", level) for _ in range(3))
                theirs = min(dcm2niix(folder, tmp / "d2n", level) for _ in range(3))
                print(f"convert native {name}, gzip level {level}: ctcurate {ours:.2f} s, dcm2niix {theirs:.2f} s, "
                      f"time ratio ctcurate/dcm2niix {ours / theirs:.2f} (below 1: ctcurate faster)")
        copies = sorted(export.iterdir())[:8]  # 8 exams of the 512 x 512 x 28 series
        t1 = dask_convert(copies, 1, tmp)
        t2 = dask_convert(copies, 2, tmp)
        print(f"convert {len(copies)} cases on Dask: 1 worker {t1:.2f} s, 2 workers {t2:.2f} s, "
              f"speed-up {t1 / t2:.2f}x")
    except subprocess.CalledProcessError as error:
        last = (error.stderr or "").strip().splitlines()[-1:] or ["no output"]
        sys.exit(f"{parser.prog}: '{' '.join(map(str, error.cmd))}' failed (exit {error.returncode}): {last[0]}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
