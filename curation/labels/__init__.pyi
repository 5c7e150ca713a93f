"""Names of :mod:`curation.labels` for type checkers; the package loads them when first used."""

from .anatomy import Pieces, Side
from .labelmap import (
    Segment,
    label_dtype,
    list_mask_files,
    masks_to_label_map,
    read_mask_folder,
    read_seg_nrrd,
    write_mask_folder,
    write_seg_nrrd,
)
from .labelmapping import LabelMapping, load_label_mapping
from .labelset import Category, Code, LabelClass, LabelSet, Laterality, builtin_label_sets, load_label_set
from .phase import PhaseEstimate, phase_from_hu, phase_prior

__all__ = [
    "Segment", "list_mask_files", "read_seg_nrrd", "write_seg_nrrd", "write_mask_folder", "read_mask_folder",
    "masks_to_label_map", "label_dtype", "LabelMapping", "load_label_mapping", "Category", "Code", "Laterality",
    "LabelClass", "LabelSet", "builtin_label_sets", "load_label_set", "Pieces", "Side", "PhaseEstimate",
    "phase_from_hu", "phase_prior",
]
