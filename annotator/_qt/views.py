"""Coronal and sagittal views beside napari's axial one, on the same data and one cursor, and the readout of HU
and structure under the cursor (napari's multiple-viewer pattern: extra viewer models drawn by their own
``QtViewer``, their layers sharing the main layers' arrays).

The side views follow the main view's position (its slice and the point last clicked); clicking in a side
view moves every view there. Painting happens in the main view (one undo history); the side views show each
stroke as it lands. Arrays are (z, y, x); the viewers' world coordinates are LPS millimetres in (z, y, x).
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QLabel, QSplitter, QVBoxLayout, QWidget

__all__ = ["OrthoViews", "cursor_text"]

#: side view name -> dims order (the last two axes are shown: (z, x) coronal, (z, y) sagittal)
ORDERS = {"coronal": (1, 0, 2), "sagittal": (2, 0, 1)}


def cursor_text(session: Any, ct_layer: Any, world: Any) -> str:
    """'HU 45 · liver (z, y, x)' at a world position (z, y, x mm), or '' outside the volume."""
    index = np.round(np.asarray(ct_layer.world_to_data(world), dtype=float)).astype(int)
    shape = session.labels.shape
    if len(index) != 3 or np.any(index < 0) or np.any(index >= shape):
        return ""
    z, y, x = (int(v) for v in index)
    value = int(session.labels[z, y, x])
    name = session.label_set.by_index(value).name if value else "background"
    return f"HU {int(session.ct.array[z, y, x])} · {name} · voxel ({z}, {y}, {x})"


class OrthoViews(QWidget):
    """Two side views (coronal, sagittal) of the open case, linked to the main viewer."""

    def __init__(self, main: Any) -> None:
        super().__init__()
        from napari._qt.qt_viewer import QtViewer
        from napari.components.viewer_model import ViewerModel

        self.main = main
        self.models: dict[str, Any] = {}
        self.widgets: dict[str, Any] = {}
        self.layers: dict[str, dict[str, Any]] = {}
        self._syncing = False
        splitter = QSplitter()
        for name, order in ORDERS.items():
            model = ViewerModel(title=name, ndisplay=2)
            model.dims.ndim = 3
            model.dims.order = order
            model.scene.camera.orientation2d = ("up", "right")  # head at the top
            widget = QtViewer(model)
            box = QWidget()
            layout = QVBoxLayout(box)
            layout.setContentsMargins(0, 0, 0, 0)
            layout.addWidget(QLabel(name))
            layout.addWidget(widget)
            splitter.addWidget(box)
            model.mouse_drag_callbacks.append(self._clicked)
            self.models[name], self.widgets[name] = model, widget
        self.setMinimumHeight(300)  # a dock area at the bottom would otherwise squeeze them to their sliders
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(splitter)
        main.dims.events.point.connect(self._follow)

    # -- layers -----------------------------------------------------------------------------------------
    def show_case(self, ct: Any, labels: Any) -> None:
        """Show the main viewer's CT and labels layers in both side views (same arrays, same colours)."""
        self.clear()
        for name, model in self.models.items():
            image = model.add_image(ct.data, name=ct.name, affine=ct.affine, colormap="gray",
                                    contrast_limits=ct.contrast_limits)
            side = model.add_labels(labels.data, name=labels.name, affine=labels.affine, colormap=labels.colormap,
                                    opacity=labels.opacity)
            side.editable = False
            model.dims.order = ORDERS[name]
            model.reset_view()
            self.layers[name] = {"ct": image, "labels": side}
        ct.events.contrast_limits.connect(self._contrast)
        self._follow()
        QTimer.singleShot(200, self._fit)  # once the views have their size

    def _fit(self) -> None:
        for model in self.models.values():
            model.reset_view()

    def close_viewers(self) -> None:
        """Close the side viewers' widgets (the window is going away)."""
        self.clear()
        for widget in self.widgets.values():
            with contextlib.suppress(RuntimeError):  # deleted with the window already
                widget.close()
        self.widgets = {}

    def clear(self) -> None:
        for model in self.models.values():
            if len(model.layers):
                model.layers.clear()
        self.layers = {}

    def image_layers(self) -> list[Any]:
        return [v["ct"] for v in self.layers.values()]

    def label_layers(self) -> list[Any]:
        return [v["labels"] for v in self.layers.values()]

    def _contrast(self, event: Any) -> None:
        for layer in self.image_layers():
            layer.contrast_limits = event.source.contrast_limits

    # -- one cursor -------------------------------------------------------------------------------------
    def _follow(self, _: Any = None) -> None:
        """The side views go to the main view's position."""
        if self._syncing or not self.layers:
            return
        self._syncing = True
        try:
            for model in self.models.values():
                model.dims.point = self.main.dims.point
        finally:
            self._syncing = False

    def _clicked(self, model: Any, event: Any) -> None:
        """A click in a side view moves every view to that point (the main view's slice included)."""
        if self.layers:
            self.main.dims.point = tuple(float(v) for v in event.position)
