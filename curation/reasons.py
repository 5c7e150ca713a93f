"""The one registry of exclusion reasons: the filter's rules, the annotators' exclusions and the withdrawals.

Every reason has a code (kept in tables and settings), the wording the flow figure and the viewer show, and
who gives it: a ``rule`` of the filter (in the order the filter applies them), an ``annotator`` excluding a
case while correcting it, the ``withdrawal`` of a converted case whose exam no longer qualifies (or of a
sampled exam that left the catalog: ``gone_from_export``), or a ``conversion`` that failed (the flow figure
counts what convert produced). A code
may be given by several (``extremity`` and ``missing_slices`` are rules that annotators may also give).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["ReasonSource", "ExclusionReason", "REASONS", "RULE_CODES", "ANNOTATOR_CODES", "reason_label",
           "reasons_of"]


class ReasonSource(StrEnum):
    RULE = "rule"
    ANNOTATOR = "annotator"
    WITHDRAWAL = "withdrawal"
    CONVERSION = "conversion"


@dataclass(frozen=True)
class ExclusionReason:
    code: str
    label: str
    sources: frozenset[ReasonSource]

    def __post_init__(self) -> None:
        if not self.code.isidentifier() or not self.label:
            raise ValueError(f"exclusion reason {self.code!r}: expected an identifier code and a label")


def _reason(code: str, label: str, *sources: ReasonSource) -> ExclusionReason:
    return ExclusionReason(code, label, frozenset(sources))


_R, _A, _W, _C = ReasonSource.RULE, ReasonSource.ANNOTATOR, ReasonSource.WITHDRAWAL, ReasonSource.CONVERSION
REASONS: dict[str, ExclusionReason] = {r.code: r for r in (
    _reason("unreadable", "unreadable file", _R),
    _reason("not_retrieved", "not retrieved from the PACS", _R),
    # a sampled exam of the scanned exports with no file left in the catalog (deleted or moved since the draw);
    # workspaces of earlier versions recorded it as not_retrieved (see curation.cases.withdraw)
    _reason("gone_from_export", "files no longer in the export", _W),
    _reason("non_image", "non-image object", _R),
    _reason("not_ct", "not CT", _R),
    _reason("shared_study_uid", "Study UID under several patients", _R),
    _reason("no_pixel_data", "no pixel data", _R),
    _reason("corrupt_file", "damaged file(s)", _R),
    _reason("unreadable_pixels", "unreadable pixel data", _R),
    _reason("second_copy", "second copy of a series", _R),
    _reason("secondary_capture", "secondary capture", _R),
    _reason("derived_image", "derived image (reformat)", _R),
    _reason("screen_capture", "screenshot / report", _R),
    _reason("localizer", "localizer / scout", _R),
    _reason("extremity", "upper/lower extremity", _R, _A),
    _reason("burned_in_annotation", "burned-in annotation", _R),
    _reason("missing_rescale", "no rescale to HU", _R),
    _reason("non_axial", "non-axial", _R),
    _reason("single_position", "all slices at one position", _R),
    _reason("missing_positions", "slice positions missing", _R),
    _reason("too_short", "too short", _R),
    _reason("missing_slices", "missing slices", _R, _A),
    _reason("inconsistent_spacing", "inconsistent spacing", _R),
    _reason("duplicate_positions", "duplicate positions", _R),
    _reason("gantry_tilt", "gantry tilt", _R),
    _reason("anatomy_distorted", "anatomy distorted by abnormality", _A),
    _reason("image_quality", "artefacts or poor image quality", _A),
    _reason("wrong_region", "body region not covered", _A),
    _reason("other", "other (see comment)", _A),
    _reason("not_sampled", "no longer in the sample", _W),
    _reason("other_series_chosen", "another series of the exam chosen", _W),
    _reason("conversion_failed", "conversion failed", _C),
)}
RULE_CODES = tuple(code for code, r in REASONS.items() if _R in r.sources)  # in the order the filter applies them
# in the order the viewer offers them: the reference dataset's own exclusion first
ANNOTATOR_CODES = ("anatomy_distorted", "extremity", "missing_slices", "image_quality", "wrong_region", "other")


def reasons_of(source: ReasonSource | str) -> dict[str, str]:
    """Code -> wording of the reasons ``source`` may give, in registry order."""
    source = ReasonSource(source)
    codes = ANNOTATOR_CODES if source is ReasonSource.ANNOTATOR else tuple(REASONS)
    return {code: REASONS[code].label for code in codes if source in REASONS[code].sources}


def reason_label(code: str) -> str:
    """The wording of a reason code (the code itself when it is unknown, e.g. from an older workspace)."""
    reason = REASONS.get(code)
    return reason.label if reason else code
