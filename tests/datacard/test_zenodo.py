"""Publishing releases to a local server that speaks Zenodo's deposit API: versions, resume, errors, token."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
import yaml

from ctcurate.cli import app
from curation import Workspace
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
    answers = {"license": "CC-BY-4.0", "creators": [{"name": "Steward, Demo"}], "keywords": ["CT", "demo"]}
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
    assert record["metadata"]["creators"] == [{"name": "Steward, Demo"}]
    names = set(server.files[first])
    assert {"1.0.0-part01.zip", "croissant.json", "SHA256SUMS", "meta.csv"} <= names
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
    assert any(("POST", f"/api/deposit/depositions/{first}/actions/newversion") == r[:2] for r in server.requests)
    assert TOKEN not in caplog.text and TOKEN not in result.output  # the token is never logged


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
