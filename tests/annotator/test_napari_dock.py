"""The napari dock under Xvfb on a real case: open from the worklist, colours and names, paint, save, reopen."""

from __future__ import annotations

import numpy as np

from curation import Workspace
from curation.annotation.revisions import RevisionStore


def test_open_paint_save_reopen(dock, real_case_ws: Workspace, qtbot) -> None:
    from qtpy.QtCore import Qt

    viewer, label_set = dock.viewer, real_case_ws.label_set()
    assert dock.worklist.rowCount() == 1 and dock.worklist.item(0, 0).text() == "s0001"
    dock.worklist.selectRow(0)
    qtbot.mouseClick(dock.open_button, Qt.MouseButton.LeftButton)
    assert dock.message.styleSheet() == "", dock.message.text()
    labels = viewer.layers["s0001 labels"]
    liver = label_set.by_name("liver")
    dock.contrast_colours.setChecked(False)  # the label set's own colours
    assert np.allclose(labels.colormap.color_dict[liver.index][:3], np.asarray(liver.color) / 255)
    names = dict(zip(labels.features["index"], labels.features["name"], strict=True))
    assert names[liver.index] == "liver" and len(names) == len(label_set) + 1
    assert dock.worklist.item(0, 1).text() == "in_progress" and dock.worklist.item(0, 2).text() == "dr.a"
    # choose the liver in the panel: it becomes the painting label and the view jumps to it
    dock.search.setText("liv")
    assert dock.structures.rowCount() == 1
    dock.structures.selectRow(0)
    assert labels.selected_label == liver.index and labels.mode == "paint"
    assert abs(viewer.dims.point[0] - dock.session.centre_of("liver")[0]) < 3
    # the name of the structure under the cursor: a liver voxel on the slice shown
    z = int(round(labels.world_to_data(viewer.dims.point)[0]))
    y, x = np.argwhere(labels.data[z] == liver.index)[0]
    status = labels.get_status(labels.data_to_world((z, y, x)), world=True, dims_displayed=list(viewer.dims.displayed),
                               view_direction=viewer.scene.camera.view_direction)
    assert "name: liver" in status["coordinates"], status
    # paint programmatically: a block of background voxels
    z, y, x = np.nonzero(labels.data[:6, :6, :6] == 0)
    painted = len(z)
    labels.data_setitem((z, y, x), liver.index)
    qtbot.mouseClick(dock.save_button, Qt.MouseButton.LeftButton)
    assert "saved revision 1" in dock.message.text(), dock.message.text()
    revision = RevisionStore(real_case_ws).latest("s0001")
    assert revision.number == 1 and revision.changes == {"liver": painted} and revision.author == "dr.a"
    saved = labels.data.copy()
    dock.close_case()
    assert "s0001 labels" not in viewer.layers
    dock.open_case("s0001")
    assert np.array_equal(viewer.layers["s0001 labels"].data, saved)
    shot = real_case_ws.root / "screenshots" / "annotator.png"
    shot.parent.mkdir(exist_ok=True)
    image = viewer.screenshot(path=str(shot), canvas_only=False, flash=False)
    assert shot.is_file() and image.std() > 0


def test_errors_are_shown_in_the_dock(dock, real_case_ws: Workspace) -> None:
    dock._run(dock.save)
    assert "open a case from the worklist first" in dock.message.text() and "ff6060" in dock.message.styleSheet()
    dock.open_case("s0001")
    dock._run(dock._tool, "fill_holes")
    assert "select a structure in the panel" in dock.message.text()
    dock.select_structure("spleen")
    dock._run(dock._tool, "interpolate", 0, 2)
    assert "slice 0 holds none of it" in dock.message.text()
    dock.set_window("bone")
    assert tuple(dock.layers["ct"].contrast_limits) == (-500.0, 1300.0)


def test_a_claimed_case_opens_read_only(make_napari_viewer, real_case_ws: Workspace) -> None:
    from annotator._qt import CtcurateDock
    from curation.annotation.worklist import Worklist

    Worklist(real_case_ws).claim("s0001", "dr.b")
    viewer = make_napari_viewer()
    dock = CtcurateDock(viewer, real_case_ws, "dr.a")
    dock.open_case("s0001")
    assert "read-only" in dock.message.text() and "claimed by dr.b" in dock.message.text()
    assert not viewer.layers["s0001 labels"].editable
    dock._run(dock.save)
    assert "open read-only" in dock.message.text()
    dock.finish()


def test_cli_opens_napari_on_a_case(real_case_ws: Workspace, monkeypatch, qtbot) -> None:
    import napari

    from ctcurate.cli import app
    from curation.annotation.worklist import Worklist
    from tests.cli_runner import CliRunner

    opened = {}

    def run() -> None:  # instead of handing control to the user: look, then close
        viewer = napari.current_viewer()
        opened["layers"] = [layer.name for layer in viewer.layers]
        viewer.close()

    monkeypatch.setattr(napari, "run", run)
    result = CliRunner().invoke(app, ["annotate", str(real_case_ws.root), "--case", "s0001", "--user", "dr.c"])
    assert result.exit_code == 0, result.output
    assert opened["layers"] == ["s0001 CT", "s0001 labels"]
    work = Worklist(real_case_ws)
    assert work.claim_of("s0001") is None and work.events("s0001")[-1]["kind"] == "release"  # on closing
    assert [e["actor"] for e in work.events("s0001")] == ["dr.c", "dr.c"]
    status = CliRunner().invoke(app, ["annotate", "status", "-w", str(real_case_ws.root)])
    assert status.exit_code == 0 and "in_progress" in status.output
