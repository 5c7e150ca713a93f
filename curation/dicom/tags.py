"""The DICOM attributes the catalog keeps, and how header values become catalog fields.

One table (:data:`FIELDS`) maps each tag to a catalog column and a value kind, shared by the fast
header parser (:mod:`curation.dicom.header`) and the pydicom fallback, so both give the same record.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["FIELDS", "TAG_TO_FIELD", "CHARSET_TAG", "PIXEL_TAGS", "IMAGE_SOP_PREFIXES", "sop_class_name",
           "is_image_sop_class", "convert_value", "empty_record"]

# (tag, column, kind): kinds are 'str' (one string), 'multi' (backslash-joined strings),
# 'float', 'int', 'floats:N' (N numbers in N columns), 'us' (unsigned short), 'text' (charset-aware string)
FIELDS: tuple[tuple[int, str, str], ...] = (
    (0x00080008, "image_type", "multi"),
    (0x00080016, "sop_class_uid", "str"),
    (0x00080018, "sop_instance_uid", "str"),
    (0x00080020, "study_date", "str"),
    (0x00080030, "study_time", "str"),
    (0x00080032, "acquisition_time", "str"),
    (0x00080050, "accession_number", "text"),
    (0x00080060, "modality", "str"),
    (0x00080070, "manufacturer", "text"),
    (0x00080080, "institution_name", "text"),
    (0x00080090, "referring_physician", "text"),
    (0x00081010, "station_name", "text"),
    (0x00081030, "study_description", "text"),
    (0x0008103E, "series_description", "text"),
    (0x00081090, "model", "text"),
    (0x00100010, "patient_name", "text"),
    (0x00100020, "patient_id", "text"),
    (0x00100030, "patient_birth_date", "str"),
    (0x00100040, "patient_sex", "str"),
    (0x00101010, "patient_age", "str"),
    (0x00180010, "contrast_agent", "text"),
    (0x00180015, "body_part", "text"),
    (0x00180050, "slice_thickness", "float"),
    (0x00180060, "kvp", "float"),
    (0x00181030, "protocol_name", "text"),
    (0x00181040, "contrast_route", "text"),
    (0x00181042, "contrast_start_time", "str"),
    (0x00181120, "gantry_tilt", "float"),
    (0x00181210, "kernel", "multi"),
    (0x0020000D, "study_uid", "str"),
    (0x0020000E, "series_uid", "str"),
    (0x00200011, "series_number", "int"),
    (0x00200012, "acquisition_number", "int"),
    (0x00200013, "instance_number", "int"),
    (0x00200032, "ipp", "floats:3"),
    (0x00200037, "iop", "floats:6"),
    (0x00200052, "frame_of_reference_uid", "str"),
    (0x00280002, "samples_per_pixel", "us"),
    (0x00280004, "photometric", "str"),
    (0x00280008, "number_of_frames", "int"),
    (0x00280010, "rows", "us"),
    (0x00280011, "columns", "us"),
    (0x00280030, "pixel_spacing", "floats:2"),
    (0x00280100, "bits_allocated", "us"),
    (0x00280301, "burned_in_annotation", "str"),
    (0x00281052, "rescale_intercept", "float"),
    (0x00281053, "rescale_slope", "float"),
)
TAG_TO_FIELD = {tag: (name, kind) for tag, name, kind in FIELDS}
CHARSET_TAG = 0x00080005
PIXEL_TAGS = (0x7FE00008, 0x7FE00009, 0x7FE00010)

# Storage SOP classes that hold images (prefix match); anything else is a non-image object.
_IMAGE_SOP = {
    "1.2.840.10008.5.1.4.1.1.2": "CT Image Storage",
    "1.2.840.10008.5.1.4.1.1.2.1": "Enhanced CT Image Storage",
    "1.2.840.10008.5.1.4.1.1.2.2": "Legacy Converted Enhanced CT Image Storage",
    "1.2.840.10008.5.1.4.1.1.4": "MR Image Storage",
    "1.2.840.10008.5.1.4.1.1.4.1": "Enhanced MR Image Storage",
    "1.2.840.10008.5.1.4.1.1.7": "Secondary Capture Image Storage",
    "1.2.840.10008.5.1.4.1.1.7.1": "Multi-frame Single Bit Secondary Capture Image Storage",
    "1.2.840.10008.5.1.4.1.1.7.2": "Multi-frame Grayscale Byte Secondary Capture Image Storage",
    "1.2.840.10008.5.1.4.1.1.7.3": "Multi-frame Grayscale Word Secondary Capture Image Storage",
    "1.2.840.10008.5.1.4.1.1.7.4": "Multi-frame True Color Secondary Capture Image Storage",
    "1.2.840.10008.5.1.4.1.1.128": "Positron Emission Tomography Image Storage",
    "1.2.840.10008.5.1.4.1.1.20": "Nuclear Medicine Image Storage",
    "1.2.840.10008.5.1.4.1.1.1": "Computed Radiography Image Storage",
    "1.2.840.10008.5.1.4.1.1.1.1": "Digital X-Ray Image Storage",
    "1.2.840.10008.5.1.4.1.1.6.1": "Ultrasound Image Storage",
    "1.2.840.10008.5.1.4.1.1.13.1.1": "X-Ray 3D Angiographic Image Storage",
    "1.2.840.10008.5.1.4.1.1.13.1.3": "Breast Tomosynthesis Image Storage",
}
IMAGE_SOP_PREFIXES = tuple(_IMAGE_SOP)
_OTHER_SOP = {
    "1.2.840.10008.1.3.10": "Media Storage Directory Storage",
    "1.2.840.10008.5.1.4.1.1.66.4": "Segmentation Storage",
    "1.2.840.10008.5.1.4.1.1.481.3": "RT Structure Set Storage",
    "1.2.840.10008.5.1.4.1.1.481.5": "RT Plan Storage",
    "1.2.840.10008.5.1.4.1.1.481.2": "RT Dose Storage",
    "1.2.840.10008.5.1.4.1.1.88.11": "Basic Text SR Storage",
    "1.2.840.10008.5.1.4.1.1.88.22": "Enhanced SR Storage",
    "1.2.840.10008.5.1.4.1.1.88.33": "Comprehensive SR Storage",
    "1.2.840.10008.5.1.4.1.1.88.34": "Comprehensive 3D SR Storage",
    "1.2.840.10008.5.1.4.1.1.88.67": "X-Ray Radiation Dose SR Storage",
    "1.2.840.10008.5.1.4.1.1.11.1": "Grayscale Softcopy Presentation State Storage",
    "1.2.840.10008.5.1.4.1.1.104.1": "Encapsulated PDF Storage",
}


def sop_class_name(uid: str) -> str:
    """Human name of a SOP class UID (pydicom's dictionary for those ctcurate does not list), or the UID itself
    when nobody knows it; ``missing SOP class`` for an empty one."""
    if not uid:
        return "missing SOP class"
    return _IMAGE_SOP.get(uid) or _OTHER_SOP.get(uid) or _pydicom_name(uid) or uid


def _pydicom_name(uid: str) -> str:
    from pydicom.uid import UID

    name = UID(uid).name
    return "" if name == uid else str(name)


def is_image_sop_class(uid: str) -> bool:
    """True for storage SOP classes that carry an image."""
    return uid in _IMAGE_SOP


def _strip(text: str) -> str:
    return text.strip(" \x00")


def convert_value(kind: str, value: Any) -> Any:
    """Turn a decoded header value (str, bytes of US, list or number) into the catalog form.

    Returns ``None`` for an empty value and raises ``ValueError`` for a malformed number.
    """
    if kind == "us":
        if isinstance(value, (bytes, bytearray)):
            if len(value) < 2:
                return None
            return int.from_bytes(value[:2], "little")
        if isinstance(value, Sequence) and not isinstance(value, str):
            return int(value[0]) if len(value) else None
        return None if value is None else int(value)
    if isinstance(value, (list, tuple)):
        parts = [_strip(str(v)) for v in value]
    else:
        text = "" if value is None else str(value)
        parts = [_strip(p) for p in text.split("\\")]
    if kind in ("str", "text"):
        joined = "\\".join(parts)
        return _strip(joined)
    if kind == "multi":
        return "\\".join(p.upper() for p in parts if p)
    parts = [p for p in parts if p]
    if not parts:
        return None
    if kind == "float":
        return float(parts[0])
    if kind == "int":
        return int(float(parts[0]))
    if kind.startswith("floats:"):
        n = int(kind.split(":")[1])
        numbers = [float(p) for p in parts]
        if len(numbers) != n:
            raise ValueError(f"expected {n} numbers, found {len(numbers)}")
        return numbers
    raise ValueError(f"unknown kind {kind}")


def empty_record() -> dict[str, Any]:
    """A record with every catalog column present and empty."""
    record: dict[str, Any] = {}
    for _tag, name, kind in FIELDS:
        if kind.startswith("floats:"):
            n = int(kind.split(":")[1])
            for i in range(n):
                record[f"{name}_{i}"] = None
        else:
            record[name] = "" if kind in ("str", "text", "multi") else None
    return record
