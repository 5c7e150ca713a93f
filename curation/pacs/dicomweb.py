"""Query a PACS over DICOMweb: CT studies in a period and their series (QIDO-RS), series headers (WADO-RS metadata).

:class:`DicomWebSource` names the service and how to authenticate (none, HTTP basic, or a bearer
token); the secret is passed in by the caller (the CLI reads it from an environment variable or a
file) and never logged. Queries are paged, so a large archive is listed in pieces. Answers come back
as tables with the same column names the catalog uses for files read from disk, and the metadata
becomes catalog records (:mod:`curation.pacs.frame`), so sampling and the exclusion rules run before any
pixel data moves; :mod:`curation.pacs.retrieve` fetches what they choose. Uses ``dicomweb-client``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd
from pydicom.errors import InvalidDicomError

from curation.dicom.reading import lenient_reading
from curation.errors import PacsError, ScanError

if TYPE_CHECKING:
    from pydicom import Dataset

__all__ = ["DicomWebSource", "PacsSource", "REQUEST_ERRORS", "explain", "query_studies", "query_series",
           "list_instances", "series_metadata"]

log = logging.getLogger(__name__)
_AUTH = ("none", "basic", "bearer")
#: QIDO-RS attribute keyword -> catalog column
STUDY_FIELDS = {"StudyInstanceUID": "study_uid", "StudyDate": "study_date", "StudyTime": "study_time",
                "StudyDescription": "study_description", "PatientID": "patient_id", "PatientName": "patient_name",
                "PatientBirthDate": "patient_birth_date", "PatientSex": "patient_sex",
                "AccessionNumber": "accession_number", "ModalitiesInStudy": "modalities",
                "NumberOfStudyRelatedSeries": "n_series", "NumberOfStudyRelatedInstances": "n_instances"}
SERIES_FIELDS = {"SeriesInstanceUID": "series_uid", "Modality": "modality", "SeriesDescription": "series_description",
                 "SeriesNumber": "series_number", "BodyPartExamined": "body_part",
                 "NumberOfSeriesRelatedInstances": "n_instances"}


class PacsSource(Protocol):
    """What the queries and the retrieval need of a PACS: its address (for messages) and a client with
    dicomweb-client's query and metadata calls (:class:`DicomWebSource`, or
    :class:`curation.pacs.dimse.DimseSource`)."""

    @property
    def url(self) -> str: ...

    def client(self) -> Any: ...


@dataclass(frozen=True)
class DicomWebSource:
    """A DICOMweb service: base URL (…/dicom-web), authentication kind, user and secret."""

    url: str
    auth: str = "none"
    username: str = ""
    secret: str = ""
    timeout_s: float = 30.0

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ScanError(f"DICOMweb URL {self.url!r}: expected http(s)://host[:port]/path, e.g. "
                            "http://pacs:8042/dicom-web")
        if self.auth not in _AUTH:
            raise ScanError(f"DICOMweb auth {self.auth!r}: expected one of {', '.join(_AUTH)}")
        if self.auth != "none" and not self.secret:
            raise ScanError(f"DICOMweb auth {self.auth}: no secret given (password or token); set it in the "
                            "environment variable or file the command names")

    def __repr__(self) -> str:  # the secret never shows
        return f"DicomWebSource(url={self.url!r}, auth={self.auth!r}, username={self.username!r})"

    def client(self) -> Any:
        import requests
        from dicomweb_client.api import DICOMwebClient

        session = requests.Session()
        headers = {}
        if self.auth == "basic":
            session.auth = (self.username, self.secret)
        elif self.auth == "bearer":
            headers["Authorization"] = f"Bearer {self.secret}"
        client = DICOMwebClient(self.url, session=session, headers=headers, timeout=self.timeout_s)
        client.set_http_retry_params(retry=False)  # ctcurate retries itself, with its own limits and messages
        return client


def _value(element: dict[str, Any] | None) -> Any:
    if not element or not element.get("Value"):
        return ""
    values = element["Value"]
    if element.get("vr") == "PN":
        values = [v.get("Alphabetic", "") if isinstance(v, dict) else v for v in values]
    return "\\".join(str(v) for v in values) if len(values) > 1 else values[0]


def _table(answers: list[dict[str, Any]], fields: dict[str, str]) -> pd.DataFrame:
    from pydicom.datadict import tag_for_keyword

    tags = {keyword: f"{tag_for_keyword(keyword):08X}" for keyword in fields}
    rows = [{column: _value(answer.get(tags[keyword])) for keyword, column in fields.items()} for answer in answers]
    return pd.DataFrame(rows, columns=list(fields.values()))


def explain(source: PacsSource, what: str, exc: BaseException) -> PacsError:
    """One-line :class:`PacsError` for a failed DICOMweb request: which server, what, why, what to do."""
    import requests

    if isinstance(exc, PacsError):  # already explained (DIMSE)
        return exc
    if isinstance(exc, requests.HTTPError):
        code = exc.response.status_code if exc.response is not None else 0
        hint = {401: "wrong credentials; check the user and the secret", 403: "not allowed for these credentials",
                404: "not found on the PACS (deleted or moved?)",
                406: "the PACS cannot send this media type"}.get(code, "see the PACS log")
        return PacsError(f"{source.url}: {what} refused with HTTP {code} ({hint})", code)
    if isinstance(exc, (requests.ConnectionError, requests.Timeout)):
        return PacsError(f"{source.url}: PACS unreachable during {what} ({type(exc).__name__}); check the URL "
                         "and that the server runs")
    return PacsError(f"{source.url}: {what} did not return DICOM ({type(exc).__name__}: {exc}); is the URL the "
                     "DICOMweb root of the PACS (e.g. http://pacs:8042/dicom-web)?")


#: what a DICOMweb call can raise: HTTP and network errors, answers that are not DICOM (JSON or Part 10)
REQUEST_ERRORS: tuple[type[BaseException], ...] = (OSError, ValueError, KeyError, TypeError, AttributeError,
                                                   EOFError, InvalidDicomError, PacsError)


QUERY_RETRIES = 2


def _query(source: PacsSource, what: str, call: Any, page_size: int) -> list[dict[str, Any]]:
    answers: list[dict[str, Any]] = []
    offset = attempt = 0
    while True:
        try:
            page = call(offset=offset, limit=page_size)
        except REQUEST_ERRORS as exc:  # requests' errors are OSErrors; bad JSON is a ValueError
            error = explain(source, what, exc)
            if error.permanent or attempt >= QUERY_RETRIES or not isinstance(exc, (OSError, PacsError)):
                raise error from None
            attempt += 1
            time.sleep(0.5 * 2**attempt)
            continue
        if not isinstance(page, list) or not all(isinstance(a, dict) for a in page):
            raise ScanError(f"{source.url}: {what} did not return a DICOM JSON list; is the URL the DICOMweb root?")
        answers += page
        if len(page) < page_size:
            return answers
        offset += len(page)


def _matches(values: pd.Series, pattern: str) -> pd.Series:
    """Case-insensitive DICOM wildcard match (``*`` and ``?``), done here so every server behaves the same."""
    import fnmatch

    return values.astype(str).str.upper().map(lambda v: fnmatch.fnmatchcase(v, pattern.upper()))


def query_studies(source: PacsSource, *, modality: str = "CT", date_from: date | None = None,
                  date_to: date | None = None, description: str = "", body_part: str = "",
                  page_size: int = 100) -> pd.DataFrame:
    """Studies holding ``modality`` in the period (both ends included), optionally filtered.

    The server filters the period and pages the answer; the modality, the description (StudyDescription,
    wildcards ``*`` ``?``, any case) and the body part (BodyPartExamined of any series, asked per study)
    are matched here: servers differ in how they match them (Orthanc filters the computed
    ModalitiesInStudy after cutting the page, which would end paging early, and leaves it empty when a
    series has no Modality; a study answered without ModalitiesInStudy is asked for its series).
    Studies without a valid StudyDate cannot match a period.
    """
    filters: dict[str, Any] = {}
    if date_from or date_to:
        low = date_from.strftime("%Y%m%d") if date_from else ""
        high = date_to.strftime("%Y%m%d") if date_to else ""
        filters["StudyDate"] = f"{low}-{high}"
    client = source.client()
    answers = _query(source, "study query", lambda offset, limit: client.search_for_studies(
        offset=offset, limit=limit, search_filters=filters, fields=list(STUDY_FIELDS)), page_size)
    table = _table(answers, STUDY_FIELDS).drop_duplicates("study_uid")
    unknown = table["modalities"].astype(str) == ""  # not every server computes ModalitiesInStudy
    table.loc[unknown, "modalities"] = [
        "\\".join(sorted(set(query_series(source, uid, page_size=page_size)["modality"].astype(str)) - {""}))
        for uid in table.loc[unknown, "study_uid"]]
    table = table[table["modalities"].astype(str).str.split("\\").map(lambda m: modality in m)]
    if description:
        table = table[_matches(table["study_description"], description)]
    if body_part:
        table = table[[bool(_matches(query_series(source, uid, page_size=page_size)["body_part"], body_part).any())
                       for uid in table["study_uid"]]]
    log.info("DICOMweb %s: %d %s studies", source.url, len(table), modality)
    return table.reset_index(drop=True)


def query_series(source: PacsSource, study_uid: str, *, page_size: int = 100) -> pd.DataFrame:
    """The series of one study with the metadata QIDO-RS gives at series level."""
    client = source.client()
    answers = _query(source, f"series query of study {study_uid}", lambda offset, limit: client.search_for_series(
        study_uid, offset=offset, limit=limit, fields=list(SERIES_FIELDS)), page_size)
    table = _table(answers, SERIES_FIELDS)
    table.insert(0, "study_uid", study_uid)
    return table


def list_instances(source: PacsSource, study_uid: str, series_uid: str) -> list[str]:
    """SOP Instance UIDs of a series, by a paged QIDO-RS instance query."""
    client = source.client()
    listed = _query(source, f"instance query of series {series_uid}", lambda offset, limit:
                    client.search_for_instances(study_uid, series_uid, offset=offset, limit=limit,
                                                fields=["SOPInstanceUID"]), 500)
    return sorted({str(_value(answer.get("00080018"))) for answer in listed} - {""})


def series_metadata(source: PacsSource, study_uid: str, series_uid: str) -> list[Dataset]:
    """WADO-RS metadata of every instance of a series: whole headers, no pixel data moved."""
    import pydicom

    what = f"metadata of series {series_uid}"
    try:
        answers = source.client().retrieve_series_metadata(study_uid, series_uid)
        with lenient_reading():  # headers as the PACS holds them
            return [pydicom.Dataset.from_json(a, bulk_data_uri_handler=lambda _tag, _vr, _uri: None)
                    for a in answers]
    except REQUEST_ERRORS as exc:
        raise explain(source, what, exc) from None
