"""The QA part of ``ctcurate demo``: label checks, metadata expectations and the report on the demo workspace."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from curation import Workspace
from qa.cases import find_cases
from qa.labels import LabelQASettings, run_label_qa
from qa.meta import MetaQAResult, run_meta_qa
from qa.report import build_report

__all__ = ["DemoQAResult", "run_demo_qa"]


@dataclass(frozen=True)
class DemoQAResult:
    findings: pd.DataFrame
    report: Path
    meta: MetaQAResult


def run_demo_qa(workspace: str | Path, *, executor: Any = None) -> DemoQAResult:
    """Check the demo workspace's labels and tables; write results, Data Docs and the report to ``WS/qa``."""
    ws = Workspace.open(workspace)
    label_set = ws.label_set()
    cases = find_cases(ws.root)
    findings, stats = run_label_qa(cases, LabelQASettings(label_set, cohort_min_cases=ws.settings.qa.cohort_min_cases),
                                   ws.qa_dir, executor=executor, error_log=ws.error_log)
    meta = run_meta_qa(ws.qa_dir, cases=pd.read_parquet(ws.require(ws.meta_table, "convert")), label_stats=stats,
                       label_set=label_set)
    report = build_report(ws.qa.report_dir, findings, cases, label_set, data_docs=meta.data_docs,
                          workspace=ws.root)
    return DemoQAResult(findings, report.html, meta)
