"""Annotation at a clinic's pace, in napari under Xvfb on the real 117-class case: one undo history for strokes
and tools, counts that follow each stroke, next structure and shortcuts, three linked views and the cursor
readout, the live worklist and broken claims, contrast colours, the reviewer, closing and reopening."""

from __future__ import annotations

import numpy as np

from annotator.session import CaseSession
from curation import Workspace
from curation.annotation.revisions import RevisionStore
from curation.annotation.worklist import Worklist


def _voxels(dock, name: str) -> int:
    match = dock.structures.findItems(name, __import__("qtpy.QtCore").QtCore.Qt.MatchFlag.MatchExactly)
    return int(dock.structures.item(match[0].row(), 2).text().replace(",", ""))


def test_one_undo_history_for_strokes_and_tools(dock, qtbot) -> None:
    dock.open_case("s0001")
    labels, session = dock.layers["labels"], dock.session
    liver = session.label_set.by_name("liver").index
    dock.select_structure("liver")
    start = labels.data.copy()
    # a brush stroke (napari records it), then a dock tool
    z, y, x = np.nonzero(labels.data[:4, :4, :4] == 0)
    labels.data_setitem((z, y, x), liver)
    qtbot.waitUntil(lambda: _voxels(dock, "liver") == int((start == liver).sum()) + len(z), timeout=3000)
    removed = dock._tool("remove_islands")
    assert removed > 0 and _voxels(dock, "liver") == int((labels.data == liver).sum())
    dock.undo()  # Ctrl+Z: the tool first ...
    assert int((labels.data == liver).sum()) == int((start == liver).sum()) + len(z)
    dock.undo()  # ... then the stroke
    assert np.array_equal(labels.data, start) and _voxels(dock, "liver") == int((start == liver).sum())
    dock.redo()
    dock.redo()
    assert int((labels.data == liver).sum()) == int((start == liver).sum()) + len(z) - removed
    assert session.labels is labels.data  # one array: what the session saves is what napari shows


def test_next_structure_empty_rows_and_shortcuts(dock, qtbot) -> None:
    from qtpy.QtCore import Qt

    dock.open_case("s0001")
    shown = dock.structures.rowCount()
    assert 0 < shown < len(dock.session.label_set)  # empty structures hidden
    dock.hide_empty.setChecked(False)
    assert dock.structures.rowCount() == len(dock.session.label_set)
    dock.hide_empty.setChecked(True)
    first = dock.next_structure(1)
    assert dock.selected_structure() == first
    dock.mark_structure("ok")  # and on to the next unreviewed
    second = dock.selected_structure()
    assert second != first and dock.session.worklist.structures("s0001")[first] == "ok"
    # the keys, pressed on the canvas
    canvas = dock.viewer.window._qt_viewer.canvas.native
    canvas.setFocus()
    qtbot.keyClick(canvas, Qt.Key.Key_O, Qt.KeyboardModifier.ShiftModifier)
    assert dock.session.worklist.structures("s0001")[second] == "ok"
    qtbot.keyClick(canvas, Qt.Key.Key_F3)
    assert tuple(dock.layers["ct"].contrast_limits) == (-500.0, 1300.0)  # bone
    qtbot.keyClick(canvas, Qt.Key.Key_F1)
    assert not dock.help.isHidden() and "Shift+S" in dock.help.text()
    assert "next unreviewed structure" in dock.help.text()
    qtbot.keyClick(canvas, Qt.Key.Key_S, Qt.KeyboardModifier.ShiftModifier)
    assert "nothing to save" in dock.message.text()  # an empty save is refused, with the reason


def test_three_linked_views_and_the_cursor(dock, qtbot) -> None:
    dock.open_case("s0001")
    views = dock.views
    qtbot.waitUntil(lambda: set(views.layers) == {"coronal", "sagittal"}, timeout=5000)  # just after the axial
    for name, layers in views.layers.items():
        assert layers["labels"].data is dock.layers["labels"].data and layers["ct"].data is dock.layers["ct"].data
        assert list(views.models[name].dims.displayed) == list(views.models[name].dims.order[-2:])
    centre = dock.session.centre_of("liver")
    dock.viewer.dims.point = centre
    assert np.allclose(views.models["coronal"].dims.point, centre, atol=3)
    # a click in a side view moves the main view's slice there
    target = (centre[0] + 30, centre[1], centre[2])

    class Click:
        position = target

    views._clicked(views.models["sagittal"], Click())
    assert abs(dock.viewer.dims.point[0] - target[0]) < 3
    # HU and structure under the cursor, whatever the mode
    dock.layers["labels"].mode = "pan_zoom"
    dock.viewer.cursor.position = centre
    dock._cursor_moved(dock.viewer, None)
    assert "· liver ·" in dock.cursor_readout.text() and dock.cursor_readout.text().startswith("HU ")
    # contrast colours by default; the label set's own one click away
    liver, spleen = (dock.session.label_set.by_name(n) for n in ("liver", "spleen"))
    colours = dock.layers["labels"].colormap.color_dict
    assert not np.allclose(colours[liver.index][:3], np.asarray(liver.color) / 255)
    dock.contrast_colours.setChecked(False)
    for layer in dock.label_layers():
        assert np.allclose(layer.colormap.color_dict[spleen.index][:3], np.asarray(spleen.color) / 255)


