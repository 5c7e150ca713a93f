"""Sealing a release: byte-reproducible zip parts, ``SHA256SUMS``, and verifying a release against them.

A release folder is built aside and sealed before it is renamed into place: its case folders are zipped into
parts (``archives/<version>-partNN.zip``), its datasheet folder into ``archives/<version>-datasheet.zip`` (a
file store without folders, like Zenodo, then holds the whole release), each part is read back and every
entry's sha256 compared with the file it came from, and ``SHA256SUMS`` (``sha256sum -c`` format) lists
every file of the folder, the parts included. The zips are reproducible: entries in sorted order, a fixed
timestamp (1980-01-01), fixed permissions, no compression (the NRRDs are gzip-compressed already), so
building the same release again gives the same bytes.

:func:`verify_release` re-hashes a release against its ``SHA256SUMS`` and reads every zip part back; it
reports files changed, missing or not listed, and zip entries that differ from the files they hold.
"""

from __future__ import annotations

import hashlib
import logging
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from curation.atomic import atomic_write_text, sha256_file
from curation.errors import ReleaseError
from curation.workspace import ReleaseFolder

__all__ = ["ReleaseCheck", "write_archives", "write_checksums", "read_checksums", "verify_release"]

log = logging.getLogger(__name__)
_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can hold
_MODE = 0o100644  # a regular file, rw-r--r--


@dataclass
class ReleaseCheck:
    """What :func:`verify_release` found; ``ok`` when nothing differs."""

    folder: Path
    files: int = 0
    changed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unlisted: list[str] = field(default_factory=list)
    bad_archives: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.changed or self.missing or self.unlisted or self.bad_archives)

    def summary(self) -> str:
        """One line: what differs (at most five names per kind), or that everything matches."""
        if self.ok:
            return f"{self.folder}: {self.files} files match SHA256SUMS"
        parts = []
        for label, names in (("changed", self.changed), ("missing", self.missing),
                             ("not in SHA256SUMS", self.unlisted), ("damaged zip", self.bad_archives)):
            if names:
                parts.append(f"{label} ({len(names)}): {', '.join(names[:5])}" + (" ..." if len(names) > 5 else ""))
        return f"{self.folder}: " + "; ".join(parts)


def _entry(name: str, size: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.compress_type = zipfile.ZIP_STORED
    info.create_system = 3  # unix, so the permissions below are read
    info.external_attr = _MODE << 16
    info.file_size = size
    return info


def _write_zip(path: Path, files: list[tuple[str, Path]]) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, file in files:
            size = file.stat().st_size
            with file.open("rb") as source, archive.open(_entry(name, size), "w",
                                                        force_zip64=size >= 2**31) as target:
                for block in iter(lambda: source.read(1 << 20), b""):
                    target.write(block)


def _zip_digests(path: Path) -> dict[str, str]:
    """sha256 of every entry of a zip, read back (a damaged part raises ``zipfile.BadZipFile`` or ``OSError``)."""
    out = {}
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            digest = hashlib.sha256()
            with archive.open(info) as handle:  # checks the CRC as it reads
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            out[info.filename] = digest.hexdigest()
    return out


def write_archives(release: ReleaseFolder, case_ids: Iterable[str], limit_mb: float) -> list[Path]:
    """Zip the case folders of ``release`` into parts of at most ``limit_mb`` MiB (a case is never split) and
    the datasheet folder into one more, read each part back and compare every entry with its file; raise
    :class:`ReleaseError` when one differs."""
    limit = limit_mb * 2**20
    parts: list[list[tuple[str, Path]]] = [[]]
    size = 0
    for case_id in sorted(set(case_ids)):
        files = sorted((p.relative_to(release.root).as_posix(), p)
                       for p in release.case_dir(case_id).rglob("*") if p.is_file())
        case_size = sum(p.stat().st_size for _, p in files)
        if parts[-1] and size + case_size > limit:
            parts.append([])
            size = 0
        parts[-1].extend(files)
        size += case_size
    written = []
    release.archives_dir.mkdir(exist_ok=True)
    numbered = [(release.archive(number), files) for number, files in enumerate((p for p in parts if p), start=1)]
    if release.datasheet_dir.is_dir():
        numbered.append((release.datasheet_archive, sorted((p.relative_to(release.root).as_posix(), p)
                                                           for p in release.datasheet_dir.rglob("*") if p.is_file())))
    for path, files in numbered:
        _write_zip(path, files)
        expected = {name: sha256_file(file) for name, file in files}
        if _zip_digests(path) != expected:
            raise ReleaseError(f"{path}: the zip part read back differs from the files it holds (a failing disk?); "
                               "nothing was released; check the volume and build again")
        written.append(path)
    return written


def write_checksums(release: ReleaseFolder) -> None:
    """``SHA256SUMS`` of every file in the release folder (itself excepted), sorted by path."""
    files = sorted(p for p in release.root.rglob("*") if p.is_file() and p != release.checksums)
    lines = [f"{sha256_file(p)}  {p.relative_to(release.root).as_posix()}" for p in files]
    atomic_write_text(release.checksums, "\n".join(lines) + "\n")


def read_checksums(release: ReleaseFolder) -> dict[str, str]:
    """Path -> sha256 as listed in the release's ``SHA256SUMS``."""
    if not release.checksums.is_file():
        raise ReleaseError(f"release {release.version}: {release.checksums} not found; this is not a sealed release "
                           "(or its SHA256SUMS was removed): build a new version with 'ctcurate release'")
    listed = {}
    for number, line in enumerate(release.checksums.read_text(encoding="utf-8").splitlines(), start=1):
        digest, _, name = line.partition("  ")
        if len(digest) != 64 or not name:
            raise ReleaseError(f"{release.checksums}, line {number}: expected '<sha256>  <path>', found {line[:80]!r}")
        listed[name] = digest
    return listed


def verify_release(release: ReleaseFolder) -> ReleaseCheck:
    """Re-hash every file of a release against ``SHA256SUMS`` and read every zip part back."""
    if not release.root.is_dir():
        raise ReleaseError(f"release {release.version}: {release.root} not found; list the releases in "
                           f"{release.root.parent}")
    listed = read_checksums(release)
    check = ReleaseCheck(release.root, files=len(listed))
    present = {p.relative_to(release.root).as_posix() for p in release.root.rglob("*")
               if p.is_file() and p != release.checksums}
    check.missing = sorted(set(listed) - present)
    check.unlisted = sorted(present - set(listed))
    actual = {}
    for name in sorted(set(listed) & present):
        actual[name] = sha256_file(release.root / name)
        if actual[name] != listed[name]:
            check.changed.append(name)
    for name in sorted(n for n in present if n.startswith(f"{release.archives_dir.name}/") and n.endswith(".zip")):
        try:
            entries = _zip_digests(release.root / name)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            check.bad_archives.append(f"{name} ({exc})")
            continue
        wrong = sorted(e for e, digest in entries.items() if listed.get(e) != digest)
        if wrong:
            check.bad_archives.append(f"{name} ({len(wrong)} entries differ from SHA256SUMS, e.g. {wrong[0]})")
    log.info("%s", check.summary())
    return check
