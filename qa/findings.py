"""Findings: one row per problem found, with case, structure, check, severity, message and numbers."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import pandas as pd

from curation.enums import Severity, parse_fail_on
from curation.errors import QAError

__all__ = ["Severity", "Check", "Finding", "findings_frame", "findings_table", "counts_by_check", "count_at_least",
           "FINDING_COLUMNS"]


class Check(StrEnum):
    """Check codes, ``family.detail`` (the family groups related checks: storage, geometry, spine, ...)."""

    UNREADABLE = "storage.unreadable"
    DTYPE = "storage.dtype"
    NON_BINARY = "storage.non_binary"
    NON_FINITE = "storage.non_finite"
    DISAGREE = "storage.disagree"
    MISSING = "completeness.missing"
    UNKNOWN_FILE = "completeness.unknown_file"
    UNKNOWN_VALUE = "completeness.unknown_value"
    NO_LABELS = "completeness.no_labels"
    GEOMETRY = "geometry.grid"
    ORIENTATION = "geometry.orientation"
    OVERLAP = "overlap.classes"
    EMPTY = "fov.empty"
    EXPECTED = "fov.expected"
    TRUNCATED = "fov.truncated"
    TINY = "fov.tiny"
    FRAGMENTED = "fragmentation.components"
    FAR_ISLAND = "fragmentation.far_island"
    PIECE_TISSUE = "fragmentation.other_tissue"
    HOLES = "holes.enclosed"
    LATERALITY = "laterality.swapped"
    MIDLINE = "laterality.midline"
    PAIR_SIZE = "laterality.size"
    SPINE_ORDER = "spine.order"
    SPINE_GAP = "spine.missing_level"
    SPINE_DISTANCE = "spine.distance"
    RIB_LEVEL = "spine.rib_level"
    INTENSITY = "intensity.range"
    AIR = "intensity.air"
    ALIGNMENT = "intensity.alignment"
    PHASE = "intensity.phase"
    COHORT_VOLUME = "cohort.volume"
    COHORT_POSITION = "cohort.position"
    COHORT_PROFILE = "cohort.profile"
    LEVEL = "position.level"
    RELATION = "position.relation"
    OVERGROWTH = "boundary.overgrowth"
    UNDERGROWTH = "boundary.undergrowth"
    ABRUPT_END = "boundary.abrupt_end"
    # case-level verdicts: one cause behind many findings
    FLIPPED = "case.flipped"
    TRANSPOSED = "case.transposed"
    SHIFTED = "case.shifted"
    OTHER_GRID = "case.other_grid"
    LABEL_SET = "case.label_set"

    @property
    def family(self) -> str:
        return self.value.split(".")[0]


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item"):
        return _clean(value.item())
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


@dataclass(frozen=True)
class Finding:
    """One problem: which case and structure, which check, how bad, what and the numbers behind it."""

    case: str
    check: Check | str
    severity: Severity | str
    message: str
    structure: str = ""
    file: str = ""
    values: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "check", Check(self.check.value if isinstance(self.check, Check) else self.check))
        except ValueError:
            raise QAError(f"finding: unknown check code {self.check!r}") from None
        object.__setattr__(self, "severity", Severity.parse(self.severity, f"finding {self.check}: severity", QAError))
        object.__setattr__(self, "values", {k: _clean(v) for k, v in self.values.items()})

    def to_row(self) -> dict[str, Any]:
        check = Check(self.check)
        return {"case": self.case, "structure": self.structure, "check": check.value,
                "family": check.family, "severity": str(self.severity),
                "message": self.message, "file": self.file, "values": json.dumps(self.values, sort_keys=True)}


FINDING_COLUMNS = ["case", "structure", "check", "family", "severity", "message", "file", "values"]


def findings_frame(findings: list[Finding]) -> pd.DataFrame:
    """Findings as a table sorted by severity (errors first), case and structure."""
    return findings_table([f.to_row() for f in findings])


def findings_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """:func:`findings_frame` of findings already in their rows (:meth:`Finding.to_row`)."""
    frame = pd.DataFrame(rows, columns=FINDING_COLUMNS)
    rank = frame["severity"].map({s.value: -s.rank for s in Severity})
    return frame.assign(_rank=rank).sort_values(["_rank", "case", "structure", "check"]).drop(columns="_rank") \
        .reset_index(drop=True)


def counts_by_check(findings: pd.DataFrame) -> pd.DataFrame:
    """Number of findings per check (rows) and severity (columns error, warning, info)."""
    table = findings.pivot_table(index="check", columns="severity", values="case", aggfunc="count", fill_value=0) \
        if len(findings) else pd.DataFrame()
    return table.reindex(columns=[s.value for s in Severity], fill_value=0).astype(int)


def count_at_least(findings: pd.DataFrame, severity: Severity | str) -> int:
    """Number of findings at ``severity`` or worse (``"none"`` counts nothing)."""
    chosen = parse_fail_on(severity, "severity", QAError)
    if chosen is None:
        return 0
    worse = [s.value for s in Severity if s.rank >= chosen.rank]
    return int(findings["severity"].isin(worse).sum())
