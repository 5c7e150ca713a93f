"""Fetch a series over WADO-RS into a folder, resumably: one ``<SOPInstanceUID>.dcm`` per instance.

The instances to expect come from the series' metadata (or a QIDO-RS instance query). Whatever is
missing from the folder is fetched: the whole series in one streamed multipart answer when much is
missing, instance by instance when little is. Each instance is saved byte for byte as the PACS sent
it, in the transfer syntax it stores (``transfer-syntax=*``): written under a temporary name, read
back (an instance cut short by a dropped connection is discarded) and renamed after its SOP Instance
UID, so a stop at any moment leaves only whole files and a rerun fetches only what is still missing.
Network failures are retried with exponential backoff; the end result is checked against the
expected SOP Instance UIDs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydicom.errors import InvalidDicomError

from curation.atomic import TMP_PREFIX, temporary_name
from curation.dicom.header import read_header
from curation.errors import PacsError, ScanError

from .dicomweb import REQUEST_ERRORS, PacsSource, explain, list_instances

__all__ = ["RetrieveResult", "retrieve_series", "present_instances"]

log = logging.getLogger(__name__)
_ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*'  # as stored on the PACS
#: below this many missing instances they are fetched one by one, else the series is streamed
STREAM_MIN = 4


@dataclass
class RetrieveResult:
    """One series' retrieval: instances expected, fetched now, already there."""

    series_uid: str
    expected: int
    fetched: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def present_instances(folder: Path) -> set[str]:
    """SOP Instance UIDs already saved in ``folder`` (temporary files of a stopped run do not count)."""
    if not folder.is_dir():
        return set()
    return {p.stem for p in folder.glob("*.dcm") if not p.name.startswith(TMP_PREFIX)}


def _status(exc: BaseException) -> int:
    return int(getattr(getattr(exc, "response", None), "status_code", 0) or 0)


def _retriable(exc: BaseException) -> bool:
    import requests

    if isinstance(exc, PacsError):
        return not exc.permanent
    if isinstance(exc, requests.HTTPError):
        return _status(exc) in (408, 429) or _status(exc) >= 500
    return isinstance(exc, (requests.ConnectionError, requests.Timeout, ConnectionError, TimeoutError))


def _parts(client: Any, base_url: str, study_uid: str, series_uid: str, sop_uid: str | None = None) -> Iterator[bytes]:
    """The instances of a series (or one instance) as the PACS sent them (Part 10 bytes, one per part).

    Over DICOMweb, dicomweb-client makes the request and splits the multipart answer (its ``_http_get``
    and ``_decode_multipart_message``, the same calls its ``iter_series`` makes); its datasets are not
    used: parsing every instance into pydicom and encoding it again costs more than the transfer, and the
    bytes kept are then those the PACS stores. A DIMSE client (:mod:`curation.pacs.dimse`) delivers C-GET's bytes.
    """
    if hasattr(client, "iter_parts"):
        yield from client.iter_parts(study_uid, series_uid, sop_uid)
        return
    url = f"{base_url.rstrip('/')}/studies/{study_uid}/series/{series_uid}"
    response = client._http_get(url + (f"/instances/{sop_uid}" if sop_uid else ""), headers={"Accept": _ACCEPT},
                                stream=True)
    if response.headers.get("Content-Type", "").startswith("application/dicom"):  # a single bare instance
        yield response.content
        return
    yield from client._decode_multipart_message(response, stream=True)


class _Writer:
    """Saves instances into the folder, counting them for the result and the progress callback."""

    def __init__(self, folder: Path, wanted: set[str], on_instance: Callable[[], None] | None) -> None:
        self.folder, self.wanted, self.on_instance = folder, wanted, on_instance
        self.fetched: list[str] = []
        self.lock = threading.Lock()

    def save(self, raw: bytes) -> None:
        """Write ``raw`` under a temporary name, read it back, then rename it to ``<SOPInstanceUID>.dcm``."""
        tmp = self.folder / temporary_name(f"{threading.get_ident()}.dcm")
        try:
            with open(tmp, "wb") as handle:
                handle.write(raw)
                handle.flush()
                os.fsync(handle.fileno())
            record = read_header(tmp)
            if record["status"] == "truncated":  # cut short: the PACS stopped mid-answer; worth another try
                raise ConnectionError(f"an instance arrived cut short ({record['detail']})")
            if record["status"] in ("unparseable", "not_dicom"):
                raise InvalidDicomError(f"a part of the answer is not a DICOM instance ({record['detail']})")
            uid = str(record["sop_instance_uid"] or "")
            if uid not in self.wanted:
                log.warning("%s: instance %r was not expected; not saved", self.folder, uid)
                return
            os.replace(tmp, self.folder / f"{uid}.dcm")
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        with self.lock:
            self.wanted.discard(uid)
            self.fetched.append(uid)
        if self.on_instance:
            self.on_instance()


