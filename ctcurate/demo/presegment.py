"""The pre-segmentation part of ``ctcurate demo``: register the small model, pre-segment every case, then import
the phantom's true labels (written into the case folders by :mod:`ctcurate.demo.labels`) as each case's next
revision, so the labels of record are the phantom's truth, one case with its lungs swapped; the contrast phase
is then estimated again from them (what ``ctcurate phase`` does after new labels).

The small model (:mod:`annotator.small_model`) learned five structures on real CT; the demo's
phantom holds the same structures as ellipses, so its results on the phantom show the mechanics
(revision 0 by the model on every grid, contrast phase in ``case.json``), not the model's quality.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from annotator.phase import estimate_phases
from annotator.presegment import PresegmentResult, presegment
from annotator.registry import ModelRecord, register_model
from annotator.small_model import SMALL_MODEL_FOLDER
from curation import Workspace
from curation.annotation import import_case_folder_labels
from curation.cases import read_case_metadata
from curation.errors import LabelIOError

__all__ = ["DemoPresegment", "run_demo_presegment", "DEMO_MODEL"]

DEMO_MODEL = "small"


@dataclass(frozen=True)
class DemoPresegment:
    model: ModelRecord
    result: PresegmentResult
    phases: dict[str, Any] = field(default_factory=dict)
    imported: int | None = None  # the revision number the phantom's labels became


def run_demo_presegment(workspace: str | Path, *, executor: Any = None) -> DemoPresegment:
    """Register the small model as ``small`` and pre-segment the demo's cases (a rerun skips done cases)."""
    ws = Workspace.open(workspace)
    record = register_model(ws, DEMO_MODEL, [SMALL_MODEL_FOLDER])
    result = presegment(ws, DEMO_MODEL, executor=executor)
    imported = import_case_folder_labels(ws)
    failed = [o.describe() for o in imported if o.revision is None]
    if failed:
        raise LabelIOError(f"demo labels could not be imported: {'; '.join(failed)}")
    relabelled = sorted({o.case_id for o in imported if o.new})
    if relabelled:  # as a steward runs 'ctcurate phase' after new labels: the phase of the labels of record
        estimate_phases(ws, relabelled)
    phases = {}
    for case in sorted(result.done + result.skipped):
        contrast = read_case_metadata(ws, case)["contrast"]
        phases[case] = (contrast.get("phase"), contrast.get("phase_confidence"))
    numbers = {o.revision.number for o in imported if o.revision is not None}
    return DemoPresegment(record, result, phases, max(numbers) if numbers else None)
