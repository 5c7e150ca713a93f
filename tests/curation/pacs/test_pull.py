"""``ctcurate pull`` against a real Orthanc: query, seeded draw, judgement from metadata, retrieval, resume."""

from __future__ import annotations

import json
from pathlib import Path

import nrrd
import numpy as np
import pandas as pd
import pytest

from ctcurate.cli import app
from curation.dicom.header import read_header
from curation.pacs.pull import pull
from curation.workspace.layout import Workspace
from curation.workspace.settings import ExclusionSettings, PacsSettings, Settings
from tests.cli_runner import CliRunner

runner = CliRunner()
PHILIPS = Path("dcm_qa_ct/In/Philips")


def _headers(paths: list[Path]) -> list[dict]:
    return [read_header(p) for p in paths]


def _workspace(root: Path, url: str, *, exclusion: ExclusionSettings | None = None, **pacs: object) -> Workspace:
    settings = Settings(seed=7, pacs=PacsSettings(url=url, retries=1, **pacs),  # type: ignore[arg-type]
                        exclusion=exclusion or ExclusionSettings())
    return Workspace.create(root, settings)


def _series_files(ws: Workspace) -> dict[str, set[str]]:
    """Series UID -> SOP UIDs of the retrieved files, read back with ctcurate's header reader."""
    found: dict[str, set[str]] = {}
    for path in ws.pacs_export_dir.rglob("*"):
        if path.is_file():
            record = read_header(path)
            assert path.name == f"{record['sop_instance_uid']}.dcm", path  # nothing but whole, named instances
            found.setdefault(str(record["series_uid"]), set()).add(str(record["sop_instance_uid"]))
    return found


def test_query_draw_judge_retrieve_convert(orthanc, shared_data: Path, tmp_path: Path) -> None:
    records = [r for r in _headers(orthanc.accepted) if r.get("modality") == "CT" and r.get("study_uid")]
    in_period = {str(r["study_uid"]) for r in records if str(r.get("study_date") or "").isdigit()
                 and "20100101" <= str(r["study_date"]) <= "20181231"}
    ws = _workspace(tmp_path / "pacs", orthanc.dicomweb, date_from="2010-01-01", date_to="2018-12-31")
    result = runner.invoke(app, ["pull", "-w", str(ws.root), "--n", "5", "--no-retrieve"])
    assert result.exit_code == 0, result.output
    studies = pd.read_parquet(ws.pacs_studies_table)
    assert set(studies["study_uid"]) == in_period  # the date-range CT query finds the CT studies
    first = json.loads(ws.sample_manifest.read_text())
    assert len(first["members"]) == 5 and first["frame"]["source"] == "dicomweb"
    again = pull(ws, refresh=True, retrieve=False)  # asks the PACS again: the same draw
    assert list(again.sample.members) == first["members"]
    other = _workspace(tmp_path / "other", orthanc.dicomweb, date_from="2010-01-01", date_to="2018-12-31")
    assert list(pull(other, n=5, retrieve=False).sample.members) == first["members"]  # seed 7 alone decides

    full = pull(ws, n=0)  # every CT study of the period
    assert full.sample.frame_size == len(in_period) and not full.failed
    judged = pd.read_parquet(ws.pacs_series_table)
    philips = [r for r in records if str(r["path"]).startswith(str(shared_data / PHILIPS))]
    localizers = {str(r["series_uid"]) for r in philips if "/S1000/" in str(r["path"])}
    screens = {str(r["series_uid"]) for r in philips if "/S4010/" in str(r["path"])}
    assert localizers and screens
    reasons = judged.set_index("series_uid")["primary_reason"]
    assert set(reasons[list(localizers)]) == {"localizer"}
    assert set(reasons[list(screens)]) <= {"secondary_capture", "screen_capture"}
    retrieved = _series_files(ws)
    assert set(retrieved) == set(judged.loc[judged["retrieve"], "series_uid"])  # nothing excluded was moved
    assert not (localizers | screens) & set(retrieved)
    for row in judged[judged["retrieve"]].itertuples():
        originals = {str(r["sop_instance_uid"]) for r in records if r["series_uid"] == row.series_uid}
        assert retrieved[row.series_uid] == originals

    assert runner.invoke(app, ["convert", "-w", str(ws.root), "--workers", "1"]).exit_code == 0
    disk = Workspace.create(tmp_path / "disk", Settings(seed=7))
    for step in (["scan", str(shared_data / PHILIPS), "--workers", "1"], ["sample"], ["filter"],
                 ["convert", "--workers", "1"]):
        assert runner.invoke(app, [step[0], "-w", str(disk.root), *step[1:]]).exit_code == 0
    pulled = pd.read_parquet(ws.linkage_table).set_index("series_key")["case_id"]
    scanned = pd.read_parquet(disk.linkage_table).set_index("series_key")["case_id"]
    common = sorted(set(pulled.index) & set(scanned.index))
    assert common  # the Philips head series, retrieved and scanned
    for key in common:
        for name in ("ct.nrrd", "ct_1.5mm.nrrd"):
            a, ha = nrrd.read(str(ws.case_dir(pulled[key]) / name))
            b, hb = nrrd.read(str(disk.case_dir(scanned[key]) / name))
            assert np.array_equal(a, b) and np.allclose(ha["space directions"], hb["space directions"])
            assert np.allclose(ha["space origin"], hb["space origin"])

    refused = runner.invoke(app, ["sample", "-w", str(ws.root)])
    assert refused.exit_code == 2 and "drawn from the PACS" in " ".join(refused.output.split())


