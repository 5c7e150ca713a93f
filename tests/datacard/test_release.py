"""Releases of the demo workspace: layout, SHA256SUMS, PHI scan with canaries, QA gate, versions, changelog."""

from __future__ import annotations

import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
import yaml

from ctcurate.cli import app
from curation import Workspace
from datacard.release import ReleaseError, build_release, phi_token_set
from datacard.split import SplitPlan, load_split, make_split
from tests.cli_runner import CliRunner

runner = CliRunner()


@pytest.fixture()
def release_ws(demo_run, tmp_path: Path) -> Workspace:
    shutil.copytree(demo_run.workspace, tmp_path / "ws")
    ws = Workspace.open(tmp_path / "ws")
    make_split(ws, "1.0.0", SplitPlan((34, 33, 33), ("sex",), 3))
    (ws.root / "datasheet_answers.yaml").write_text(yaml.safe_dump({"license": "CC-BY-4.0"}))
    return ws


def test_clean_release_layout_checksums_and_versions(release_ws: Workspace) -> None:
    ws = release_ws
    with pytest.raises(ReleaseError, match="QA reports 1 error\\(s\\) in included cases; fix them"):
        build_release(ws, "1.0.0")  # the demo swapped the lungs of one case
    result = CliRunner().invoke(app, ["release", "1.0.0", "-w", str(ws.root), "--force-qa", "--archive-mb", "0.01"])
    assert result.exit_code == 0, result.output
    folder = ws.root / "releases" / "1.0.0"
    for case in ("s0001", "s0002", "s0003"):
        assert (folder / case / "ct.nrrd").is_file()
        assert {p.name for p in (folder / case / "segmentations").iterdir()} >= {"liver.nrrd", "spleen.nrrd"}
    for name in ("meta.csv", "splits.json", "splits_final.json", "croissant.json", "LICENSE", "CHANGELOG.md",
                 "SHA256SUMS", "datasheet/datasheet.md"):
        assert (folder / name).is_file(), name
    assert ";" in (folder / "meta.csv").read_text().splitlines()[0]
    assert "built with 1 QA error(s) outstanding (forced)" in (folder / "datasheet" / "datasheet.md").read_text()
    check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=folder, capture_output=True, text=True)
    assert check.returncode == 0 and check.stdout.count(": OK") > 20, check.stdout[-500:]
    archives = sorted((folder / "archives").glob("*part*.zip"))
    assert [a.name for a in archives] == [f"1.0.0-part0{n}.zip" for n in (1, 2, 3)]  # 10 KiB: one case each
    with zipfile.ZipFile(folder / "archives" / "1.0.0-datasheet.zip") as part:  # and the datasheet in one more
        assert {"datasheet/datasheet.md", "datasheet/datasheet.html"} <= set(part.namelist())
    license_text = (folder / "LICENSE").read_text()  # the full text of the answers' license
    assert license_text.startswith("Attribution 4.0 International") and "Section 8 -- Interpretation." in license_text
    record = json.loads((folder / "release.json").read_text())
    assert record["split_frozen"] is True and record["answers"]["license"] == "CC-BY-4.0"
    for case_id in ("s0001", "s0002", "s0003"):  # the phase is estimated again on the labels the release ships
        contrast = json.loads(ws.case_metadata(case_id).read_text())["contrast"]
        assert contrast["phase_revision"] == record["cases"][case_id]["revision"] == 1
    assert "archives/1.0.0-part01.zip" in (folder / "SHA256SUMS").read_text()  # sealed with the release
    with zipfile.ZipFile(archives[0]) as part:
        assert part.namelist() == sorted(part.namelist()) and part.namelist()[0].startswith("s0001/")
        assert {i.date_time for i in part.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    assert load_split(ws, "1.0.0").frozen  # the release froze its split
    assert json.loads((folder / "splits.json").read_text())["frozen"] is True  # and ships it frozen
    assert "First release: 3 cases." in (folder / "CHANGELOG.md").read_text()
    with pytest.raises(ReleaseError, match="releases are never rebuilt"):
        build_release(ws, "1.0.0", force_qa=True)
    # a later split that moves a case needs a new major release
    make_split(ws, "2.0.0", SplitPlan((34, 33, 33), ("sex",), 11), reshuffle=True)
    moved = load_split(ws, "2.0.0").assignments != load_split(ws, "1.0.0").assignments
    if moved:
        with pytest.raises(ReleaseError, match="move to another split since 1.0.0; that needs a new major version"):
            build_release(ws, "1.1.0", force_qa=True)
    second = build_release(ws, "2.0.0", force_qa=True, answers=ws.root / "datasheet_answers.yaml")
    changelog = (second.folder / "CHANGELOG.md").read_text()
    assert "Changes since 1.0.0" in changelog and "cases moved between splits" in changelog
    with pytest.raises(ReleaseError, match="must be newer than the last release 2.0.0"):
        build_release(ws, "1.5.0", force_qa=True)


def test_phi_canaries_in_source_headers_block_a_release(release_ws: Workspace) -> None:
    ws = release_ws
    tokens = phi_token_set(ws)
    assert {"Demo^Alice", "DEMO0001", "Alice"} <= tokens and "Demo" not in tokens  # names and ids of the headers
    answers = yaml.safe_load((ws.root / "datasheet_answers.yaml").read_text())
    answers["fields"] = {"Noise": "Ask Demo^Alice about the artefacts"}  # a leak through the free text
    (ws.root / "datasheet_answers.yaml").write_text(yaml.safe_dump(answers))
    with pytest.raises(ReleaseError, match="identifying values found, nothing was released: .*'Demo\\^Alice'.*"
                                           "datasheet/datasheet.md: 'Alice'"):
        build_release(ws, "1.0.0", force_qa=True, answers=ws.root / "datasheet_answers.yaml")
    assert not (ws.root / "releases" / "1.0.0").exists()
    assert not list((ws.root / "releases").glob(".tmp-*"))


def test_placeholders_and_generated_words_are_not_phi(release_ws: Workspace, tmp_path: Path) -> None:
    """De-identified archives put placeholders where names were ('REMOVED'), phantoms have names like 'HEAD':
    neither may block a release through an HTML tag or a JSON key."""
    import pandas as pd

    from datacard.release import scan_for_phi

    series = pd.read_parquet(release_ws.series_table)
    series.loc[0, "patient_name"] = "REMOVED"
    series.loc[1, "patient_name"] = "ANONYMOUS^PATIENT"
    series.to_parquet(release_ws.series_table, index=False)
    tokens = phi_token_set(release_ws)
    assert not {"REMOVED", "ANONYMOUS^PATIENT", "ANONYMOUS", "PATIENT"} & tokens and "DEMO0001" in tokens
    folder = tmp_path / "generated"
    folder.mkdir()
    (folder / "page.html").write_text("<html><head></head><body>removed_since_parent</body></html>")
    (folder / "notes.md").write_text("Seen by Dr DOE (and Mrs Doe); the doe_key column.")
    assert scan_for_phi(folder, {"HEAD", "DOE", "REMOVED"}) == [("notes.md", "DOE")]


def test_the_release_ships_what_qa_checked(release_ws: Workspace, tmp_path: Path) -> None:
    """The labels of record are what QA checked and what is released; a QA of the release finds the same."""
    import numpy as np
    import pandas as pd

    from curation.annotation import RevisionStore, labels_of_record
    from curation.labels import read_mask_folder, read_seg_nrrd
    from curation.workspace import QAFolder, ReleaseFolder

    ws = release_ws
    store = RevisionStore(ws)
    store.review("s0002", 0, "approved", reviewer="dr.b")  # the model's revision becomes s0002's labels of record
    with pytest.raises(ReleaseError, match=r"labels of record differ from what QA checked for 1 case\(s\): s0002 "
                                           r"\(revision 0 \(approved\) of record, QA checked revision 1\); run "
                                           "'ctcurate qa labels .*' again"):
        build_release(ws, "1.0.0", force_qa=True)
    assert runner.invoke(app, ["qa", "labels", str(ws.root)]).exit_code == 1  # the lung swap is an error
    result = build_release(ws, "1.0.0", force_qa=True)
    record = labels_of_record(store, "s0002")
    assert record is not None and record.number == 0
    shipped = read_mask_folder(result.folder / "s0002" / "segmentations")
    truth, _ = read_seg_nrrd(record.path)
    index = ws.label_set().index_of()
    for name, mask in shipped.items():
        assert np.array_equal(mask.array > 0, truth.array == index[name]), name
    facts = (result.folder / "datasheet" / "datasheet.md").read_text()
    assert "checked on the labels of record (the labels released) of all 3 cases" in facts
    assert '"labels": "revision 0 (approved)"' in ReleaseFolder(result.folder).record.read_text()
    out = runner.invoke(app, ["qa", "labels", str(result.folder), "--label-set", str(ws.labels_dir / "demo.toml"),
                              "--out", str(tmp_path / "qa-release")])
    assert out.exit_code == 1
    ours = pd.read_parquet(ws.qa.findings)
    theirs = pd.read_parquet(QAFolder(tmp_path / "qa-release").findings)
    key = ["case", "check", "structure", "severity"]
    assert sorted(map(tuple, ours[key].values.tolist())) == sorted(map(tuple, theirs[key].values.tolist()))


def test_a_release_needs_labels_and_a_qa_run(release_ws: Workspace) -> None:
    ws = release_ws
    ws.qa.checked.unlink()
    with pytest.raises(ReleaseError, match="no label QA on record .*label_checked.parquet missing.*ctcurate qa labels"):
        build_release(ws, "1.0.0", force_qa=True)


def test_revision_files_changed_on_disk_are_neither_checked_nor_released(release_ws: Workspace) -> None:
    from curation.annotation import RevisionStore

    ws = release_ws
    store = RevisionStore(ws)
    model, record = store.history("s0002")
    shutil.copy(store.path(model), store.path(record))  # someone edits a revision file in place
    with pytest.raises(ReleaseError, match="release 1.0.0: case s0002 revision 1: its files .* changed on disk since "
                                           "they were written; restore them from a backup"):
        build_release(ws, "1.0.0", force_qa=True)
    checked = runner.invoke(app, ["qa", "labels", str(ws.root)])
    assert checked.exit_code == 2 and "case s0002 revision 1: its files" in " ".join(checked.output.split())
    assert not (ws.root / "releases" / "1.0.0").exists()


def test_verify_finds_every_change_and_a_rebuild_is_byte_identical(release_ws: Workspace, tmp_path: Path) -> None:
    from datacard.seal import verify_release

    twin = Workspace.open(shutil.copytree(release_ws.root, tmp_path / "twin"))
    for ws in (release_ws, twin):
        build_release(ws, "1.0.0", force_qa=True, archive_mb=0.01)
    release = release_ws.release("1.0.0")
    names = sorted(p.relative_to(release.root).as_posix() for p in release.root.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(twin.release("1.0.0").root).as_posix()
                           for p in twin.release("1.0.0").root.rglob("*") if p.is_file())
    for name in names:  # zips included: fixed times, sorted entries
        assert (release.root / name).read_bytes() == (twin.release("1.0.0").root / name).read_bytes(), name
    out = CliRunner().invoke(app, ["verify", "1.0.0", "-w", str(release_ws.root)])
    assert out.exit_code == 0 and "files and their zip parts match SHA256SUMS" in out.output
    with (release.root / "meta.csv").open("a") as handle:
        handle.write("s9999;tampered\n")
    (release.root / "s0002" / "ct.nrrd").unlink()
    (release.root / "extra.txt").write_text("not released")
    part = release.archive(3)
    part.write_bytes(part.read_bytes()[: part.stat().st_size // 2])  # cut short, as a killed writer would leave it
    check = verify_release(release)
    assert not check.ok and check.changed == ["archives/1.0.0-part03.zip", "meta.csv"]
    assert check.missing == ["s0002/ct.nrrd"] and check.unlisted == ["extra.txt"]
    assert check.bad_archives and check.bad_archives[0].startswith("archives/1.0.0-part03.zip")
    out = CliRunner().invoke(app, ["verify", "1.0.0", "-w", str(release_ws.root)])
    line = " ".join(out.output.split())
    assert out.exit_code == 1 and "release 1.0.0 does not verify" in line and "do not publish this one" in line
    assert "changed (2): archives/1.0.0-part03.zip, meta.csv" in line and "missing (1): s0002/ct.nrrd" in line
    out = CliRunner().invoke(app, ["publish", "1.0.0", "-w", str(release_ws.root), "--zenodo", "--url",
                                   "http://127.0.0.1:9", "--token-file", str(_token(tmp_path))])
    line = " ".join(out.output.split())
    assert out.exit_code == 2 and "release 1.0.0 does not verify, nothing was uploaded" in line
    with pytest.raises(ReleaseError, match="SHA256SUMS not found; this is not a sealed release"):
        (release.root / "SHA256SUMS").unlink()
        verify_release(release)
    with pytest.raises(ReleaseError, match="release 9.9.9: .* not found; list the releases in"):
        verify_release(release_ws.release("9.9.9"))


def _token(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text("a-token")
    return path
