"""Supervision and the session's editing aids on a real case: the two-person rule, reviews, comments, claims
broken with a reason, the next unreviewed structure, one writer for every tool, no empty saves."""

from __future__ import annotations

import numpy as np
import pytest

from annotator.session import CaseSession
from ctcurate.cli import app
from curation import Workspace
from curation.annotation.revisions import RevisionStore
from curation.annotation.worklist import Worklist
from curation.errors import AnnotationError, ConfigError, WorkspaceError
from curation.workspace.settings import AnnotationSettings
from tests.cli_runner import CliRunner


def _corrected_and_done(ws: Workspace, who: str = "dr.a") -> None:
    session = CaseSession(ws, "s0001", who)
    session.erase_box("liver", ((0, 200), (0, 200), (0, 40)))
    session.save("liver trimmed")
    session.mark_done()


def test_nobody_approves_their_own_revision(real_case_ws: Workspace) -> None:
    ws = real_case_ws
    _corrected_and_done(ws)
    own = CaseSession(ws, "s0001", "dr.a")
    with pytest.raises(WorkspaceError, match="dr.a wrote it and cannot approve it \\(two-person rule\\); a second "
                                             "physician approves it, or set \\[annotation\\] self_review = true"):
        own.review("approved")
    own.close()
    with pytest.raises(WorkspaceError, match="case s0042: no such case"):
        RevisionStore(ws).review("s0042", None, "approved", reviewer="dr.b")
    reviewer = CaseSession(ws, "s0001", "dr.b")
    with pytest.raises(AnnotationError, match="a rejection needs a comment"):
        reviewer.review("rejected")
    revision = reviewer.review("approved", "checked slice by slice")
    assert revision.author == "dr.a" and RevisionStore(ws).statuses("s0001")[revision.number] == "approved"
    assert Worklist(ws).status("s0001")[0] == "done" and Worklist(ws).claim_of("s0001") is None


def test_a_rejected_case_goes_back_with_comments(real_case_ws: Workspace) -> None:
    ws = real_case_ws
    _corrected_and_done(ws)
    reviewer = CaseSession(ws, "s0001", "dr.b")
    reviewer.comment("spleen", "lower pole left out")
    with pytest.raises(AnnotationError, match="the comment is empty"):
        reviewer.comment("spleen", "  ")
    with pytest.raises(Exception, match="spleeen"):
        reviewer.comment("spleeen", "typo")
    reviewer.review("rejected", "see the spleen")
    assert Worklist(ws).status("s0001")[0] == "in_progress"
    annotator = CaseSession(ws, "s0001", "dr.a")
    assert annotator.comments() == {"spleen": ["dr.b: lower pole left out"]}
    with pytest.raises(AnnotationError, match="is in_progress, not done; a case is reviewed once its annotator"):
        annotator.review("approved")


def test_who_marked_a_case_done_does_not_approve_it(real_case_ws: Workspace, ts) -> None:
    from curation.annotation import import_labels

    ws = real_case_ws
    import_labels(ws, "s0001", ts / "seg_v2_total117" / "example_seg_fast_force_split.nii.gz", comment="theirs")
    session = CaseSession(ws, "s0001", "dr.a")
    session.mark_done()  # adopts the imported labels
    with pytest.raises(WorkspaceError, match=r"dr.a marked the case done and cannot approve it \(two-person rule\)"):
        RevisionStore(ws).review("s0001", None, "approved", reviewer="dr.a")
    assert RevisionStore(ws).review("s0001", None, "approved", reviewer="dr.b").author.startswith("import:")


def test_self_review_can_be_allowed_and_windows_come_from_the_settings(real_case_ws: Workspace) -> None:
    settings = AnnotationSettings(self_review=True, windows=("liver=-50,250",))
    assert settings.window_presets() == {"liver": (-50.0, 250.0)}
    with pytest.raises(ConfigError, match="'liver=-50': expected \"name=low,high\" in HU"):
        AnnotationSettings(windows=("liver=-50",))
    with pytest.raises(ConfigError, match="expected a name and low < high"):
        AnnotationSettings(windows=("liver=250,-50",))
    with pytest.raises(ConfigError, match="worklist_refresh_seconds': expected >= 1"):
        AnnotationSettings(worklist_refresh_seconds=0)
    ws = real_case_ws
    text = ws.settings_path.read_text().replace("self_review = false", "self_review = true")
    ws.settings_path.write_text(text)
    ws = Workspace.open(ws.root)
    _corrected_and_done(ws)
    assert CaseSession(ws, "s0001", "dr.a").review("approved").author == "dr.a"