def _philips_orthanc(make_orthanc, shared_data: Path, users: dict[str, str] | None = None):
    server = make_orthanc(users)
    server.load(p for p in (shared_data / PHILIPS).rglob("*") if p.is_file())
    return server


LENIENT = ExclusionSettings(max_tilt_deg=30.0)  # keeps the tilted Philips series: two series to retrieve


@pytest.mark.parametrize("protocol", ["dicomweb", "dimse"])
def test_pacs_stops_mid_retrieval_and_the_rerun_completes(make_orthanc, shared_data: Path, tmp_path: Path,
                                                           protocol: str) -> None:
    server = _philips_orthanc(make_orthanc, shared_data)
    ws = _workspace(tmp_path / "ws", getattr(server, protocol), exclusion=LENIENT, workers=2)
    seen: list[int] = []

    def stop_midway(done: int, total: int) -> None:
        seen.append(done)
        if done >= 20 and server.process is not None:
            if protocol == "dicomweb":
                server.stop()  # the PACS goes down while instances stream in
            else:  # Orthanc would finish a running C-GET before it stops: it crashes instead
                server.stop(kill=True)

    first = pull(ws, n=0, progress=stop_midway)
    judged = pd.read_parquet(ws.pacs_series_table)
    wanted = judged[judged["retrieve"]]
    total = int(wanted["n_files"].sum())
    assert len(wanted) == 2 and total == 82
    assert first.failed and all("unreachable" in m or "refused" in m or "not" in m for m in first.failed.values())
    partial = _series_files(ws)
    n_before = sum(len(v) for v in partial.values())
    assert 20 <= n_before < total
    exams = pd.read_parquet(ws.exams_table)
    assert "not_retrieved" in set(exams["primary_reason"])  # an incomplete series is not judged as a short one

    server.start()  # the PACS is back
    second = pull(ws)
    assert not second.failed and second.n_series_retrieved == 2
    assert second.n_instances_present == n_before and second.n_instances_fetched == total - n_before
    originals: dict[str, set[str]] = {}
    for record in _headers(server.accepted):
        originals.setdefault(str(record["series_uid"]), set()).add(str(record["sop_instance_uid"]))
    final = _series_files(ws)
    assert set(final) == set(wanted["series_uid"])
    for uid, sops in final.items():
        assert sops == originals[uid]  # no instance missing
    assert sum(len(v) for v in final.values()) == total  # and none twice
    assert not [p for p in ws.pacs_export_dir.rglob("*") if p.name.startswith(".")]  # no temporary leftovers
    exams = pd.read_parquet(ws.exams_table)
    assert exams["included"].all(), exams[["primary_reason", "reasons"]].to_string()


