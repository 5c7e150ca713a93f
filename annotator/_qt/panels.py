"""The structure panel and the correction tools of the ctcurate dock (mixins of :class:`CtcurateDock`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from annotator.session import WINDOWS, CaseSession
from curation.annotation.worklist import StructureState
from curation.errors import CtcurateError


class _DockState:
    """What the panels use of the dock (declared for type checkers)."""

    viewer: Any
    layers: dict[str, Any]
    session: CaseSession | None
    _run: Callable[..., Any]
    _need_session: Callable[[], CaseSession]
    show_message: Callable[..., None]


def table(headers: list[str]) -> QTableWidget:
    """A read-only, single-row-selection table."""
    widget = QTableWidget(0, len(headers))
    widget.setHorizontalHeaderLabels(headers)
    widget.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    widget.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    widget.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    widget.verticalHeader().setVisible(False)
    return widget


def fill(widget: QTableWidget, rows: list[tuple[str, ...]]) -> None:
    """Replace a table's rows (without emitting selection signals meanwhile)."""
    widget.blockSignals(True)
    widget.setRowCount(len(rows))
    for r, values in enumerate(rows):
        for c, value in enumerate(values):
            widget.setItem(r, c, QTableWidgetItem(value))
    widget.blockSignals(False)


def selected_text(widget: QTableWidget, what: str) -> str:
    """First column of the selected row; asks the user to select ``what`` when nothing is."""
    rows = widget.selectionModel().selectedRows()
    item = widget.item(rows[0].row(), 0) if rows else None
    if item is None:
        raise CtcurateError(f"select a {what}")
    return str(item.text())


class StructurePanel(_DockState):
    """Search, review state, voxel count and QA findings per structure; a click selects it and jumps to it."""

    # -- structures -------------------------------------------------------------------------------------
    def _structure_box(self) -> QGroupBox:
        box = QGroupBox("structures")
        layout = QVBoxLayout(box)
        self.search = QLineEdit()
        self.search.setPlaceholderText("search structures")
        self.search.textChanged.connect(lambda _: self._run(self.refresh_structures))
        self.structures = table(["structure", "state", "voxels", "QA findings"])
        self.structures.itemSelectionChanged.connect(lambda: self._run(self.select_structure))
        self.state = QComboBox()
        self.state.addItems([s.value for s in StructureState])
        set_state = QPushButton("Set state")
        set_state.clicked.connect(lambda: self._run(self.set_state))
        self.show_one = QPushButton("Show only this")
        self.show_one.setCheckable(True)
        self.show_one.toggled.connect(lambda on: self._run(self._show_selected, on))
        hide_all = QPushButton("Hide/show all")
        hide_all.clicked.connect(lambda: self._run(self._toggle_labels))
        row = QHBoxLayout()
        for widget in (self.state, set_state, self.show_one, hide_all):
            row.addWidget(widget)
        layout.addWidget(self.search)
        layout.addWidget(self.structures)
        layout.addLayout(row)
        return box

    def refresh_structures(self) -> None:
        session = self._need_session()
        text = self.search.text().strip().lower()
        rows = [r for r in session.structure_rows() if text in r.name.lower()]
        fill(self.structures, [(r.name, r.state, f"{r.voxels:,}", ", ".join(r.findings)) for r in rows])

    def selected_structure(self) -> str:
        return selected_text(self.structures, "structure in the panel")

    def select_structure(self, name: str | None = None) -> None:
        """Make a structure the painting label and move the view to it."""
        session = self._need_session()
        if name is not None:
            match = self.structures.findItems(name, Qt.MatchFlag.MatchExactly)
            if not match:
                raise CtcurateError(f"structure {name!r} is not in the panel (clear the search?)")
            self.structures.selectRow(match[0].row())
            return  # the selection signal comes back here
        name = self.selected_structure()
        labels = self.layers["labels"]
        labels.selected_label = session.label_set.by_name(name).index
        labels.mode = "paint" if labels.editable else "pan_zoom"
        centre = session.centre_of(name)
        if centre is not None:
            self.viewer.dims.set_point(0, centre[0])
            self.viewer.scene.camera.center = centre

    def set_state(self) -> None:
        self._need_session().set_structure_state(self.selected_structure(), self.state.currentText())
        self.refresh_structures()

    def _show_selected(self, on: bool) -> None:
        self.layers["labels"].show_selected_label = on

    def _toggle_labels(self) -> None:
        self.layers["labels"].visible = not self.layers["labels"].visible



