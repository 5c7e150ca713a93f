"""Publishing releases to a local server that speaks Zenodo's deposit API: the whole release and only it per
version, creators and license checked, versions in semantic order, limits, resume, errors, token."""

from __future__ import annotations

import json
import logging
import shutil
import zipfile
from pathlib import Path

import pytest
import yaml

from ctcurate.cli import app
from curation import Workspace
from curation.errors import ReleaseError
from datacard.deposit import ZenodoLimits, orcid_ok, upload_set, zenodo_metadata
from datacard.release import build_release
from datacard.split import SplitPlan, make_split
from datacard.zenodo import ZenodoClient, ZenodoError, publish_release
from tests.cli_runner import CliRunner

from .fake_zenodo import FakeZenodo

TOKEN = "secret-token"


@pytest.fixture()
def server():
    fake = FakeZenodo(TOKEN)
    yield fake
    fake.close()


@pytest.fixture()
def released(demo_run, tmp_path: Path) -> Workspace:
    shutil.copytree(demo_run.workspace, tmp_path / "ws")
    ws = Workspace.open(tmp_path / "ws")
    make_split(ws, "1.0.0", SplitPlan((34, 33, 33), ("sex",), 3))
    answers = {"license": "CC-BY-4.0", "keywords": ["CT", "demo"], "date_published": "2026-11-30",
               "creators": [{"name": "Curie, Marie", "affiliation": "Radium Institute",
                             "orcid": "0000-0002-1825-0097"}]}
    (ws.root / "datasheet_answers.yaml").write_text(yaml.safe_dump(answers))
    build_release(ws, "1.0.0", answers=ws.root / "datasheet_answers.yaml", force_qa=True, archive_mb=0.01)
    return ws


def test_first_version_then_a_new_version_under_the_same_concept(released: Workspace, server: FakeZenodo,
                                                                  caplog, tmp_path: Path) -> None:
    caplog.set_level(logging.DEBUG)
    (tmp_path / "token").write_text(TOKEN + "\n")
    result = CliRunner().invoke(app, ["publish", "1.0.0", "-w", str(released.root), "--zenodo", "--publish",
                                      "--token-file", str(tmp_path / "token"), "--url", server.url])
    assert result.exit_code == 0, result.output
    first = min(server.depositions)
    record = server.depositions[first]
    assert record["submitted"] and record["metadata"]["upload_type"] == "dataset"
    assert record["metadata"]["version"] == "1.0.0" and record["metadata"]["license"] == "cc-by-4.0"
    assert record["metadata"]["creators"] == [{"name": "Curie, Marie", "affiliation": "Radium Institute",
                                               "orcid": "0000-0002-1825-0097"}]
    assert record["metadata"]["publication_date"] == "2026-11-30"
    assert set(server.files[first]) == _whole(released, "1.0.0")  # the whole release and nothing else
    assert {"1.0.0-datasheet.zip", "1.0.0-part01.zip", "LICENSE", "croissant.json", "meta.csv"} <= _whole(
        released, "1.0.0")
    # release 1.1.0: same cases, new datasheet answers -> a new version of the same concept
    answers = yaml.safe_load((released.root / "datasheet_answers.yaml").read_text())
    answers["fields"] = {"Noise": "none"}
    (released.root / "datasheet_answers.yaml").write_text(yaml.safe_dump(answers))
    build_release(released, "1.1.0", answers=released.root / "datasheet_answers.yaml", force_qa=True,
                  archive_mb=0.01)
    second = publish_release(released, "1.1.0", ZenodoClient(server.url, TOKEN), publish=True)
    draft = server.depositions[second.deposition_id]
    assert draft["conceptrecid"] == record["conceptrecid"] and second.deposition_id != first
    assert "croissant.json" in second.uploaded and "SHA256SUMS" in second.uploaded
    # the new version started with 1.0.0's files; it holds exactly 1.1.0's
    assert set(server.files[second.deposition_id]) == _whole(released, "1.1.0")
    assert "1.0.0-part01.zip" in second.deleted and "1.0.0-part01.zip" not in server.files[second.deposition_id]
    assert any(("POST", f"/api/deposit/depositions/{first}/actions/newversion") == r[:2] for r in server.requests)
    assert TOKEN not in caplog.text and TOKEN not in result.output  # the token is never logged


def _whole(ws: Workspace, version: str) -> set[str]:
    """What Zenodo must hold for a release: its top-level files and its zip parts (cases, datasheet)."""
    root = ws.release(version).root
    return {p.name for p in root.iterdir() if p.is_file()} | {p.name for p in (root / "archives").glob("*.zip")}


