"""Names of :mod:`curation.catalog` for type checkers; the package loads them when first used."""

from .grouping import build_catalog, summarise_series
from .keys import assign_keys
from .scan import ScanResult, find_files, read_headers, records_to_frame, scan

__all__ = [
    "assign_keys", "summarise_series", "build_catalog", "ScanResult", "find_files", "read_headers",
    "records_to_frame", "scan"
]