def test_wrong_credentials_is_one_line_and_exit_code(make_orthanc, shared_data: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    server = _philips_orthanc(make_orthanc, shared_data, users={"steward": "right-secret"})
    ws = Workspace.create(tmp_path / "ws", Settings())
    args = ["pull", "-w", str(ws.root), "--dicomweb", server.dicomweb, "--auth", "basic", "--user", "steward",
            "--no-retrieve"]
    monkeypatch.setenv("CTCURATE_PACS_SECRET", "wrong")
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "study query refused with HTTP 401 (wrong credentials" in text and "wrong" not in text.split("(")[0]
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) <= 3  # one wrapped line
    monkeypatch.delenv("CTCURATE_PACS_SECRET")
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "no secret; set the environment variable CTCURATE_PACS_SECRET" in " ".join(
        result.output.split())
    secret = tmp_path / "secret.txt"
    secret.write_text("right-secret\n")
    result = runner.invoke(app, [*args, "--secret-file", str(secret)])
    assert result.exit_code == 0, result.output
    assert "2 candidate studies" in " ".join(result.output.split())
    assert "right-secret" not in ws.settings_path.read_text()  # the secret is never stored


def test_deleted_study_and_missing_instance_then_rerun(make_orthanc, shared_data: Path, tmp_path: Path) -> None:
    server = _philips_orthanc(make_orthanc, shared_data)
    ws = _workspace(tmp_path / "ws", server.dicomweb, exclusion=LENIENT)
    pull(ws, n=0, retrieve=False)  # described; now the PACS changes before retrieval
    judged = pd.read_parquet(ws.pacs_series_table)
    wanted = judged[judged["retrieve"]].sort_values("n_files")
    small, large = wanted.iloc[0], wanted.iloc[1]  # 28-slice head, 54-slice tilted series
    large_files = sorted(p for p in server.accepted if read_header(p)["series_uid"] == large.series_uid)
    server.delete("instances", str(read_header(large_files[0])["sop_instance_uid"]))
    server.delete("studies", str(small.study_uid))
    result = pull(ws)
    messages = " | ".join(result.failed.values())
    assert len(result.failed) == 2
    assert f"retrieval of series {small.series_uid} refused with HTTP 404 (not found on the PACS" in messages
    assert f"series {large.series_uid}: the PACS announced 54 instances but did not return 1 of them" in messages
    assert len(_series_files(ws)[large.series_uid]) == 53  # what came is kept
    server.load(p for p in (shared_data / PHILIPS).rglob("*") if p.is_file())  # the archive is restored
    rerun = pull(ws)
    assert not rerun.failed and rerun.n_instances_fetched == 28 + 1
    assert {k: len(v) for k, v in _series_files(ws).items()} == {small.series_uid: 28, large.series_uid: 54}


