"""Exclusion rules: each gives a stable code, a human message and details for one series.

Rules read one row of the series table (see :mod:`curation.catalog.grouping`) and the thresholds in
:class:`curation.workspace.settings.ExclusionSettings`. :data:`RULES` lists them in priority order: the
first code that fires is a series' primary reason.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from curation.dicom.tags import is_image_sop_class, sop_class_name
from curation.reasons import REASONS, RULE_CODES, reason_label
from curation.workspace.settings import ExclusionSettings

__all__ = ["Finding", "Rule", "RULES", "RULE_CODES", "evaluate", "classify_gaps", "keyword_hits"]


@dataclass(frozen=True)
class Finding:
    """One reason to exclude a series."""

    code: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


Check = Callable[[dict[str, Any], ExclusionSettings], Finding | None]


@dataclass(frozen=True)
class Rule:
    """A named check; ``needs_geometry`` rules run only on image series with positions."""

    code: str
    check: Check
    needs_geometry: bool = False

    def __post_init__(self) -> None:
        if self.code not in REASONS:
            raise ValueError(f"rule {self.code!r}: add its reason to curation.reasons first")

    @property
    def label(self) -> str:
        return reason_label(self.code)


def _num(value: Any) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _tokens(value: Any) -> set[str]:
    return {t.strip().upper() for t in str(value or "").split("\\") if t.strip()}


def _norm_text(value: Any) -> str:
    return " " + re.sub(r"[^A-Z0-9]+", " ", str(value or "").upper()).strip() + " "


def keyword_hits(texts: dict[str, Any], keywords: tuple[str, ...]) -> dict[str, str]:
    """Which keywords occur as whole words in which field: ``{field: keyword}``."""
    hits: dict[str, str] = {}
    for name, text in texts.items():
        norm = _norm_text(text)
        for keyword in keywords:
            if _norm_text(keyword) in norm:
                hits[name] = keyword
                break
    return hits


def _unreadable(s: dict[str, Any], _c: ExclusionSettings) -> Finding | None:
    if s["n_unreadable"] and s["n_unreadable"] == s["n_files"]:
        files = json.loads(s.get("damaged_files") or "[]")
        where = f"{files[0]['file']}: " if files else ""
        return Finding("unreadable", f"{where}cannot be read as DICOM: {s['status_detail']}",
                       {"file_status": s["file_status"]})
    return None


def _not_retrieved(s: dict[str, Any], _c: ExclusionSettings) -> Finding | None:
    status = s.get("pacs_status") or ""
    if status:
        return Finding("not_retrieved", f"on the PACS, not retrieved: {s.get('pacs_detail') or status}; run "
                       "'ctcurate pull' again to fetch it", {"pacs_status": status})
    return None


def _non_image(s: dict[str, Any], _c: ExclusionSettings) -> Finding | None:
    uid = s.get("sop_class_uid") or ""
    if uid and not is_image_sop_class(uid):
        return Finding("non_image", f"non-image object ({s.get('sop_class') or uid})", {"sop_class_uid": uid})
    return None


def _not_ct(s: dict[str, Any], _c: ExclusionSettings) -> Finding | None:
    modality = s.get("modality") or ""
    if modality != "CT":
        return Finding("not_ct", f"modality is {modality or 'missing'}, expected CT", {"modality": modality})
    return None


def _shared_study_uid(s: dict[str, Any], _c: ExclusionSettings) -> Finding | None:
    patients = int(_num(s.get("study_uid_patients")) or 0)
    if patients > 1:
        return Finding("shared_study_uid", f"its Study Instance UID {s.get('study_uid')} is found under {patients} "
                       "different patients in the exports (a merged or mistyped Patient ID, or one exam exported "
                       "twice): which patient it belongs to is unclear; correct the Patient ID at the source, or "
                       "remove the wrong copy, and rescan", {"patients": patients})
    return None


def _second_copy(s: dict[str, Any], _c: ExclusionSettings) -> Finding | None:
    if s.get("copy_of"):
        return Finding("second_copy", f"{s.get('folder')}: a second copy of images another folder of the exports "
                       "holds (the same SOP Instance UIDs); the copy in the folder first by name is the one judged "
                       "and converted, this one never is (remove it from the export, or leave it)",
                       {"copy_of": s.get("copy_of")})
    return None


def _no_pixels(s: dict[str, Any], _c: ExclusionSettings) -> Finding | None:
    if s["n_no_pixels"]:
        files = [d for d in json.loads(s.get("damaged_files") or "[]") if d.get("status") == "no_pixel_data"]
        named = f": {files[0]['file']} ({files[0]['detail']})" if files else ""
        return Finding("no_pixel_data", f"{s['n_no_pixels']} of {s['n_files']} files have no pixel data{named}",
                       {"files": s["n_no_pixels"]})
    return None


def _corrupt_file(s: dict[str, Any], _c: ExclusionSettings) -> Finding | None:
    if s["n_truncated"]:
        damaged = [d for d in json.loads(s.get("damaged_files") or "[]") if d.get("status", "truncated") == "truncated"]
        shown = "; ".join(f"{d['file']}: {d['detail']}" for d in damaged[:2]) or s["status_detail"]
        return Finding("corrupt_file", f"{s['n_truncated']} of {s['n_files']} file(s) damaged (cut short): {shown}; "
                       "copy them again from the source", {"files": s["n_truncated"], "damaged": damaged})
    return None


def _missing_rescale(s: dict[str, Any], _c: ExclusionSettings) -> Finding | None:
    missing = int(_num(s.get("n_no_rescale")) or 0)
    ct_image = str(s.get("sop_class_uid") or "").startswith("1.2.840.10008.5.1.4.1.1.2")  # CT, enhanced CT
    if missing and ct_image and (s.get("modality") or "") == "CT":
        return Finding("missing_rescale", f"{missing} of {s['n_files']} file(s) lack RescaleIntercept/RescaleSlope: "
                       "their stored values cannot be read as HU (CT Image Storage requires both)",
                       {"files": missing})
    return None


def _unreadable_pixels(s: dict[str, Any], _c: ExclusionSettings) -> Finding | None:
    if s.get("decode_error"):
        return Finding("unreadable_pixels", f"pixel data cannot be decoded: {s['decode_error']}",
                       {"transfer_syntax": s.get("transfer_syntax")})
    return None


_SC_PREFIX = "1.2.840.10008.5.1.4.1.1.7"


def _secondary_capture(s: dict[str, Any], _c: ExclusionSettings) -> Finding | None:
    uid = s.get("sop_class_uid") or ""
    if uid.startswith(_SC_PREFIX):
        modality = s.get("modality") or "missing"
        return Finding("secondary_capture", f"{sop_class_name(uid)} object (modality {modality}): a picture of "
                       "other images, not an acquisition", {"sop_class_uid": uid, "image_type": s.get("image_type")})
    return None


def _derived(s: dict[str, Any], _c: ExclusionSettings) -> Finding | None:
    image_type = _tokens(s.get("image_type"))
    if {"DERIVED", "SECONDARY"} <= image_type:
        return Finding("derived_image", f"derived image (ImageType {s.get('image_type')}) stored as "
                       f"{sop_class_name(s.get('sop_class_uid') or '')}: a reformat or reconstruction from other "
                       "images, not an acquisition", {"image_type": s.get("image_type")})
    return None


def _screen_capture(s: dict[str, Any], c: ExclusionSettings) -> Finding | None:
    photometric = (s.get("photometric") or "").upper()
    samples = _num(s.get("samples_per_pixel")) or 1
    if photometric.startswith(("RGB", "YBR", "PALETTE")) or samples > 1:
        return Finding("screen_capture", f"colour image ({photometric or f'{int(samples)} samples'}): a screenshot",
                       {"photometric": photometric, "samples_per_pixel": samples})
    hits = keyword_hits({"series_description": s.get("series_description"),
                         "image_type": " ".join(_tokens(s.get("image_type")))}, c.screen_keywords)
    if hits:
        where = ", ".join(f"{k} has {v!r}" for k, v in hits.items())
        return Finding("screen_capture", f"report or screen capture ({where})", {"keywords": hits})
    return None


_LOCALIZER_TOKENS = {"LOCALIZER", "SCOUT", "TOPOGRAM", "SURVIEW", "SCANOGRAM", "SCANOSCOPE"}


def _localizer(s: dict[str, Any], _c: ExclusionSettings) -> Finding | None:
    found = _tokens(s.get("image_type")) & _LOCALIZER_TOKENS
    if found:
        return Finding("localizer", f"localizer/scout image (ImageType {s.get('image_type')})",
                       {"image_type": s.get("image_type")})
    hits = keyword_hits({"series_description": s.get("series_description")}, tuple(_LOCALIZER_TOKENS))
    if hits and (_num(s.get("n_positions")) or 0) <= 3:
        return Finding("localizer", f"localizer/scout by description {s.get('series_description')!r}",
                       {"keywords": hits})
    return None


def _extremity(s: dict[str, Any], c: ExclusionSettings) -> Finding | None:
    hits = keyword_hits({k: s.get(k) for k in ("body_part", "protocol_name", "series_description",
                                               "study_description")}, c.extremity_keywords)
    if hits:
        where = ", ".join(f"{k} {v!r}" for k, v in hits.items())
        return Finding("extremity", f"upper/lower extremity series ({where})", {"keywords": hits})
    return None


def _burned_in(s: dict[str, Any], _c: ExclusionSettings) -> Finding | None:
    if (s.get("burned_in_annotation") or "").upper() == "YES":
        return Finding("burned_in_annotation", "BurnedInAnnotation is YES: text may be burned into pixels", {})
    return None


def _non_axial(s: dict[str, Any], c: ExclusionSettings) -> Finding | None:
    axis = s.get("axis") or ""
    obliquity = _num(s.get("obliquity_deg")) or 0.0
    if axis and axis != "axial":
        return Finding("non_axial", f"{axis} slices (normal {_vec(s)}), expected axial", {"axis": axis})
    if obliquity > c.max_obliquity_deg:
        return Finding("non_axial", f"slices oblique by {obliquity:.1f} deg (> {c.max_obliquity_deg})",
                       {"obliquity_deg": obliquity})
    return None


def _vec(s: dict[str, Any]) -> str:
    return "(" + ", ".join(f"{_num(s.get(f'normal_{i}')) or 0:.2f}" for i in range(3)) + ")"


def _single_position(s: dict[str, Any], _c: ExclusionSettings) -> Finding | None:
    if s["n_files"] > 1 and s.get("n_positions") == 1:
        return Finding("single_position", f"all {s['n_files']} slices at one position: not a volume "
                       "(e.g. bolus tracking or a repeated single slice)", {"n_files": s["n_files"]})
    return None


def _missing_positions(s: dict[str, Any], _c: ExclusionSettings) -> Finding | None:
    missing = int(_num(s.get("n_no_position")) or 0)
    if missing:
        return Finding("missing_positions", f"{missing} of {s['n_files']} file(s) lack ImagePositionPatient: their "
                       "slices cannot be placed", {"files": missing})
    return None


def _too_short(s: dict[str, Any], c: ExclusionSettings) -> Finding | None:
    n = int(s.get("n_positions") or 0)
    extent = _num(s.get("z_extent_mm")) or 0.0
    if n < c.min_slices or extent < c.min_extent_mm:
        return Finding("too_short", f"{n} slice positions over {extent:.1f} mm; need >= {c.min_slices} slices "
                       f"and >= {c.min_extent_mm:g} mm", {"n_positions": n, "z_extent_mm": extent})
    return None


def classify_gaps(gaps: list[float], c: ExclusionSettings) -> dict[str, Any]:
    """Sort slice gaps into regular, duplicate, missing-slice and irregular ones."""
    positive = sorted(g for g in gaps if g > c.duplicate_position_mm)
    out: dict[str, Any] = {"median": 0.0, "duplicate": [], "missing": [], "irregular": []}
    if not positive:
        return out
    median = positive[len(positive) // 2] if len(positive) % 2 else 0.5 * (
        positive[len(positive) // 2 - 1] + positive[len(positive) // 2])
    out["median"] = median
    tol = max(c.spacing_tolerance_mm, c.spacing_relative_tolerance * median)
    for i, gap in enumerate(gaps):
        if gap <= c.duplicate_position_mm:
            out["duplicate"].append(i)
        elif abs(gap - median) <= tol:
            continue
        elif gap > c.gap_tolerance * median and abs(gap / median - round(gap / median)) <= 0.1:
            out["missing"].append((i, int(round(gap / median)) - 1))
        else:
            out["irregular"].append(i)
    return out


def _gaps(s: dict[str, Any]) -> tuple[list[float], list[float]]:
    return json.loads(s.get("gaps") or "[]"), json.loads(s.get("positions") or "[]")


def _missing_slices(s: dict[str, Any], c: ExclusionSettings) -> Finding | None:
    gaps, positions = _gaps(s)
    classes = classify_gaps(gaps, c)
    if not classes["missing"]:
        return None
    where = [{"after_slice": i + 1, "from_mm": positions[i], "to_mm": positions[i + 1], "gap_mm": gaps[i],
              "expected_mm": round(classes["median"], 4), "missing": k} for i, k in classes["missing"]]
    text = "; ".join(f"gap of {w['gap_mm']:.2f} mm between {w['from_mm']:.2f} and {w['to_mm']:.2f} mm along the "
                     f"normal (after slice {w['after_slice']}), about {w['missing']} slice(s) missing"
                     for w in where)
    return Finding("missing_slices", f"{text}; expected spacing {classes['median']:.2f} mm", {"gaps": where})


def _inconsistent_spacing(s: dict[str, Any], c: ExclusionSettings) -> Finding | None:
    gaps, _positions = _gaps(s)
    classes = classify_gaps(gaps, c)
    if not classes["irregular"]:
        return None
    values = sorted({round(gaps[i], 3) for i in classes["irregular"]})
    thickness = (_num(s.get("slice_thickness_min")), _num(s.get("slice_thickness_max")))
    extra = ""
    if thickness[0] is not None and thickness[1] is not None and thickness[1] - thickness[0] > 0.01:
        extra = f"; slice thickness also varies ({thickness[0]:g} to {thickness[1]:g} mm)"
    return Finding("inconsistent_spacing", f"{len(classes['irregular'])} gap(s) of {values} mm differ from the "
                   f"median spacing {classes['median']:.3f} mm{extra}",
                   {"median_mm": classes["median"], "irregular_gaps_mm": values, "thickness_mm": thickness})


def _duplicate_positions(s: dict[str, Any], c: ExclusionSettings) -> Finding | None:
    gaps, positions = _gaps(s)
    classes = classify_gaps(gaps, c)
    if not classes["duplicate"] or s.get("n_positions") == 1:
        return None
    where = [positions[i] for i in classes["duplicate"]]
    return Finding("duplicate_positions", f"{len(where)} slice(s) share a position with another "
                   f"(at {', '.join(f'{p:.2f}' for p in where[:5])} mm along the normal)", {"positions_mm": where})


def _gantry_tilt(s: dict[str, Any], c: ExclusionSettings) -> Finding | None:
    geometric = _num(s.get("tilt_deg")) or 0.0
    tag = _num(s.get("gantry_tilt")) or 0.0
    if geometric > c.max_tilt_deg or abs(tag) > c.max_tilt_deg:
        tag_value = _num(s.get("gantry_tilt_tag"))
        told = (f"the GantryDetectorTilt tag says {tag_value:g} deg (its sign convention differs by vendor, so only "
                "the magnitude is used)") if tag_value is not None else "no GantryDetectorTilt tag"
        return Finding("gantry_tilt", f"gantry tilt: slice origins deviate {geometric:.1f} deg from the slice "
                       f"normal; {told}",
                       {"tilt_from_positions_deg": geometric, "tilt_tag_deg": _num(s.get("gantry_tilt_tag"))})
    return None


RULES: tuple[Rule, ...] = (
    Rule("unreadable", _unreadable),
    Rule("not_retrieved", _not_retrieved),
    Rule("non_image", _non_image),
    Rule("not_ct", _not_ct),
    Rule("shared_study_uid", _shared_study_uid),
    Rule("no_pixel_data", _no_pixels),
    Rule("corrupt_file", _corrupt_file),
    Rule("unreadable_pixels", _unreadable_pixels),
    Rule("second_copy", _second_copy),
    Rule("secondary_capture", _secondary_capture),
    Rule("derived_image", _derived),
    Rule("screen_capture", _screen_capture),
    Rule("localizer", _localizer),
    Rule("extremity", _extremity),
    Rule("burned_in_annotation", _burned_in),
    Rule("missing_rescale", _missing_rescale),
    Rule("non_axial", _non_axial, needs_geometry=True),
    Rule("single_position", _single_position, needs_geometry=True),
    Rule("missing_positions", _missing_positions),
    Rule("too_short", _too_short, needs_geometry=True),
    Rule("missing_slices", _missing_slices, needs_geometry=True),
    Rule("inconsistent_spacing", _inconsistent_spacing, needs_geometry=True),
    Rule("duplicate_positions", _duplicate_positions, needs_geometry=True),
    Rule("gantry_tilt", _gantry_tilt, needs_geometry=True),
)


def evaluate(series: dict[str, Any], settings: ExclusionSettings) -> list[Finding]:
    """All findings for one series row, in rule priority order (empty: the series passes)."""
    findings: list[Finding] = []
    unreadable = _unreadable(series, settings)
    if unreadable:
        return [unreadable]
    has_geometry = bool(series.get("axis"))
    for rule in RULES[1:]:
        if rule.needs_geometry and not has_geometry:
            continue
        finding = rule.check(series, settings)
        if finding is not None:
            findings.append(finding)
    if not has_geometry and not findings:
        findings.append(Finding("too_short", "no slice positions (ImagePositionPatient/Orientation missing)", {}))
    return findings
