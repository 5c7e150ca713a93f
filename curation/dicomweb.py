"""Query a PACS over DICOMweb (QIDO-RS): CT studies in a period, and the series of a study.

:class:`DicomWebSource` names the service and how to authenticate (none, HTTP basic, or a bearer
token); the secret is passed in by the caller (the CLI reads it from an environment variable or a
file) and never logged. Queries are paged, so a large archive is listed in pieces. Answers come back
as tables with the same column names the catalog uses for files read from disk, so sampling and the
exclusion rules can run on them before any pixel data moves. Uses ``dicomweb-client``.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from .atomic import atomic_path
from .errors import ScanError

__all__ = ["DicomWebSource", "RetrieveResult", "query_studies", "query_series", "retrieve_series"]

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
        return DICOMwebClient(self.url, session=session, headers=headers, timeout=self.timeout_s)


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


def _query(source: DicomWebSource, what: str, call: Any, page_size: int) -> list[dict[str, Any]]:
    import requests

    answers: list[dict[str, Any]] = []
    offset = 0
    while True:
        try:
            page = call(offset=offset, limit=page_size)
        except requests.HTTPError as exc:
            code = exc.response.status_code if exc.response is not None else 0
            hint = {401: "wrong credentials", 403: "not allowed for these credentials"}.get(code, "see the PACS log")
            raise ScanError(f"{source.url}: {what} refused with HTTP {code} ({hint})") from None
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise ScanError(f"{source.url}: PACS unreachable during {what} ({type(exc).__name__}); check the URL "
                            "and that the server runs") from None
        except ValueError as exc:
            raise ScanError(f"{source.url}: {what} did not return DICOM JSON ({exc})") from None
        answers += page
        if len(page) < page_size:
            return answers
        offset += len(page)


def query_studies(source: DicomWebSource, *, modality: str = "CT", date_from: date | None = None,
                  date_to: date | None = None, description: str | None = None, page_size: int = 100) -> pd.DataFrame:
    """Studies holding ``modality`` in the period (both ends included), optionally matching a description.

    The modality is matched here, not by the server: some servers (Orthanc among them) filter on the
    computed ModalitiesInStudy after cutting the page, which would end paging early. Studies without a
    valid StudyDate cannot match a period.
    """
    filters: dict[str, Any] = {}
    if date_from or date_to:
        low = date_from.strftime("%Y%m%d") if date_from else ""
        high = date_to.strftime("%Y%m%d") if date_to else ""
        filters["StudyDate"] = f"{low}-{high}"
    if description:
        filters["StudyDescription"] = description
    client = source.client()
    answers = _query(source, "study query", lambda offset, limit: client.search_for_studies(
        offset=offset, limit=limit, search_filters=filters, fields=list(STUDY_FIELDS)), page_size)
    table = _table(answers, STUDY_FIELDS).drop_duplicates("study_uid")
    table = table[table["modalities"].astype(str).str.split("\\").map(lambda m: modality in m)]
    log.info("DICOMweb %s: %d %s studies", source.url, len(table), modality)
    return table.reset_index(drop=True)


def query_series(source: DicomWebSource, study_uid: str, *, page_size: int = 100) -> pd.DataFrame:
    """The series of one study with the metadata the exclusion rules read before any download."""
    client = source.client()
    answers = _query(source, f"series query of study {study_uid}", lambda offset, limit: client.search_for_series(
        study_uid, offset=offset, limit=limit, fields=list(SERIES_FIELDS)), page_size)
    table = _table(answers, SERIES_FIELDS)
    table.insert(0, "study_uid", study_uid)
    return table


@dataclass
class RetrieveResult:
    """One series' retrieval: instances the PACS lists, fetched now, already there."""

    series_uid: str
    expected: int
    fetched: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _fetch(source: DicomWebSource, client: Any, study_uid: str, series_uid: str, sop_uid: str, target: Path,
           retries: int, backoff_s: float) -> None:
    import requests

    for attempt in range(retries + 1):
        try:
            dataset = client.retrieve_instance(study_uid, series_uid, sop_uid)
            with atomic_path(target) as tmp:
                dataset.save_as(tmp, enforce_file_format=True)
            return
        except (requests.ConnectionError, requests.Timeout, requests.HTTPError) as exc:
            status = getattr(getattr(exc, "response", None), "status_code", 0) or 0
            if attempt == retries or 400 <= status < 500:
                raise ScanError(f"{source.url}: instance {sop_uid} of series {series_uid} not retrieved "
                                f"({type(exc).__name__}{f' HTTP {status}' if status else ''}); run the same "
                                "command again to fetch what is missing") from None
            time.sleep(backoff_s * 2**attempt)


def retrieve_series(source: DicomWebSource, study_uid: str, series_uid: str, folder: str | Path, *,
                    workers: int = 4, retries: int = 3, backoff_s: float = 0.5) -> RetrieveResult:
    """WADO-RS: fetch the series' instances missing from ``folder`` (``<SOPInstanceUID>.dcm``, written atomically).

    A rerun fetches only what is missing; afterwards the folder must hold exactly the instances the
    PACS lists for the series, else :class:`ScanError` says how many are missing.
    """
    folder = Path(folder)
    client = source.client()
    listed = _query(source, f"instance query of series {series_uid}", lambda offset, limit:
                    client.search_for_instances(study_uid, series_uid, offset=offset, limit=limit,
                                                fields=["SOPInstanceUID"]), 500)
    sop_uids = sorted({str(_value(answer.get("00080018"))) for answer in listed} - {""})
    result = RetrieveResult(series_uid, len(sop_uids))
    present = {p.stem for p in folder.glob("*.dcm")} if folder.is_dir() else set()
    result.skipped = [u for u in sop_uids if u in present]
    todo = [u for u in sop_uids if u not in present]
    folder.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for sop_uid, _ in zip(todo, pool.map(lambda u: _fetch(source, client, study_uid, series_uid, u,
                                                               folder / f"{u}.dcm", retries, backoff_s), todo),
                              strict=True):
            result.fetched.append(sop_uid)
    missing = sorted(set(sop_uids) - {p.stem for p in folder.glob("*.dcm")})
    if missing:
        raise ScanError(f"series {series_uid}: {len(missing)} of {len(sop_uids)} instances missing after retrieval; "
                        "run the same command again")
    log.info("series %s: %d fetched, %d already there", series_uid, len(result.fetched), len(result.skipped))
    return result