def test_live_worklist_and_breaking_a_claim(dock, real_case_ws: Workspace, qtbot) -> None:
    dock.worklist_timer.setInterval(200)
    Worklist(real_case_ws).claim("s0001", "dr.b")  # at another seat
    qtbot.waitUntil(lambda: dock.worklist.item(0, 2).text() == "dr.b", timeout=5000)
    dock.worklist.selectRow(0)
    dock._run(dock.break_claim)
    assert "needs a reason" in dock.message.text()
    dock.claim_reason.setText("dr.b left")
    dock.break_claim()
    assert "claim of dr.b broken" in dock.message.text() and dock.worklist.item(0, 2).text() == ""
    event = Worklist(real_case_ws).events("s0001")[-1]
    assert event["actor"] == "dr.a" and event["detail"]["reason"] == "dr.b left"


def test_the_reviewer(make_napari_viewer, real_case_ws: Workspace) -> None:
    from annotator._qt import CtcurateDock

    def seat(who: str) -> CtcurateDock:  # a viewer with the dock in it, as 'ctcurate annotate' opens it
        viewer = make_napari_viewer()
        widget = CtcurateDock(viewer, real_case_ws, who)
        viewer.window.add_dock_widget(widget, name="ctcurate", area="right")
        return widget

    session = CaseSession(real_case_ws, "s0001", "dr.a")
    session.erase_box("liver", ((0, 200), (0, 200), (0, 40)))
    session.save()
    session.mark_done()
    own = seat("dr.a")
    own.open_case("s0001")
    own._run(own.review_case, "approved")
    assert "cannot approve it (two-person rule)" in own.message.text()
    own.finish()
    dock = seat("dr.b")
    dock.filter.setCurrentText("awaiting review")
    assert dock.worklist.rowCount() == 1 and dock.worklist.item(0, 4).text() == "awaiting"
    dock.open_case("s0001")
    assert "revision 1 by dr.a: not reviewed" in dock.review_state.text()
    dock.select_structure("liver")
    dock.review_comment.setText("upper edge trimmed well")
    dock.comment_structure()
    dock.review_comment.setText("checked")
    dock.review_case("approved")
    assert "revision 1 by dr.a approved by dr.b" in dock.message.text() and dock.session is None
    assert dock.structures.rowCount() == 0 and dock.review_state.text() == ""  # nothing of the case stays
    assert RevisionStore(real_case_ws).statuses("s0001")[1] == "approved"
    assert dock.worklist.rowCount() == 0  # nothing awaits review any more
    assert CaseSession(real_case_ws, "s0001", "dr.c").comments() == {"liver": ["dr.b: upper edge trimmed well"]}
    dock.finish()


def test_close_and_reopen_and_closing_with_unsaved_edits(dock, real_case_ws: Workspace, qtbot) -> None:
    for _ in range(3):  # open, select, close, again: never a crash, never a claim left behind
        dock.open_case("s0001")
        dock.select_structure("liver")
        qtbot.wait(50)
        dock.close_case()
        assert Worklist(real_case_ws).claim_of("s0001") is None and not dock.views.layers
    dock.open_case("s0001")
    labels = dock.layers["labels"]
    labels.data_setitem(np.nonzero(labels.data[:3, :3, :3] == 0), 5)
    assert not dock.confirm_close("cancel") and dock.session is not None
    assert dock.confirm_close("keep") and dock.session.recovery() is not None
    assert dock.confirm_close("discard") and not dock.session.changed() and dock.session.recovery() is None
    labels.data_setitem(np.nonzero(labels.data[:3, :3, :3] == 0), 5)
    assert dock.confirm_close("save") and RevisionStore(real_case_ws).latest("s0001").number == 1
    labels.data_setitem(np.nonzero(labels.data[:3, :3, :3] == 5), 7)
    dock._run(dock.confirm_close, "later")
    assert "answer 'later': expected one of save, keep, discard, cancel" in dock.message.text()


def test_the_window_asks_before_closing_and_opens_large(real_case_ws: Workspace, make_napari_viewer, monkeypatch,
                                                        qtbot) -> None:
    import napari

    from annotator._qt.dock import CtcurateDock
    from annotator.viewer import open_viewer

    monkeypatch.setattr(napari, "Viewer", make_napari_viewer)  # the test's viewer factory cleans up after itself
    viewer, dock = open_viewer(real_case_ws, case="s0001", annotator="dr.a", show=True)
    window = viewer.window._qt_window
    rows = dock.worklist.viewport().height() / dock.worklist.verticalHeader().defaultSectionSize()
    assert rows >= 8, rows
    labels = dock.layers["labels"]
    labels.data_setitem(np.nonzero(labels.data[:3, :3, :3] == 0), 5)
    monkeypatch.setattr(CtcurateDock, "confirm_close", lambda self, answer=None: False)  # "Cancel"
    window.close()
    assert window.isVisible() and dock.session is not None
    monkeypatch.setattr(CtcurateDock, "confirm_close", lambda self, answer=None: True)
    from qtpy.QtGui import QCloseEvent

    assert not dock._close_guard.eventFilter(window, QCloseEvent())  # the close goes ahead (the fixture closes)
    assert dock.session is None and Worklist(real_case_ws).claim_of("s0001") is None  # the close ended it
