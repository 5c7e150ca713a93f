"""Open napari with the ctcurate dock (``ctcurate annotate``), optionally on one case."""

from __future__ import annotations

from typing import Any

from curation import Workspace

__all__ = ["open_viewer", "WINDOW_SIZE"]

#: the window's size on opening (pixels); Qt shrinks it to the screen
WINDOW_SIZE = (1600, 1000)


def open_viewer(ws: Workspace, *, case: str | None = None, annotator: str | None = None,
                database_url: str | None = None, show: bool = True) -> tuple[Any, Any]:
    """A napari viewer with the dock on the right, the worklist loaded and ``case`` open; returns (viewer, dock).

    Call ``napari.run()`` afterwards to hand control to the user.
    """
    import napari

    from ._qt import CtcurateDock

    viewer = napari.Viewer(title=f"ctcurate - {ws.settings.name}", show=show)
    dock = CtcurateDock(viewer, ws, annotator, database_url)
    viewer.window.add_dock_widget(dock, name="ctcurate", area="right")
    viewer.window.resize(*WINDOW_SIZE)  # room for the dock's worklist (8 rows and more) and the side views
    if case:
        dock._run(dock.open_case, case)
    return viewer, dock
