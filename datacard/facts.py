"""Numbers a datasheet states, each computed from the workspace (never typed in).

Counts sampled / excluded by reason / included (with annotators' exclusions), sites, patients and
exams per split, age and sex per split, scanners, slice thickness and spacing ranges, contrast
phases, structures per category of the label set, segmentation revisions and their review status,
QA findings by severity, and each structure's presence across the latest revisions.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import nrrd
import numpy as np
import pandas as pd

from curation import Workspace
from curation.annotation.record import LabelsOfRecord, all_labels_of_record
from curation.annotation.revisions import ReviewStatus, RevisionStore
from curation.selection.filter import flow_counts

from .split import included_cases

__all__ = ["DatasetFacts", "gather_facts", "partition_rows"]


@dataclass(frozen=True)
class DatasetFacts:
    name: str
    cases: pd.DataFrame                      # included cases, with a ``split`` column ("" before a split)
    sampled: int
    excluded: dict[str, int]
    included: int
    sample: dict[str, Any]
    label_set: Any
    categories: dict[str, int]
    revisions: dict[str, int]
    reviews: dict[str, int]
    qa: dict[str, int]
    presence: dict[str, float] = field(default_factory=dict)
    split_version: dict[str, Any] = field(default_factory=dict)
    qa_current: int = 0                      # included cases whose labels of record are the ones QA checked


def _presence(records: dict[str, LabelsOfRecord], cases: list[str]) -> dict[str, float]:
    """Share of cases whose labels of record hold each structure (read from the file headers only)."""
    counts: Counter[str] = Counter()
    labelled = 0
    for case_id in cases:
        if case_id not in records:
            continue
        header = nrrd.read_header(str(records[case_id].path))
        labelled += 1
        for key, value in header.items():
            if key.endswith("_Extent") and not str(value).startswith("0 -1"):
                name = header.get(key.replace("_Extent", "_Name"))
                if name:
                    counts[str(name)] += 1
    return {name: counts[name] / labelled for name in sorted(counts)} if labelled else {}


def _qa_current(ws: Workspace, records: dict[str, LabelsOfRecord], cases: list[str]) -> int:
    """How many of ``cases`` QA checked on their labels of record (same revision, same sha256)."""
    if not ws.qa.checked.is_file():
        return 0
    checked = pd.read_parquet(ws.qa.checked).dropna(subset=["revision"])
    seen = set(zip(checked["case"].astype(str), checked["revision"].astype(int), checked["sha256"].astype(str),
                   strict=True))
    return sum((c, records[c].number, records[c].sha256) in seen for c in cases if c in records)


def gather_facts(ws: Workspace) -> DatasetFacts:
    """Everything the datasheet computes, from the workspace's tables, revisions and QA results."""
    cases = included_cases(ws)
    if "split" not in cases:
        cases["split"] = ""
    cases["split"] = cases["split"].fillna("")
    sampled, excluded, included = flow_counts(ws)
    sample = json.loads(ws.sample_manifest.read_text()) if ws.sample_manifest.is_file() else {}
    label_set = ws.label_set()
    categories = dict(Counter(str(c.category) for c in label_set))
    store = RevisionStore(ws)
    all_revisions = [r for r in store.all_revisions() if r.case_id in set(cases["case_id"])]
    revisions = dict(Counter(r.kind for r in all_revisions))
    records = all_labels_of_record(ws, store=store)
    reviews: Counter[str] = Counter()
    for case_id in cases["case_id"]:
        if case_id not in records:
            reviews["cases without labels"] += 1
        elif records[case_id].status is ReviewStatus.APPROVED:
            reviews["cases with an approved revision"] += 1
        else:
            reviews["cases without an approved revision"] += 1
    qa: dict[str, int] = {}
    qa_current = _qa_current(ws, records, list(cases["case_id"]))
    findings_path = ws.qa.findings
    if findings_path.is_file():
        findings = pd.read_parquet(findings_path)
        findings = findings[findings["case"].isin(set(cases["case_id"]))]
        qa = {str(k): int(v) for k, v in findings["severity"].value_counts().items()}
    versions = ws.split_files()
    split_version = json.loads(ws.current_split.read_text()) if ws.current_split.is_file() and versions else {}
    return DatasetFacts(ws.settings.name, cases, sampled, excluded, included, sample, label_set, categories,
                        revisions, dict(reviews), qa, _presence(records, list(cases["case_id"])),
                        {k: v for k, v in split_version.items() if k not in ("assignments", "patients")}, qa_current)


def _age(values: pd.Series) -> str:
    ages = pd.to_numeric(values, errors="coerce").dropna()
    if ages.empty:
        return "unknown"
    return f"{ages.mean():.1f} ± {ages.std(ddof=0):.1f} (range {int(ages.min())}-{int(ages.max())})"


def _sex(values: pd.Series) -> str:
    counts = values.fillna("unknown").replace("", "unknown").value_counts()
    return ", ".join(f"{k} {int(v)}" for k, v in sorted(counts.items()))


def partition_rows(facts: DatasetFacts) -> list[dict[str, str]]:
    """One row per split (and one for all cases): sites, patients, instances, age, sex."""
    frames = [("all", facts.cases)]
    frames += [(s, facts.cases[facts.cases["split"] == s]) for s in ("train", "val", "test")
               if (facts.cases["split"] == s).any()]
    rows = []
    for name, frame in frames:
        rows.append({"Subset Name": name, "Site Count": str(frame["site"].nunique()),
                     "Patient Count": str(frame["patient_pseudonym"].nunique()),
                     "Number Instances": str(len(frame)), "Age": _age(frame["age"]), "Sex": _sex(frame["sex"])})
    return rows


def ranges(cases: pd.DataFrame, column: str, unit: str) -> str:
    values = pd.to_numeric(cases[column], errors="coerce").dropna()
    if values.empty:
        return "unknown"
    return f"{values.min():g}-{values.max():g} {unit} (median {np.median(values):g})"