def test_every_file_of_the_release_reaches_zenodo(released: Workspace) -> None:
    root = released.release("1.0.0").root
    listed = {line.split("  ", 1)[1] for line in (root / "SHA256SUMS").read_text().splitlines()}
    inside: set[str] = set()
    for part in (root / "archives").glob("*.zip"):
        with zipfile.ZipFile(part) as archive:
            inside |= set(archive.namelist())
    assert {"datasheet/datasheet.md", "datasheet/datasheet.html", "datasheet/presence.png"} <= inside
    assert listed <= inside | {p.relative_to(root).as_posix() for p in root.rglob("*") if p.parent == root
                               or p.parent.name == "archives"}
    # a release built before the datasheet had its own part: refused, naming what Zenodo would miss
    (root / "archives" / "1.0.0-datasheet.zip").unlink()
    sums = [line for line in (root / "SHA256SUMS").read_text().splitlines() if "datasheet.zip" not in line]
    (root / "SHA256SUMS").write_text("\n".join(sums) + "\n")
    with pytest.raises(ZenodoError, match="file\\(s\\) would not reach Zenodo .*e.g. datasheet/.*build a new release"):
        upload_set(released.release("1.0.0"), ZenodoLimits())


def test_creators_and_license_are_checked_before_anything_is_sent(released: Workspace, server: FakeZenodo) -> None:
    answers_file = released.root / "answers2.yaml"

    def build(version: str, **answers: object) -> None:
        answers_file.write_text(yaml.safe_dump({"license": "CC-BY-4.0", **answers}))
        build_release(released, version, answers=answers_file, force_qa=True, archive_mb=0.01)

    with pytest.raises(ReleaseError, match="creator 1 is named 'Family, Given', a placeholder; set 'creators'"):
        build("1.1.0", creators=[{"name": "Family, Given"}])
    with pytest.raises(ReleaseError, match="ORCID '0000-0002-1825-0096' is not valid .*check digit"):
        build("1.1.0", creators=[{"name": "Curie, Marie", "orcid": "0000-0002-1825-0096"}])
    with pytest.raises(ReleaseError, match="license 'CC-BY-4': not a license id of the SPDX list.*did you mean "
                                           "CC-BY-4.0"):
        build("1.1.0", license="CC-BY-4")
    with pytest.raises(ReleaseError, match="ships the full text of CC-BY-4.0, CC-BY-NC-SA-4.0, CC0-1.0 only; add "
                                           "'license_file"):
        build("1.1.0", license="MIT")
    build("1.1.0")  # no creators: built (for local use), but not published
    with pytest.raises(ZenodoError, match="release 1.1.0's answers: no creators; a published record names who "
                                          "made it.*build a new release version"):
        publish_release(released, "1.1.0", ZenodoClient(server.url, TOKEN))
    assert server.requests == []  # refused before any request
    assert orcid_ok("0000-0002-1694-233X") and not orcid_ok("0000-0002-1694-2339") and not orcid_ok("123")


def test_versions_compare_as_semantic_versions_and_only_go_up(released: Workspace, server: FakeZenodo) -> None:
    client = ZenodoClient(server.url, TOKEN)
    answers = released.root / "datasheet_answers.yaml"
    for version in ("1.5.0", "1.9.0", "1.10.0"):
        build_release(released, version, answers=answers, force_qa=True, archive_mb=0.01)
    for version in ("1.0.0", "1.9.0", "1.10.0"):
        publish_release(released, version, client, publish=True)
    sent = len(server.requests)
    with pytest.raises(ZenodoError, match="release 1.5.0: 1.10.0 is published on Zenodo already.*publish a release "
                                          "newer than 1.10.0"):
        publish_release(released, "1.5.0", client)
    again = publish_release(released, "1.10.0", client, publish=True)  # a rerun after the end
    assert again.already and again.doi and len(server.requests) == sent  # nothing sent
    build_release(released, "1.11.0", answers=answers, force_qa=True, archive_mb=0.01)
    latest = json.loads(released.release("1.10.0").zenodo_state.read_text())["deposition_id"]
    publish_release(released, "1.11.0", client)  # a draft
    asked = [path for method, path, _ in server.requests if path.endswith("/actions/newversion")]
    assert asked[-1] == f"/api/deposit/depositions/{latest}/actions/newversion"  # 1.10.0, not 1.9.0
    build_release(released, "1.12.0", answers=answers, force_qa=True, archive_mb=0.01)
    with pytest.raises(ZenodoError, match="release 1.12.0: the Zenodo deposition of release 1.11.0 .* is still a "
                                          "draft; publish it first"):
        publish_release(released, "1.12.0", client)
    # a run killed after Zenodo published but before it wrote so: the rerun finds it published
    state_path = released.release("1.11.0").zenodo_state
    draft = json.loads(state_path.read_text())["deposition_id"]
    client.publish(draft)
    assert publish_release(released, "1.11.0", client, publish=True).already
    assert json.loads(state_path.read_text())["published"] is True


