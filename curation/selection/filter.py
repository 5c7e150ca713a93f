"""``ctcurate filter``: verdicts for every series, one chosen series per sampled exam, the flow figure.

Every catalogued series (unreadable files included, each as its own series) gets a verdict:
included or excluded with reason codes, messages and details (:mod:`curation.selection.rules`). Among the
included series of each sampled exam one is chosen by :func:`preference_key`. An exam with no
included series is excluded with the primary reason of its most nearly acceptable series.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from curation.annotation.db import has_annotation_database
from curation.atomic import atomic_write_parquet
from curation.cases.withdraw import withdraw_cases, withdrawn_cases
from curation.catalog.sources import require_sources
from curation.dicom.series import check_decodable
from curation.errors import FilterError
from curation.reasons import REASONS, reason_label
from curation.workspace.layout import Workspace
from curation.workspace.settings import ExclusionSettings

from .rules import RULES, evaluate, keyword_hits

__all__ = [
    "merge_remote", "flow_counts", "redraw_flow", "FilterResult", "judge_series", "preference_key",
    "choose_series", "run_filter", "REASON_LABELS"
]

log = logging.getLogger(__name__)
REASON_LABELS = {rule.code: rule.label for rule in RULES}  # the rules' wording, from curation.reasons


@dataclass(frozen=True)
class FilterResult:
    """Counts of a filter run and where its outputs are."""

    n_series: int
    n_sampled_exams: int
    n_included_exams: int
    excluded_by_reason: dict[str, int]
    flow_png: str
    flow_svg: str
    withdrawn: tuple[str, ...] = ()  # converted cases whose exam no longer qualifies (moved to WS/withdrawn)


def _record(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}


def judge_series(series: pd.DataFrame, files: pd.DataFrame, settings: ExclusionSettings) -> pd.DataFrame:
    """Apply the rules to every series; decode one slice of each series that passes the rest."""
    middle_file = files.sort_values("path").groupby("series_key")["path"].agg(lambda p: p.iloc[len(p) // 2])
    out = []
    for raw in series.to_dict("records"):
        row = _record({str(k): v for k, v in raw.items()})
        findings = evaluate(row, settings)
        if not findings and settings.decode_check:
            error = check_decodable(middle_file[row["series_key"]])
            if error:
                row["decode_error"] = error
                findings = evaluate(row, settings)
        out.append({
            "series_key": row["series_key"], "study_key": row["study_key"], "patient_key": row["patient_key"],
            "included": not findings, "reasons": ";".join(f.code for f in findings),
            "primary_reason": findings[0].code if findings else "",
            "findings": json.dumps([f.to_dict() for f in findings], default=str),
            "n_files": row["n_files"],
        })
    return pd.DataFrame(out)


def preference_key(row: dict[str, Any], settings: ExclusionSettings) -> tuple[Any, ...]:
    """Sort key of the series preference (lower is better).

    Axial original acquisitions first, then soft-tissue kernels, then the thinnest slices that are
    at least ``min_reasonable_thickness_mm``, then the longest coverage, then more slices, then the
    lowest series number.
    """
    image_type = str(row.get("image_type") or "").upper().split("\\")
    original = 0 if image_type and image_type[0] == "ORIGINAL" else 1
    sharp = 1 if keyword_hits({"kernel": str(row.get("kernel") or "").replace("\\", " ")},
                              settings.sharp_kernel_keywords) else 0
    thickness = row.get("slice_thickness")
    thickness = float(thickness) if thickness is not None and not np.isnan(thickness) else 99.0
    too_thin = 1 if thickness < settings.min_reasonable_thickness_mm else 0
    extent = float(row.get("z_extent_mm") or 0.0)
    return (original, sharp, too_thin, round(thickness, 2), -round(extent, 1), -int(row.get("n_positions") or 0),
            int(row.get("series_number") or 0) if not pd.isna(row.get("series_number")) else 0, row["series_key"])


def choose_series(series: pd.DataFrame, verdicts: pd.DataFrame, sampled: pd.DataFrame,
                  settings: ExclusionSettings, on_pacs: Collection[str] = frozenset()) -> pd.DataFrame:
    """One row per sampled exam: included or not, the chosen series, the primary reason.

    A sampled exam without any series is ``not_retrieved`` when it was drawn on a PACS (its study key is in
    ``on_pacs``, the candidates of ``pull``) and ``gone_from_export`` otherwise: its files were scanned when
    it was drawn and are no longer in the catalog.
    """
    merged = series.merge(verdicts[["series_key", "included", "reasons", "primary_reason"]], on="series_key")
    order = {rule.code: i for i, rule in enumerate(RULES)}
    rows = []
    for exam in sampled.to_dict("records"):
        candidates = merged[merged["study_key"] == exam["study_key"]]
        if candidates.empty:  # drawn on a PACS and not yet described or retrieved, or its files are gone
            code = "not_retrieved" if exam["study_key"] in on_pacs else "gone_from_export"
            rows.append({"study_key": exam["study_key"], "patient_key": exam["patient_key"], "rank": exam["rank"],
                         "included": False, "chosen_series_key": "", "primary_reason": code,
                         "reasons": code, "n_series": 0, "n_included_series": 0})
            continue
        ok = candidates[candidates["included"]]
        if len(ok):
            best = min((_record(r) for r in ok.to_dict("records")), key=lambda r: preference_key(r, settings))
            rows.append({"study_key": exam["study_key"], "patient_key": exam["patient_key"], "rank": exam["rank"],
                         "included": True, "chosen_series_key": best["series_key"], "primary_reason": "",
                         "reasons": "", "n_series": len(candidates), "n_included_series": len(ok)})
            continue
        # nearest miss: CT image series with the fewest and latest-priority reasons
        def miss_key(r: dict[str, Any]) -> tuple[Any, ...]:
            codes = r["reasons"].split(";")
            pending = codes == ["not_retrieved"]  # passed every rule on the PACS: only its retrieval is missing
            return (r.get("modality") != "CT", not pending, len(codes), -max(order.get(c, 0) for c in codes))
        nearest = min((_record(r) for r in candidates.to_dict("records")), key=miss_key)
        rows.append({"study_key": exam["study_key"], "patient_key": exam["patient_key"], "rank": exam["rank"],
                     "included": False, "chosen_series_key": "", "primary_reason": nearest["primary_reason"],
                     "reasons": nearest["reasons"], "n_series": len(candidates), "n_included_series": 0})
    return pd.DataFrame(rows)


def run_filter(workspace: Workspace) -> FilterResult:
    """Judge all series, choose one per sampled exam, write the tables and the flow figure."""
    from .flow import draw_flow

    settings = workspace.settings.exclusion
    series = pd.read_parquet(workspace.require(workspace.series_table, "scan"))
    files = pd.read_parquet(workspace.require(workspace.files_table, "scan"))
    sampled = pd.read_parquet(workspace.require(workspace.sample_table, "sample"))
    # judging files that are not there would exclude good series (and withdraw their cases): refuse instead
    require_sources(workspace, workspace.settings.sources)
    gone = [p for p in files.loc[files["status"] == "ok", "path"] if not os.path.exists(p)]
    if gone:
        raise FilterError(f"{gone[0]}: {len(gone)} catalogued file(s) are gone since the last scan; run "
                          f"'ctcurate scan -w {workspace.root}' first (nothing was judged)")
    if sampled.empty:
        raise FilterError(f"{workspace.sample_table}: the sample is empty; run 'ctcurate sample' with --n > 0")
    if workspace.pacs_series_table.exists():  # drawn on a PACS: what was not retrieved is judged from metadata
        series = merge_remote(series, pd.read_parquet(workspace.pacs_series_table))
    on_pacs: set[str] = set()
    if workspace.pacs_studies_table.exists():  # the candidates of 'pull': an exam of these may await retrieval
        on_pacs = set(pd.read_parquet(workspace.pacs_studies_table, columns=["study_key"])["study_key"])
    verdicts = judge_series(series, files, settings)
    verdicts["sampled"] = verdicts["study_key"].isin(set(sampled["study_key"]))
    exams = choose_series(series, verdicts, sampled, settings, on_pacs)
    verdicts["chosen"] = verdicts["series_key"].isin(set(exams["chosen_series_key"]))
    atomic_write_parquet(workspace.verdicts_table, verdicts)
    atomic_write_parquet(workspace.exams_table, exams)
    withdrawn = withdraw_cases(workspace)
    n_sampled, ordered, n_included = flow_counts(workspace, exams)
    png, svg = draw_flow(n_sampled, ordered, n_included, workspace.flow_figure,
                         title=f"{workspace.settings.name}: exam selection")
    log.info("filter: %d of %d sampled exams included", n_included, len(exams))
    return FilterResult(n_series=len(verdicts), n_sampled_exams=len(exams), n_included_exams=n_included,
                        excluded_by_reason=ordered, flow_png=str(png), flow_svg=str(svg),
                        withdrawn=tuple(w.case_id for w in withdrawn))


def flow_counts(workspace: Workspace, exams: pd.DataFrame | None = None) -> tuple[int, dict[str, int], int]:
    """Sampled exams, excluded exams per reason label, included exams: the filter's exclusions plus the
    cases annotators excluded (``anatomy distorted by abnormality``, ...), merged by reason; a reason
    whose exclusions include cases withdrawn after conversion says how many."""
    from curation.annotation.worklist import CaseStatus, Worklist
    if exams is None:
        exams = pd.read_parquet(workspace.require(workspace.exams_table, "filter"))
    counts = Counter(exams.loc[~exams["included"], "primary_reason"])
    annotated = 0
    if has_annotation_database(workspace):
        for status, reason in Worklist(workspace).statuses().values():
            if status is CaseStatus.EXCLUDED and reason:
                counts[reason] += 1
                annotated += 1
    failed = _failed_conversions(workspace, exams)
    counts["conversion_failed"] += failed
    withdrawn = Counter(w.reason for w in withdrawn_cases(workspace))
    codes = [c for c in REASONS if counts.get(c)] + sorted(c for c in counts if c not in REASONS and counts[c])
    ordered = {reason_label(code) + (f" ({withdrawn[code]} withdrawn after conversion)" if withdrawn.get(code)
                                     else ""): int(counts[code]) for code in codes}
    return len(exams), ordered, int(exams["included"].sum()) - annotated - failed


def _failed_conversions(workspace: Workspace, exams: pd.DataFrame) -> int:
    """Included exams whose chosen series failed to convert in the last convert run (no case was made)."""
    if not workspace.convert_failures_table.is_file() or not workspace.linkage_table.is_file():
        return 0
    failed = set(pd.read_parquet(workspace.convert_failures_table)["case_id"])
    linkage = pd.read_parquet(workspace.linkage_table)
    series = set(linkage.loc[linkage["case_id"].isin(failed), "series_key"])
    return int((exams["included"] & exams["chosen_series_key"].isin(series)).sum())


def redraw_flow(workspace: Workspace) -> tuple[Path, Path]:
    """Draw the exclusion flow again (after annotators excluded cases)."""
    from .flow import draw_flow

    sampled, excluded, included = flow_counts(workspace)
    return draw_flow(sampled, excluded, included, workspace.flow_figure,
                     title=f"{workspace.settings.name}: exam selection")


def merge_remote(local: pd.DataFrame, remote: pd.DataFrame) -> pd.DataFrame:
    """The local series table plus the drawn studies' series that were not (fully) retrieved.

    Adds ``pacs_status``/``pacs_detail``: ``not_retrieved`` for a series the rules let through on the
    PACS that is absent here (not chosen, or its retrieval failed), ``incomplete`` for one retrieved in
    part (its row then comes from the PACS: the part here would look like a series with gaps). Series
    the rules excluded on the PACS come back with their own reasons.
    """
    local = local.assign(pacs_status="", pacs_detail="")
    if remote.empty:
        return local
    remote = remote.copy()
    remote_files = remote.set_index("series_key")["n_files"].astype(int).to_dict()
    local_files = local.set_index("series_key")["n_files"].astype(int).to_dict()
    partial = {k: n for k, n in local_files.items() if n < remote_files.get(k, 0)}
    incomplete = remote["series_key"].isin(set(partial)) & (remote["pacs_status"] == "")
    remote.loc[incomplete, "pacs_status"] = "incomplete"  # judged by its full metadata, not by the part here
    remote.loc[incomplete, "pacs_detail"] = [f"{partial[k]} of {remote_files[k]} instances retrieved"
                                             for k in remote.loc[incomplete, "series_key"]]
    local = local[~local["series_key"].isin(set(partial))]
    absent = remote[~remote["series_key"].isin(set(local["series_key"]))].copy()
    judged = absent["pacs_status"] == ""
    absent.loc[judged, "pacs_status"] = absent.loc[judged, "included"].map(lambda ok: "not_retrieved" if ok else "")
    absent.loc[judged, "pacs_detail"] = absent.loc[judged, "retrieval"].where(
        absent.loc[judged, "retrieval"] != "", "not chosen for retrieval")
    keep = [c for c in local.columns if c in absent.columns]
    return pd.concat([local, absent[keep]], ignore_index=True)