def test_break_claim_from_the_command_line(real_case_ws: Workspace) -> None:
    ws = real_case_ws
    CaseSession(ws, "s0001", "dr.a")  # left open at another seat
    result = CliRunner().invoke(app, ["annotate", "break-claim", "s0001", "--reason", "dr.a went home", "--by",
                                      "dr.b", "-w", str(ws.root)])
    assert result.exit_code == 0, result.output
    assert "claim of dr.a" in result.output and "broken" in result.output
    event = Worklist(ws).events("s0001")[-1]
    assert event["kind"] == "break_claim" and event["detail"] == {"holder": "dr.a", "reason": "dr.a went home"}
    second = CaseSession(ws, "s0001", "dr.b")
    assert not second.read_only
    second.close()
    broken = [e for e in Worklist(ws).events("s0001") if e["kind"] == "break_claim"]
    nobody = CliRunner().invoke(app, ["annotate", "break-claim", "s0001", "--reason", "again", "-w", str(ws.root)])
    assert nobody.exit_code == 0 and "nobody holds it; nothing to break" in nobody.output
    assert [e for e in Worklist(ws).events("s0001") if e["kind"] == "break_claim"] == broken  # nothing recorded
    missing = CliRunner().invoke(app, ["annotate", "break-claim", "s9999", "--reason", "x", "-w", str(ws.root)])
    assert missing.exit_code != 0 and "case 's9999': not in" in missing.output
    empty = CliRunner().invoke(app, ["annotate", "break-claim", "s0001", "--reason", " ", "-w", str(ws.root)])
    assert empty.exit_code != 0 and "breaking a claim needs a reason" in empty.output


def test_next_unreviewed_structure_and_empty_rows(real_case_ws: Workspace) -> None:
    session = CaseSession(real_case_ws, "s0001", "dr.a")
    names = [c.name for c in session.label_set]
    shown = [r.name for r in session.structure_rows(hide_empty=True)]
    assert 0 < len(shown) < len(names) and all(r.voxels for r in session.structure_rows(hide_empty=True))
    first = session.next_unreviewed(hide_empty=True)
    assert first == shown[0]
    session.set_structure_state(first, "ok")
    assert session.next_unreviewed(first, hide_empty=True) == shown[1]
    assert session.next_unreviewed(shown[1], step=-1, hide_empty=True) == shown[-1]  # wraps round, skips the ok one
    assert session.next_unreviewed(names[-1]) == next(n for n in names if n != first)  # all rows, wrapping round
    for name in shown:
        session.set_structure_state(name, "ok")
    assert session.next_unreviewed(hide_empty=True) is None


def test_every_tool_writes_through_one_writer_and_empty_saves_are_refused(real_case_ws: Workspace) -> None:
    session = CaseSession(real_case_ws, "s0001", "dr.a")
    with pytest.raises(AnnotationError, match="nothing to save: no voxel differs from revision 0"):
        session.save()
    steps: list[int] = []

    def writer(indices: tuple[np.ndarray, ...], values: np.ndarray) -> None:
        steps.append(len(indices[0]))
        session.labels[indices] = values

    session.writer = writer
    liver = session.label_set.by_name("liver").index
    before = int((session.labels == liver).sum())
    erased = session.erase_box("liver", ((0, 200), (0, 200), (0, 40)))
    assert erased > 0 and steps == [erased] and int((session.labels == liver).sum()) == before - erased
    assert session.erase_box("liver", ((0, 200), (0, 200), (0, 40))) == 0 and steps == [erased]  # no empty step
    painted = session.apply(np.nonzero(session.labels[:4, :4, :4] == 0), liver)
    assert steps == [erased, painted] and session.counts()[liver] == before - erased + painted
    assert session.save().number == 1