def test_zenodo_limits_and_metadata_validation(released: Workspace, server: FakeZenodo) -> None:
    with pytest.raises(ZenodoError, match="release 1.0.0: 1[0-9] files, Zenodo holds at most 5 per record; build a "
                                          "new version with larger zip parts"):
        publish_release(released, "1.0.0", ZenodoClient(server.url, TOKEN, limits=ZenodoLimits(max_files=5)))
    with pytest.raises(ZenodoError, match="GB, Zenodo holds at most 1e-06 GB per record"):
        publish_release(released, "1.0.0", ZenodoClient(server.url, TOKEN, limits=ZenodoLimits(max_bytes=1000)))
    assert server.requests == []
    server.max_files = 4  # the server's own limit, when the client's is wrong
    with pytest.raises(ZenodoError, match="HTTP 400 \\(Too many files.\\)"):
        publish_release(released, "1.0.0", ZenodoClient(server.url, TOKEN))
    client = ZenodoClient(server.url, TOKEN)
    deposition = client.create()["id"]
    with pytest.raises(ZenodoError, match="HTTP 400 \\(Validation error. metadata.creators: Missing data for "
                                          "required field.; metadata.license: Invalid license 'cc-by-5.0'"):
        client.set_metadata(deposition, {"title": "t", "upload_type": "dataset", "description": "d",
                                         "license": "cc-by-5.0"})
    with pytest.raises(ZenodoError, match="HTTP 400 \\(Validation error. files: Minimum one file"):
        client.set_metadata(deposition, zenodo_metadata(released.release("1.0.0")))
        client.publish(deposition)


def test_a_dropped_upload_resumes_with_only_what_is_missing(released: Workspace, server: FakeZenodo) -> None:
    client = ZenodoClient(server.url, TOKEN, backoff_s=0.01)
    server.drop_once.add("1.0.0-part02.zip")
    with pytest.raises(ZenodoError, match="connection failed .*run the same command again"):
        publish_release(released, "1.0.0", client)
    deposition = min(server.depositions)
    done_before = set(server.files[deposition])
    assert "1.0.0-part01.zip" in done_before and "1.0.0-part02.zip" not in done_before
    again = publish_release(released, "1.0.0", client)
    assert again.deposition_id == deposition and len(server.depositions) == 1  # the same draft
    assert set(again.skipped) == done_before and "1.0.0-part02.zip" in again.uploaded
    assert not again.published and not server.depositions[deposition]["submitted"]  # a draft unless --publish


def test_zenodo_errors(released: Workspace, server: FakeZenodo) -> None:
    with pytest.raises(ZenodoError, match="HTTP 401 \\(the token is wrong"):
        publish_release(released, "1.0.0", ZenodoClient(server.url, "wrong"))
    with pytest.raises(ZenodoError, match="token missing"):
        ZenodoClient(server.url, "")
    server.fail_once.add("/api/deposit/depositions")
    assert publish_release(released, "1.0.0", ZenodoClient(server.url, TOKEN, backoff_s=0.01)).uploaded  # retried
    server.max_bytes = 10
    (released.root / "releases" / "1.0.0.zenodo.json").unlink()
    with pytest.raises(ZenodoError, match="HTTP 413 \\(the file is larger than Zenodo accepts"):
        publish_release(released, "1.0.0", ZenodoClient(server.url, TOKEN))
    with pytest.raises(ZenodoError, match="release 9.0.0: .* not found; build it"):
        publish_release(released, "9.0.0", ZenodoClient(server.url, TOKEN))
    assert repr(ZenodoClient(server.url, TOKEN)) == f"ZenodoClient('{server.url}')"
    missing = CliRunner().invoke(app, ["publish", "1.0.0", "-w", str(released.root), "--zenodo", "--url", server.url,
                                       "--token-file", str(released.root / "no-token")])
    assert missing.exit_code == 2 and "no-token: no such file; write the Zenodo token into a file" in " ".join(
        missing.output.split())
