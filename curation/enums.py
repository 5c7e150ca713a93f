"""The shared vocabularies and the one way to read a value into one.

Objects accept ``Enum | str`` and convert on entry with :func:`parse_enum`, which names the input, the
values allowed and the value found. :class:`Severity` is the one scale of every finding: QA's label checks,
the command line's ``--fail-on``, the settings' ``[qa] fail_on`` and the report. :class:`ContrastPhase` names
the contrast phases of ``case.json`` and of a label class's typical HU.
"""

from __future__ import annotations

from enum import Enum, StrEnum
from typing import TypeVar

from .errors import ConfigError, CtcurateError

__all__ = ["ContrastPhase", "Severity", "parse_enum", "parse_fail_on", "FAIL_ON_CHOICES"]

E = TypeVar("E", bound=Enum)


def parse_enum(kind: type[E], value: E | str, what: str, error: type[CtcurateError] = ConfigError) -> E:
    """``value`` as a member of ``kind`` (case does not matter); else ``error``: ``<what> 'x': expected one of ...``."""
    if isinstance(value, kind):
        return value
    try:
        return kind(str(value.value if isinstance(value, Enum) else value).strip().lower())
    except ValueError:
        allowed = ", ".join(str(m.value) for m in kind)
        raise error(f"{what} {value!r}: expected one of {allowed}") from None


class Severity(StrEnum):
    """How bad a finding is; ``error`` means the labels are wrong, ``warning`` that a human should look."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        """2 for an error, 1 for a warning, 0 for a note: higher is worse."""
        return {"error": 2, "warning": 1, "info": 0}[self.value]

    @classmethod
    def parse(cls, value: Severity | str, what: str = "severity",
              error: type[CtcurateError] = ConfigError) -> Severity:
        return parse_enum(cls, value, what, error)


FAIL_ON_CHOICES = (*(s.value for s in Severity), "none")


def parse_fail_on(value: Severity | str | None, what: str = "fail_on",
                  error: type[CtcurateError] = ConfigError) -> Severity | None:
    """A ``--fail-on`` / ``fail_on`` value: a severity, or ``none`` (never fail) as None."""
    if value is None or str(value).strip().lower() == "none":
        return None
    try:
        return parse_enum(Severity, value, what, error)
    except CtcurateError:
        raise error(f"{what} {value!r}: expected one of {', '.join(FAIL_ON_CHOICES)}") from None


class ContrastPhase(StrEnum):
    """Contrast phase of a CT (``case.json``'s ``contrast.phase``; the phases of a label class's ``hu_phase``)."""

    NATIVE = "native"
    ARTERIAL = "arterial"
    PORTAL_VENOUS = "portal_venous"
    LATE = "late"
