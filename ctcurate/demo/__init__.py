"""``ctcurate demo``: a synthetic PACS export run through every stage (curation, demo labels, the small
model's pre-segmentation, QA, split, datasheet and release 1.0.0)."""

from __future__ import annotations

from .curate import DemoResult, run_demo
from .export import DEMO_PATIENTS, build_demo_export, phantom_slice, write_ct_series
from .labels import DEMO_LABEL_SET, label_demo_cases
from .presegment import DEMO_MODEL, DemoPresegment, run_demo_presegment
from .qa import DemoQAResult, run_demo_qa
from .release import DEMO_ANSWERS, run_demo_release

__all__ = ["DemoResult", "run_demo", "DEMO_PATIENTS", "build_demo_export", "phantom_slice", "write_ct_series",
           "DEMO_LABEL_SET", "label_demo_cases", "DEMO_MODEL", "DemoPresegment", "run_demo_presegment",
           "DemoQAResult", "run_demo_qa", "DEMO_ANSWERS", "run_demo_release"]
