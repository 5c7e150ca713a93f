"""Numbers a datasheet states, each computed from the workspace (never typed in).

Counts sampled / excluded by reason / included (with annotators' exclusions), sites, patients and
exams per split, age and sex per split, scanners, slice thickness and spacing ranges, contrast
phases with their evidence (DICOM contrast tags, median HU inside the labelled structures), structures
per category of the label set, segmentation revisions and their review status, QA findings by
severity, and which structures each case's labels of record hold (every structure's presence, 0 % too).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nrrd
import numpy as np
import pandas as pd

from curation import Workspace
from curation.annotation.record import LabelsOfRecord, all_labels_of_record
from curation.annotation.revisions import ReviewStatus, RevisionStore
from curation.selection.filter import flow_counts

from .split import included_cases

__all__ = ["DatasetFacts", "gather_facts", "partition_rows", "present_structures"]


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
    present: dict[str, set[str]] = field(default_factory=dict)   # labelled case -> structures holding voxels
    phases: dict[str, dict[str, Any]] = field(default_factory=dict)  # phase -> exams, tagged, median HU


def present_structures(path: Path) -> set[str]:
    """The structures a labels-of-record file holds voxels of (read from its header only)."""
    header = nrrd.read_header(str(path))
    return {str(header[key.replace("_Extent", "_Name")]) for key, value in header.items()
            if key.endswith("_Extent") and not str(value).startswith("0 -1") and key.replace("_Extent", "_Name")
            in header}


def _presence(present: dict[str, set[str]], names: list[str]) -> dict[str, float]:
    """Share of labelled cases whose labels of record hold each structure of the label set (0 when none does)."""
    counts: Counter[str] = Counter(name for found in present.values() for name in found)
    return {name: counts[name] / len(present) for name in names} if present else {}


def _phase_evidence(ws: Workspace, cases: list[str]) -> dict[str, dict[str, Any]]:
    """Per estimated contrast phase: exams, how many DICOM tags name an agent, median HU per structure."""
    out: dict[str, dict[str, Any]] = {}
    for case_id in cases:
        path = ws.case_metadata(case_id)
        if not path.is_file():
            continue
        contrast = json.loads(path.read_text(encoding="utf-8")).get("contrast", {})
        phase = str(contrast.get("phase") or "unknown")
        entry = out.setdefault(phase, {"exams": 0, "tagged": 0, "hu": {}})
        entry["exams"] += 1
        entry["tagged"] += bool(contrast.get("agent"))
        for name, hu in ((contrast.get("phase_evidence") or {}).get("median_hu") or {}).items():
            entry["hu"].setdefault(name, []).append(float(hu))
    for entry in out.values():
        entry["hu"] = {name: float(np.median(values)) for name, values in sorted(entry["hu"].items())}
    return out


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
    present = {c: present_structures(records[c].path) for c in cases["case_id"] if c in records}
    return DatasetFacts(ws.settings.name, cases, sampled, excluded, included, sample, label_set, categories,
                        revisions, dict(reviews), qa, _presence(present, label_set.names),
                        {k: v for k, v in split_version.items() if k not in ("assignments", "patients")}, qa_current,
                        present, _phase_evidence(ws, list(cases["case_id"])))


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
