"""Names of :mod:`curation.cases` for type checkers; the package loads them when first used."""

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
