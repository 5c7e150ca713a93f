"""croissant.json of a demo release: no validation warning, records of every RecordSet load, one table."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import mlcroissant as mlc
import pandas as pd
import pytest
import yaml

from curation import Workspace
from datacard.croissant import cite_as, sha256_of
from datacard.release import build_release
from datacard.split import SplitPlan, make_split

ANSWERS = {"license": "CC-BY-NC-SA-4.0", "date_published": "2026-11-30",
           "creators": [{"name": "Curie, Marie", "orcid": "0000-0002-1825-0097"}, {"name": "Skłodowska, Bronisława"}]}


@pytest.fixture()
def release(demo_run, tmp_path: Path) -> Path:
    shutil.copytree(demo_run.workspace, tmp_path / "ws")
    ws = Workspace.open(tmp_path / "ws")
    make_split(ws, "1.0.0", SplitPlan((34, 33, 33), ("sex",), 3))
    (ws.root / "answers.yaml").write_text(yaml.safe_dump(ANSWERS, allow_unicode=True))
    return build_release(ws, "1.0.0", answers=ws.root / "answers.yaml", copies=True, force_qa=True).folder


def _records(dataset: mlc.Dataset, record_set: str) -> list[dict[str, object]]:
    return [{k.split("/", 1)[1]: v.decode() if isinstance(v, bytes) else v for k, v in r.items()}
            for r in dataset.records(record_set)]


def test_croissant_validates_without_warnings_and_every_record_set_loads(release: Path) -> None:
    path = release / "croissant.json"
    check = subprocess.run([str(Path(sys.executable).parent / "mlcroissant"), "validate", "--jsonld", str(path)],
                           capture_output=True, text=True, check=False)
    assert check.returncode == 0 and "warning" not in (check.stdout + check.stderr).lower(), check.stderr[-2000:]
    doc = json.loads(path.read_text())
    assert doc["datePublished"].startswith("2026-11-30") and doc["version"] == "1.0.0"
    assert doc["license"] == "https://spdx.org/licenses/CC-BY-NC-SA-4.0.html"
    assert doc["citeAs"].startswith("@misc{curie2026") and "Curie, Marie and Skłodowska, Bronisława" in doc["citeAs"]
    assert doc["creator"][0]["url"] == "https://orcid.org/0000-0002-1825-0097"
    files = {d["@id"]: d for d in doc["distribution"] if d["@type"] == "cr:FileObject"}
    on_disk = {p.relative_to(release).as_posix() for p in release.rglob("*") if p.is_file()}
    assert set(files) == on_disk - {"croissant.json", "SHA256SUMS"} and "cases.csv" not in on_disk  # one table
    assert files["s0001/ct.nrrd"]["sha256"] == sha256_of(release / "s0001" / "ct.nrrd")
    dataset = mlc.Dataset(jsonld=str(path))
    assert sorted(r.id for r in dataset.metadata.record_sets) == ["cases", "images", "images_1.5mm", "images_3mm",
                                                                  "masks"]
    meta = pd.read_csv(release / "meta.csv", sep=";")
    cases = _records(dataset, "cases")
    assert [c["image_id"] for c in cases] == list(meta["image_id"])
    assert [(c["gender"], c["split"], c["age"]) for c in cases] == list(zip(meta["gender"], meta["split"], meta["age"],
                                                                          strict=True))
    for record_set, name in (("images", "ct.nrrd"), ("images_1.5mm", "ct_1.5mm.nrrd"), ("images_3mm", "ct_3mm.nrrd")):
        images = _records(dataset, record_set)
        assert {i["image_id"] for i in images} == set(meta["image_id"])
        assert all(i["image"] == f"{i['image_id']}/{name}" and (release / str(i["image"])).is_file() for i in images)
    masks = _records(dataset, "masks")
    expected = {p.relative_to(release).as_posix() for p in release.glob("*/segmentations/*.nrrd")}
    assert {str(m["mask"]) for m in masks} == expected
    assert all(m["mask"] == f"{m['image_id']}/segmentations/{m['structure']}.nrrd" for m in masks)
    assert "spleen" in {m["structure"] for m in masks}


def test_cite_as_without_creators_and_with_a_url() -> None:
    assert cite_as("d", "2.0.0", "2027-01-02", []) == ("@misc{d2027,\n  title = {{d}: version 2.0.0},\n  "
                                                       "author = {{d}},\n  year = {2027},\n  version = {2.0.0}\n}")
    assert "url = {https://x.org}" in cite_as("d", "1.0.0", "2027-01-02", [{"name": "Doe, A"}], "https://x.org")


def test_a_case_file_is_written_as_mlcroissant_writes_its_file_object(tmp_path: Path) -> None:
    """Case files' FileObjects are made without mlcroissant's objects (memory); the JSON-LD must be the same."""
    from datacard.croissant import _file_object, _format

    path = tmp_path / "s0001" / "segmentations" / "liver.nrrd"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"NRRD0004\n")
    rel = path.relative_to(tmp_path).as_posix()
    made = mlc.FileObject(id=rel, name=rel, content_url=rel, encoding_formats=[_format(path)], sha256=sha256_of(path),
                          content_size=f"{path.stat().st_size} B")
    assert _file_object(path, rel) == made.to_json()
