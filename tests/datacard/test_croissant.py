"""croissant.json of a release-layout folder made from the demo: mlcroissant validates it, sha256 per file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import mlcroissant as mlc
import pandas as pd

from curation import Workspace
from curation.labels.labelmap import read_seg_nrrd, write_mask_folder
from datacard.croissant import build_croissant, sha256_of
from datacard.split import SplitPlan, make_split


def _release_folder(ws: Workspace, target: Path) -> Path:
    make_split(ws, "1.0.0", SplitPlan((34, 33, 33), ("sex",), 3))
    for case_dir in sorted(ws.cases_dir.iterdir()):
        out = target / case_dir.name
        out.mkdir(parents=True)
        shutil.copy(case_dir / "ct.nrrd", out / "ct.nrrd")
        labels, _ = read_seg_nrrd(ws.segmentation_file(case_dir.name))
        write_mask_folder(out / "segmentations", labels, ws.label_set())
    shutil.copy(ws.meta_csv, target / "meta.csv")
    return target


def test_croissant_validates_and_lists_every_file(demo_run, tmp_path: Path) -> None:
    shutil.copytree(demo_run.workspace, tmp_path / "ws")
    release = _release_folder(Workspace.open(tmp_path / "ws"), tmp_path / "release")
    path = build_croissant(release, name="ctcurate-demo", description="Synthetic phantom CTs", version="1.0.0",
                           license_="CC-BY-4.0", url="https://example.org/ctcurate-demo",
                           rai={"data_collection": "6 exams sampled at random", "data_use_cases": "",
                                "data_limitations": "phantom"})
    doc = json.loads(path.read_text())
    dataset = mlc.Dataset(jsonld=str(path))  # raises on any validation error
    assert dataset.metadata.name == "ctcurate-demo"
    files = {d["@id"]: d for d in doc["distribution"] if d["@type"] == "cr:FileObject"}
    on_disk = sorted(p.relative_to(release).as_posix() for p in release.rglob("*.nrrd"))
    assert set(on_disk) <= set(files) and "meta.csv" in files
    assert files["s0001/ct.nrrd"]["sha256"] == sha256_of(release / "s0001" / "ct.nrrd")
    sets = {d["@id"]: d for d in doc["distribution"] if d["@type"] == "cr:FileSet"}
    assert sets["masks"]["includes"] == "*/segmentations/*.nrrd"
    records = {r["@id"]: r for r in doc["recordSet"]}
    assert [f["name"] for f in records["splits"]["field"]] == ["case_id", "split"]
    assert doc["rai:dataCollection"] == "6 exams sampled at random" and "rai:dataUseCases" not in doc
    splits = list(dataset.records("splits"))
    meta = pd.read_csv(release / "meta.csv", sep=";")
    assert {r["splits/case_id"].decode(): r["splits/split"].decode() for r in splits} == \
        dict(zip(meta["case_id"], meta["split"], strict=True))
