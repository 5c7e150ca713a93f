"""``qa report``: one HTML page of all findings, with a picture of each flagged structure.

The page has a summary by check and severity, a per-case table sortable by severity, and for every
structure with an error or warning three orthogonal CT slices with the mask outline. All findings
are also written as JSON (``findings.json``) beside the page; the Parquet table is ``qa labels``'s.

The case table says why a case is flagged (its top finding, :func:`finding_order`: worst severity,
then a verdict on the whole case, then a missing structure, then the rest) and which expected
structures are missing. Each case's section starts with its case verdicts on one highlighted line,
the missing structures, and the command that opens it in the annotator. A picture is centred on its
structure's worst finding that names a world point (``values["at_lps"]``), zoomed in around it.
The page is self-contained: no external scripts, styles or images.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shlex
import textwrap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from curation.atomic import atomic_write_bytes, atomic_write_text
from curation.errors import QAError
from curation.labels.labelset import LabelSet
from curation.workspace import SETTINGS_FILE

from .cases import CaseFiles
from .findings import Check, Severity, counts_by_check
from .loading import load_case
from .thumbnails import structure_thumbnail

__all__ = ["ReportResult", "annotate_command", "build_report", "finding_order", "finding_point",
           "import_hint", "is_case_verdict", "is_missing", "missing_structures", "why_text", "workspace_of",
           "worst_severity"]

log = logging.getLogger(__name__)

CASE_FAMILY = "case"
"""Check family of verdicts on a whole case (``case.flipped``, ``case.transposed``, ``case.shifted``, ...)."""
MISSING_CHECKS = (Check.EXPECTED.value, Check.MISSING.value)
"""Checks that say an expected structure is missing."""

def without_name(message: str, structure: str | None) -> str:
    """A finding's message without its leading ``structure:`` (the page shows the name before it)."""
    if structure and message.startswith(f"{structure}:"):
        return message[len(structure) + 1:].lstrip()
    return message


_ENVIRONMENT = jinja2.Environment(loader=jinja2.PackageLoader("qa", "templates"), autoescape=True)
_ENVIRONMENT.filters["without_name"] = without_name
_TEMPLATE = _ENVIRONMENT.get_template("report.html")


@dataclass(frozen=True)
class ReportResult:
    html: Path
    json: Path
    pictures: int


def worst_severity(findings: pd.DataFrame) -> str:
    """The worst severity among findings ("none" when there are none)."""
    for level in Severity:  # worst first
        if (findings["severity"] == level).any():
            return level.value
    return "none"


def is_case_verdict(row: Mapping[str, Any]) -> bool:
    """Whether a finding is a verdict on the whole case (check family ``case``: flipped, transposed, ...)."""
    family = row.get("family") or str(row.get("check", "")).split(".")[0]
    return family == CASE_FAMILY


def is_missing(row: Mapping[str, Any]) -> bool:
    """Whether a finding says that an expected structure is missing (a warning or an error)."""
    return row.get("check") in MISSING_CHECKS and row.get("severity") != Severity.INFO.value


def finding_order(row: Mapping[str, Any]) -> tuple[int, int]:
    """Sort key of a case's findings, most telling first: severity, then case verdicts, then missing
    structures, then the rest (stable: ties keep the findings table's order)."""
    kind = 0 if is_case_verdict(row) else 1 if is_missing(row) else 2
    return -Severity(row["severity"]).rank, kind


def why_text(row: Mapping[str, Any], width: int = 90) -> str:
    """``structure: check — message`` of a finding, the message shortened (without a leading ``structure:``)."""
    structure, check = str(row.get("structure") or ""), str(row["check"])
    message = textwrap.shorten(without_name(str(row.get("message") or ""), structure), width=width, placeholder=" …")
    head = f"{structure}: {check}" if structure else check
    return f"{head} — {message}" if message else head


