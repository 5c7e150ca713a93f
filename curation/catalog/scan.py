"""``ctcurate scan``: index export folders into the private catalog, reading headers only.

Files are found by walking the folders (DICOMDIR and vendor index files are not needed, and are
catalogued as non-image objects when present). Headers are read in parallel batches on the
executor. A rescan reuses the rows of files whose size and modification time did not change.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from curation.atomic import TMP_PREFIX, atomic_write_parquet, atomic_write_text
from curation.catalog.sources import add_sources, require_sources
from curation.dicom.header import read_header
from curation.dicom.tags import FIELDS, is_image_sop_class
from curation.errors import ScanError
from curation.workspace.executor import Executor, make_executor
from curation.workspace.layout import Workspace

from .grouping import build_catalog

__all__ = ["ScanResult", "find_files", "read_headers", "records_to_frame", "scan"]

log = logging.getLogger(__name__)
BATCH_SIZE = 128
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ScanResult:
    """What a scan found and did."""

    n_files: int
    n_read: int
    n_reused: int
    n_removed: int
    n_series: int
    n_studies: int                 # exams (studies) holding at least one image series
    n_patients: int                # patients of those exams
    n_ct_exams: int = 0            # exams with a CT series: the sampling frame of 'ctcurate sample'
    n_ct_series: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    skipped_folders: tuple[str, ...] = ()  # folders that could not be listed (their files are not in the catalog)


def find_files(roots: Iterable[str | os.PathLike[str]], skipped: list[str] | None = None) -> list[str]:
    """All regular files below ``roots`` (sorted, symlinks followed, loops avoided), named through the roots as
    given (absolute, not resolved). Folders that cannot be listed are added to ``skipped`` and passed over."""
    found: list[str] = []
    seen_dirs: set[tuple[int, int]] = set()
    stack: list[str] = []
    for root in roots:
        path = Path(os.path.abspath(root))
        if not path.exists():
            raise ScanError(f"{path}: export folder not found; check the path (it must exist and be readable)")
        if path.is_file():
            found.append(str(path))
        else:
            stack.append(str(path))
    while stack:
        folder = stack.pop()
        try:
            st = os.stat(folder)
            if (st.st_dev, st.st_ino) in seen_dirs:
                continue
            seen_dirs.add((st.st_dev, st.st_ino))
            with os.scandir(folder) as entries:
                for entry in entries:
                    if entry.name.startswith(TMP_PREFIX):
                        continue
                    if entry.is_dir(follow_symlinks=True):
                        stack.append(entry.path)
                    elif entry.is_file(follow_symlinks=True):
                        found.append(entry.path)
        except OSError as exc:
            log.warning("%s: cannot list folder (%s); skipped", folder, exc.strerror)
            if skipped is not None:
                skipped.append(folder)
    return sorted(set(found))


def read_headers(paths: Sequence[str]) -> list[dict[str, Any]]:
    """Read a batch of headers (the unit of work sent to executors)."""
    return [read_header(p) for p in paths]


_NUMERIC = [name for _t, name, kind in FIELDS if kind in ("float", "int", "us")] + [
    f"{name}_{i}" for _t, name, kind in FIELDS if kind.startswith("floats:") for i in range(int(kind[7:]))
] + ["pixel_offset", "pixel_length"]
_INTEGER = ("size", "mtime_ns", "bytes_read")  # int64: mtime in ns does not fit a float exactly


def records_to_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Build a files table with stable dtypes from header records."""
    frame = pd.DataFrame.from_records(records)
    for column in _NUMERIC:
        if column in frame:
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    for column in _INTEGER:
        if column in frame:
            frame[column] = frame[column].astype("int64")
    for column in frame.columns:
        if frame[column].dtype == object and column not in _NUMERIC and column not in _INTEGER:
            frame[column] = frame[column].fillna("").astype(str)
    if "has_pixel_data" in frame:
        frame["has_pixel_data"] = frame["has_pixel_data"].astype(bool)
    return frame


def _batches(paths: Sequence[str], size: int) -> list[tuple[str, ...]]:
    return [tuple(paths[i : i + size]) for i in range(0, len(paths), size)]


