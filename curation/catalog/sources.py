"""The export folders a workspace scans (its ``sources``): checked before they are saved, listed, removed.

A source is kept as the absolute path it was given, not resolved, so a folder reached through a symbolic link
keeps that name in the settings and the catalog (the catalog also keeps each file's resolved path). A path
that does not exist, is not a folder (a file given for its export), cannot be listed or holds no file (``scan``
checks that) is refused before it is saved, so a typing error never breaks later scans; a saved source that has
gone missing (or is no folder) stops a rescan (its files would otherwise be dropped from the catalog) until it is
back or removed with ``ctcurate sources --remove``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

from curation.atomic import atomic_write_parquet
from curation.errors import ScanError
from curation.workspace.layout import Workspace

from .grouping import build_catalog

log = logging.getLogger(__name__)

__all__ = ["SourceState", "check_source", "add_sources", "with_sources", "save_sources", "remove_source",
           "require_sources", "source_states"]


@dataclass(frozen=True)
class SourceState:
    path: str
    present: bool
    readable: bool
    files_in_catalog: int


def check_source(path: str | os.PathLike[str]) -> str:
    """The absolute path of an export folder that exists and can be read; else :class:`ScanError`."""
    given = os.path.abspath(os.path.expanduser(os.fspath(path)))
    if not os.path.exists(given):
        raise ScanError(f"{given}: export folder not found; check the path (nothing was saved)")
    if not os.path.isdir(given):
        raise ScanError(f"{given}: not a folder; pass the export folder (the folder holding the DICOM files), "
                        "not a file (nothing was saved)")
    if not _can_read(given, os.R_OK | os.X_OK):
        raise ScanError(f"{given}: export folder cannot be read (permission denied); give this user read "
                        "access, or scan as a user who has it (nothing was saved)")
    return given


def _can_read(path: str, mode: int) -> bool:
    return os.access(path, mode)


def add_sources(ws: Workspace, paths: Iterable[str | os.PathLike[str]]) -> tuple[str, ...]:
    """Check ``paths`` and add them to the workspace's sources; returns every source, the new ones last."""
    sources = with_sources(ws, paths)
    save_sources(ws, sources)
    return sources


def save_sources(ws: Workspace, sources: tuple[str, ...]) -> None:
    """Save ``sources`` (from :func:`with_sources`) as the workspace's sources."""
    if sources != ws.settings.sources:
        ws.save_settings(dataclasses.replace(ws.settings, sources=sources))


def with_sources(ws: Workspace, paths: Iterable[str | os.PathLike[str]]) -> tuple[str, ...]:
    """The workspace's sources with ``paths`` checked and added, the new ones last; nothing is saved (``scan``
    saves them once it found their files)."""
    checked = [check_source(p) for p in paths]  # all checked before any is saved
    settings = ws.settings
    known = {os.path.realpath(s): s for s in settings.sources}
    # a folder already scanned under another name (through a symbolic link) keeps the name it has
    checked = [known.get(os.path.realpath(c), c) for c in checked]
    sources = list(dict.fromkeys([*settings.sources, *checked]))
    for new in dict.fromkeys(checked):
        if new in settings.sources or new not in sources:
            continue
        outer = next((s for s in sources if s != new and _within(new, s)), None)
        if outer is not None:  # its files are scanned with the folder holding it
            log.warning("%s: already scanned as part of the source %s; not added apart", new, outer)
            sources.remove(new)
            continue
        inner = [s for s in sources if s != new and _within(s, new)]
        for source in inner:  # one source for the files of both (removing the inner one would drop them)
            sources.remove(source)
        if inner:
            log.warning("%s: holds the source(s) %s, which it replaces", new, ", ".join(inner))
    return tuple(sources)


def _within(path: str, folder: str) -> bool:
    """Whether ``path`` is ``folder`` or lies below it (through symbolic links too)."""
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def remove_source(ws: Workspace, path: str | os.PathLike[str]) -> tuple[str, ...]:
    """Remove a source and its files from the catalog (the series are grouped again); returns the sources left."""
    settings = ws.settings
    wanted = os.path.abspath(os.path.expanduser(os.fspath(path)))
    if wanted not in settings.sources:
        known = ", ".join(settings.sources) or "none"
        raise ScanError(f"{wanted}: not a source of this workspace (sources: {known})")
    left = tuple(s for s in settings.sources if s != wanted)
    if ws.files_table.is_file():
        files = pd.read_parquet(ws.files_table)
        def below(folder: str) -> pd.Series:
            return files["path"].eq(folder) | files["path"].str.startswith(folder.rstrip(os.sep) + os.sep)

        dropped = below(wanted)
        for other in left:  # files another source holds too (sources saved nested before they were refused)
            dropped &= ~below(other)
        kept = files[~dropped]
        raw = kept.drop(columns=[c for c in ("patient_key", "study_key", "series_key", "folder") if c in kept])
        keyed, series = build_catalog(raw.reset_index(drop=True)) if len(raw) else (raw, pd.DataFrame())
        atomic_write_parquet(ws.files_table, keyed)
        atomic_write_parquet(ws.series_table, series)
    ws.save_settings(dataclasses.replace(settings, sources=left))
    return left


def source_states(ws: Workspace) -> list[SourceState]:
    """Each source: does it exist, can it be read, how many catalogued files lie below it."""
    paths = pd.read_parquet(ws.files_table, columns=["path"])["path"] if ws.files_table.is_file() else pd.Series([])
    out = []
    for source in ws.settings.sources:
        prefix = source.rstrip(os.sep) + os.sep
        present = os.path.exists(source)
        readable = present and os.access(source, os.R_OK | (os.X_OK if os.path.isdir(source) else 0))
        below = int((paths.eq(source) | paths.str.startswith(prefix)).sum()) if len(paths) else 0
        out.append(SourceState(source, present, readable, below))
    return out


def require_sources(ws: Workspace, sources: Iterable[str]) -> None:
    """Refuse a rescan while a saved source is missing, unreadable or no folder (its files would leave the
    catalog, or a file would be catalogued as an export)."""
    for source in sources:
        if os.path.exists(source) and not os.path.isdir(source):
            raise ScanError(f"{source}: this workspace's source is not a folder; remove it with 'ctcurate sources "
                            f"--remove {source} -w {ws.root}' and scan the export folder instead")
        if not os.path.exists(source) or not os.access(source, os.R_OK):
            state = "is missing" if not os.path.exists(source) else "cannot be read"
            raise ScanError(f"{source}: this workspace's source {state}; mount it again, or remove it with "
                            f"'ctcurate sources --remove {source} -w {ws.root}' (its files then leave the catalog)")
