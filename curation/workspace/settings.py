"""Typed workspace settings, stored as ``ctcurate.toml`` at the workspace root.

Settings are plain frozen dataclasses that validate themselves when built, so a :class:`Settings`
object is always usable. The file is read and written by :mod:`.settings_file`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from curation.enums import parse_fail_on
from curation.errors import ConfigError

__all__ = [
    "SamplingSettings",
    "ExclusionSettings",
    "ConversionSettings",
    "ExecutorSettings",
    "LabelSettings",
    "AnnotationSettings",
    "database_driver",
    "PacsSettings",
    "QASettings",
    "Settings",
]

DEFAULT_EXTREMITY_KEYWORDS = (
    "EXTREMITY", "UPPER EXTREMITY", "LOWER EXTREMITY", "ARM", "UPPER ARM", "FOREARM", "HUMERUS", "ELBOW",
    "WRIST", "HAND", "FINGER", "THUMB", "LEG", "LOWER LEG", "FEMUR", "THIGH", "KNEE", "TIBIA", "FIBULA",
    "ANKLE", "FOOT", "TOE", "CALCANEUS", "KNIE", "FUSS", "SPRUNGGELENK", "UNTERSCHENKEL", "OBERSCHENKEL",
    "HANDGELENK", "ELLENBOGEN", "UNTERARM", "OBERARM",
)
DEFAULT_SCREEN_KEYWORDS = (
    "DOSE", "DOSE REPORT", "DOSE INFO", "DOSEINFO", "REPORT", "SCREEN", "SCREEN SAVE", "SCREENSHOT",
    "SUMMARY", "EXAM SUMMARY", "PATIENT PROTOCOL", "RESULTS", "SURVIEW",
)
DEFAULT_SHARP_KERNEL_KEYWORDS = (
    "B60", "B70", "B75", "B80", "BR59", "BR60", "BR64", "BR69", "BR72", "BONE", "BONEPLUS", "LUNG", "SHARP",
    "EDGE", "YC", "YD", "FC30", "FC81", "FC86", "I70",
)


def _check_positive(name: str, value: float) -> None:
    if not value > 0:
        raise ConfigError(f"setting {name!r}: expected a positive number, found {value!r}; set it above 0")


@dataclass(frozen=True)
class SamplingSettings:
    """How exams are drawn from the catalog.

    Parameters
    ----------
    n : int
        Number of exams (studies) to draw; 0 means all.
    stratify_by : str
        Optional catalog column to stratify by (``study_year``, ``site``, ``manufacturer``, ...).
    """

    n: int = 0
    stratify_by: str = ""

    def __post_init__(self) -> None:
        if self.n < 0:
            raise ConfigError(f"setting 'sampling.n': expected 0 (all) or a positive count, found {self.n}")


@dataclass(frozen=True)
class ExclusionSettings:
    """Thresholds of the exclusion rules (see :mod:`curation.selection.rules`)."""

    min_slices: int = 16
    min_extent_mm: float = 30.0
    gap_tolerance: float = 1.5
    spacing_tolerance_mm: float = 0.05
    spacing_relative_tolerance: float = 0.02
    max_tilt_deg: float = 1.0
    duplicate_position_mm: float = 0.01
    max_obliquity_deg: float = 30.0
    min_reasonable_thickness_mm: float = 0.5
    decode_check: bool = True
    extremity_keywords: tuple[str, ...] = DEFAULT_EXTREMITY_KEYWORDS
    screen_keywords: tuple[str, ...] = DEFAULT_SCREEN_KEYWORDS
    sharp_kernel_keywords: tuple[str, ...] = DEFAULT_SHARP_KERNEL_KEYWORDS

    def __post_init__(self) -> None:
        if self.min_slices < 2:  # a volume needs two positions to have a slice spacing; convert refuses fewer
            raise ConfigError(f"setting 'exclusion.min_slices': expected >= 2 (a CT volume needs at least two slice "
                              f"positions to have a spacing), found {self.min_slices}")
        for name in ("min_extent_mm", "spacing_tolerance_mm", "duplicate_position_mm", "max_tilt_deg",
                     "max_obliquity_deg"):
            if getattr(self, name) < 0:
                raise ConfigError(f"setting 'exclusion.{name}': expected >= 0, found {getattr(self, name)}")
        for name in ("max_tilt_deg", "max_obliquity_deg"):
            if getattr(self, name) > 90:
                raise ConfigError(f"setting 'exclusion.{name}': an angle between 0 and 90 degrees, found "
                                  f"{getattr(self, name)}")
        if self.gap_tolerance <= 1.0:
            raise ConfigError(
                f"setting 'exclusion.gap_tolerance': expected a factor > 1 of the median slice spacing, "
                f"found {self.gap_tolerance}; 1.5 is usual"
            )
        for name in ("extremity_keywords", "screen_keywords", "sharp_kernel_keywords"):
            object.__setattr__(self, name, tuple(str(k).upper() for k in getattr(self, name)))


@dataclass(frozen=True)
class ConversionSettings:
    """How chosen series become NRRD cases."""

    spacings_mm: tuple[float, ...] = (1.5, 3.0)
    compression_level: int = 1
    case_prefix: str = "s"
    case_digits: int = 4

    def __post_init__(self) -> None:
        object.__setattr__(self, "spacings_mm", tuple(float(s) for s in self.spacings_mm))
        for s in self.spacings_mm:
            _check_positive("conversion.spacings_mm", s)
            if s < 0.1:  # finer than any CT's voxels; a 0.01 mm copy of one CT would need terabytes
                raise ConfigError(f"setting 'conversion.spacings_mm': expected spacings of at least 0.1 mm, found {s}")
        if not 1 <= self.case_digits <= 9:
            raise ConfigError(f"setting 'conversion.case_digits': expected 1..9, found {self.case_digits}")
        if not 0 <= self.compression_level <= 9:
            raise ConfigError(
                f"setting 'conversion.compression_level': expected 0..9, found {self.compression_level}"
            )
        if not self.case_prefix.isalpha():
            raise ConfigError(
                f"setting 'conversion.case_prefix': expected letters only, found {self.case_prefix!r}"
            )


@dataclass(frozen=True)
class ExecutorSettings:
    """Where parallel work runs: a local process pool, or a Dask scheduler when ``scheduler`` is set.

    ``threads``: the threads each worker's libraries (SimpleITK, torch, BLAS) may use; 0 shares this machine's
    cores out among the local workers (on Dask: 1 per task).
    """

    workers: int = 2
    scheduler: str = ""
    threads: int = 0

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ConfigError(f"setting 'executor.workers': expected >= 1, found {self.workers}")
        if self.threads < 0:
            raise ConfigError(f"setting 'executor.threads': expected 0 (the cores shared out among the workers) "
                              f"or a positive count, found {self.threads}")


@dataclass(frozen=True)
class LabelSettings:
    """Which label set the workspace's segmentations use: a built-in name or a TOML file's path."""

    label_set: str = "total_v2"

    def __post_init__(self) -> None:
        if not self.label_set:
            raise ConfigError("setting 'labels.label_set': expected a label set name (total_v1, total_v2) or path")


@dataclass(frozen=True)
class QASettings:
    """How QA judges: the severity that fails a run, and when cohort statistics start."""

    fail_on: str = "error"
    cohort_min_cases: int = 10

    def __post_init__(self) -> None:
        chosen = parse_fail_on(self.fail_on, "setting 'qa.fail_on'")
        object.__setattr__(self, "fail_on", chosen.value if chosen else "none")
        if self.cohort_min_cases < 3:
            raise ConfigError(f"setting 'qa.cohort_min_cases': expected >= 3, found {self.cohort_min_cases}")


def database_driver(url: str) -> str:
    """The URL with the driver ctcurate installs: PostgreSQL URLs without one (``postgresql://``,
    ``postgres://``) or naming psycopg2 use psycopg 3 (``postgresql+psycopg://``)."""
    for prefix in ("postgresql+psycopg2://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url


@dataclass(frozen=True)
class AnnotationSettings:
    """Where annotations are stored and how long a claim on a case lasts.

    ``database_url`` empty means SQLite in the workspace (``annotations.sqlite``); annotators at
    several workstations share a PostgreSQL database instead (``postgresql+psycopg://user@host/db``).
    """

    database_url: str = ""
    claim_expiry_minutes: int = 120
    autosave_seconds: int = 120
    worklist_refresh_seconds: int = 5
    #: the two-person rule: nobody approves a revision they wrote; true relaxes it (one physician alone)
    self_review: bool = False
    #: CT window presets beside soft tissue, bone and lung: "name=low,high" in HU, e.g. "liver=-50,250"
    windows: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "windows", tuple(self.windows))
        self.window_presets()  # raises for a malformed entry
        if self.worklist_refresh_seconds < 1:
            raise ConfigError(f"setting 'annotation.worklist_refresh_seconds': expected >= 1, found "
                              f"{self.worklist_refresh_seconds}")
        if self.database_url and not self.database_url.startswith(("sqlite:", "postgresql", "postgres:")):
            raise ConfigError(f"setting 'annotation.database_url': expected sqlite:///PATH or "
                              f"postgresql+psycopg://USER@HOST/DB, found {self.database_url!r}")
        object.__setattr__(self, "database_url", database_driver(self.database_url))
        if self.claim_expiry_minutes < 1:
            raise ConfigError(f"setting 'annotation.claim_expiry_minutes': expected >= 1, "
                              f"found {self.claim_expiry_minutes}")
        if self.autosave_seconds < 5:
            raise ConfigError(f"setting 'annotation.autosave_seconds': expected >= 5, found {self.autosave_seconds}")

    def window_presets(self) -> dict[str, tuple[float, float]]:
        """The ``windows`` setting as name -> (low, high) HU."""
        out = {}
        for entry in self.windows:
            name, _, bounds = str(entry).partition("=")
            try:
                low, high = (float(v) for v in bounds.split(","))
            except ValueError:
                raise ConfigError(f"setting 'annotation.windows': {entry!r}: expected \"name=low,high\" in HU, "
                                  "e.g. \"liver=-50,250\"") from None
            if not name.strip() or low >= high:
                raise ConfigError(f"setting 'annotation.windows': {entry!r}: expected a name and low < high")
            out[name.strip()] = (low, high)
        return out


def _check_date(name: str, value: str) -> None:
    from datetime import date

    if value:
        try:
            date.fromisoformat(value)
        except ValueError:
            raise ConfigError(f"setting 'pacs.{name}': expected a date YYYY-MM-DD, found {value!r}") from None


@dataclass(frozen=True)
class PacsSettings:
    """The PACS ``ctcurate pull`` queries over DICOMweb, what it asks for, and how it retrieves.

    ``url`` is a DICOMweb root (``http(s)://…``) or a DIMSE peer (``dicom://host:port/CALLED_AET``, called
    from ``calling_aet``). The secret (password or token) is never stored here: ``secret_env`` names the
    environment variable, or ``secret_file`` the file, that holds it. Dates are YYYY-MM-DD, both ends included;
    ``description`` and ``body_part`` take DICOM wildcards (``*CHEST*``). ``series`` is ``chosen``
    (retrieve the one series per exam the rules prefer) or ``included`` (every series they let through).
    """

    url: str = ""
    auth: str = "none"
    username: str = ""
    secret_env: str = "CTCURATE_PACS_SECRET"
    secret_file: str = ""
    calling_aet: str = "CTCURATE"
    modality: str = "CT"
    date_from: str = ""
    date_to: str = ""
    description: str = ""
    body_part: str = ""
    series: str = "chosen"
    workers: int = 4
    retries: int = 3
    timeout_s: float = 30.0
    page_size: int = 100

    def __post_init__(self) -> None:
        if self.url and not self.url.startswith(("http://", "https://", "dicom://")):
            raise ConfigError(f"setting 'pacs.url': expected http(s)://host[:port]/dicom-web (DICOMweb) or "
                              f"dicom://host:port/AET (DIMSE), found {self.url!r}")
        if not 1 <= len(self.calling_aet) <= 16 or "\\" in self.calling_aet:
            raise ConfigError(f"setting 'pacs.calling_aet': expected 1 to 16 characters, found {self.calling_aet!r}")
        if self.auth not in ("none", "basic", "bearer"):
            raise ConfigError(f"setting 'pacs.auth': expected none, basic or bearer, found {self.auth!r}")
        if self.series not in ("chosen", "included"):
            raise ConfigError(f"setting 'pacs.series': expected chosen or included, found {self.series!r}")
        _check_date("date_from", self.date_from)
        _check_date("date_to", self.date_to)
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise ConfigError(f"settings 'pacs.date_from' {self.date_from} is after 'pacs.date_to' {self.date_to}; "
                              "swap them")
        for name in ("workers", "page_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"setting 'pacs.{name}': expected >= 1, found {getattr(self, name)}")
        if self.retries < 0:
            raise ConfigError(f"setting 'pacs.retries': expected >= 0, found {self.retries}")
        _check_positive("pacs.timeout_s", self.timeout_s)


@dataclass(frozen=True)
class Settings:
    """All settings of one workspace."""

    name: str = "ctcurate-project"
    seed: int = 0
    sources: tuple[str, ...] = ()
    sampling: SamplingSettings = field(default_factory=SamplingSettings)
    exclusion: ExclusionSettings = field(default_factory=ExclusionSettings)
    conversion: ConversionSettings = field(default_factory=ConversionSettings)
    executor: ExecutorSettings = field(default_factory=ExecutorSettings)
    labels: LabelSettings = field(default_factory=LabelSettings)
    qa: QASettings = field(default_factory=QASettings)
    annotation: AnnotationSettings = field(default_factory=AnnotationSettings)
    pacs: PacsSettings = field(default_factory=PacsSettings)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sources", tuple(str(s) for s in self.sources))
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise ConfigError(f"setting 'seed': expected an integer, found {self.seed!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form, as written to TOML."""
        data = asdict(self)
        for key, value in list(data.items()):
            if isinstance(value, dict):
                data[key] = {k: list(v) if isinstance(v, tuple) else v for k, v in value.items()}
            elif isinstance(value, tuple):
                data[key] = list(value)
        return data
