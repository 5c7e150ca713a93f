"""QIDO-RS queries against a real Orthanc loaded with the shared data."""

from __future__ import annotations

from datetime import date

import pytest

from curation.dicom.header import read_header
from curation.errors import ScanError
from curation.pacs.dicomweb import DicomWebSource, query_series, query_studies


def _ct_studies(orthanc) -> tuple[dict[str, set[str]], dict[str, str]]:
    """Study UID -> series UIDs, and study UID -> StudyDate, of the CT files Orthanc accepted, as ctcurate's own
    header reader sees them."""
    studies: dict[str, set[str]] = {}
    dates: dict[str, str] = {}
    for path in orthanc.accepted:
        record = read_header(path)
        if record.get("modality") == "CT" and record.get("study_uid"):
            studies.setdefault(str(record["study_uid"]), set()).add(str(record["series_uid"]))
            dates[str(record["study_uid"])] = str(record.get("study_date") or "")
    return studies, dates


def test_ct_studies_in_a_period_and_their_series(orthanc) -> None:
    source = DicomWebSource(orthanc.dicomweb)
    expected, dates = _ct_studies(orthanc)
    assert len(expected) >= 10
    found = query_studies(source, page_size=3)  # paged in threes
    assert set(found["study_uid"]) == set(expected)
    period = query_studies(source, date_from=date(2010, 1, 1), date_to=date(2018, 12, 31))
    in_period = {s for s, d in dates.items() if d.isdigit() and len(d) == 8 and "20100101" <= d <= "20181231"}
    assert set(period["study_uid"]) == in_period and 0 < len(in_period) < len(expected)
    assert found["patient_id"].notna().all() and (found["modalities"].str.contains("CT")).all()
    study = sorted(expected)[0]
    series = query_series(source, study)
    assert set(series["series_uid"]) >= expected[study] and set(series["study_uid"]) == {study}
    none = query_studies(source, date_from=date(2100, 1, 1))
    assert none.empty


def test_source_settings_and_unreachable_pacs() -> None:
    with pytest.raises(ScanError, match="DICOMweb URL 'pacs:8042': expected http"):
        DicomWebSource("pacs:8042")
    with pytest.raises(ScanError, match="DICOMweb auth 'kerberos': expected one of none, basic, bearer"):
        DicomWebSource("http://pacs", auth="kerberos")
    with pytest.raises(ScanError, match="auth bearer: no secret given"):
        DicomWebSource("http://pacs", auth="bearer")
    source = DicomWebSource("http://127.0.0.1:9/dicom-web", auth="basic", username="u", secret="pw", timeout_s=2)
    assert "pw" not in repr(source)
    with pytest.raises(ScanError, match="PACS unreachable during study query"):
        query_studies(source)


def test_retrieve_a_series_and_resume(orthanc, tmp_path) -> None:
    from curation.pacs.retrieve import retrieve_series

    source = DicomWebSource(orthanc.dicomweb)
    expected, _ = _ct_studies(orthanc)
    originals: dict[str, set[str]] = {}
    for path in orthanc.accepted:
        record = read_header(path)
        if record.get("modality") == "CT":
            originals.setdefault(str(record["series_uid"]), set()).add(str(record["sop_instance_uid"]))
    study, series = next((s, u) for s, uids in sorted(expected.items()) for u in sorted(uids)
                         if len(originals.get(u, ())) >= 5)
    first = retrieve_series(source, study, series, tmp_path / "series")
    assert first.expected == len(originals[series]) and not first.skipped
    fetched = {read_header(p)["sop_instance_uid"] for p in (tmp_path / "series").glob("*.dcm")}
    assert fetched == originals[series]  # the same instances as on disk, read back by ctcurate's reader
    on_disk = {read_header(p)["sop_instance_uid"]: p.read_bytes() for p in orthanc.accepted
               if read_header(p)["series_uid"] == series}
    for sop, data in on_disk.items():  # byte for byte, as the PACS stores them
        assert (tmp_path / "series" / f"{sop}.dcm").read_bytes() == data
    (tmp_path / "series" / f"{sorted(fetched)[0]}.dcm").unlink()  # as if a run had stopped before it
    again = retrieve_series(source, study, series, tmp_path / "series")
    assert again.fetched == [sorted(fetched)[0]] and len(again.skipped) == first.expected - 1
    with pytest.raises(ScanError, match="PACS unreachable during instance query"):
        retrieve_series(DicomWebSource("http://127.0.0.1:9/dicom-web", timeout_s=2), study, series, tmp_path / "x")


def test_study_answered_without_modalities_is_asked_for_its_series(orthanc, monkeypatch: pytest.MonkeyPatch) -> None:
    """Some servers never fill ModalitiesInStudy (Orthanc leaves it empty when a series' first instance has no
    Modality): such a study is asked for its series rather than dropped."""
    source = DicomWebSource(orthanc.dicomweb)
    expected = set(query_studies(source)["study_uid"])
    make_client = DicomWebSource.client

    def without_modalities(self: DicomWebSource):
        client = make_client(self)
        search = client.search_for_studies

        def answer(**kwargs):
            return [{k: v for k, v in study.items() if k != "00080061"} for study in search(**kwargs)]

        client.search_for_studies = answer
        return client

    monkeypatch.setattr(DicomWebSource, "client", without_modalities)
    found = query_studies(source)
    assert set(found["study_uid"]) == expected and (found["modalities"].str.split("\\").map(lambda m: "CT" in m)).all()
