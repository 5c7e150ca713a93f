"""ctcurate curation stage: PACS export or DICOMweb -> catalog -> sample -> exclusion verdicts -> NRRD cases.

It owns the workspace layout (:class:`Workspace`) and the volume IO (:class:`Volume`,
:func:`read_nrrd`, :func:`write_nrrd`) that the other stages use. Arrays are (z, y, x); patient
coordinates are LPS.
"""

from curation.image.volume import Volume, read_nrrd, read_volume, resample_isotropic, write_nrrd, write_volume  # noqa: E402
from curation.labels.labelset import Category, LabelClass, LabelSet, Laterality, builtin_label_sets, load_label_set  # noqa: E402
from curation.workspace.layout import Workspace  # noqa: E402
from curation.workspace.settings import Settings, load_settings, save_settings  # noqa: E402

from ._version import __version__  # noqa: E402
from .errors import (  # noqa: E402
    ConfigError,
    ConversionError,
    CtcurateError,
    ExecutorError,
    FilterError,
    LabelIOError,
    LabelSetError,
    PacsError,
    QAError,
    SamplingError,
    ScanError,
    WorkspaceError,
)

__all__ = [
    "__version__",
    "ConfigError",
    "ConversionError",
    "CtcurateError",
    "ExecutorError",
    "FilterError",
    "LabelIOError",
    "LabelSetError",
    "PacsError",
    "QAError",
    "SamplingError",
    "ScanError",
    "WorkspaceError",
    "Category",
    "LabelClass",
    "LabelSet",
    "Laterality",
    "builtin_label_sets",
    "load_label_set",
    "Settings",
    "load_settings",
    "save_settings",
    "Volume",
    "read_nrrd",
    "write_nrrd",
    "read_volume",
    "write_volume",
    "resample_isotropic",
    "Workspace",
]
