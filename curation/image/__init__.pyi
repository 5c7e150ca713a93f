"""Names of :mod:`curation.image` for type checkers; the package loads them when first used."""

from .orientation import Reorientation, to_canonical
from .volume import (
    VOLUME_SUFFIXES,
    Volume,
    nifti_nonfinite,
    read_nrrd,
    read_nrrd_grid,
    read_volume,
    resample_image,
    resample_isotropic,
    resample_labels,
    volume_suffix,
    write_nrrd,
    write_volume,
)

__all__ = [
    "Reorientation", "to_canonical", "Volume", "write_nrrd", "read_nrrd", "read_nrrd_grid", "read_volume",
    "write_volume", "resample_isotropic", "resample_image", "VOLUME_SUFFIXES", "volume_suffix",
    "nifti_nonfinite", "resample_labels"
]
