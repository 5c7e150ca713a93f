"""Exception types raised by ctcurate.

Every error names the input, what was expected, what was found and how to fix it. The CLI prints
:class:`CtcurateError` subclasses as one line and exits with a non-zero code; anything else is a bug.
"""

from __future__ import annotations

__all__ = [
    "CtcurateError",
    "ConfigError",
    "WorkspaceError",
    "ScanError",
    "PacsError",
    "SamplingError",
    "FilterError",
    "ConversionError",
    "ExecutorError",
    "LabelSetError",
    "LabelIOError",
    "QAError",
    "ModelError",
    "ModelLoadError",
    "AnnotationError",
    "WorkspaceBusyError",
    "SplitError",
    "DatasheetError",
    "ReleaseError",
    "ZenodoError",
]


class CtcurateError(Exception):
    """Base class of all errors a user can act on."""


class ConfigError(CtcurateError):
    """A settings file or a settings value is missing or invalid."""


class WorkspaceError(CtcurateError):
    """The workspace folder is missing, incomplete, or a stage ran out of order."""


class ScanError(CtcurateError):
    """An export folder cannot be indexed."""


class PacsError(ScanError):
    """A PACS cannot be reached, refuses a request, or answers with something that is not DICOM.

    ``status`` is the HTTP status of the answer (0 when there was none).
    """

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status

    @property
    def permanent(self) -> bool:
        """The server answered that it cannot do this (not a timeout or an overload worth retrying)."""
        return bool(self.status) and self.status not in (408, 429, 502, 503, 504)


class SamplingError(CtcurateError):
    """A sample cannot be drawn with the given parameters."""


class FilterError(CtcurateError):
    """Exclusion rules cannot be applied."""


class ConversionError(CtcurateError):
    """A series cannot be converted to a volume."""


class ExecutorError(CtcurateError):
    """The parallel executor cannot be started or reached."""


class LabelSetError(CtcurateError):
    """A label set file or a label set value is invalid."""


class LabelIOError(CtcurateError):
    """A label map or mask file cannot be read or written."""


class QAError(CtcurateError):
    """Quality checks cannot run (bad input folder, unknown check, missing results)."""


class ModelError(CtcurateError):
    """A segmentation model is incomplete, cannot be loaded, or cannot run on a case."""


class ModelLoadError(ModelError):
    """A model's checkpoint does not load or changed since it was registered: every case would fail alike, so a
    batch stops at the first."""


class AnnotationError(CtcurateError):
    """Annotation store refusals: a case claimed by someone else, a bad status or state."""


class SplitError(CtcurateError):
    """A split that cannot be made as asked (ratios, versions, frozen assignments)."""


class DatasheetError(CtcurateError):
    """The datasheet answers file cannot be used."""


class ReleaseError(CtcurateError):
    """A release that may not be built: version, labels not checked by QA, QA errors, PHI found."""


class ZenodoError(CtcurateError):
    """Zenodo refused a request or could not be reached."""


class WorkspaceBusyError(WorkspaceError):
    """Another command holds the workspace's write lock."""
