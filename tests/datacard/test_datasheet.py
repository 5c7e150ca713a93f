"""The datasheet of the demo workspace: every seed field, the Partitions table, numbers from the data."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from ctcurate.cli import app
from curation import Workspace
from curation.annotation.revisions import RevisionStore
from curation.labels.labelmap import read_seg_nrrd
from datacard.datasheet import PARTITION_COLUMNS, SECTIONS, SEED_FIELDS, DatasheetError, Shipped, build_datasheet
from datacard.facts import gather_facts
from datacard.split import SplitPlan, make_split
from tests.cli_runner import CliRunner


@pytest.fixture()
def sheet_ws(demo_run, tmp_path: Path) -> Workspace:
    target = tmp_path / "ws"
    shutil.copytree(demo_run.workspace, target)
    ws = Workspace.open(target)
    make_split(ws, "1.0.0", SplitPlan((34, 33, 33), ("sex",), 3))
    return ws


def test_demo_datasheet_fields_partitions_and_missing_answers(sheet_ws: Workspace) -> None:
    sheet = build_datasheet(sheet_ws)
    text = sheet.markdown.read_text()
    for field in SEED_FIELDS:
        assert f"**{field}**:" in text, field
    header = "| " + " | ".join(PARTITION_COLUMNS) + " |"
    assert header in text
    meta = pd.read_parquet(sheet_ws.meta_table)
    rows = {r["Subset Name"]: r for r in sheet.partitions}
    assert rows["all"]["Number Instances"] == str(len(meta))
    assert rows["all"]["Patient Count"] == str(meta["patient_pseudonym"].nunique())
    assert rows["all"]["Site Count"] == str(meta["site"].nunique())
    for split, group in meta.groupby("split"):
        assert rows[split]["Number Instances"] == str(len(group))
        assert rows[split]["Sex"] == ", ".join(f"{k} {v}" for k, v in sorted(group["sex"].value_counts().items()))
    assert "6 CT exams sampled at random" in text and "3 included" in text
    assert "label set demo 1: 8 structures (7 organ, 1 bone)" in text
    assert "field: Noise" in sheet.missing and "partitions: Dataset License" in sheet.missing
    assert all(f"section: {s}" in sheet.missing for s in SECTIONS)
    assert "**Noise**: MISSING" in text and "## Missing answers" in text
    assert set(sheet.figures) == {"Exclusion flow", "Age and sex per split", "Structures' presence"}
    assert all((sheet.markdown.parent / f).is_file() for f in sheet.figures.values())
    assert "<h3>Partitions</h3>" in sheet.html.read_text()


def test_the_datasheet_states_only_what_the_release_holds(sheet_ws: Workspace) -> None:
    ws = sheet_ws
    store = RevisionStore(ws)
    spleen = ws.label_set().by_name("spleen").index
    for case_id in ws.case_ids():  # an annotator removed the spleen everywhere: it ships as empty masks
        latest = store.latest(case_id)
        assert latest is not None
        labels, _ = read_seg_nrrd(store.path(latest))
        labels.array[labels.array == spleen] = 0
        store.add(case_id, {"native": labels}, ws.label_set(), author="dr.demo", kind="human", parent=latest.number)
    sheet = build_datasheet(ws)
    fields = {k: " ".join(v).strip() for k, v in sheet.fields.items()}
    assert "Slicer" not in fields["File Format"] and "ct_1.5mm" not in fields["File Format"]
    assert "isotropic" not in fields["Resolution"] and "not frozen yet" in fields["Partitioning Scheme"]
    assert "all 8 structures of the label set, empty ones included" in fields["File Format"]
    assert "a median of 7 (range 7-7) hold voxels in an exam; empty in every exam (1): spleen" in \
        fields["Composition"]
    facts = gather_facts(ws)
    assert list(facts.presence) == ws.label_set().names and facts.presence["spleen"] == 0.0  # 0 %, not left out
    # the demo's second exam names a contrast agent in DICOM while its HU are native: both stated
    assert re.search(r"native 3 \(DICOM names a contrast agent for 1, against the HU; median HU kidney_left 30",
                     fields["Imaging Details"]), fields["Imaging Details"]
    copies = build_datasheet(ws, shipped=Shipped((3.0, 1.5), release=True))
    fields = {k: " ".join(v).strip() for k, v in copies.fields.items()}
    assert "an isotropic copy at 1.5 mm (sNNNN/ct_1.5mm.nrrd), an isotropic copy at 3 mm" in fields["File Format"]
    assert fields["Resolution"].endswith("isotropic 1.5 mm copy resampled from the native grid (linear); "
                                         "isotropic 3 mm copy resampled from the native grid (linear)")
    assert "frozen: later versions keep these assignments" in fields["Partitioning Scheme"]
    with pytest.raises(DatasheetError, match="shipped copies \\(0.0,\\): expected spacings in mm above 0"):
        Shipped((0.0,))


def test_answers_fill_the_free_text(sheet_ws: Workspace, tmp_path: Path) -> None:
    runner = CliRunner()
    made = runner.invoke(app, ["datasheet", "-w", str(sheet_ws.root), "--template"])
    assert made.exit_code == 0 and (sheet_ws.root / "datasheet_answers.yaml").is_file()
    answers = yaml.safe_load((sheet_ws.root / "datasheet_answers.yaml").read_text())
    answers["license"] = "CC-BY-4.0"
    answers["fields"]["Noise"] = "Synthetic phantom; no noise model."
    answers["sections"]["Uses"] = "Teaching the ctcurate pipeline."
    (sheet_ws.root / "datasheet_answers.yaml").write_text(yaml.safe_dump(answers))
    kept = runner.invoke(app, ["datasheet", "-w", str(sheet_ws.root), "--template"])  # never over the answers
    assert "exists already (kept)" in " ".join(kept.output.split())
    assert yaml.safe_load((sheet_ws.root / "datasheet_answers.yaml").read_text()) == answers
    result = runner.invoke(app, ["datasheet", "-w", str(sheet_ws.root)])
    assert result.exit_code == 0, result.output
    text = (sheet_ws.releasable / "datasheet" / "datasheet.md").read_text()
    assert "**Noise**: Synthetic phantom; no noise model." in text and "| CC-BY-4.0 |" in text
    assert "field: Noise" not in text and "section: Uses" not in text and "section: Maintenance" in text
    (tmp_path / "bad.yaml").write_text("fields: [unclosed")
    with pytest.raises(DatasheetError, match="bad.yaml: not valid YAML at line 1, column 18 \\(expected ',' or ']'"):
        build_datasheet(sheet_ws, tmp_path / "bad.yaml")
    for answers, message in (({"licence": "CC-BY-4.0"}, "unknown answer 'licence', which nothing would read; did "
                                                        "you mean 'license'"),
                             ({"keywords": "CT, abdomen"}, "keywords must be a list .*found str 'CT, abdomen'"),
                             ({"keywords": [["CT"]]}, "keywords must be words or phrases"),
                             ({"fields": {"Nois": "x"}}, "unknown field 'Nois'.*did you mean 'Noise'"),
                             ({"sections": ["Uses"]}, "sections must be a mapping like the template's")):
        (tmp_path / "odd.yaml").write_text(yaml.safe_dump(answers))
        with pytest.raises(DatasheetError, match=message):
            build_datasheet(sheet_ws, tmp_path / "odd.yaml")


def test_structures_per_category_of_the_v1_set(sheet_ws: Workspace) -> None:
    import dataclasses

    settings = sheet_ws.settings
    sheet_ws.save_settings(dataclasses.replace(settings, labels=dataclasses.replace(settings.labels,
                                                                                    label_set="total_v1")))
    labeling = build_datasheet(sheet_ws).fields["Labeling"][0]
    assert "label set total_v1" in labeling and "104 structures" in labeling
    for part in ("27 organ", "59 bone", "10 muscle", "8 vessel"):
        assert part in labeling, labeling


def test_collection_process_names_a_pacs_query_but_not_the_pacs(sheet_ws: Workspace) -> None:
    import json

    manifest = json.loads(sheet_ws.sample_manifest.read_text())
    manifest["frame"] = {"source": "dicomweb", "url": "https://pacs.hospital.example/dicom-web", "modality": "CT",
                         "date_from": "2012-01-01", "date_to": "2016-12-31", "description": "*ABDOMEN*",
                         "body_part": ""}
    sheet_ws.sample_manifest.write_text(json.dumps(manifest))
    text = " ".join(build_datasheet(sheet_ws).markdown.read_text().split())
    assert ("6 CT exams sampled at random from the 6 CT studies a PACS query returned (study dates 2012-01-01 to "
            "2016-12-31, description '*ABDOMEN*'; queried and retrieved over DICOMweb") in text
    assert "hospital.example" not in text
