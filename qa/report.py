"""``qa report``: one HTML page of all findings, with a picture of each flagged structure.

The page has a summary by check and severity, a per-case table sortable by severity, and for every
structure with an error or warning three orthogonal CT slices with the mask outline. All findings
are also written as JSON (``findings.json``) beside the page; the Parquet table is ``qa labels``'s.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from curation.atomic import atomic_write_bytes, atomic_write_text
from curation.enums import parse_fail_on
from curation.errors import QAError
from curation.labels.labelset import LabelSet

from .cases import CaseFiles
from .findings import Severity, counts_by_check
from .loading import load_case
from .thumbnails import structure_thumbnail

__all__ = ["ReportResult", "build_report", "worst_severity", "count_at_least"]

log = logging.getLogger(__name__)

_TEMPLATE = jinja2.Environment(loader=jinja2.PackageLoader("qa", "templates"), autoescape=True) \
    .get_template("report.html")


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


def count_at_least(findings: pd.DataFrame, severity: Severity | str) -> int:
    """Number of findings at ``severity`` or worse (``"none"`` counts nothing)."""
    chosen = parse_fail_on(severity, "severity", QAError)
    if chosen is None:
        return 0
    return int(findings["severity"].map(lambda s: Severity(s).rank >= chosen.rank).sum())


def build_report(out_dir: str | Path, findings: pd.DataFrame, cases: list[CaseFiles], label_set: LabelSet, *,
                 data_docs: Path | None = None, max_pictures: int = 300) -> ReportResult:
    """Write ``out_dir/index.html``, ``out_dir/findings.json`` and the pictures under ``out_dir/img``."""
    if findings is None:
        raise QAError("qa report: no findings; run 'ctcurate qa labels' first")
    out = Path(out_dir)
    by_case = {c.case: c for c in cases}
    records = findings.to_dict(orient="records")
    for r in records:
        r["values"] = json.loads(r["values"]) if isinstance(r.get("values"), str) and r["values"] else {}
    atomic_write_text(out / "findings.json", json.dumps(records, indent=1, default=str))
    pictures = 0
    case_rows: list[dict[str, Any]] = []
    for case in sorted(set(by_case) | set(findings["case"])):
        group = findings[findings["case"] == case]
        serious = group[group["severity"] != "info"]
        flagged = [s for s in dict.fromkeys(serious["structure"]) if s and s in label_set]
        pics = []
        files = by_case.get(str(case))
        if flagged and files is not None and pictures < max_pictures:
            loaded = load_case(files, label_set)
            if loaded.labels is not None:
                for structure in flagged[: max_pictures - pictures]:
                    png = structure_thumbnail(loaded.image, loaded.labels, label_set.by_name(structure))
                    if png is None:  # nothing to show (a missing or empty structure)
                        continue
                    name = f"img/{case}__{structure}.png"
                    atomic_write_bytes(out / name, png)
                    pics.append({"structure": structure, "src": name})
                    pictures += 1
        counts = group["severity"].value_counts()
        worst = worst_severity(group)
        case_rows.append({"case": case, "worst": worst, "rank": Severity(worst).rank if worst != "none" else -1,
                          "error": int(counts.get("error", 0)), "warning": int(counts.get("warning", 0)),
                          "info": int(counts.get("info", 0)), "findings": serious.to_dict(orient="records"),
                          "notes": group[group["severity"] == "info"].to_dict(orient="records"), "pictures": pics})
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


def _relative(target: Path, start: Path) -> str:
    try:
        return os.path.relpath(target, start)
    except ValueError:
        return target.as_uri()
