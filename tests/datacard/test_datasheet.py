"""The datasheet of the demo workspace: every seed field, the Partitions table, numbers from the data."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from ctcurate.cli import app
from curation import Workspace
from datacard.datasheet import PARTITION_COLUMNS, SECTIONS, SEED_FIELDS, DatasheetError, build_datasheet
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
    with pytest.raises(DatasheetError, match="bad.yaml: not valid YAML"):
        build_datasheet(sheet_ws, tmp_path / "bad.yaml")


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
