"""Names of :mod:`curation.workspace` for type checkers; the package loads them when first used."""

from .errorlog import append_traceback
from .executor import DaskExecutor, Executor, LocalExecutor, SerialExecutor, Shared, make_executor
from .folders import (
    CASE_IMAGE_NAMES,
    CASE_METADATA,
    MASKS_FOLDER,
    MULTILABEL_NAMES,
    NNUNET_SPLIT_FILE,
    REVISIONS_FOLDER,
    SPLIT_FILE,
    QAFolder,
    ReleaseFolder,
    multilabel_files,
)
from .layout import SETTINGS_FILE, Workspace
from .lock import lock_holder, workspace_lock
from .settings import (
    AnnotationSettings,
    ConversionSettings,
    ExclusionSettings,
    ExecutorSettings,
    LabelSettings,
    PacsSettings,
    QASettings,
    SamplingSettings,
    Settings,
)
from .settings_file import load_settings, save_settings

__all__ = [
    "lock_holder", "workspace_lock", "append_traceback",
    "CASE_IMAGE_NAMES", "CASE_METADATA", "MASKS_FOLDER", "MULTILABEL_NAMES", "multilabel_files",
    "NNUNET_SPLIT_FILE", "REVISIONS_FOLDER",
    "SPLIT_FILE", "QAFolder", "ReleaseFolder",
    "Executor", "SerialExecutor", "LocalExecutor", "DaskExecutor", "Shared", "make_executor", "Workspace",
    "SETTINGS_FILE", "SamplingSettings", "ExclusionSettings", "ConversionSettings", "ExecutorSettings",
    "LabelSettings", "AnnotationSettings", "PacsSettings", "QASettings", "Settings", "load_settings",
    "save_settings"
]
