"""Contrast phase of each case from its labels of record, stored in ``case.json``.

The median HU inside each phase structure (eroded by one voxel against partial volume) is measured here
(:func:`measure_hu`); the estimate itself, with the label set's HU per phase and the DICOM tags as a prior,
is :mod:`curation.labels.phase` (label QA uses it too).
"""

from __future__ import annotations

import logging

import numpy as np
from scipy import ndimage

from curation import Volume, Workspace
from curation.annotation.record import labels_of_record
from curation.annotation.revisions import RevisionStore
from curation.atomic import WRITE_FAULTS
from curation.cases.casemeta import ContrastPhase, read_case_metadata, update_case_metadata, write_meta_table
from curation.errors import CtcurateError, ModelError
from curation.image.volume import read_nrrd
from curation.labels.labelset import LabelSet
from curation.labels.phase import (
    DIFFERENCE_HU,
    PHASE_STRUCTURES,
    PhaseEstimate,
    phase_from_hu,
    phase_prior,
    phase_table,
)

__all__ = ["PHASE_STRUCTURES", "DIFFERENCE_HU", "phase_table", "PhaseEstimate", "estimate_phase", "measure_hu",
           "phase_prior", "estimate_case_phase", "estimate_phases"]

log = logging.getLogger(__name__)

MIN_VOXELS = 30


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


def estimate_phase(ct: np.ndarray, labels: np.ndarray, label_set: LabelSet,
                   prior: dict[ContrastPhase, float] | None = None) -> PhaseEstimate:
    """Estimate the phase of one CT from its labels (same grid) and a prior (default: flat)."""
    return phase_from_hu(measure_hu(ct, labels, label_set), label_set, prior)


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
