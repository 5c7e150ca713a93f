"""``ctcurate scan``: index export folders into the private catalog, reading headers only.

Files are found by walking the folders (DICOMDIR and vendor index files are not needed, and are
catalogued as non-image objects when present). Headers are read in parallel batches on the
executor; fewer files than the workers would save time on (:data:`IN_PROCESS_BELOW` for 2 workers) are read in
the command's own process unless the executor's workers run already. A rescan reuses the rows of files whose size and
modification time did not change.
"""

from __future__ import annotations

import io
import json
import logging
import os
import stat
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from curation.atomic import TMP_PREFIX, atomic_write_bytes, atomic_write_parquet, atomic_write_text
from curation.catalog.sources import require_sources, save_sources, with_sources
from curation.dicom.header import read_header
from curation.dicom.tags import FIELDS, is_image_sop_class
from curation.errors import ScanError
from curation.workspace.executor import Executor, SerialExecutor, make_executor
from curation.workspace.layout import Workspace

from .grouping import summarise_series
from .keys import assign_keys

__all__ = ["ScanResult", "find_files", "read_headers", "read_header_stream", "read_header_table",
           "records_to_frame", "scan"]

log = logging.getLogger(__name__)
BATCH_SIZE = 256      # the least files a batch of headers holds (the last batches: the workers end together)
MAX_BATCH_SIZE = 4096  # the most (the first batches: few to hand out and collect)
# with 2 workers, fewer files to read than this are read in the command's process unless the executor's workers run
# already: starting a local pool's workers costs about what a second worker saves on some 7,500 headers (a fresh
# 'ctcurate scan --full' on 2 cores: 6,274 files 1.36 s on 1 worker, 1.53 s on 2; 9,417 files 1.75 s and 1.54 s).
# W workers save (W - 1) / W of the reading, so their bound is IN_PROCESS_BELOW * W / (2 (W - 1)).
IN_PROCESS_BELOW = 7500
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
    n_shared_study_uids: int = 0   # Study UIDs under more than one patient (an exam each; the filter excludes them)


def find_files(roots: Iterable[str | os.PathLike[str]], skipped: list[str] | None = None) -> list[str]:
    """All regular files below the folders ``roots`` (sorted, symlinks followed, loops avoided), named through the
    roots as given (absolute, not resolved). Folders that cannot be listed are added to ``skipped`` and passed
    over; a root that is no folder is refused (an export is a folder)."""
    found: list[str] = []
    seen_dirs: set[tuple[int, int]] = set()
    stack: list[str] = []
    for root in roots:
        path = Path(os.path.abspath(root))
        if not path.exists():
            raise ScanError(f"{path}: export folder not found; check the path (it must exist and be readable)")
        if not path.is_dir():
            raise ScanError(f"{path}: not a folder; pass the export folder (the folder holding the DICOM files), "
                            "not a file")
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
    """Read a batch of headers into records."""
    return [read_header(p) for p in paths]


def read_header_table(paths: Sequence[str]) -> pd.DataFrame:
    """Read a batch of headers into a files table, with where each path leads (the unit of work sent to
    executors: the workers type the columns and resolve the links, the command only joins the tables)."""
    files = records_to_frame(read_headers(paths))
    files["folder"] = [os.path.dirname(p) for p in paths]
    files["resolved_path"] = _resolved(paths)
    return files


def read_header_stream(paths: Sequence[str]) -> bytes:
    """:func:`read_header_table` as an Arrow IPC stream (what a pool's worker sends back): the command loads it in a
    sixth of the time a pickled table takes, time it would otherwise take from the workers (the table's columns
    are text, numbers and flags only: :func:`records_to_frame` makes them so)."""
    import pyarrow as pa

    table = pa.Table.from_pandas(read_header_table(paths), preserve_index=False)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue())


def _table(result: bytes | pd.DataFrame) -> pd.DataFrame:
    """The files table of a batch, from :func:`read_header_stream` or :func:`read_header_table`."""
    if isinstance(result, pd.DataFrame):
        return result
    import pyarrow as pa

    return pa.ipc.open_stream(result).read_all().to_pandas()


def _resolved(paths: Sequence[str], links: set[str] | None = None) -> list[str]:
    """``os.path.realpath`` of each path, each folder resolved once (a file that is no link needs no more);
    ``links``: which of the paths are links, when known (else each path is asked)."""
    folders: dict[str, str] = {}
    out = []
    for path in paths:
        folder, name = os.path.split(path)
        real = folders.get(folder)
        if real is None:
            real = folders[folder] = os.path.realpath(folder)
        link = path in links if links is not None else os.path.islink(path)
        out.append(os.path.realpath(path) if link else os.path.join(real, name))
    return out


