"""Cases: chosen series converted to de-identified NRRD volumes (native and isotropic copies) with
``case.json``, and the cases table built from them.
"""

from __future__ import annotations

from .casemeta import (
    META_COLUMNS,
    SPLITS,
    ContrastPhase,
    case_splits,
    read_case_metadata,
    update_case_metadata,
    write_meta_table,
)
from .convert import ConvertResult, ConvertTask, assign_case_ids, convert, convert_case

__all__ = [
    "META_COLUMNS", "SPLITS", "ContrastPhase", "read_case_metadata", "update_case_metadata", "write_meta_table",
    "case_splits", "ConvertTask", "ConvertResult", "assign_case_ids", "convert_case", "convert"
]
