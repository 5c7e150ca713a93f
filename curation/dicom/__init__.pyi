"""Names of :mod:`curation.dicom` for type checkers; the package loads them when first used."""

from .deid import PHI_COLUMNS, REDACTED, age_years, keyed_hash, patient_pseudonym, phi_tokens, redact
from .enhanced import ENHANCED_CT_SOP_CLASSES, FrameFacts, frame_facts, is_enhanced_ct
from .geometry import SliceStack, slice_normal, slice_stack
from .header import READABLE_STATUSES, STATUSES, header_from_dataset, new_record, read_header
from .reading import lenient_reading
from .series import check_decodable, load_series, read_dataset, read_slice_hu
from .tags import (
    CHARSET_TAG,
    FIELDS,
    IMAGE_SOP_PREFIXES,
    PIXEL_TAGS,
    TAG_TO_FIELD,
    convert_value,
    empty_record,
    is_image_sop_class,
    sop_class_name,
)

__all__ = [
    "keyed_hash", "patient_pseudonym", "age_years", "phi_tokens", "redact", "REDACTED", "PHI_COLUMNS",
    "SliceStack", "slice_stack", "slice_normal", "read_header", "header_from_dataset", "new_record", "STATUSES",
    "READABLE_STATUSES", "read_slice_hu", "load_series", "check_decodable", "FIELDS", "TAG_TO_FIELD",
    "CHARSET_TAG", "PIXEL_TAGS", "IMAGE_SOP_PREFIXES", "sop_class_name", "is_image_sop_class", "convert_value",
    "empty_record", "ENHANCED_CT_SOP_CLASSES", "FrameFacts", "frame_facts", "is_enhanced_ct", "lenient_reading",
    "read_dataset",
]