class _Gateway:
    """A loopback HTTP server in front of a PACS: passes queries and metadata through to ``upstream`` (the
    PACS's root URL), answers
    retrievals, or everything when there is no upstream, with an HTML page; records the Authorization headers."""

    def __init__(self, upstream: str = "") -> None:
        import http.server
        import threading
        import urllib.error
        import urllib.request

        gateway = self
        self.authorizations: list[str] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 (the http.server name)
                gateway.authorizations.append(self.headers.get("Authorization", ""))
                path = self.path.split("?")[0]
                query = path.endswith(("/studies", "/series", "/instances", "/metadata"))
                status, kind = 200, "text/html"
                body = b"<html><body>Scheduled maintenance</body></html>"
                if upstream and query:
                    request = urllib.request.Request(upstream + self.path, headers={"Accept": "application/dicom+json"})
                    try:
                        with urllib.request.urlopen(request, timeout=30) as answer:
                            body, kind = answer.read(), answer.headers.get("Content-Type", "application/dicom+json")
                    except urllib.error.HTTPError as exc:
                        status, body = exc.code, exc.read()
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/dicom-web"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_answers_that_are_not_dicom(make_orthanc, shared_data: Path, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    web_page = _Gateway()
    try:
        ws = Workspace.create(tmp_path / "ws", Settings())
        result = runner.invoke(app, ["pull", "-w", str(ws.root), "--dicomweb", web_page.url])
        assert result.exit_code == 2
        assert "study query did not return DICOM" in " ".join(result.output.split())
    finally:
        web_page.close()
    server = _philips_orthanc(make_orthanc, shared_data)
    gateway = _Gateway(server.url)
    try:
        ws = _workspace(tmp_path / "bearer", gateway.url, auth="bearer")
        monkeypatch.setenv("CTCURATE_PACS_SECRET", "token-123")
        result = runner.invoke(app, ["pull", "-w", str(ws.root), "--n", "0"])
        assert set(gateway.authorizations) == {"Bearer token-123"}
        text = " ".join(result.output.split())
        assert result.exit_code == 1 and "did not return DICOM" in text, text  # each failed series named
        assert "0 of 1 series retrieved" in text and "token-123" not in text
        exams = pd.read_parquet(ws.exams_table) if ws.exams_table.exists() else None
        assert exams is None  # nothing retrieved: nothing to scan yet; a rerun completes it
    finally:
        gateway.close()


@pytest.mark.parametrize(("values", "message"), [
    ({"url": "pacs:8042"}, r"pacs.url': expected http\(s\)://host\[:port\]/dicom-web \(DICOMweb\) or "
                           r"dicom://host:port/AET \(DIMSE\), found 'pacs:8042'"),
    ({"auth": "kerberos"}, "pacs.auth': expected none, basic or bearer, found 'kerberos'"),
    ({"series": "all"}, "pacs.series': expected chosen or included, found 'all'"),
    ({"date_from": "2016/01/01"}, "pacs.date_from': expected a date YYYY-MM-DD, found '2016/01/01'"),
    ({"date_from": "2017-01-01", "date_to": "2016-01-01"}, "is after 'pacs.date_to' 2016-01-01; swap them"),
    ({"workers": 0}, "pacs.workers': expected >= 1, found 0"),
    ({"retries": -1}, "pacs.retries': expected >= 0, found -1"),
    ({"timeout_s": 0}, "pacs.timeout_s': expected a positive number"),
])
def test_pacs_settings_are_checked(values: dict, message: str) -> None:
    from curation.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        PacsSettings(**values)


def test_pull_refuses_what_it_cannot_do(orthanc, tmp_path: Path) -> None:
    from curation.errors import SamplingError, ScanError

    with pytest.raises(ScanError, match="no PACS given: pass --dicomweb"):
        pull(Workspace.create(tmp_path / "none", Settings()))
    ws = _workspace(tmp_path / "ws", orthanc.dicomweb, date_from="2100-01-01")
    with pytest.raises(SamplingError, match=r"no CT study matches the query .*widen the period"):
        pull(ws)
    ws = _workspace(tmp_path / "strata", orthanc.dicomweb)
    with pytest.raises(SamplingError, match="a PACS draw can stratify by study_year, patient_sex only"):
        pull(ws, stratify_by="manufacturer", retrieve=False)
    result = runner.invoke(app, ["pull", "-w", str(ws.root), "--auth", "basic", "--secret-file",
                                 str(tmp_path / "missing.txt")])
    assert result.exit_code == 2 and "cannot read the PACS secret" in " ".join(result.output.split())


def test_headers_from_metadata_without_bulk_data(shared_data: Path) -> None:
    """Servers may leave Pixel Data out of metadata (Orthanc does for compressed pixels): an image object with a
    matrix size counts as having pixels; a header-only non-image object does not."""
    import pydicom

    from curation.dicom.header import header_from_dataset
    from curation.errors import PacsError

    path = next((shared_data / PHILIPS / "S21570" / "S2010").iterdir())
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    record = header_from_dataset(ds, "/export/x.dcm")
    assert record["status"] == "ok" and record["has_pixel_data"] and record["path"] == "/export/x.dcm"
    assert record["series_uid"] == read_header(path)["series_uid"]
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.22"  # Enhanced SR
    assert header_from_dataset(ds, "/export/y.dcm")["status"] == "non_image"
    assert PacsError("x", 500).permanent and not PacsError("x", 503).permanent and not PacsError("x").permanent


