"""CT intensity inside each structure: its label set range, air where none belongs, and the contrast phase.

The contrast phase of the case is estimated from the median HU of the phase structures (aorta, portal vein,
kidneys, liver, ...; :mod:`curation.labels.phase`); each structure with typical values per phase in the label
set (``hu_phase``) then has its median compared with that phase's (mean, spread): far outside, the mask lies on
other tissue (or the structure is abnormal). The estimate uses every phase structure, so one misplaced mask
cannot move it alone.
"""

from __future__ import annotations

from curation.labels.labelset import LabelSet
from curation.labels.phase import PHASE_STRUCTURES, PhaseEstimate, phase_from_hu

from .findings import Check, Finding, Severity
from .labelstats import LabelStats

__all__ = ["PHASE_Z", "case_phase", "intensity_findings"]

PHASE_Z = 4.0  # a median this many spreads from its phase's typical value is flagged


def case_phase(stats: LabelStats, label_set: LabelSet, min_voxels: int) -> PhaseEstimate:
    """The contrast phase estimated from the medians of the phase structures present."""
    hu = {}
    for name in PHASE_STRUCTURES:
        if name in label_set:
            index = label_set.by_name(name).index
            if index < len(stats.voxels) and stats.voxels[index] >= min_voxels:
                hu[name] = stats.hu_median(index)
    return phase_from_hu(hu, label_set)


def intensity_findings(case: str, stats: LabelStats, label_set: LabelSet, min_voxels: int, air_fraction: float,
                       present: set[str]) -> list[Finding]:
    """``intensity.range``, ``intensity.air`` and ``intensity.phase`` findings of one case."""
    out = []
    phase = case_phase(stats, label_set, min_voxels)
    for cls in label_set:
        if cls.name not in present or stats.voxels[cls.index] < min_voxels:
            continue
        median = stats.hu_median(cls.index)
        if cls.hu is not None:
            low, high, need = cls.hu
            fraction = stats.hu_fraction(cls.index, low, high)
            if fraction < need:
                out.append(Finding(case, Check.INTENSITY, Severity.ERROR if fraction < need / 2 else Severity.WARNING,
                                   f"{cls.name}: only {fraction:.0%} of voxels within {low:.0f}..{high:.0f} HU "
                                   f"(expected at least {need:.0%}; median {median:.0f} HU); the mask may be shifted, "
                                   "flipped or on another structure", structure=cls.name,
                                   values={"fraction": fraction, "expected": need, "median_hu": median}))
        if not cls.may_contain_air and (cls.hu is None or cls.hu[0] > -500):
            air = stats.hu_fraction(cls.index, -1024, -500)
            if air > air_fraction:
                out.append(Finding(case, Check.AIR, Severity.WARNING,
                                   f"{cls.name}: {air:.0%} of voxels are air (< -500 HU): outside the body or in the "
                                   "lungs", structure=cls.name, values={"air_fraction": air, "median_hu": median}))
        if phase.phase is not None and phase.phase in cls.hu_phase:
            mean, spread = cls.hu_phase[phase.phase]
            z = (median - mean) / spread
            if abs(z) > PHASE_Z:
                out.append(Finding(case, Check.PHASE, Severity.WARNING,
                                   f"{cls.name}: median {median:.0f} HU, typical {mean:.0f} +- {spread:.0f} HU in the "
                                   f"{phase.phase.value.replace('_', ' ')} phase (estimated, {phase.confidence:.0%}); "
                                   "the mask lies on other tissue, or the structure is abnormal", structure=cls.name,
                                   values={"median_hu": median, "expected_hu": mean, "spread_hu": spread,
                                           "phase": phase.phase.value, "z": z}))
    return out
