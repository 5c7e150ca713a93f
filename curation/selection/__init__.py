"""From catalog to chosen series: the seeded, auditable draw of exams (``sample``), the exclusion rules
with their reason codes, the verdicts and the one series chosen per exam (``filter``), and the
exclusion flow figure.
"""

from __future__ import annotations

from .filter import (
    REASON_LABELS,
    FilterResult,
    choose_series,
    flow_counts,
    judge_series,
    merge_remote,
    preference_key,
    redraw_flow,
    run_filter,
)
from .flow import draw_flow
from .rules import RULE_CODES, RULES, Finding, Rule, classify_gaps, evaluate, keyword_hits
from .sample import CATALOG_FRAME, SampleResult, draw, exam_table, rank_key, sample, sample_frame

__all__ = [
    "merge_remote", "flow_counts", "redraw_flow", "FilterResult", "judge_series", "preference_key",
    "choose_series", "run_filter", "REASON_LABELS", "draw_flow", "Finding", "Rule", "RULES", "RULE_CODES",
    "evaluate", "classify_gaps", "keyword_hits", "SampleResult", "CATALOG_FRAME", "exam_table", "rank_key",
    "draw", "sample", "sample_frame"
]
