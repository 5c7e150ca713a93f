"""Names of :mod:`qa` for type checkers; the package loads them when first used."""

from .cases import CaseFiles, find_cases
from .findings import Check, Finding, Severity, findings_frame
from .fit import FitSettings
from .labels import LabelQASettings, check_case, run_label_qa
from .labelstats import LabelStats, compute_label_stats
from .loading import GridTolerance, compare_grids, load_case
from .meta import run_meta_qa
from .presence import PresenceSettings
from .report import build_report
from .thresholds import AnatomySettings

__all__ = [
    "AnatomySettings",
    "FitSettings",
    "PresenceSettings",
    "CaseFiles",
    "find_cases",
    "Check",
    "Finding",
    "Severity",
    "findings_frame",
    "LabelQASettings",
    "check_case",
    "run_label_qa",
    "LabelStats",
    "compute_label_stats",
    "GridTolerance",
    "compare_grids",
    "load_case",
    "run_meta_qa",
    "build_report",
]
