"""The worklist in numbers: cases per status and annotator, time per case, correction effort per structure.

Correction effort is the voxels each structure changed between the model's revision 0 and a case's
latest human revision; summed over cases and compared between model versions, it measures how much
each round of retraining saved the physicians.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from curation import Workspace
from curation.annotation.record import all_labels_of_record
from curation.annotation.revisions import RevisionStore
from curation.annotation.worklist import CaseStatus, Worklist
from curation.enums import Severity

__all__ = ["WorklistSummary", "worklist_summary"]


@dataclass(frozen=True)
class WorklistSummary:
    """``cases``: one row per case (``review``: its latest revision's review status, ``awaiting`` when the case
    is done and nobody reviewed it yet); ``by_status``: cases per status and annotator; ``effort``: per
    structure; ``reviews``: review events per reviewer and verdict."""

    cases: pd.DataFrame
    by_status: pd.DataFrame
    effort: pd.DataFrame
    median_active_minutes: float | None
    reviews: pd.DataFrame


def worklist_summary(ws: Workspace, database_url: str | None = None) -> WorklistSummary:
    """Gather status, claims, revisions and QA findings of every case of the workspace."""
    store = RevisionStore(ws, database_url)
    work = Worklist(ws, database_url)
    statuses, claims = work.statuses(), work.claims()
    revisions = store.all_revisions()
    review_status = store.all_statuses()
    review_events = pd.DataFrame(store.reviews(), columns=["case_id", "number", "status", "reviewer", "time",
                                                           "comment"])
    records = all_labels_of_record(ws, store=store)
    findings = pd.Series(dtype=int)
    if ws.qa.findings.is_file():
        table = pd.read_parquet(ws.qa.findings)
        findings = table[table["severity"].isin([Severity.ERROR, Severity.WARNING])].groupby("case").size()
    case_ids = sorted(set(ws.case_ids())
                      | {r.case_id for r in revisions})
    by_case: dict[str, list[Any]] = {}
    for revision in revisions:  # oldest first within each case, as the store lists them
        by_case.setdefault(revision.case_id, []).append(revision)
    rows = []
    effort: dict[str, dict[str, int]] = {}
    for case_id in case_ids:
        history = by_case.get(case_id, [])
        human = [r for r in history if r.kind == "human"]
        status, reason = statuses.get(case_id, (CaseStatus.TODO, None))
        claim = claims.get(case_id)
        active = sum(r.active_seconds or 0.0 for r in human)
        review = review_status[(case_id, history[-1].number)].value if history else ""
        if review == "unreviewed" and status is CaseStatus.DONE:
            review = "awaiting"
        rows.append({"case_id": case_id, "status": status.value, "reason": reason or "",
                     "claimant": claim.claimant if claim else "",
                     "annotator": human[-1].author if human else "", "revisions": len(history),
                     "model": history[0].author.removeprefix("model:") if history and history[0].kind == "model"
                     else "", "active_minutes": round(active / 60, 1) if human else None,
                     "labels_of_record": records[case_id].describe() if case_id in records else "",
                     "findings": int(findings.get(case_id, 0)), "review": review})
        if human:
            for structure, voxels in human[-1].changes_vs_model.items():
                entry = effort.setdefault(structure, {"cases": 0, "voxels": 0})
                entry["cases"] += 1
                entry["voxels"] += int(voxels)
    cases = pd.DataFrame(rows, columns=["case_id", "status", "reason", "claimant", "annotator", "revisions",
                                        "model", "active_minutes", "labels_of_record", "findings", "review"])
    by_status = (cases.assign(annotator=cases["annotator"].replace("", "-"))
                 .groupby(["status", "annotator"]).size().rename("cases").reset_index())
    effort_frame = pd.DataFrame([{"structure": k, **v} for k, v in effort.items()],
                                columns=["structure", "cases", "voxels"]).sort_values("voxels", ascending=False)
    timed = cases["active_minutes"].dropna()
    reviews = review_events.groupby(["reviewer", "status"]).size().rename("reviews").reset_index()
    return WorklistSummary(cases, by_status, effort_frame.reset_index(drop=True),
                           float(timed.median()) if len(timed) else None, reviews)
