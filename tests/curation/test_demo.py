"""The demo is the same on every run: a rerun on the same folder resumes instead of adding cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from curation import Workspace, read_volume
from curation.demo import DEMO_LABEL_SET, run_demo
from curation.labelmap import read_seg_nrrd


def test_rerun_resumes_and_labels_follow_the_phantom(demo_run) -> None:
    again = run_demo(Path(demo_run.export).parent, workers=1)
    assert again.cases == demo_run.cases
    assert sorted(p.name for p in Path(demo_run.cases_dir).iterdir()) == list(demo_run.cases)
    ws = Workspace.open(demo_run.workspace)
    assert ws.label_set() == DEMO_LABEL_SET
    first = demo_run.cases[0]
    labels, segments = read_seg_nrrd(ws.segmentation_file(first))
    assert [s.name for s in segments] == DEMO_LABEL_SET.names
    ct = read_volume(ws.case_dir(first) / "ct.nrrd")
    assert np.array_equal(labels.array == 1, ct.array == 60)  # liver
    assert np.array_equal(labels.array == 4, ct.array == 700)  # spine


def test_demo_cases_are_pre_segmented_with_a_contrast_phase(demo_run) -> None:
    import json

    from curation.revisions import RevisionStore

    ws = Workspace.open(demo_run.workspace)
    store = RevisionStore(ws)
    for case in demo_run.cases:
        revision = store.latest(case)
        assert revision is not None and revision.number == 0 and revision.author == "model:small@v1"
        assert set(revision.files) == {"native", "1.5", "3"}
        contrast = json.loads((ws.case_dir(case) / "case.json").read_text())["contrast"]
        assert contrast["phase"] == "native" and contrast["phase_revision"] == 0  # the phantom has no contrast
    import pandas as pd

    assert set(pd.read_parquet(ws.meta_table)["contrast_phase"]) == {"native"}
