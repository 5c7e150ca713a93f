"""The pre-segmentation part of ``ctcurate demo``: register the small model and pre-segment every case.

The small model (:mod:`annotator.small_model`) learned five structures on real CT; the demo's
phantom holds the same structures as ellipses, so its results on the phantom show the mechanics
(revision 0 by the model on every grid, contrast phase in ``case.json``), not the model's quality.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from annotator.presegment import PresegmentResult, presegment
from annotator.registry import ModelRecord, register_model
from annotator.small_model import SMALL_MODEL_FOLDER
from curation import Workspace

__all__ = ["DemoPresegment", "run_demo_presegment", "DEMO_MODEL"]

DEMO_MODEL = "small"


@dataclass(frozen=True)
class DemoPresegment:
    model: ModelRecord
    result: PresegmentResult
    phases: dict[str, Any] = field(default_factory=dict)


def run_demo_presegment(workspace: str | Path, *, executor: Any = None) -> DemoPresegment:
    """Register the small model as ``small`` and pre-segment the demo's cases (a rerun skips done cases)."""
    import json

    ws = Workspace.open(workspace)
    record = register_model(ws, DEMO_MODEL, [SMALL_MODEL_FOLDER])
    result = presegment(ws, DEMO_MODEL, executor=executor)
    phases = {}
    for case in sorted(result.done + result.skipped):
        contrast = json.loads((ws.case_dir(case) / "case.json").read_text())["contrast"]
        phases[case] = (contrast.get("phase"), contrast.get("phase_confidence"))
    return DemoPresegment(record, result, phases)
