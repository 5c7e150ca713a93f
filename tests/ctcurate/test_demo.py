"""The demo is the same on every run: a rerun on the same folder resumes instead of adding cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ctcurate.demo import DEMO_LABEL_SET, run_demo
from curation import Workspace, read_volume
from curation.labels.labelmap import read_seg_nrrd


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

    from curation.annotation.revisions import RevisionStore

    ws = Workspace.open(demo_run.workspace)
    store = RevisionStore(ws)
    for case in demo_run.cases:
        model, imported = store.history(case)  # the model's revision 0, then the phantom's labels imported
        assert model.number == 0 and model.author == "model:small@v1" and model.kind == "model"
        assert imported.author == "import:segmentation.seg.nrrd" and imported.kind == "import"
        assert set(model.files) == set(imported.files) == {"native", "1.5", "3"}
        contrast = json.loads((ws.case_dir(case) / "case.json").read_text())["contrast"]
        # the phantom has no contrast; the phase is that of the labels of record (the imported revision)
        assert contrast["phase"] == "native" and contrast["phase_revision"] == imported.number
    import pandas as pd

    assert set(pd.read_parquet(ws.meta_table)["contrast_phase"]) == {"native"}


def test_pacs_mode_pulls_the_same_cases_over_dicomweb(demo_run, tmp_path: Path) -> None:
    """``demo --pacs``: the export goes into a local Orthanc and is pulled back: the same exams are kept for the
    same reasons, the cases hold the same voxels, and the series the rules exclude were never retrieved."""
    import pandas as pd

    pulled = run_demo(tmp_path, workers=1, pacs=True)
    assert pulled.cases == demo_run.cases and pulled.n_included == demo_run.n_included
    reasons = [pd.read_parquet(Path(r.workspace) / "private" / "filter" / "exams.parquet")
               .set_index("rank")["primary_reason"].to_dict() for r in (demo_run, pulled)]
    assert reasons[0] == reasons[1] and {"extremity", "missing_slices", "gantry_tilt"} <= set(reasons[1].values())
    for case in pulled.cases:
        ours = read_volume(Path(pulled.cases_dir) / case / "ct.nrrd")
        theirs = read_volume(Path(demo_run.cases_dir) / case / "ct.nrrd")
        assert np.array_equal(ours.array, theirs.array) and np.allclose(ours.origin, theirs.origin)
    ws = Workspace.open(pulled.workspace)
    judged = pd.read_parquet(ws.pacs_series_table)
    retrieved = [p for p in ws.pacs_export_dir.rglob("*.dcm")]
    assert len(retrieved) == int(judged.loc[judged["retrieve"], "n_files"].sum())
    assert set(judged.loc[~judged["included"], "primary_reason"]) >= {"localizer", "extremity", "missing_slices"}
