"""The same queries and retrieval over DIMSE (C-FIND, C-GET with pynetdicom), for a PACS without DICOMweb.

:class:`DimseSource` names the PACS as ``dicom://host:port/CALLED_AET`` and the AE title ctcurate calls
from. Its :meth:`~DimseSource.client` answers the calls ``curation.pacs.dicomweb`` and ``curation.pacs.retrieve``
make of a DICOMweb client: study, series and instance queries come back as DICOM JSON (C-FIND; paging is
done here, C-FIND has none), series headers from an image-level C-FIND that asks for the catalog's
attributes (no pixel data moves), and instances as the bytes C-GET delivers. So ``ctcurate pull`` runs
unchanged on either protocol. Every failure is one :class:`~curation.errors.PacsError` line.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pydicom.datadict import keyword_for_tag
from pydicom.dataset import Dataset

from curation.dicom.reading import lenient_reading
from curation.dicom.tags import FIELDS
from curation.errors import PacsError, ScanError

__all__ = ["DimseSource", "DimseClient"]

log = logging.getLogger(__name__)
_PENDING = (0xFF00, 0xFF01)
_FIND = "1.2.840.10008.5.1.4.1.2.2.1"  # Study Root Query/Retrieve Information Model - FIND
_GET = "1.2.840.10008.5.1.4.1.2.2.3"  # Study Root Query/Retrieve Information Model - GET
_LEVEL_KEYS = {"STUDY": ("StudyInstanceUID",), "SERIES": ("StudyInstanceUID", "SeriesInstanceUID"),
               "IMAGE": ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")}


@dataclass(frozen=True)
class DimseSource:
    """A DIMSE peer: ``dicom://host:port/CALLED_AET``, the calling AE title, a timeout."""

    url: str
    calling_aet: str = "CTCURATE"
    timeout_s: float = 30.0

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        called = parts.path.strip("/")
        if parts.scheme != "dicom" or not parts.hostname or not parts.port or not called or len(called) > 16:
            raise ScanError(f"DIMSE address {self.url!r}: expected dicom://host:port/CALLED_AET (AE title of at "
                            "most 16 characters), e.g. dicom://pacs:104/PACS")
        if not self.calling_aet or len(self.calling_aet) > 16 or "\\" in self.calling_aet:
            raise ScanError(f"calling AE title {self.calling_aet!r}: expected 1 to 16 characters without a backslash")

    @property
    def host(self) -> str:
        return str(urlsplit(self.url).hostname)

    @property
    def port(self) -> int:
        return int(urlsplit(self.url).port or 104)

    @property
    def called_aet(self) -> str:
        return urlsplit(self.url).path.strip("/")

    def client(self) -> DimseClient:
        return DimseClient(self)


def _identifier(level: str, uids: tuple[str, ...], fields: list[str], filters: dict[str, Any]) -> Dataset:
    with lenient_reading():  # empty return keys (universal matching) are valid C-FIND, whatever their VR
        return _query(level, uids, fields, filters)


def _query(level: str, uids: tuple[str, ...], fields: list[str], filters: dict[str, Any]) -> Dataset:
    query = Dataset()
    query.QueryRetrieveLevel = level
    for keyword in fields:
        setattr(query, keyword, "")
    for keyword, uid in zip(_LEVEL_KEYS[level], uids, strict=False):
        setattr(query, keyword, uid)
    for keyword, value in filters.items():
        setattr(query, keyword, value)
    return query