class ToolsPanel(StructurePanel):
    """CT windows and the correction helpers, applied to the selected structure."""

    # -- tools ------------------------------------------------------------------------------------------
    def _tools_box(self) -> QGroupBox:
        box = QGroupBox("tools (selected structure)")
        grid = QGridLayout(box)
        for column, name in enumerate(WINDOWS):
            button = QPushButton(name)
            button.clicked.connect(lambda _=False, n=name: self._run(self.set_window, n))
            grid.addWidget(button, 0, column)
        self.min_voxels = QSpinBox()
        self.min_voxels.setRange(0, 10_000_000)
        self.min_voxels.setToolTip("0: keep only the largest piece; else remove pieces under this many voxels")
        islands = QPushButton("Remove islands")
        islands.clicked.connect(lambda: self._run(self._tool, "remove_islands",
                                                  self.min_voxels.value() or None))
        holes = QPushButton("Fill holes")
        holes.clicked.connect(lambda: self._run(self._tool, "fill_holes"))
        self.first_slice, self.last_slice, self.box_depth = QSpinBox(), QSpinBox(), QSpinBox()
        for spin in (self.first_slice, self.last_slice, self.box_depth):
            spin.setRange(0, 100_000)
        interpolate = QPushButton("Interpolate slices")
        interpolate.clicked.connect(lambda: self._run(self._tool, "interpolate", self.first_slice.value(),
                                                      self.last_slice.value()))
        erase = QPushButton("Erase in box")
        erase.setToolTip("Draw a rectangle in the 'box' shapes layer; erases the structure in it, +/- depth slices")
        erase.clicked.connect(lambda: self._run(self.erase_in_box))
        grid.addWidget(QLabel("min voxels"), 1, 0)
        grid.addWidget(self.min_voxels, 1, 1)
        grid.addWidget(islands, 1, 2)
        grid.addWidget(holes, 1, 3)
        grid.addWidget(self.first_slice, 2, 0)
        grid.addWidget(self.last_slice, 2, 1)
        grid.addWidget(interpolate, 2, 2)
        grid.addWidget(QLabel("box depth"), 3, 0)
        grid.addWidget(self.box_depth, 3, 1)
        grid.addWidget(erase, 3, 2)
        return box

    def set_window(self, name: str) -> None:
        self._need_session()
        self.layers["ct"].contrast_limits = WINDOWS[name]

    def _tool(self, method: str, *args: Any) -> int:
        session = self._need_session()
        name = self.selected_structure()
        changed = int(getattr(session, method)(name, *args))
        self.layers["labels"].refresh()
        self.refresh_structures()
        self.show_message(f"{method.replace('_', ' ')}: {changed} voxels of {name} changed")
        return changed

    def erase_in_box(self) -> int:
        session = self._need_session()
        if "box" not in self.viewer.layers:
            self.viewer.add_shapes(name="box", ndim=3, affine=session.affine)
            raise CtcurateError("draw a rectangle in the 'box' layer, then press Erase in box again")
        shapes = self.viewer.layers["box"]
        if not len(shapes.data):
            raise CtcurateError("draw a rectangle in the 'box' layer first")
        corners = np.asarray([self.layers["labels"].world_to_data(shapes.data_to_world(p)) for p in shapes.data[-1]])
        low, high = np.floor(corners.min(axis=0)).astype(int), np.ceil(corners.max(axis=0)).astype(int)
        depth = self.box_depth.value()
        box = ((low[0] - depth, high[0] + depth), (low[1], high[1]), (low[2], high[2]))
        return int(self._tool("erase_box", box))

