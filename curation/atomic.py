"""Atomic writes: every output is written to a temporary name in the same folder, then renamed.

A crash or kill in the middle of a write leaves the previous file (or nothing) in place, never a
half-written file under the final name. Temporary names start with ``.tmp-`` so that readers can tell them
apart, and name the run that owns them (``.tmp-<host>-<pid>-...``): :func:`remove_stale_temporaries` removes
only those whose owner has ended, so a run never deletes another live run's temporaries. Files and folders
follow the process's umask (a folder made with ``mkdtemp`` is widened to it before it is renamed into place).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING

from curation.lifetime import pid_alive

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "TMP_PREFIX",
    "WRITE_FAULTS",
    "atomic_open",
    "atomic_path",
    "atomic_create",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_parquet",
    "atomic_directory",
    "copy_file",
    "copy_tree",
    "writing_to",
    "is_temporary",
    "temporary_name",
    "remove_stale_temporaries",
    "sha256_file",
]

TMP_PREFIX = ".tmp-"
# errors of the volume written to, not of one item: full, over quota, read-only, not permitted
WRITE_FAULTS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})
_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]
_OWNED = re.compile(rf"^{re.escape(TMP_PREFIX)}(?P<host>[0-9a-f]{{6}})-(?P<pid>\d+)-")


def _naming(error: BaseException, target: Path) -> BaseException:
    """A write error of the volume (full, read-only...) that names no file, or (full or read-only volume) names
    a temporary or the source of a copy: the same error naming ``target``, what the user knows and looks for."""
    volume = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}
    if isinstance(error, OSError) and error.errno in WRITE_FAULTS and (
            error.filename is None or TMP_PREFIX in str(error.filename)
            or (error.errno in volume and str(error.filename) != str(target))):
        named = OSError(error.errno, os.strerror(error.errno), str(target))
        named.__cause__ = error
        return named
    return error


@contextlib.contextmanager
def writing_to(target: str | os.PathLike[str]) -> Iterator[None]:
    """Name ``target`` in a volume's write error (full, read-only...) raised in the block without a file name, as
    errors of third-party writers often are."""
    try:
        yield
    except OSError as exc:
        named = _naming(exc, Path(target))
        if named is exc:
            raise
        raise named from exc


def copy_file(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """Copy ``source`` to ``target`` atomically (the copy follows the umask, not the source's mode)."""
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)