_NUMERIC = [name for _t, name, kind in FIELDS if kind in ("float", "int", "us")] + [
    f"{name}_{i}" for _t, name, kind in FIELDS if kind.startswith("floats:") for i in range(int(kind[7:]))
] + ["pixel_offset", "pixel_length"]
_NUMERIC_SET = frozenset(_NUMERIC)
_INTEGER = ("size", "mtime_ns", "bytes_read")  # int64: mtime in ns does not fit a float exactly


def records_to_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Build a files table with stable dtypes from header records."""
    if not records:
        return pd.DataFrame()
    names = list(records[0])
    if all(list(record) == names for record in records):  # records made from one template: transpose at C speed
        values_of = dict(zip(names, (list(column) for column in zip(*(r.values() for r in records), strict=True)),
                             strict=True))
    else:
        names = list(dict.fromkeys(name for record in records for name in record))
        values_of = {name: [record.get(name) for record in records] for name in names}
    columns: dict[str, Any] = {}
    for name in names:
        values = values_of[name]
        if name in _NUMERIC_SET:
            columns[name] = _floats(values)
        elif name in _INTEGER:
            columns[name] = np.asarray(values, dtype="int64")
        elif name == "has_pixel_data":
            columns[name] = np.asarray([bool(v) for v in values], dtype=bool)
        elif set(map(type, values)) == {str}:
            columns[name] = values
        else:  # numbers of a column ctcurate does not know keep their type; mixed ones become text
            column = pd.Series(values)
            columns[name] = column if pd.api.types.is_numeric_dtype(column) else column.fillna("").astype(str)
    return pd.DataFrame(columns, columns=names)


def _floats(values: list[Any]) -> Any:
    try:
        return np.asarray(values, dtype="float64")  # None becomes NaN
    except (TypeError, ValueError):
        return pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").astype("float64").to_numpy()


def _join(tables: list[pd.DataFrame]) -> pd.DataFrame:
    """One files table from the batches' tables (a column absent from some batch is empty there, as it would be in
    a table built from all records at once)."""
    files = pd.concat(tables, ignore_index=True) if len(tables) > 1 else tables[0]
    for column in files.columns:
        if not pd.api.types.is_numeric_dtype(files[column]) and files[column].isna().any():
            files[column] = files[column].fillna("").astype(str)
    return files


def _parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def _holds(paths: Sequence[str], folder: str) -> bool:
    """Whether any of ``paths`` lies below ``folder``."""
    prefix = folder.rstrip(os.sep) + os.sep
    return any(path.startswith(prefix) for path in paths)


def _batches(paths: Sequence[str], workers: int) -> list[tuple[str, ...]]:
    """Runs of the sorted paths, each about 1/(2 x workers) of the files left (between BATCH_SIZE and
    MAX_BATCH_SIZE): large ones first, so the command hands out and collects few, and smaller ones towards the end,
    so the workers finish together."""
    batches: list[tuple[str, ...]] = []
    start = 0
    while start < len(paths):
        size = min(MAX_BATCH_SIZE, max(BATCH_SIZE, (len(paths) - start) // (2 * max(1, workers))))
        batches.append(tuple(paths[start : start + size]))
        start += size
    return batches


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
        Where header reading runs; default from the workspace settings. Too few files for its workers to save
        time on (see :data:`IN_PROCESS_BELOW`) are read in this process unless its workers run already.
    full : bool
        Re-read every file even if unchanged since the last scan.
    progress : callable, optional
        Called as ``progress(done, total)`` while files are read.
    """
    settings = workspace.settings
    require_sources(workspace, settings.sources)
    new_sources = with_sources(workspace, exports)  # checked; saved once their files are found
    if not new_sources:
        raise ScanError(
            f"{workspace.root}: no export folder to scan; pass one, e.g. 'ctcurate scan /path/to/export'"
        )
    skipped: list[str] = []
    paths = find_files(new_sources, skipped)
    empty = [s for s in new_sources if s not in settings.sources and not _holds(paths, s)]
    if empty:  # likely a wrong path (or a share not mounted): refused like a missing folder, before it is saved
        these = "this folder" if len(empty) == 1 else "these folders"
        raise ScanError(f"{', '.join(empty)}: no files in {these}; pass the export folder (nothing was scanned "
                        "and no source was added)")
    save_sources(workspace, new_sources)
    previous = pd.read_parquet(workspace.files_table) if workspace.files_table.exists() and not full else None
    reused = pd.DataFrame()
    todo: list[str] = paths
    n_removed = 0
    if previous is not None and not previous.empty:
        row_of = {p: i for i, p in enumerate(previous["path"])}
        sizes, mtimes = (previous[c].astype("int64").tolist() for c in ("size", "mtime_ns"))
        current = set(paths)
        n_removed = sum(1 for p in row_of if p not in current)
        todo = []
        kept: list[int] = []
        links: set[str] = set()
        for p in paths:
            i = row_of.get(p)
            if i is not None:
                try:
                    st = os.lstat(p)  # one call for a file that is no link
                    if stat.S_ISLNK(st.st_mode):
                        links.add(p)
                        st = os.stat(p)
                except OSError:
                    todo.append(p)
                    continue
                if st.st_size == sizes[i] and st.st_mtime_ns == mtimes[i]:
                    kept.append(i)
                    continue
            todo.append(p)
        keep = previous.iloc[sorted(kept)]
        reused = keep.drop(columns=[c for c in ("patient_key", "study_key", "series_key") if c in keep])
        reused = reused.reset_index(drop=True)
        reused["resolved_path"] = _resolved(reused["path"].tolist(), links)  # a link may point elsewhere now
    log.info("scan: %d files, %d to read, %d unchanged", len(paths), len(todo), len(reused))
    tables: list[pd.DataFrame] = [reused] if len(reused) else []
    n_read = 0
    own_executor = executor is None
    executor = executor or make_executor(settings.executor)
    if progress and todo:
        progress(0, len(todo))  # the work is known: a progress bar may show it from here
    reader: Executor = executor
    bound = IN_PROCESS_BELOW * executor.workers / (2 * (executor.workers - 1)) if executor.workers > 1 else 0
    if len(todo) < bound and not executor.running:
        reader = SerialExecutor()  # (header reading uses no library threads: no thread budget to keep)
        log.info("scan: %d files to read, read in this process (fewer than %.0f: starting %d workers would cost "
                 "more than they save)", len(todo), bound, executor.workers)
    try:
        # in this process the table is used as it is; from a worker it travels as an Arrow stream
        work: Callable[[Sequence[str]], bytes | pd.DataFrame] = (
            read_header_table if isinstance(reader, SerialExecutor) else read_header_stream)
        for batch, result in reader.imap_unordered(work, _batches(todo, reader.workers)):
            tables.append(_table(result))
            n_read += len(batch)
            if progress:
                progress(n_read, len(todo))
    finally:
        if own_executor:
            executor.close()
    if not tables:  # sources saved before they had to hold files, or emptied since
        wrong = new_sources[0] if len(new_sources) == 1 else "PATH"
        raise ScanError(f"{', '.join(new_sources)}: no files found in the workspace's sources; mount or fill the "
                        f"export folder, or remove a wrong one with 'ctcurate sources --remove {wrong} -w "
                        f"{workspace.root}' (the catalog is as it was)")
    # batches are runs of the sorted paths: in the order of their first paths they need no sorting
    tables.sort(key=lambda table: str(table["path"].iloc[0]))
    files = _join(tables)
    if len(reused):  # the unchanged files' rows mixed in
        files = files.sort_values("path", kind="stable").reset_index(drop=True)
    files = assign_keys(files)
    with ThreadPoolExecutor(1) as encoder:  # the files table is encoded (no GIL held) while the series are summarised
        encoded = encoder.submit(_parquet_bytes, files)
        series = summarise_series(files)
        files_bytes = encoded.result()
    atomic_write_bytes(workspace.files_table, files_bytes)
    atomic_write_parquet(workspace.series_table, series)
    atomic_write_text(workspace.skipped_folders_file, json.dumps(skipped, indent=1))
    statuses = {str(k): int(v) for k, v in files["status"].value_counts().items()}
    # what the summary counts: image series only (a DICOMDIR, a report or a dose SR is no series of an exam)
    images = series[(series["study_key"] != "") & series["sop_class_uid"].map(is_image_sop_class)]
    ct = images[images["modality"] == "CT"]
    shared = int(images.loc[images["study_uid_patients"] > 1, "study_uid"].nunique())
    if shared:
        log.warning("scan: %d Study UID(s) found under more than one patient; filter excludes them as "
                    "shared_study_uid", shared)
    return ScanResult(
        n_files=len(files), n_read=n_read, n_reused=len(reused), n_removed=n_removed,
        n_series=len(images), n_studies=int(images["study_key"].nunique()),
        n_patients=int(images["patient_key"].nunique()), statuses=statuses, skipped_folders=tuple(skipped),
        n_ct_exams=int(ct["study_key"].nunique()), n_ct_series=len(ct), n_shared_study_uids=shared,
    )
