"""The release's meta.csv in the TotalSegmentator dataset's columns: read by a script written for that dataset."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import nibabel
import numpy as np
import pandas as pd
import pytest
import yaml

from ctcurate.demo import DEMO_LABEL_SET
from curation import Workspace
from curation.labels.labelset import load_label_set
from datacard.metacsv import REFERENCE_COLUMNS, release_table, study_type
from datacard.release import build_release
from datacard.split import SplitPlan, make_split

# how the reference dataset's users read its meta.csv (pandas and the csv module, BOM-tolerant)
USERS_SCRIPT = '''
import csv, sys
import pandas as pd
meta = pd.read_csv(sys.argv[1], sep=";")
train = meta[meta["split"] == "train"].image_id.tolist()
women = meta[meta.gender == "f"]
for row in meta.itertuples():
    assert row.image_id.startswith("s") and row.gender in ("m", "f") and row.split in ("train", "val", "test")
    assert row.study_type.startswith("ct") and int(row.age) > 0
with open(sys.argv[1], encoding="utf-8-sig") as handle:
    rows = list(csv.DictReader(handle, delimiter=";"))
print(len(meta), len(train), len(women), rows[0]["image_id"], rows[0]["institute"], sorted(meta.scanner_model.unique()))
'''


def test_a_script_written_for_the_reference_dataset_reads_the_release(demo_run, tmp_path: Path) -> None:
    shutil.copytree(demo_run.workspace, tmp_path / "ws")
    ws = Workspace.open(tmp_path / "ws")
    make_split(ws, "1.0.0", SplitPlan((34, 33, 33), ("sex",), 3))
    (ws.root / "answers.yaml").write_text(yaml.safe_dump({"license": "CC0-1.0"}))
    folder = build_release(ws, "1.0.0", answers=ws.root / "answers.yaml", force_qa=True).folder
    assert not (folder / "cases.csv").exists()  # one table
    header = (folder / "meta.csv").read_text(encoding="utf-8").splitlines()[0].split(";")
    assert tuple(header[:11]) == REFERENCE_COLUMNS and "patient_pseudonym" in header[11:]
    script = tmp_path / "users_script.py"
    script.write_text(USERS_SCRIPT)
    run = subprocess.run([sys.executable, str(script), str(folder / "meta.csv")], capture_output=True, text=True,
                         check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    cases = pd.read_parquet(ws.meta_table)
    women = int((cases["sex"] == "F").sum())
    assert run.stdout.split()[:5] == [str(len(cases)), str(int((cases["split"] == "train").sum())), str(women),
                                      "s0001", cases.set_index("case_id").loc["s0001", "site"]]
    assert "phantom ct 64" in run.stdout  # scanner models in lower case, as the reference writes them


def test_release_table_conventions() -> None:
    cases = pd.DataFrame({"case_id": ["s0001", "s0002", "s0003"], "patient_pseudonym": ["p1", "p2", "p3"],
                          "age": [61, None, 40], "sex": ["M", "F", None], "site": ["A", "B", "A"],
                          "manufacturer": ["SIEMENS", "Philips", None], "model": ["SOMATOM Force", "Brilliance; 64",
                                                                                "Revolution, CT"],
                          "kvp": [120.0, 100.0, 120.0], "kernel": ["Br40d", "B", "STANDARD"],
                          "split": ["train", "val", "test"]})
    table = release_table(cases, {"s0001": "ct thorax", "s0003": "ct abdomen-pelvis"})
    assert tuple(table.columns[:11]) == REFERENCE_COLUMNS and list(table.columns[11:]) == ["patient_pseudonym",
                                                                                          "kernel"]
    assert list(table["gender"]) == ["m", "f", ""] and list(table["study_type"]) == ["ct thorax", "ct",
                                                                                     "ct abdomen-pelvis"]
    assert list(table["scanner_model"]) == ["somatom force", "brilliance 64", "revolution ct"]  # no ; or ,
    assert list(table["manufacturer"][:2]) == ["siemens", "philips"] and set(table["pathology"]) == {""}
    assert str(table["age"].dtype) == "Int64" and pd.isna(table["age"][1])
    text = table.to_csv(index=False, sep=";")
    assert pd.read_csv(__import__("io").StringIO(text)).shape[1] == 1  # a comma reader sees one column


@pytest.mark.parametrize(("version", "folder", "expected"), [
    ("total_v2", "seg_v2_total117", "ct thorax-abdomen"),  # lower thorax to L2: the iliopsoas' top is no pelvis
    ("total_v1", "seg_v1_total104", "ct thorax-abdomen-pelvis"),  # sacrum and bladder in view
])
def test_study_type_from_the_structures_in_real_label_maps(ts: Path, version: str, folder: str,
                                                           expected: str) -> None:
    labels = load_label_set(version)
    data = np.asarray(nibabel.load(ts / folder / "example_seg.nii.gz").dataobj)
    present = {labels.by_index(int(i)).name for i in np.unique(data) if i}
    assert study_type(present, labels) == expected


def test_study_type_of_whole_bodies_and_of_sets_without_levels() -> None:
    labels = load_label_set("total_v2")
    assert study_type({"brain", "vertebrae_C3", "vertebrae_T6", "kidney_left", "urinary_bladder", "femur_left"},
                      labels) == "ct whole body"
    assert study_type({"vertebrae_T6", "kidney_left", "urinary_bladder", "femur_left"}, labels) == \
        "ct thorax-abdomen-pelvis"  # the femur is long: only short structures place the scan
    assert study_type({"vertebrae_C3", "thyroid_gland"}, labels) == "ct neck"
    assert study_type(set(), labels) == "ct"
    assert study_type({"liver"}, DEMO_LABEL_SET) == "ct"  # a set that states no levels
