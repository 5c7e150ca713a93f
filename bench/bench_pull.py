"""Retrieval throughput of ``ctcurate pull`` vs a plain sequential WADO-RS loop, on the same series of a real PACS.

1. Starts Orthanc with its DICOMweb plugin (Debian packages ``orthanc``, ``orthanc-dicomweb``) on a free
   loopback port and loads it with ``--series`` series of real 512 x 512 CT slices from the shared data
   (the Philips head series, copied under new UIDs).
2. Baseline: a plain loop that asks for each instance in turn (QIDO-RS instance list, then one WADO-RS
   request per instance) and saves it.
3. A second sequential loop with one WADO-RS request per series (shows where the baseline's time goes).
4. ctcurate: :func:`curation.pacs.retrieve.retrieve_series` for every series, ``--workers`` series at a time, as
   ``pull`` runs it (one streamed request per series, atomic writes, each file read back and checked).
5. The same retrieval over DIMSE (C-GET), for a PACS without DICOMweb.
6. A rerun of ctcurate's retrieval on the complete folders (what a resumed ``pull`` costs when nothing is missing).

Prints instances/s for both and the ratio ctcurate / baseline (higher is better).
Usage: ``.venv/bin/python bench/bench_pull.py [--series 8] [--workers 4] [--shared-data ../shared/data]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pydicom
from pydicom.uid import generate_uid

from curation.pacs.dicomweb import DicomWebSource, list_instances
from curation.pacs.dimse import DimseSource
from curation.pacs.local import LocalOrthanc, orthanc_installed
from curation.pacs.retrieve import retrieve_series

REPO = Path(__file__).resolve().parent.parent

SOURCE = Path("dcm_qa_ct/In/Philips/S21570/S2010")  # 28 real 512 x 512 CT slices


def make_series(source: Path, target: Path, n_series: int) -> list[tuple[str, str]]:
    """Copies of a real series under new UIDs; returns (study UID, series UID) of each."""
    datasets = [pydicom.dcmread(p) for p in sorted(source.iterdir()) if p.is_file() and p.name != "DIRFILE"]
    made = []
    for copy in range(n_series):
        study, series, frame = generate_uid(), generate_uid(), generate_uid()
        for i, ds in enumerate(datasets):
            ds.PatientID = f"BENCH{copy:04d}"
            ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
            ds.SOPInstanceUID = generate_uid()
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.save_as(target / f"{copy:03d}-{i:04d}.dcm")
        made.append((study, series))
    return made


def baseline(source: DicomWebSource, series: list[tuple[str, str]], out: Path) -> tuple[float, int]:
    """Sequential: list the instances of each series, then fetch and save them one request at a time."""
    client = source.client()
    start, n = time.perf_counter(), 0
    for study, uid in series:
        for sop in list_instances(source, study, uid):
            client.retrieve_instance(study, uid, sop).save_as(out / f"{sop}.dcm", enforce_file_format=True)
            n += 1
    return time.perf_counter() - start, n


def series_loop(source: DicomWebSource, series: list[tuple[str, str]], out: Path) -> tuple[float, int]:
    """Sequential too, but one WADO-RS request per series (where the baseline's time goes: per-request costs)."""
    client = source.client()
    start, n = time.perf_counter(), 0
    for study, uid in series:
        for ds in client.retrieve_series(study, uid):
            ds.save_as(out / f"{ds.SOPInstanceUID}.dcm", enforce_file_format=True)
            n += 1
    return time.perf_counter() - start, n


def ctcurate(source: DicomWebSource, series: list[tuple[str, str]], out: Path, workers: int) -> tuple[float, int]:
    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(lambda s: retrieve_series(source, s[0], s[1], out / s[1]), series))
    return time.perf_counter() - start, sum(len(r.fetched) for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--series", type=int, default=8)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--shared-data", type=Path, default=REPO.parent / "shared" / "data")
    args = parser.parse_args()
    if not orthanc_installed():
        sys.exit("Orthanc with its DICOMweb plugin is needed: apt-get install orthanc orthanc-dicomweb")
    server = LocalOrthanc().start()
    try:
        with tempfile.TemporaryDirectory(prefix="ctcurate-bench-pull-") as tmp:
            root = Path(tmp)
            (root / "src").mkdir()
            series = make_series(args.shared_data / SOURCE, root / "src", args.series)
            server.load((root / "src").iterdir())
            n_total = len(server.accepted)
            source = DicomWebSource(server.dicomweb)
            (root / "base").mkdir()
            t_base, n_base = baseline(source, series, root / "base")
            (root / "series").mkdir()
            t_series, n_series = series_loop(source, series, root / "series")
            t_ours, n_ours = ctcurate(source, series, root / "ours", args.workers)
            t_again, n_again = ctcurate(source, series, root / "ours", args.workers)
            t_dimse, n_dimse = ctcurate(DimseSource(server.dimse), series, root / "dimse", args.workers)
        assert n_base == n_series == n_ours == n_dimse == n_total and n_again == 0
        print(f"Orthanc loaded with {args.series} copies of a real 512 x 512 CT series ({n_total} instances)")
        print(f"baseline (sequential WADO-RS, one instance per request): {n_base / t_base:8.1f} instances/s "
              f"({t_base:.2f} s)")
        print(f"sequential, one WADO-RS request per series:              {n_series / t_series:8.1f} instances/s "
              f"({t_series:.2f} s)")
        print(f"ctcurate retrieve_series, {args.workers} series at a time:  {n_ours / t_ours:8.1f} instances/s "
              f"({t_ours:.2f} s)")
        print(f"ratio ctcurate / baseline: {t_base / t_ours * n_ours / n_base:.1f}x "
              f"(ctcurate / per-series loop: {t_series / t_ours * n_ours / n_series:.1f}x; ctcurate also reads "
              "each file back and writes atomically)")
        print(f"ctcurate over DIMSE (C-GET), {args.workers} series at a time: {n_dimse / t_dimse:8.1f} instances/s "
              f"({t_dimse:.2f} s)")
        print(f"rerun on complete folders (resume, nothing missing): {t_again:.2f} s, {n_again} fetched")
    finally:
        server.close()


if __name__ == "__main__":
    main()