def copy_tree(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """Copy the files below ``source`` into ``target`` (made as needed); the first failure stops it with its own
    error (``shutil.copytree`` gathers them all into one ``shutil.Error``)."""
    base, out = Path(source), Path(target)
    for folder, _, names in os.walk(base):
        here = out / Path(folder).relative_to(base)
        here.mkdir(parents=True, exist_ok=True)
        for name in names:
            shutil.copyfile(Path(folder) / name, here / name)


def temporary_name(name: str) -> str:
    """A temporary's name: the prefix, this host and process (its owner), a random part, the final name."""
    return f"{TMP_PREFIX}{_HOST}-{os.getpid()}-{os.urandom(4).hex()}-{name}"


def _umask() -> int:
    """The process's umask, read without changing it (``os.umask`` would, for a moment, in every thread)."""
    with contextlib.suppress(OSError, ValueError, StopIteration):
        status = Path("/proc/self/status").read_text().splitlines()
        return int(next(line for line in status if line.startswith("Umask:")).split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _owner_alive(name: str) -> bool:
    """Whether the run that made the temporary ``name`` still runs (on another host: assumed so)."""
    match = _OWNED.match(name)
    if match is None:
        return False  # an unowned name: from a version before owners were named
    if match["host"] != _HOST:
        return True
    return int(match["pid"]) == os.getpid() or pid_alive(int(match["pid"]))


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def _parents(target: Path) -> Iterator[None]:
    """Make the missing folders above ``target``; remove them again (when empty) if the block fails, so that a
    failed write leaves no trace, and name ``target`` in a volume error."""
    missing = []
    folder = target.parent
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        yield
    except BaseException as exc:
        for made in missing:  # deepest first
            with contextlib.suppress(OSError):
                made.rmdir()
        named = _naming(exc, target)
        if named is exc:
            raise
        raise named from exc


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary path beside ``path`` with the same name ending, for writers that take a file name.

    The file written there is renamed to ``path`` when the block ends cleanly, else removed.
    """
    target = Path(path)
    with _parents(target):
        tmp = target.parent / temporary_name(target.name)
        try:
            yield tmp
            os.replace(tmp, target)
            _fsync_dir(target.parent)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise


@contextlib.contextmanager
def atomic_create(path: str | os.PathLike[str], *,
                  leftover: Callable[[Path], bool] | None = None) -> Iterator[Path]:
    """Like :func:`atomic_path`, for a file that must never be replaced: the written file is linked to ``path``,
    which fails with :class:`FileExistsError` when ``path`` exists. ``leftover(path)`` may declare an existing
    file the remains of a write that was interrupted before it counted (it is then removed first)."""
    target = Path(path)
    with _parents(target):
        tmp = target.parent / temporary_name(target.name)
        try:
            yield tmp
            try:
                os.link(tmp, target)
            except FileExistsError:
                if leftover is None or not leftover(target):
                    raise
                os.unlink(target)
                os.link(tmp, target)
            _fsync_dir(target.parent)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside ``path``; rename it to ``path`` when the block ends cleanly."""
    encoding = None if "b" in mode else "utf-8"
    with atomic_path(path) as tmp, open(tmp, mode, encoding=encoding) as handle:
        yield handle
        handle.flush()
        os.fsync(handle.fileno())


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    with atomic_open(path, "w") as handle:
        handle.write(text)


def atomic_write_parquet(path: str | os.PathLike[str], frame: pd.DataFrame) -> None:
    """Write a DataFrame as Parquet atomically (index dropped)."""
    with atomic_open(path, "wb") as handle:
        frame.to_parquet(handle, index=False)


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike[str], *, replace: bool = False) -> Iterator[Path]:
    """Yield a temporary folder that becomes ``path`` when the block ends cleanly.

    ``path`` must not exist yet, unless ``replace``: then the old folder is moved aside only once the
    new one is complete, and deleted after the new one is in place. The folder appears whole or not at all.
    """
    target = Path(path)
    with _parents(target):
        tmp = Path(tempfile.mkdtemp(prefix=temporary_name(target.name) + ".", dir=target.parent))
        try:
            tmp.chmod(0o777 & ~_umask())  # mkdtemp makes it 0700 whatever the umask
            yield tmp
            old = None
            if replace and target.exists():
                old = Path(tempfile.mkdtemp(prefix=temporary_name(target.name) + ".old.", dir=target.parent))
                os.rename(target, old / target.name)
            os.rename(tmp, target)
            _fsync_dir(target.parent)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def is_temporary(name: str) -> bool:
    """Whether a file or folder name is an unfinished write's temporary."""
    return name.startswith(TMP_PREFIX)


def remove_stale_temporaries(folder: str | os.PathLike[str], *, recursive: bool = False,
                             skip: Callable[[Path], bool] | None = None) -> list[Path]:
    """Delete the temporaries in ``folder`` (and below it, if ``recursive``) whose owning run has ended.

    Call it only while holding the workspace lock: then no other writer can be starting a temporary.
    ``skip(folder)`` keeps the walk out of a folder (e.g. sealed releases). Returns what was removed.
    """
    removed: list[Path] = []
    base = Path(folder)
    if not base.is_dir():
        return removed
    pending = [base]
    while pending:
        current = pending.pop()
        try:
            entries = list(os.scandir(current))
        except OSError:
            continue
        for entry in entries:
            path = Path(entry.path)
            if is_temporary(entry.name):
                if _owner_alive(entry.name):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
                removed.append(path)
            elif recursive and entry.is_dir(follow_symlinks=False) and not (skip and skip(path)):
                pending.append(path)
    return sorted(removed)


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
