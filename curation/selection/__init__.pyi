"""Names of :mod:`curation.selection` for type checkers; the package loads them when first used."""

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
