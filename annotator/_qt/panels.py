"""The structure panel and the correction tools of the ctcurate dock (mixins of :class:`CtcurateDock`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from annotator.session import CaseSession
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
    windows: Callable[[], dict[str, tuple[float, float]]]
    _palette: tuple[CaseSession, dict[int, tuple[int, int, int]]] | None = None
    _ended: Callable[[str], None]


def table(headers: list[str]) -> QTableWidget:
    """A read-only, single-row-selection table."""
    widget = QTableWidget(0, len(headers))
    widget.setHorizontalHeaderLabels(headers)
    widget.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    widget.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    widget.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    widget.verticalHeader().setVisible(False)
    header = widget.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)  # names are never cut
    header.setStretchLastSection(True)
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
    """Search, review state, voxel count, QA findings and comments per structure; a click selects it and jumps
    to it; next/previous unreviewed structure; empty structures hidden unless asked for."""

    # -- structures -------------------------------------------------------------------------------------
    def _structure_box(self) -> QGroupBox:
        box = QGroupBox("structures")
        layout = QVBoxLayout(box)
        self.search = QLineEdit()
        self.search.setPlaceholderText("search structures")
        self.search.textChanged.connect(lambda _: self._run(self.refresh_structures))
        self.hide_empty = QCheckBox("hide empty")
        self.hide_empty.setChecked(True)
        self.hide_empty.setToolTip("List only structures with voxels in this case")
        self.hide_empty.toggled.connect(lambda _: self._run(self.refresh_structures))
        top = QHBoxLayout()
        top.addWidget(self.search)
        top.addWidget(self.hide_empty)
        self.structures = table(["structure", "state", "voxels", "notes"])
        self.structures.setToolTip("notes: QA findings and reviewers' comments")
        self.structures.setMinimumHeight(11 * self.structures.verticalHeader().defaultSectionSize())
        self.structures.itemSelectionChanged.connect(lambda: self._run(self.select_structure))
        previous = QPushButton("◀ previous")
        previous.setToolTip("Previous unreviewed structure (Shift+P)")
        previous.clicked.connect(lambda: self._run(self.next_structure, -1))
        following = QPushButton("next ▶")
        following.setToolTip("Next unreviewed structure (N)")
        following.clicked.connect(lambda: self._run(self.next_structure, 1))
        self.state_buttons: dict[str, QPushButton] = {}
        states = QHBoxLayout()
        states.addWidget(previous)
        for state, key in ((StructureState.OK, "Shift+O"), (StructureState.CORRECTED, "Shift+C"),
                           (StructureState.ABSENT, "Shift+A")):
            button = QPushButton(state.value.replace("_", " "))
            button.setToolTip(f"Mark the selected structure {state.value} and go to the next ({key})")
            button.clicked.connect(lambda _=False, s=state: self._run(self.mark_structure, s))
            self.state_buttons[state.value] = button
            states.addWidget(button)
        states.addWidget(following)
        self.show_one = QPushButton("Show only this")
        self.show_one.setCheckable(True)
        self.show_one.toggled.connect(lambda on: self._run(self._show_selected, on))
        hide_all = QPushButton("Hide/show all")
        hide_all.clicked.connect(lambda: self._run(self._toggle_labels))
        self.contrast_colours = QCheckBox("contrast colours")
        self.contrast_colours.setChecked(True)
        self.contrast_colours.setToolTip("Colours that tell touching structures apart; off: the label set's own")
        self.contrast_colours.toggled.connect(lambda _: self._run(self.apply_colours))
        row = QHBoxLayout()
        for widget in (self.show_one, hide_all, self.contrast_colours):
            row.addWidget(widget)
        layout.addLayout(top)
        layout.addWidget(self.structures)
        layout.addLayout(states)
        layout.addLayout(row)
        return box

    def refresh_structures(self) -> None:
        session = self._need_session()
        text = self.search.text().strip().lower()
        current = self._current_structure()
        notes = session.comments()
        rows = [r for r in session.structure_rows(hide_empty=self.hide_empty.isChecked()) if text in r.name.lower()]
        fill(self.structures, [(r.name, r.state, f"{r.voxels:,}", "; ".join([*r.findings, *notes.get(r.name, [])]))
                               for r in rows])
        if current is not None:
            match = self.structures.findItems(current, Qt.MatchFlag.MatchExactly)
            if match:
                self.structures.blockSignals(True)
                self.structures.selectRow(match[0].row())
                self.structures.blockSignals(False)

    def _current_structure(self) -> str | None:
        rows = self.structures.selectionModel().selectedRows()
        item = self.structures.item(rows[0].row(), 0) if rows else None
        return str(item.text()) if item is not None else None

    def selected_structure(self) -> str:
        return selected_text(self.structures, "structure in the panel")

    def select_structure(self, name: str | None = None) -> None:
        """Make a structure the painting label and move the view to it."""
        session = self._need_session()
        if name is not None:
            match = self.structures.findItems(name, Qt.MatchFlag.MatchExactly)
            if not match:
                raise CtcurateError(f"structure {name!r} is not in the panel (clear the search, or show empty "
                                    "structures?)")
            self.structures.selectRow(match[0].row())
            return  # the selection signal comes back here
        name = self.selected_structure()
        labels = self.layers["labels"]
        labels.selected_label = session.label_set.by_name(name).index
        labels.mode = "paint" if labels.editable else "pan_zoom"
        centre = session.centre_of(name)
        if centre is not None:
            self.viewer.dims.point = centre
            self.viewer.scene.camera.center = centre

    def next_structure(self, step: int = 1) -> str | None:
        """Select the next (or previous) unreviewed structure; says so when none is left."""
        session = self._need_session()
        self.search.clear()
        name = session.next_unreviewed(self._current_structure(), step=step, hide_empty=self.hide_empty.isChecked())
        if name is None:
            self.show_message(f"{session.case_id}: every structure listed is reviewed; mark the case done")
            return None
        self.select_structure(name)
        return name

    def mark_structure(self, state: StructureState | str) -> None:
        """Set the selected structure's state and move on to the next unreviewed one."""
        self._need_session().set_structure_state(self.selected_structure(), state)
        self.refresh_structures()
        self.next_structure(1)

    def apply_colours(self) -> None:
        """The contrast palette or the label set's own colours on the labels layer (and the side views)."""
        from napari.utils.colormaps import DirectLabelColormap

        from annotator.palette import contrast_palette

        session = self._need_session()
        chosen: dict[int, tuple[int, int, int]] = {c.index: c.color for c in session.label_set}
        if self.contrast_colours.isChecked():
            # once per opened case: the side views and the toggle reuse it, and colours stay put while editing
            if self._palette is None or self._palette[0] is not session:
                self._palette = (session, contrast_palette(session.label_set, session.labels))
            chosen = self._palette[1]
        colours: dict[int | None, Any] = {None: (0, 0, 0, 0), 0: (0, 0, 0, 0)}
        colours.update({index: (*np.asarray(rgb) / 255.0, 1.0) for index, rgb in chosen.items()})
        for layer in self.label_layers():
            layer.colormap = DirectLabelColormap(color_dict=colours)

    def label_layers(self) -> list[Any]:
        """Every labels layer that shows the case (the main one first)."""
        return [self.layers["labels"]] if "labels" in self.layers else []

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
        windows = QHBoxLayout()
        for number, name in enumerate(self.windows(), 2):
            button = QPushButton(name)
            button.setToolTip(f"CT window {name} (F{number})")
            button.clicked.connect(lambda _=False, n=name: self._run(self.set_window, n))
            windows.addWidget(button)
        grid.addLayout(windows, 0, 0, 1, 4)
        undo, redo = QPushButton("Undo"), QPushButton("Redo")
        undo.setToolTip("Undo the last brush stroke or tool (Ctrl+Z)")
        redo.setToolTip("Redo (Ctrl+Shift+Z)")
        undo.clicked.connect(lambda: self._run(self.undo))
        redo.clicked.connect(lambda: self._run(self.redo))
        grid.addWidget(undo, 4, 0)
        grid.addWidget(redo, 4, 1)
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
        windows = self.windows()
        if name not in windows:
            raise CtcurateError(f"window {name!r}: expected one of {', '.join(windows)}")
        for layer in self.image_layers():
            layer.contrast_limits = windows[name]

    def image_layers(self) -> list[Any]:
        return [self.layers["ct"]] if "ct" in self.layers else []

    def undo(self) -> None:
        """Undo the last step (a brush stroke or a tool) in the one history of the labels layer."""
        session = self._need_session()
        self.layers["labels"].undo()
        self._edited()
        self.show_message(f"{session.case_id}: last step undone (Ctrl+Shift+Z redoes it)")

    def redo(self) -> None:
        session = self._need_session()
        self.layers["labels"].redo()
        self._edited()
        self.show_message(f"{session.case_id}: step redone")

    def _edited(self) -> None:
        """After any change of the labels: counts and other views follow (at most a few times a second)."""
        for layer in self.label_layers()[1:]:
            layer.refresh()
        self.refresh_structures()

    def _tool(self, method: str, *args: Any) -> int:
        session = self._need_session()
        name = self.selected_structure()
        changed = int(getattr(session, method)(name, *args))
        self._edited()
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