def retrieve_series(source: PacsSource, study_uid: str, series_uid: str, folder: str | Path, *,
                    expected: Sequence[str] | None = None, retries: int = 3, backoff_s: float = 0.5,
                    on_instance: Callable[[], None] | None = None) -> RetrieveResult:
    """Fetch the instances of a series that ``folder`` lacks.

    Parameters
    ----------
    source : PacsSource
        The PACS (DICOMweb, or DIMSE through :mod:`curation.pacs.dimse`).
    study_uid, series_uid : str
        The series.
    folder : path
        Where ``<SOPInstanceUID>.dcm`` files go (created when missing).
    expected : sequence of str, optional
        The series' SOP Instance UIDs (from its metadata); default: ask the PACS (QIDO-RS).
    retries, backoff_s
        Network failures are retried ``retries`` times, waiting ``backoff_s * 2**attempt`` seconds.
    on_instance : callable, optional
        Called after each instance is saved (progress).

    Raises
    ------
    ScanError
        The PACS cannot be reached or refuses, answers with something that is not DICOM, or does not
        return every expected instance. What was saved stays; a rerun fetches the rest.
    """
    folder = Path(folder)
    sop_uids = sorted(set(expected)) if expected is not None else list_instances(source, study_uid, series_uid)
    present = present_instances(folder)
    result = RetrieveResult(series_uid, len(sop_uids), skipped=[u for u in sop_uids if u in present])
    writer = _Writer(folder, {u for u in sop_uids if u not in present}, on_instance)
    if writer.wanted:
        folder.mkdir(parents=True, exist_ok=True)
    client = source.client()
    not_returned: dict[str, str] = {}
    stream_done, attempt = False, 0
    while True:
        missing = sorted(writer.wanted - set(not_returned))
        if not missing:
            break
        streamed = len(missing) >= STREAM_MIN and not stream_done
        what = f"retrieval of series {series_uid}"
        try:
            if streamed:
                for raw in _parts(client, source.url, study_uid, series_uid):
                    writer.save(raw)
                stream_done = True
                continue
            for sop_uid in missing:
                what = f"retrieval of instance {sop_uid} of series {series_uid}"
                try:
                    for raw in _parts(client, source.url, study_uid, series_uid, sop_uid):
                        writer.save(raw)
                except REQUEST_ERRORS as exc:
                    if _status(exc) != 404:
                        raise
                    not_returned[sop_uid] = "HTTP 404"
            for sop_uid in missing:  # answered, but with another instance
                if sop_uid in writer.wanted:
                    not_returned.setdefault(sop_uid, "answered with another instance")
        except REQUEST_ERRORS as exc:
            if not _retriable(exc) or attempt >= retries:
                error = explain(source, what, exc)
                raise ScanError(f"{error}; {len(writer.fetched) + len(result.skipped)} of {len(sop_uids)} instances "
                                "saved, run the same command again to fetch the rest") from None
            time.sleep(backoff_s * 2**attempt)
            attempt += 1
    result.fetched = sorted(writer.fetched)
    if writer.wanted:
        first = sorted(writer.wanted)[0]
        why = not_returned.get(first, "absent from its answer")
        raise ScanError(f"series {series_uid}: the PACS announced {len(sop_uids)} instances but did not return "
                        f"{len(writer.wanted)} of them (e.g. {first}: {why})"
                        f"; {len(sop_uids) - len(writer.wanted)} saved, run the same command again once the PACS "
                        "holds them")
    log.info("series %s: %d fetched, %d already there", series_uid, len(result.fetched), len(result.skipped))
    return result
