"""Names of :mod:`curation` for type checkers; the package loads them when first used."""

from ._version import __version__
from .errors import (
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
from .image.volume import Volume, read_nrrd, read_volume, resample_isotropic, write_nrrd, write_volume
from .labels.labelset import Category, LabelClass, LabelSet, Laterality, builtin_label_sets, load_label_set
from .workspace.layout import Workspace
from .workspace.settings import Settings
from .workspace.settings_file import load_settings, save_settings

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
