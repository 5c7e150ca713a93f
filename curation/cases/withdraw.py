"""Withdrawing cases whose exam no longer qualifies.

A rescan and refilter can exclude the exam of a case that was already converted (a slice file was damaged
or removed, a rule changed, a better series of the exam appeared, the sample was redrawn). Such a case is
withdrawn: its folder moves out of ``releasable/cases`` to ``WS/withdrawn/<case>/`` with
``withdrawal.json`` (the reason code and its wording, the time), the cases table is rebuilt without it, the
exclusion flow counts it, and the next release's changelog lists it among the cases removed. Its case id
is never given again; its revisions stay in the annotation store and in its folder. Should its exam
qualify again with the same series, ``convert`` moves it back. A move is a rename within the workspace, so
a kill leaves the case either in place (withdrawn by the next run) or withdrawn.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from typing import Any

import pandas as pd

from curation.annotation.db import now_iso
from curation.atomic import atomic_write_text
from curation.workspace.layout import Workspace

from .casemeta import write_meta_table

__all__ = ["Withdrawal", "withdraw_cases", "withdrawn_cases", "reinstate_case"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Withdrawal:
    case_id: str
    reason: str       # a reason code: the exam's primary exclusion reason, or why its series is not chosen
    detail: str
    time: str

    def to_json(self) -> dict[str, Any]:
        return {"case_id": self.case_id, "reason": self.reason, "detail": self.detail, "time": self.time}


def _why(series_key: str, exam: dict[str, Any] | None) -> tuple[str, str] | None:
    """Why a converted series no longer makes a case (None while it still does)."""
    if exam is None:
        return "not_sampled", "its exam is no longer in the sample"
    if not exam["included"]:
        return str(exam["primary_reason"]), f"its exam is now excluded: {exam['primary_reason']}"
    if exam["chosen_series_key"] != series_key:
        return "other_series_chosen", "another series of its exam is now chosen"
    return None


def withdraw_cases(ws: Workspace) -> list[Withdrawal]:
    """Withdraw every converted case whose series is no longer the chosen series of an included exam."""
    if not ws.exams_table.is_file() or not ws.linkage_table.is_file():
        return []
    exams = pd.read_parquet(ws.exams_table)
    linkage = pd.read_parquet(ws.linkage_table).set_index("case_id")
    by_study: dict[str, dict[str, Any]] = {str(row["study_key"]): {str(k): v for k, v in row.items()}
                                         for row in exams.to_dict("records")}
    done = []
    for case_id in ws.case_ids():
        if case_id not in linkage.index or not ws.case_metadata(case_id).is_file():
            continue
        link = linkage.loc[case_id]
        why = _why(str(link["series_key"]), by_study.get(str(link["study_key"])))
        if why is None:
            continue
        withdrawal = Withdrawal(case_id, why[0], why[1], now_iso())
        target = ws.withdrawn_case_dir(case_id)
        target.parent.mkdir(parents=True, exist_ok=True)
        # the record goes in first: a kill before the move leaves the case where it was, and the next run
        # writes the record again; the move is one rename
        atomic_write_text(ws.case_dir(case_id) / ws.withdrawal_record(case_id).name,
                          json.dumps(withdrawal.to_json(), indent=1))
        os.rename(ws.case_dir(case_id), target)
        log.info("case %s withdrawn: %s", case_id, withdrawal.detail)  # the commands list them
        done.append(withdrawal)
    if done:
        write_meta_table(ws)
    return done


def reinstate_case(ws: Workspace, case_id: str) -> bool:
    """Move a withdrawn case back (its exam qualifies again with the same series); False when there is none."""
    source = ws.withdrawn_case_dir(case_id)
    if not source.is_dir() or ws.case_dir(case_id).exists():
        return False
    record = ws.withdrawal_record(case_id)
    os.rename(source, ws.case_dir(case_id))
    ws.case_dir(case_id).joinpath(record.name).unlink(missing_ok=True)
    log.warning("case %s reinstated: its exam qualifies again", case_id)
    return True


def withdrawn_cases(ws: Workspace) -> list[Withdrawal]:
    """Every withdrawn case with its reason (a case moved whose record a kill cut short reads 'unknown').

    Versions before ``gone_from_export`` recorded an exam whose files left the export as ``not_retrieved``;
    in a workspace that never drew on a PACS that is the only way such a record arose, so it reads as
    ``gone_from_export`` (the record itself is left as it is).
    """
    pacs = ws.pacs_studies_table.exists()
    out = []
    for case_id in ws.withdrawn_case_ids():
        path = ws.withdrawal_record(case_id)
        data = json.loads(path.read_text()) if path.is_file() else {}
        reason = data.get("reason", "unknown")
        if reason == "not_retrieved" and not pacs:
            reason = "gone_from_export"
        out.append(Withdrawal(case_id, reason, data.get("detail", ""), data.get("time", "")))
    return out
