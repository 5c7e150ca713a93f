"""The release part of ``ctcurate demo``: split, datasheet answers, datasheet and release 1.0.0.

The demo's phantom labels carry one error on purpose (swapped lungs), so the release is built with
``force_qa`` and its datasheet says so. A rerun keeps the existing release.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from curation import Workspace
from datacard.release import ReleaseResult, build_release
from datacard.split import SplitPlan, list_splits, make_split

__all__ = ["DEMO_ANSWERS", "run_demo_release"]

DEMO_ANSWERS = {
    "license": "CC0-1.0",
    "creators": [{"name": "Demo, Steward", "affiliation": "ctcurate demo (synthetic data)"}],
    "availability": "generated on demand by 'ctcurate demo'",
    "fields": {"Noise": "Synthetic phantom images without noise.", "External Data": "None.",
               "Confidentiality": "Synthetic patients; no real person is shown.",
               "Re Identification": "Not possible: the patients are invented.",
               "Representativeness": "Not representative of any population; it exercises the pipeline.",
               "Motivation": "Show every ctcurate step end to end.", "Purpose": "Tests and teaching."},
    "sections": {"Uses": "Trying ctcurate; never for training or evaluating models.",
                 "Maintenance": "Regenerated with each ctcurate version."},
}


def run_demo_release(workspace: str | Path) -> tuple[Path, ReleaseResult | None]:
    """Split (1.0.0), write the demo's answers, build release 1.0.0; returns (release folder, result or None)."""
    ws = Workspace.open(workspace)
    folder = ws.release("1.0.0").root
    if folder.is_dir():
        return folder, None
    if not list_splits(ws):
        make_split(ws, "1.0.0", SplitPlan(seed=ws.settings.seed, stratify=("sex",)))
    answers = ws.answers_file
    if not answers.is_file():
        answers.write_text(yaml.safe_dump(DEMO_ANSWERS, sort_keys=False))
    return folder, build_release(ws, "1.0.0", answers=answers, force_qa=True)
