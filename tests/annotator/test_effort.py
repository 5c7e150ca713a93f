"""``annotate status``: counts per status and annotator, active time, correction effort vs the model."""

from __future__ import annotations

import numpy as np

from annotator.effort import worklist_summary
from ctcurate.cli import app
from curation import Volume, Workspace
from curation.annotation.revisions import RevisionStore
from curation.annotation.worklist import Worklist
from curation.labels.labelmap import read_seg_nrrd
from tests.cli_runner import CliRunner


def test_summary_counts_statuses_time_and_effort(demo_ws: Workspace) -> None:
    ws = demo_ws
    store, work = RevisionStore(ws), Worklist(ws)
    index = ws.label_set().index_of()
    expected: dict[str, int] = {}
    for case_id, minutes in (("s0001", 6.0), ("s0002", 10.0)):
        work.claim(case_id, "dr.a")
        model, _ = read_seg_nrrd(store.path(store.history(case_id)[0]))  # revision 0: the model's
        latest = store.latest(case_id)  # the demo's phantom labels, imported (not an annotator's correction)
        assert latest is not None and latest.kind == "import"
        fixed = model.array.copy()
        fixed[fixed == index["spleen"]] = 0  # the model's spleen was wrong: erased
        store.add(case_id, {"native": Volume(fixed, model.spacing, model.origin, model.direction)}, ws.label_set(),
                  author="dr.a", kind="human", parent=latest.number, previous=model.array, active_seconds=minutes * 60)
        expected["spleen"] = expected.get("spleen", 0) + int((model.array == index["spleen"]).sum())
        work.set_status(case_id, "done", actor="dr.a")
    work.claim("s0003", "dr.b")
    summary = worklist_summary(ws)
    assert summary.by_status.to_dict("records") == [{"status": "done", "annotator": "dr.a", "cases": 2},
                                                    {"status": "in_progress", "annotator": "-", "cases": 1}]
    assert summary.median_active_minutes == 8.0
    assert summary.effort.to_dict("records") == [{"structure": "spleen", "cases": 2, "voxels": expected["spleen"]}]
    rows = summary.cases.set_index("case_id")
    assert rows.loc["s0003", "claimant"] == "dr.b" and rows.loc["s0001", "model"] == "small@v1"
    assert rows.loc["s0001", "labels_of_record"] == "revision 2 (unreviewed)"  # dr.a's correction
    assert rows.loc["s0003", "labels_of_record"] == "revision 1 (unreviewed)"  # the imported phantom labels
    assert rows.loc["s0003", "findings"] >= 1  # the demo's swapped lungs
    result = CliRunner().invoke(app, ["annotate", "status", "-w", str(ws.root), "--cases"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "median active time per corrected case: 8.0 min" in text and f"{expected['spleen']:,}" in text
    assert np.isfinite(summary.median_active_minutes)
    # reviews: done cases await a second physician; the table counts verdicts per reviewer
    assert rows.loc["s0001", "review"] == "awaiting" and rows.loc["s0003", "review"] == "unreviewed"
    store.review("s0001", None, "approved", reviewer="dr.b")
    store.review("s0002", None, "rejected", reviewer="dr.b", comment="spleen missing")
    again = worklist_summary(ws)
    assert again.cases.set_index("case_id").loc["s0001", "review"] == "approved"
    assert again.reviews.to_dict("records") == [{"reviewer": "dr.b", "status": "approved", "reviews": 1},
                                                {"reviewer": "dr.b", "status": "rejected", "reviews": 1}]
    text = " ".join(CliRunner().invoke(app, ["annotate", "status", "-w", str(ws.root)]).output.split())
    assert "0 done case(s) awaiting review" in text and "dr.b │ approved │ 1" in text
