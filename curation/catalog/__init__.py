"""The catalog of an export: files found and their headers read (``scan``), grouped into patients,
studies and series with their geometry.
"""

from __future__ import annotations

from .grouping import assign_keys, build_catalog, summarise_series
from .scan import ScanResult, find_files, read_headers, records_to_frame, scan

__all__ = [
    "assign_keys", "summarise_series", "build_catalog", "ScanResult", "find_files", "read_headers",
    "records_to_frame", "scan"
]
