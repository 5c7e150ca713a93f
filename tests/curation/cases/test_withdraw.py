"""A converted case whose exam no longer qualifies after a rescan is withdrawn, counted and reinstated."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd

from ctcurate.cli import app
from curation.cases.convert import convert
from curation.cases.withdraw import withdrawn_cases
from curation.catalog.scan import scan
from curation.selection.filter import flow_counts, run_filter
from curation.workspace.executor import SerialExecutor
from tests.cli_runner import CliRunner

runner = CliRunner()


def test_a_damaged_slice_withdraws_the_case_and_a_repair_reinstates_it(copy_series, filtered_workspace,
                                                                       tmp_path: Path) -> None:
    export = copy_series("dcm_qa_ct/In/Philips/S21570/S2010")
    ws = filtered_workspace(export)
    result = convert(ws, executor=SerialExecutor())
    assert result.converted == ("s0001",)
    case = ws.case_dir("s0001")
    ct_sha = (case / ws.ct_name()).read_bytes()
    # damage one middle slice: its header is cut short, the file stays
    files = sorted(p for p in (export / "S2010").iterdir() if p.name != "DIRFILE")
    victim = files[len(files) // 2]
    kept = tmp_path / "kept.dcm"
    shutil.copy(victim, kept)
    victim.write_bytes(victim.read_bytes()[:300])
    scan(ws, [export], executor=SerialExecutor())
    out = runner.invoke(app, ["filter", "-w", str(ws.root)])
    assert out.exit_code == 0, out.output
    line = f"withdrawn (moved to {ws.withdrawn_dir}): s0001 (damaged file(s))"
    assert "".join(line.split()) in "".join(out.output.split())  # however the console wrapped it
    assert not case.exists() and ws.withdrawn_case_ids() == ["s0001"]
    (withdrawal,) = withdrawn_cases(ws)
    exams = pd.read_parquet(ws.exams_table)
    assert withdrawal.reason == exams["primary_reason"].iloc[0] == "corrupt_file"  # the damaged slice, named
    assert json.loads(ws.withdrawal_record("s0001").read_text())["case_id"] == "s0001"
    # the flow figure and the cases table agree: no case included, the exclusion says it was withdrawn
    sampled, excluded, included = flow_counts(ws)
    meta = pd.read_csv(ws.meta_csv, sep=";")
    assert included == len(meta) == 0 and sampled == 1
    assert list(excluded.values()) == [1] and "(1 withdrawn after conversion)" in next(iter(excluded))
    again = convert(ws, executor=SerialExecutor())
    assert again.converted == () and again.skipped == () and not case.exists()
    # repaired: the next filter lets the exam through again and convert moves the case back, not a new id
    shutil.copy(kept, victim)
    scan(ws, [export], executor=SerialExecutor())
    assert run_filter(ws).withdrawn == ()
    back = convert(ws, executor=SerialExecutor())
    assert back.skipped == ("s0001",) and back.converted == () and (case / ws.ct_name()).read_bytes() == ct_sha
    assert ws.withdrawn_case_ids() == [] and not (case / ws.withdrawal_record("s0001").name).exists()
    assert list(pd.read_csv(ws.meta_csv, sep=";")["case_id"]) == ["s0001"]


def test_an_exam_whose_files_left_the_export_is_named_so_not_as_unretrieved(copy_series, filtered_workspace) -> None:
    export = copy_series("dcm_qa_ct/In/Philips/S21570/S2010")
    copy_series("dcm_qa_ct/In/Philips/S21610")  # another exam, so the export keeps files
    ws = filtered_workspace(export)
    (case_id,) = convert(ws, executor=SerialExecutor()).converted
    shutil.rmtree(export / "S2010")  # the steward deletes the exam from the export; no PACS was ever involved
    scan(ws, [export], executor=SerialExecutor())
    out = runner.invoke(app, ["filter", "-w", str(ws.root)])
    assert out.exit_code == 0, out.output
    text = "".join(out.output.split())
    assert "filesnolongerintheexport(1withdrawnafterconversion)" in text and "PACS" not in out.output
    assert f"{case_id}(filesnolongerintheexport)" in text
    (withdrawal,) = withdrawn_cases(ws)
    assert withdrawal.reason == "gone_from_export"
    assert "gone_from_export" in set(pd.read_parquet(ws.exams_table)["primary_reason"])
    # a record an earlier version wrote (not_retrieved) reads as what it meant in a workspace without a PACS draw
    record = ws.withdrawal_record(case_id)
    record.write_text(json.dumps({**json.loads(record.read_text()), "reason": "not_retrieved"}))
    assert [w.reason for w in withdrawn_cases(ws)] == ["gone_from_export"]
    assert "files no longer in the export (1 withdrawn after conversion)" in flow_counts(ws)[1]
    ws.pacs_studies_table.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"study_key": ["x"]}).to_parquet(ws.pacs_studies_table)  # drawn on a PACS: the code stays
    assert [w.reason for w in withdrawn_cases(ws)] == ["not_retrieved"]

