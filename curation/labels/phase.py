"""Contrast phase of a CT from the median HU inside labelled vessels and organs, with the DICOM tags as a prior.

The median HU of each of aorta, portal vein, inferior vena cava, kidneys, urinary bladder, liver and spleen
(:data:`PHASE_STRUCTURES`) is compared with the typical values per phase at about 120 kVp that the label set
gives for each (a class's ``hu_phase``; a class without one takes those of its namesake in the built-in
``total_v2``, so user sets written without them keep working), with a heavy-tailed (Student t) likelihood so
that one badly segmented structure cannot decide alone; the aorta minus portal vein difference separates
arterial from later phases (:data:`DIFFERENCE_HU`). The prior comes from the DICOM contrast tags (:func:`phase_prior`).
Measuring the medians is the caller's: pre-segmentation erodes each mask (``annotator.phase``), label QA reads
them from its statistics (``qa``).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any

from curation.enums import ContrastPhase

from .labelset import LabelSet, load_label_set

__all__ = ["PHASE_STRUCTURES", "DIFFERENCE_HU", "PhaseEstimate", "phase_prior", "phase_table", "phase_from_hu"]

_DOF = 4.0
#: the structures measured; their (mean, spread) of the median HU per phase is the label set's ``hu_phase``
PHASE_STRUCTURES = ("aorta", "portal_vein_and_splenic_vein", "inferior_vena_cava", "kidney_left", "kidney_right",
                    "urinary_bladder", "liver", "spleen")
#: (mean, spread) per phase of two differences between measured structures: (minuend, subtrahend, values)
DIFFERENCE_HU: dict[str, tuple[str, str, dict[ContrastPhase, tuple[float, float]]]] = {
    "aorta-portal": ("aorta", "portal_vein_and_splenic_vein",
                     {ContrastPhase.NATIVE: (0, 10), ContrastPhase.ARTERIAL: (150, 70),
                      ContrastPhase.PORTAL_VENOUS: (0, 25), ContrastPhase.LATE: (0, 15)}),
    "aorta-liver": ("aorta", "liver",
                    {ContrastPhase.NATIVE: (-10, 10), ContrastPhase.ARTERIAL: (225, 80),
                     ContrastPhase.PORTAL_VENOUS: (60, 25), ContrastPhase.LATE: (20, 15)}),
}
#: prior from the delay between contrast bolus start and acquisition (seconds): (upper bound, probabilities)
_DELAY_PRIOR = ((50.0, {ContrastPhase.NATIVE: 0.05, ContrastPhase.ARTERIAL: 0.7, ContrastPhase.PORTAL_VENOUS: 0.2,
                        ContrastPhase.LATE: 0.05}),
                (130.0, {ContrastPhase.NATIVE: 0.05, ContrastPhase.ARTERIAL: 0.1, ContrastPhase.PORTAL_VENOUS: 0.7,
                         ContrastPhase.LATE: 0.15}),
                (math.inf, {ContrastPhase.NATIVE: 0.05, ContrastPhase.ARTERIAL: 0.05,
                            ContrastPhase.PORTAL_VENOUS: 0.15, ContrastPhase.LATE: 0.75}))
_NO_AGENT = {"", "none", "no", "0", "n", "nein", "non"}


@dataclass(frozen=True)
class PhaseEstimate:
    """The most likely phase (``None`` when nothing could be measured), its posterior and the evidence."""

    phase: ContrastPhase | None
    confidence: float | None
    posterior: dict[str, float] = field(default_factory=dict)
    hu: dict[str, float] = field(default_factory=dict)
    prior: dict[str, float] = field(default_factory=dict)

    def to_metadata(self) -> dict[str, Any]:
        """The ``contrast`` fields of ``case.json``."""
        return {"phase": self.phase.value if self.phase else None,
                "phase_confidence": None if self.confidence is None else round(self.confidence, 3),
                "phase_evidence": {"median_hu": self.hu, "prior": self.prior,
                                   "posterior": {k: round(v, 4) for k, v in self.posterior.items()}}}


def phase_prior(agent: str | None, route: str | None = None,
                delay_s: float | None = None) -> dict[ContrastPhase, float]:
    """Prior probabilities from the DICOM contrast tags.

    ``delay_s`` (acquisition time minus ``ContrastBolusStartTime``) decides most when it is known;
    under 5 s it is taken as a start time copied from the scan and ignored.
    """
    if delay_s is not None and math.isfinite(delay_s) and delay_s >= 5:
        return dict(next(p for bound, p in _DELAY_PRIOR if delay_s < bound))
    agent_text = (agent or "").strip().lower()
    route_text = (route or "").strip().lower()
    oral_only = "oral" in route_text and "iv" not in route_text and "intraven" not in route_text
    native = 0.05 if agent_text not in _NO_AGENT and not oral_only else 0.4
    rest = (1.0 - native) / 3
    return {p: (native if p is ContrastPhase.NATIVE else rest) for p in ContrastPhase}


@functools.cache
def _builtin() -> LabelSet:
    return load_label_set("total_v2")


def phase_table(label_set: LabelSet) -> dict[str, dict[ContrastPhase, tuple[float, float]]]:
    """(mean, spread) of the median HU per phase of each structure the estimate can use: the label set's
    ``hu_phase`` of :data:`PHASE_STRUCTURES` (of the built-in ``total_v2`` where the set gives none), then
    the differences both of whose structures are there."""
    table = {}
    for name in PHASE_STRUCTURES:
        if name in label_set:
            table[name] = label_set.by_name(name).hu_phase or _builtin().by_name(name).hu_phase
    for name, (minuend, subtrahend, values) in DIFFERENCE_HU.items():
        if minuend in table and subtrahend in table:
            table[name] = values
    return table


def _log_t(value: float, mean: float, spread: float) -> float:
    z = (value - mean) / spread
    return -(_DOF + 1) / 2 * math.log1p(z * z / _DOF) - math.log(spread)


def phase_from_hu(hu: dict[str, float], label_set: LabelSet,
                  prior: dict[ContrastPhase, float] | None = None) -> PhaseEstimate:
    """The most likely phase given median HU per structure (names of :data:`PHASE_STRUCTURES`; differences of
    :data:`DIFFERENCE_HU` are added here when both structures are given) and a prior (default: flat)."""
    prior = prior or {p: 0.25 for p in ContrastPhase}
    prior_out = {p.value: round(v, 3) for p, v in prior.items()}
    table = phase_table(label_set)
    hu = {k: v for k, v in hu.items() if k in table}
    for name, (minuend, subtrahend, _) in DIFFERENCE_HU.items():
        if minuend in hu and subtrahend in hu and name in table:
            hu[name] = hu[minuend] - hu[subtrahend]
    if not hu:
        return PhaseEstimate(None, None, {}, {}, prior_out)
    scores = {p: math.log(prior[p]) + sum(_log_t(v, *table[name][p]) for name, v in hu.items())
              for p in ContrastPhase}
    top = max(scores.values())
    weights = {p: math.exp(s - top) for p, s in scores.items()}
    total = sum(weights.values())
    posterior = {p.value: w / total for p, w in weights.items()}
    best = max(weights, key=lambda p: weights[p])
    return PhaseEstimate(best, posterior[best.value], posterior, {k: round(v, 1) for k, v in hu.items()}, prior_out)
