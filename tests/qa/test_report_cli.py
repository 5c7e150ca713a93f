"""``ctcurate qa labels / report / meta / labelsets`` and the report page, on real labels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ctcurate.cli import app
from curation import load_label_set
from tests.cli_runner import CliRunner

from .conftest import replace

runner = CliRunner()


def _broken_and_clean(ts: Path, make_case, v2_map) -> Path:
    labels = v2_map.array.copy()
    left, right = labels == 3, labels == 2  # kidney_left, kidney_right
    labels[left], labels[right] = 2, 3
    make_case("s0002", ts / "example_ct.nii.gz", multilabel=replace(v2_map, labels))
    return make_case("s0001", ts / "example_ct.nii.gz",
                     multilabel=ts / "seg_v2_total117" / "example_seg_fast_force_split.nii.gz").parent


def test_qa_labels_then_report_gate_on_errors(tmp_path: Path, ts: Path, make_case, v2_map) -> None:
    root = _broken_and_clean(ts, make_case, v2_map)
    out = tmp_path / "qa"
    result = runner.invoke(app, ["qa", "labels", str(root), "--label-set", "total_v2", "--out", str(out),
                                 "--workers", "2"])
    assert result.exit_code == 1, result.output
    assert "1 finding(s) at severity error or worse" in result.output and "no case has labels yet" not in result.output
    findings = pd.read_parquet(out / "label_findings.parquet")
    assert set(findings.loc[findings["severity"] == "error", "case"]) == {"s0002"}
    stats = pd.read_parquet(out / "label_stats.parquet")
    assert set(stats["case"]) == {"s0001", "s0002"}

    result = runner.invoke(app, ["qa", "report", str(root), "--out", str(out), "--fail-on", "none"])
    assert result.exit_code == 0, result.output
    html = (out / "report" / "index.html").read_text()
    assert "kidney_left lies to the right of kidney_right" in html
    assert 'src="img/s0002__kidney_left.png"' in html and (out / "report" / "img" / "s0002__kidney_left.png").is_file()
    assert html.index('href="#s0002"') < html.index('href="#s0001"')  # worst case first
    assert '<td class="why"><span class="error">kidney_left: laterality.swapped — kidney_left lies to the right' in html
    assert "ctcurate annotate import -w WORKSPACE --case s0002 --file" in html  # a plain folder: import it first
    records = json.loads((out / "report" / "findings.json").read_text())
    assert len(records) == len(findings) and records[0]["severity"] == "error"
    assert isinstance(records[0]["values"], dict)
    png = (out / "report" / "img" / "s0002__kidney_left.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"

    result = runner.invoke(app, ["qa", "meta", str(root), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "suite label_stats: passed" in result.output and "Data Docs:" in result.output


def test_clean_case_passes_the_gate_and_warnings_can_fail_it(tmp_path: Path, ts: Path, make_case, v2_map) -> None:
    make_case("s0001", ts / "example_ct.nii.gz",
              multilabel=ts / "seg_v2_total117" / "example_seg_fast_force_split.nii.gz")
    args = ["qa", "labels", str(tmp_path / "cases"), "--out", str(tmp_path / "qa"), "--workers", "1"]
    result = runner.invoke(app, [*args, "--fail-on", "warning"])
    assert result.exit_code == 0, result.output  # the real map as delivered: not even a warning
    labels = v2_map.array.copy()
    labels[60:62, 50:52, 40:42][labels[60:62, 50:52, 40:42] == 5] = 0  # a small hole in the liver: a warning
    liver = np.argwhere(labels == 5)
    z, y, x = liver[len(liver) // 2]
    labels[z - 1:z + 2, y - 1:y + 2, x - 1:x + 2] = 0
    make_case("s0002", ts / "example_ct.nii.gz", multilabel=replace(v2_map, labels))
    assert runner.invoke(app, args).exit_code == 0
    result = runner.invoke(app, [*args, "--fail-on", "warning"])
    assert result.exit_code == 1 and "severity warning or worse" in result.output


def test_qa_on_the_demo_workspace_uses_its_own_label_set(demo_run) -> None:
    ws = Path(demo_run.workspace)
    result = runner.invoke(app, ["qa", "labels", str(ws), "--workers", "1"])
    assert result.exit_code == 1  # the demo swaps the lungs of its last case
    findings = pd.read_parquet(ws / "qa" / "label_findings.parquet")
    errors = findings[findings["severity"] == "error"]
    assert set(errors["case"]) == {demo_run.cases[-1]} and set(errors["check"]) == {"laterality.swapped"}
    html = (ws / "qa" / "report" / "index.html").read_text()
    assert f"ctcurate annotate {ws} --case {demo_run.cases[-1]}</code>" in html

    result = runner.invoke(app, ["qa", "report", str(ws), "--fail-on", "none"])
    assert result.exit_code == 0, result.output
    html = (ws / "qa" / "report" / "index.html").read_text()
    assert f"Open in the annotator: <code>ctcurate annotate {ws.resolve()} --case {demo_run.cases[-1]}</code>" in html


def test_qa_cli_errors(tmp_path: Path) -> None:
    result = runner.invoke(app, ["qa", "labels", str(tmp_path / "nowhere")])
    assert result.exit_code == 2 and "no such folder" in result.output
    (tmp_path / "empty").mkdir()
    result = runner.invoke(app, ["qa", "labels", str(tmp_path / "empty")])
    assert result.exit_code == 2 and "no case folders" in result.output
    result = runner.invoke(app, ["qa", "report", str(tmp_path / "empty"), "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "run 'ctcurate qa labels' first" in result.output
    result = runner.invoke(app, ["qa", "labels", str(tmp_path / "empty"), "--label-set", "total_v9"])
    assert result.exit_code == 2 and "not a built-in name" in result.output
    result = runner.invoke(app, ["qa", "labels", str(tmp_path / "empty"), "--fail-on", "fatal"])
    assert result.exit_code == 2


def test_qa_commands_take_the_workspace_as_the_others_do(tmp_path: Path) -> None:
    """'qa labels -w WS' was 'No such option: -w', though every other command takes the workspace so."""
    from curation import Workspace

    ws = Workspace.create(tmp_path / "ws")
    for command in ("labels", "meta", "report"):
        result = runner.invoke(app, ["qa", command, "-w", str(ws.root)])
        assert result.exit_code == 2 and "No such option" not in result.output, result.output
    result = runner.invoke(app, ["qa", "labels", "-w", str(ws.root)])
    assert "this workspace has no converted case yet; run 'ctcurate convert" in " ".join(result.output.split())
    (tmp_path / "other").mkdir()
    result = runner.invoke(app, ["qa", "labels", str(tmp_path / "other"), "-w", str(ws.root)])
    assert result.exit_code == 2
    assert "two folders; give the workspace once, as ROOT or with -w" in " ".join(result.output.split())


def test_qa_before_any_labels_says_what_comes_first(copy_series, filtered_workspace, tmp_path: Path) -> None:
    """Before presegment, 'qa labels' reported completeness.no_labels for every case (exit 1) without a word on
    what to run first, and each finding advised renaming the isotropic CT copies as labels."""
    import shutil

    from curation.cases.convert import convert
    from curation.workspace.executor import SerialExecutor

    ws = filtered_workspace(copy_series("dcm_qa_ct/In/Philips/S21570/S2010"))
    assert convert(ws, executor=SerialExecutor()).converted == ("s0001",)
    result = runner.invoke(app, ["qa", "labels", "-w", str(ws.root), "--workers", "1"])
    text = " ".join(result.output.split())
    assert result.exit_code == 1 and "completeness.no_labels" in text, result.output  # the table and gate as before
    assert (f"no case has labels yet: 'ctcurate presegment MODEL -w {ws.root}' (models: 'ctcurate model list') or "
            "import labels ('ctcurate import CASE SOURCE', 'ctcurate annotate import'), then run 'ctcurate qa "
            "labels' again") in text
    (message,) = pd.read_parquet(ws.qa.findings)["message"]
    assert message.startswith("s0001: no labels: the annotation store holds no revision of this case; run "
                              "'ctcurate presegment MODEL'") and "rename" not in message
    plain = tmp_path / "plain" / "c1"  # a folder of cases: labels are files next to the CT
    plain.mkdir(parents=True)
    shutil.copy(ws.case_dir("s0001") / ws.ct_name(), plain)
    result = runner.invoke(app, ["qa", "labels", str(plain.parent), "--out", str(tmp_path / "qa"), "--workers", "1"])
    assert result.exit_code == 1 and "no case has labels yet: put labels next to each CT (<case>/segmentations/" \
        in " ".join(result.output.split()), result.output


def test_labelsets_command() -> None:
    result = runner.invoke(app, ["qa", "labelsets"])
    assert result.exit_code == 0 and "total_v1" in result.output and "organ 27" in result.output
    result = runner.invoke(app, ["qa", "labelsets", "total_v1"])
    assert result.exit_code == 0 and "spleen" in result.output
    assert len(load_label_set("total_v1")) == 104 and np.all(load_label_set("total_v1").color_table()[0] == 0)