def scan(
    workspace: Workspace,
    exports: Sequence[str | os.PathLike[str]] = (),
    *,
    executor: Executor | None = None,
    full: bool = False,
    progress: Progress | None = None,
) -> ScanResult:
    """Index ``exports`` (or the workspace's configured sources) into the catalog.

    Parameters
    ----------
    workspace : Workspace
        Where the catalog is written (``private/catalog``).
    exports : sequence of paths
        Export folders; added to the workspace's sources. Empty: rescan the configured sources.
    executor : Executor, optional
        Where header reading runs; default from the workspace settings.
    full : bool
        Re-read every file even if unchanged since the last scan.
    progress : callable, optional
        Called as ``progress(done, total)`` while files are read.
    """
    settings = workspace.settings
    require_sources(workspace, settings.sources)
    new_sources = add_sources(workspace, exports)  # checked before they are saved
    if not new_sources:
        raise ScanError(
            f"{workspace.root}: no export folder to scan; pass one, e.g. 'ctcurate scan /path/to/export'"
        )
    skipped: list[str] = []
    paths = find_files(new_sources, skipped)
    previous = pd.read_parquet(workspace.files_table) if workspace.files_table.exists() and not full else None
    reused: list[dict[str, Any]] = []
    todo: list[str] = paths
    n_removed = 0
    if previous is not None and not previous.empty:
        known = {row.path: (int(str(row.size)), int(str(row.mtime_ns)))
                 for row in previous[["path", "size", "mtime_ns"]].itertuples()}
        current = set(paths)
        n_removed = sum(1 for p in known if p not in current)
        todo = []
        unchanged: set[str] = set()
        for p in paths:
            old = known.get(p)
            if old is not None:
                try:
                    st = os.stat(p)
                except OSError:
                    todo.append(p)
                    continue
                if old == (st.st_size, st.st_mtime_ns):
                    unchanged.add(p)
                    continue
            todo.append(p)
        keep = previous[previous["path"].isin(unchanged)]
        raw_columns = [c for c in keep.columns if c not in ("patient_key", "study_key", "series_key", "folder")]
        reused = [{str(k): v for k, v in r.items()} for r in keep[raw_columns].to_dict("records")]
    log.info("scan: %d files, %d to read, %d unchanged", len(paths), len(todo), len(reused))
    records: list[dict[str, Any]] = []
    own_executor = executor is None
    executor = executor or make_executor(settings.executor)
    try:
        done = 0
        for batch, result in executor.imap_unordered(read_headers, _batches(todo, BATCH_SIZE)):
            records.extend(result)
            done += len(batch)
            if progress:
                progress(done, len(todo))
    finally:
        if own_executor:
            executor.close()
    files = records_to_frame(reused + records)
    if files.empty:
        raise ScanError(f"{', '.join(new_sources)}: no files found; check the export folder")
    files = files.sort_values("path", kind="stable").reset_index(drop=True)
    files["resolved_path"] = files["path"].map(os.path.realpath)  # the path as given, and where it leads
    files, series = build_catalog(files)
    atomic_write_parquet(workspace.files_table, files)
    atomic_write_parquet(workspace.series_table, series)
    atomic_write_text(workspace.skipped_folders_file, json.dumps(skipped, indent=1))
    statuses = {str(k): int(v) for k, v in files["status"].value_counts().items()}
    # what the summary counts: image series only (a DICOMDIR, a report or a dose SR is no series of an exam)
    images = series[(series["study_key"] != "") & series["sop_class_uid"].map(is_image_sop_class)]
    ct = images[images["modality"] == "CT"]
    return ScanResult(
        n_files=len(files), n_read=len(records), n_reused=len(reused), n_removed=n_removed,
        n_series=len(images), n_studies=int(images["study_key"].nunique()),
        n_patients=int(images["patient_key"].nunique()), statuses=statuses, skipped_folders=tuple(skipped),
        n_ct_exams=int(ct["study_key"].nunique()), n_ct_series=len(ct),
    )