def test_the_same_pull_over_dimse(orthanc, tmp_path: Path) -> None:
    """C-FIND and C-GET instead of DICOMweb: the same candidates, draw and verdicts, the same bytes retrieved, and a
    rerun fetches only what is missing."""
    import pydicom

    period = {"date_from": "2010-01-01", "date_to": "2018-12-31"}
    web = _workspace(tmp_path / "web", orthanc.dicomweb, **period)
    dimse = _workspace(tmp_path / "dimse", orthanc.dimse, **period)
    by_web, by_dimse = pull(web, n=0), pull(dimse, n=0)
    assert by_dimse.n_candidates == by_web.n_candidates and by_dimse.sample.members == by_web.sample.members
    assert not by_dimse.failed and by_dimse.filter and by_web.filter
    assert by_dimse.filter.n_included_exams == by_web.filter.n_included_exams
    verdicts = [pd.read_parquet(ws.pacs_series_table).set_index("series_key")["primary_reason"] for ws in (web, dimse)]
    differ = verdicts[0][verdicts[0] != verdicts[1].reindex(verdicts[0].index)]
    assert set(differ) <= {"not_retrieved"}  # where Orthanc's DICOMweb cannot give metadata, its C-FIND can
    files = {ws: {p.name: pydicom.dcmread(p) for p in ws.pacs_export_dir.rglob("*.dcm")} for ws in (web, dimse)}
    assert files[web] and set(files[web]) == set(files[dimse])
    for name, ds in files[web].items():  # the same data set in the same transfer syntax (file meta is C-GET's)
        other = files[dimse][name]
        assert ds == other and ds.file_meta.TransferSyntaxUID == other.file_meta.TransferSyntaxUID
    first = sorted(dimse.pacs_export_dir.rglob("*.dcm"))[0]
    first.unlink()
    again = pull(dimse)
    assert again.n_instances_fetched == 1 and pydicom.dcmread(first) == files[web][first.name]


def test_dimse_addresses_an_unreachable_peer_and_a_refusal(make_orthanc, tmp_path: Path) -> None:
    from curation.errors import ConfigError, ScanError
    from curation.pacs.dicomweb import query_studies
    from curation.pacs.dimse import DimseSource
    from curation.pacs.local import free_port

    with pytest.raises(ScanError, match=r"DIMSE address 'dicom://pacs/PACS': expected dicom://host:port/CALLED_AET"):
        DimseSource("dicom://pacs/PACS")
    with pytest.raises(ScanError, match="calling AE title 'A_TITLE_LONGER_THAN_16': expected 1 to 16 characters"):
        DimseSource("dicom://pacs:104/PACS", "A_TITLE_LONGER_THAN_16")
    with pytest.raises(ConfigError, match="pacs.calling_aet': expected 1 to 16 characters"):
        PacsSettings(calling_aet="")
    source = DimseSource(f"dicom://127.0.0.1:{free_port()}/PACS", timeout_s=2)
    with pytest.raises(ScanError, match=r"PACS unreachable during study query \(no DICOM association\)"):
        query_studies(source)
    strict = make_orthanc(check_called_aet=True)
    wrong = DimseSource(strict.dimse.replace("/ORTHANC", "/NOT-ORTHANC"))
    with pytest.raises(ScanError, match="study query refused: the PACS rejected the association"):
        query_studies(wrong)
    assert query_studies(DimseSource(strict.dimse)).empty  # addressed right: answered (nothing stored)
    ws = Workspace.create(tmp_path / "ws", Settings())
    result = runner.invoke(app, ["pull", "-w", str(ws.root), "--dicomweb", "http://x/dicom-web", "--dimse",
                                 "dicom://x:104/X"])
    assert result.exit_code == 2 and "--dicomweb and --dimse both given" in result.output
