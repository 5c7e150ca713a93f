"""De-identified case metadata: what may leave the private part, and the checks that keep it so.

Only coarse facts cross into ``releasable/``: age in years, sex, study year, a site pseudonym,
scanner facts, contrast tags. Keyed hashes (HMAC-SHA256 under the workspace secret) stand for
patients and source series. :func:`phi_tokens` lists the identifying values of a source so that
:func:`redact` can scrub any free-text field that happens to contain one.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import re
from typing import Any

__all__ = ["keyed_hash", "patient_pseudonym", "age_years", "phi_tokens", "redact", "REDACTED", "PHI_COLUMNS"]

log = logging.getLogger(__name__)
REDACTED = "[redacted]"
PHI_COLUMNS = ("patient_name", "patient_id", "patient_birth_date", "study_date", "study_time",
                "acquisition_time", "contrast_start_time",
                "accession_number", "institution_name", "station_name", "referring_physician", "study_uid",
                "series_uid", "frame_of_reference_uid", "sop_instance_uid")


def keyed_hash(secret: bytes, *parts: str, length: int = 16) -> str:
    """HMAC-SHA256 of the parts under ``secret``, as ``length`` hex characters."""
    digest = hmac.new(secret, "\x1f".join(parts).encode("utf-8"), hashlib.sha256).hexdigest()
    return digest[:length]


def patient_pseudonym(secret: bytes, patient_key: str) -> str:
    """Stable pseudonymous patient id for the releasable tables (``p`` + 10 hex)."""
    return "p" + keyed_hash(secret, "patient", patient_key, length=10)


def age_years(patient_age: Any, birth_date: Any, study_date: Any) -> int | None:
    """Age in whole years at the study, from PatientAge (``045Y``) or from the two dates."""
    text = str(patient_age or "").strip().upper()
    match = re.fullmatch(r"(\d{1,3})([DWMY])", text)
    if match:
        value, unit = int(match.group(1)), match.group(2)
        return {"Y": value, "M": value // 12, "W": value // 52, "D": value // 365}[unit]
    birth, study = str(birth_date or ""), str(study_date or "")
    if re.fullmatch(r"\d{8}", birth) and re.fullmatch(r"\d{8}", study):
        years = int(study[:4]) - int(birth[:4])
        if study[4:] < birth[4:]:
            years -= 1
        return years if 0 <= years < 130 else None
    return None


def phi_tokens(row: dict[str, Any]) -> set[str]:
    """Identifying values of a source series (and their parts) that must never be released."""
    tokens: set[str] = set()
    for column in PHI_COLUMNS:
        value = row.get(column)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        text = str(value).strip()
        if len(text) >= 4:
            tokens.add(text)
        for part in re.split(r"[\^\\ ,]+", text):
            if len(part) >= 4 and not part.isdigit() or len(part) >= 6:
                tokens.add(part)
    return tokens


def redact(value: Any, tokens: set[str], field: str) -> Any:
    """Return ``value``, or :data:`REDACTED` when it contains an identifying token."""
    if not isinstance(value, str) or not value:
        return value
    upper = value.upper()
    for token in tokens:
        if token.upper() in upper:
            log.warning("field %s held an identifying value and was redacted", field)
            return REDACTED
    return value
