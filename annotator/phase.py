"""Contrast phase of a CT from the HU inside segmented vessels and organs, with the DICOM tags as a prior.

After pre-segmentation every case has labels, so the phase (native, arterial, portal venous,
late/delayed) can be read from the CT itself: the median HU inside each of aorta, portal vein,
inferior vena cava, kidneys, urinary bladder, liver and spleen (:data:`PHASE_STRUCTURES`, eroded by
one voxel against partial volume) is compared with the typical values per phase at about 120 kVp
that the label set gives for each (a class's ``hu_phase``; a class without one takes those of its
namesake in the built-in ``total_v2``, so user sets written without them keep working), with a
heavy-tailed (Student t) likelihood so that one badly segmented structure cannot decide alone; the
aorta minus portal vein difference separates arterial from later phases (:data:`DIFFERENCE_HU`). The
prior comes from the DICOM contrast tags: the delay from ``ContrastBolusStartTime`` to
``AcquisitionTime`` when known, else ``ContrastBolusAgent``/``Route`` (an intravenous agent named makes
native unlikely; no agent named is weak evidence for native, as many sites leave the tag empty). The
confidence is the posterior probability of the chosen phase. Structures the label set lacks or that
hold fewer than :data:`MIN_VOXELS` voxels are left out; with none left the phase stays unknown.
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from curation import Volume, Workspace
from curation.annotation.record import labels_of_record
from curation.annotation.revisions import RevisionStore
from curation.atomic import WRITE_FAULTS
from curation.cases.casemeta import ContrastPhase, read_case_metadata, update_case_metadata, write_meta_table
from curation.errors import CtcurateError, ModelError
from curation.image.volume import read_nrrd
from curation.labels.labelset import LabelSet, load_label_set

__all__ = ["PHASE_STRUCTURES", "DIFFERENCE_HU", "phase_table", "PhaseEstimate", "estimate_phase", "measure_hu",
           "phase_prior", "estimate_case_phase", "estimate_phases"]

log = logging.getLogger(__name__)

MIN_VOXELS = 30
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


def measure_hu(ct: np.ndarray, labels: np.ndarray, label_set: LabelSet) -> dict[str, float]:
    """Median HU inside each phase structure the labels hold (one-voxel erosion when enough voxels remain)."""
    if ct.shape != labels.shape:
        raise ModelError(f"CT shape {ct.shape} and label shape {labels.shape} differ; measure on the same grid")
    index = label_set.index_of()
    table = phase_table(label_set)
    out: dict[str, float] = {}
    for name in PHASE_STRUCTURES:
        if name not in table:
            continue
        mask = labels == index[name]
        if int(mask.sum()) < MIN_VOXELS:
            continue
        boxes = ndimage.find_objects(mask.astype(np.uint8))[0]
        assert boxes is not None
        inner = ndimage.binary_erosion(mask[boxes])
        values = ct[boxes][inner] if int(inner.sum()) >= MIN_VOXELS else ct[boxes][mask[boxes]]
        out[name] = float(np.median(values))
    for name, (minuend, subtrahend, _) in DIFFERENCE_HU.items():
        if minuend in out and subtrahend in out:
            out[name] = out[minuend] - out[subtrahend]
    return out


def _log_t(value: float, mean: float, spread: float) -> float:
    z = (value - mean) / spread
    return -(_DOF + 1) / 2 * math.log1p(z * z / _DOF) - math.log(spread)


def estimate_phase(ct: np.ndarray, labels: np.ndarray, label_set: LabelSet,
                   prior: dict[ContrastPhase, float] | None = None) -> PhaseEstimate:
    """Estimate the phase of one CT from its labels (same grid) and a prior (default: flat)."""
    prior = prior or {p: 0.25 for p in ContrastPhase}
    hu = measure_hu(ct, labels, label_set)
    prior_out = {p.value: round(v, 3) for p, v in prior.items()}
    if not hu:
        return PhaseEstimate(None, None, {}, {}, prior_out)
    table = phase_table(label_set)
    scores = {p: math.log(prior[p]) + sum(_log_t(v, *table[name][p]) for name, v in hu.items())
              for p in ContrastPhase}
    top = max(scores.values())
    weights = {p: math.exp(s - top) for p, s in scores.items()}
    total = sum(weights.values())
    posterior = {p.value: w / total for p, w in weights.items()}
    best = max(weights, key=lambda p: weights[p])
    return PhaseEstimate(best, posterior[best.value], posterior, {k: round(v, 1) for k, v in hu.items()}, prior_out)


def estimate_case_phase(ws: Workspace, case_id: str, *, labels: Volume | None = None, ct: Volume | None = None,
                        revision: int | None = None, database_url: str | None = None) -> PhaseEstimate:
    """Estimate a case's phase from its labels of record and store it in ``case.json``.

    ``labels`` (with the ``revision`` number they belong to) and ``ct`` skip reading them again.
    """
    meta = read_case_metadata(ws, case_id)
    revision_number = revision
    if labels is None:
        from curation.labels.labelmap import read_seg_nrrd

        record = labels_of_record(RevisionStore(ws, database_url), case_id)
        if record is None:
            raise ModelError(f"case {case_id}: no segmentation revision to measure; run 'ctcurate presegment' first")
        labels, _ = read_seg_nrrd(record.path)
        revision_number = record.number
    ct = ct if ct is not None else read_nrrd(ws.case_dir(case_id) / ws.ct_name())
    contrast = meta.get("contrast", {})
    estimate = estimate_phase(ct.array, labels.array, ws.label_set(),
                              phase_prior(contrast.get("agent"), contrast.get("route"), contrast.get("delay_s")))
    update_case_metadata(ws, case_id, "contrast", {**estimate.to_metadata(), "phase_revision": revision_number})
    log.info("case %s: phase %s (%.2f)", case_id, estimate.phase, estimate.confidence or 0.0)
    return estimate


def estimate_phases(ws: Workspace, cases: list[str] | None = None, *,
                    database_url: str | None = None) -> tuple[dict[str, PhaseEstimate], dict[str, str]]:
    """Re-estimate the phase of the named cases (default: every case with a revision) from their labels of
    record, then rebuild the cases table; returns (estimates, failures by case)."""
    store = RevisionStore(ws, database_url)
    todo = sorted(cases) if cases else sorted(store.cases_with_revisions())
    estimates: dict[str, PhaseEstimate] = {}
    failed: dict[str, str] = {}
    for case_id in todo:
        try:
            estimates[case_id] = estimate_case_phase(ws, case_id, database_url=database_url)
        except (CtcurateError, OSError, ValueError) as exc:
            if isinstance(exc, OSError) and exc.errno in WRITE_FAULTS:
                raise  # a full or read-only workspace: every later case would fail the same way
            failed[case_id] = str(exc) if isinstance(exc, CtcurateError) else f"{type(exc).__name__}: {exc}"
            log.error("case %s: %s", case_id, failed[case_id])
    if estimates and ws.meta_table.is_file():
        write_meta_table(ws)
    return estimates, failed