class DimseClient:
    """The subset of dicomweb-client's ``DICOMwebClient`` ctcurate uses, over C-FIND and C-GET."""

    def __init__(self, source: DimseSource) -> None:
        self.source = source
        self._answers: dict[tuple[Any, ...], list[dict[str, Any]]] = {}

    def _associate(self, what: str, contexts: list[str], storage: list[str] | None = None, **kwargs: Any) -> Any:
        from pynetdicom import AE, ALL_TRANSFER_SYNTAXES

        ae = AE(ae_title=self.source.calling_aet)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = self.source.timeout_s
        for context in contexts:
            ae.add_requested_context(context)
        for context in storage or []:  # any transfer syntax: instances come as the PACS stores them
            ae.add_requested_context(context, ALL_TRANSFER_SYNTAXES)
        assoc = ae.associate(self.source.host, self.source.port, ae_title=self.source.called_aet, **kwargs)
        if assoc.is_established:
            return assoc
        if assoc.is_rejected:
            raise PacsError(f"{self.source.url}: {what} refused: the PACS rejected the association (is "
                            f"{self.source.calling_aet!r} a known AE title there, and {self.source.called_aet!r} its "
                            "own?)", 403)
        raise PacsError(f"{self.source.url}: PACS unreachable during {what} (no DICOM association); check host, "
                        "port and that the server runs")

    def _find(self, what: str, level: str, uids: tuple[str, ...], fields: list[str],
              filters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        assoc = self._associate(what, [_FIND])
        answers: list[dict[str, Any]] = []
        try:
            with lenient_reading():  # answers decoded as the PACS sent them
                found = list(assoc.send_c_find(_identifier(level, uids, fields, filters or {}), _FIND))
                found = [(status, identifier.to_json_dict() if identifier is not None else None)
                         for status, identifier in found]
            for status, identifier in found:
                if not status:
                    raise PacsError(f"{self.source.url}: {what}: the association was lost; run it again")
                if status.Status in _PENDING and identifier is not None:
                    answers.append(identifier)
                elif status.Status != 0x0000:
                    raise PacsError(f"{self.source.url}: {what} refused with C-FIND status 0x{status.Status:04X}",
                                    500)
        finally:
            assoc.release()
        return answers

    def _page(self, key: tuple[Any, ...], offset: int, limit: int, run: Any) -> list[dict[str, Any]]:
        if offset == 0 or key not in self._answers:
            self._answers[key] = run()
        return self._answers[key][offset:offset + limit]

    def search_for_studies(self, *, offset: int = 0, limit: int = 100, search_filters: dict[str, Any] | None = None,
                           fields: list[str] | None = None) -> list[dict[str, Any]]:
        filters = dict(search_filters or {})
        return self._page(("studies", tuple(sorted(filters.items()))), offset, limit, lambda: self._find(
            "study query", "STUDY", (), [f for f in fields or [] if f not in filters], filters))

    def search_for_series(self, study_uid: str, *, offset: int = 0, limit: int = 100,
                          fields: list[str] | None = None) -> list[dict[str, Any]]:
        return self._page(("series", study_uid), offset, limit, lambda: self._find(
            f"series query of study {study_uid}", "SERIES", (study_uid, ""), list(fields or [])))

    def search_for_instances(self, study_uid: str, series_uid: str, *, offset: int = 0, limit: int = 100,
                             fields: list[str] | None = None) -> list[dict[str, Any]]:
        return self._page(("instances", series_uid), offset, limit, lambda: self._find(
            f"instance query of series {series_uid}", "IMAGE", (study_uid, series_uid, ""), list(fields or [])))

    def retrieve_series_metadata(self, study_uid: str, series_uid: str) -> list[dict[str, Any]]:
        """Headers of every instance from an image-level C-FIND asking for the catalog's attributes."""
        keywords = sorted({keyword_for_tag(tag) for tag, _name, _kind in FIELDS} - {"", "StudyInstanceUID",
                                                                                   "SeriesInstanceUID"})
        return self._find(f"metadata of series {series_uid}", "IMAGE", (study_uid, series_uid, ""),
                          [k for k in keywords if k != "SOPInstanceUID"])

    def iter_parts(self, study_uid: str, series_uid: str, sop_uid: str | None = None) -> Iterator[bytes]:
        """Instances of a series (or one instance) as C-GET delivers them: Part 10 bytes, one by one."""
        from pynetdicom import StoragePresentationContexts, build_role, evt

        what = f"retrieval of series {series_uid}" if sop_uid is None else f"retrieval of instance {sop_uid}"
        arrived: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=4)  # C-GET waits for the disk

        def on_store(event: Any) -> int:
            arrived.put(event.encoded_dataset(include_meta=True))
            return 0x0000

        storage = [str(c.abstract_syntax) for c in StoragePresentationContexts[:127]]  # 128 contexts at most
        roles = [build_role(uid, scp_role=True) for uid in storage]
        level = "SERIES" if sop_uid is None else "IMAGE"
        identifier = _identifier(level, (study_uid, series_uid) + ((sop_uid,) if sop_uid else ()), [], {})

        def run() -> None:
            try:
                assoc = self._associate(what, [_GET], storage, ext_neg=roles,
                                        evt_handlers=[(evt.EVT_C_STORE, on_store)])
                try:
                    for status, _ in assoc.send_c_get(identifier, _GET):
                        if not status:
                            raise PacsError(f"{self.source.url}: {what}: the association was lost")
                        if status.Status not in _PENDING and status.Status not in (0x0000, 0xB000):
                            code = 404 if status.Status == 0xA702 or status.Status == 0xC000 else 500
                            raise PacsError(f"{self.source.url}: {what} refused with C-GET status "
                                            f"0x{status.Status:04X}", code)
                finally:
                    assoc.release()
                arrived.put(None)
            except BaseException as exc:  # handed to the reading side
                arrived.put(exc)

        threading.Thread(target=run, daemon=True).start()
        while (item := arrived.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