def missing_structures(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """Structures that findings call missing (``fov.expected``, ``completeness.missing``), in order, once."""
    return list(dict.fromkeys(str(r["structure"]) for r in rows if is_missing(r) and r.get("structure")))


def finding_point(values: Mapping[str, Any]) -> tuple[float, float, float] | None:
    """A finding's world point (``values["at_lps"]``, LPS millimetres), or None when it has no valid one."""
    point = values.get("at_lps") if isinstance(values, Mapping) else None
    if not isinstance(point, (list, tuple)) or len(point) != 3:
        return None
    try:
        xyz = tuple(float(v) for v in point)
    except (TypeError, ValueError):
        return None
    return (xyz[0], xyz[1], xyz[2]) if all(math.isfinite(v) for v in xyz) else None


def workspace_of(files: CaseFiles | None, workspace: str | Path | None = None) -> Path | None:
    """The workspace a case belongs to: ``workspace`` when given, else (for a case whose labels are a
    revision) the nearest folder above the case folder holding workspace settings."""
    if workspace is not None:
        return Path(workspace)
    if files is None or files.revision is None:
        return None
    return next((p for p in files.folder.parents if (p / SETTINGS_FILE).is_file()), None)


def annotate_command(files: CaseFiles | None, case: str, workspace: str | Path | None = None) -> str | None:
    """``ctcurate annotate WORKSPACE --case CASE`` for a workspace's case (None for a plain folder)."""
    root = workspace_of(files, workspace)
    if root is None:
        return None
    return f"ctcurate annotate {shlex.quote(str(root))} --case {shlex.quote(case)}"


def import_hint(files: CaseFiles | None, case: str) -> str | None:
    """For a case of a plain folder (not a workspace), the command that brings its labels into the
    workspace holding its CT (WORKSPACE left to fill in), after which ``ctcurate annotate`` opens it."""
    if files is None or files.revision is not None:
        return None
    labels = files.multilabel or files.masks
    if labels is None:
        return None
    return f"ctcurate annotate import -w WORKSPACE --case {shlex.quote(case)} --file {shlex.quote(str(labels))}"


def build_report(out_dir: str | Path, findings: pd.DataFrame, cases: list[CaseFiles], label_set: LabelSet, *,
                 data_docs: Path | None = None, max_pictures: int = 300,
                 workspace: str | Path | None = None) -> ReportResult:
    """Write ``out_dir/index.html``, ``out_dir/findings.json`` and the pictures under ``out_dir/img``.

    ``workspace``: the workspace the cases belong to (the QA root), for the ``ctcurate annotate`` command
    shown with each case; cases with a revision are also traced to their workspace without it.
    """
    if findings is None:
        raise QAError("qa report: no findings; run 'ctcurate qa labels' first")
    out = Path(out_dir)
    by_case = {c.case: c for c in cases}
    records: list[dict[str, Any]] = [{str(k): v for k, v in r.items()} for r in findings.to_dict(orient="records")]
    by_case_rows: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        by_case_rows.setdefault(str(r["case"]), []).append(r)
        r["values"] = json.loads(r["values"]) if isinstance(r.get("values"), str) and r["values"] else {}
        if not isinstance(r["values"], dict):
            r["values"] = {"value": r["values"]}
    atomic_write_text(out / "findings.json", json.dumps(records, indent=1, default=str))
    pictures = 0
    case_rows: list[dict[str, Any]] = []
    for case in sorted(set(by_case) | set(by_case_rows)):
        group = sorted(by_case_rows.get(case, []), key=finding_order)
        serious = [r for r in group if r["severity"] != Severity.INFO.value]
        verdicts = [r for r in group if is_case_verdict(r)]
        files = by_case.get(case)
        pics: list[dict[str, Any]] = []
        flagged = [s for s in dict.fromkeys(str(r["structure"] or "") for r in serious) if s and s in label_set]
        if verdicts:  # one cause behind them all: the verdict says it, pictures of each structure would not
            flagged = []
        if flagged and files is not None and pictures < max_pictures:
            pics = _pictures(out, files, label_set, flagged[: max_pictures - pictures], serious)
            pictures += len(pics)
        worst = group[0]["severity"] if group else "none"
        top = next(iter(serious), None)
        case_rows.append({
            "case": case, "worst": worst, "rank": Severity(worst).rank if worst != "none" else -1,
            **{s.value: sum(r["severity"] == s.value for r in group) for s in Severity},
            "why": why_text(top) if top else "", "why_severity": top["severity"] if top else "",
            "missing": missing_structures(group), "verdicts": verdicts,
            "verdict_severity": verdicts[0]["severity"] if verdicts else "",
            "findings": [r for r in serious if not is_case_verdict(r)],
            "notes": [r for r in group if r["severity"] == Severity.INFO.value and not is_case_verdict(r)],
            "pictures": pics, "annotate": annotate_command(files, case, workspace),
            "import_hint": import_hint(files, case)})
    case_rows.sort(key=lambda c: (-c["rank"], -c["error"], -c["warning"], c["case"]))
    by_check = counts_by_check(findings)
    totals = findings["severity"].value_counts()
    html = _TEMPLATE.render(
        n_cases=len(cases), label_set=f"{label_set.name} {label_set.version}",
        totals={k.value: int(totals.get(k.value, 0)) for k in Severity},
        by_check=[{"check": k, **{s: int(v) for s, v in row.items()}} for k, row in by_check.iterrows()],
        cases=case_rows, data_docs=_relative(data_docs, out) if data_docs else None)
    atomic_write_text(out / "index.html", html)
    log.info("report: %s (%d pictures)", out / "index.html", pictures)
    return ReportResult(out / "index.html", out / "findings.json", pictures)


def _pictures(out: Path, files: CaseFiles, label_set: LabelSet, structures: list[str],
              serious: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One picture per structure, centred on the point of its worst finding that has one."""
    loaded = load_case(files, label_set)
    if loaded.labels is None:
        return []
    pics = []
    for structure in structures:
        point = next((p for r in serious if r["structure"] == structure
                      and (p := finding_point(r["values"])) is not None), None)
        png = structure_thumbnail(loaded.image, loaded.labels, label_set.by_name(structure), at_lps=point)
        if png is None:  # nothing to show (a missing or empty structure)
            continue
        name = f"img/{files.case}__{structure}.png"
        atomic_write_bytes(out / name, png)
        pics.append({"structure": structure, "src": name,
                     "at": None if point is None else ", ".join(f"{v:.1f}" for v in point)})
    return pics


def _relative(target: Path, start: Path) -> str:
    try:
        return os.path.relpath(target, start)
    except ValueError:
        return target.as_uri()
