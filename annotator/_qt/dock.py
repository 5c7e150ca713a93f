"""The ctcurate dock in napari: worklist, structure panel, correction tools, save / done / exclude.

All logic lives in :class:`annotator.session.CaseSession`; this widget shows its state and forwards
clicks to it. Every action runs through :meth:`CtcurateDock._run`, which shows an error in the dock
(red line) instead of raising into napari.
"""

from __future__ import annotations

import getpass
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from annotator.session import WINDOWS, CaseSession
from curation import Workspace
from curation.annotation.worklist import EXCLUSION_REASONS
from curation.errors import CtcurateError

from .panels import ToolsPanel, fill, selected_text, table

__all__ = ["CtcurateDock", "make_dock"]

log = logging.getLogger(__name__)
FILTERS = ("all", "mine", "to do", "flagged")


class CtcurateDock(ToolsPanel, QWidget):
    """Dock widget: pick a case, correct it structure by structure, save revisions."""

    def __init__(self, viewer: Any, workspace: Workspace | None = None, annotator: str | None = None,
                 database_url: str | None = None) -> None:
        super().__init__()
        self.viewer, self.workspace, self.database_url = viewer, workspace, database_url
        self.session: CaseSession | None = None
        self.layers: dict[str, Any] = {}
        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        self.annotator = QLineEdit(annotator or getpass.getuser())
        self.annotator.setToolTip("Your name, as it goes into the revisions")
        self.workspace_button = QPushButton("Workspace…")
        self.workspace_button.clicked.connect(lambda: self._run(self._choose_workspace))
        top.addWidget(QLabel("annotator"))
        top.addWidget(self.annotator)
        top.addWidget(self.workspace_button)
        layout.addLayout(top)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        layout.addWidget(self.message)
        layout.addWidget(self._worklist_box())
        layout.addWidget(self._structure_box())
        layout.addWidget(self._tools_box())
        layout.addWidget(self._case_box())
        self.autosave_timer = QTimer(self)
        self.autosave_timer.timeout.connect(lambda: self._run(self._autosave))
        if workspace is not None:
            self._run(self.refresh_worklist)

    # -- plumbing ---------------------------------------------------------------------------------------
    def _run(self, action: Callable[..., Any], *args: Any) -> Any:
        """Run an action; show a user error in the dock instead of raising it into napari."""
        try:
            return action(*args)
        except (CtcurateError, OSError, ValueError, KeyError) as exc:
            text = str(exc) if isinstance(exc, CtcurateError) else f"{type(exc).__name__}: {exc}"
            self.show_message(text, error=True)
            log.error("%s", text)
            return None

    def show_message(self, text: str, *, error: bool = False) -> None:
        self.message.setText(text)
        self.message.setStyleSheet("color: #ff6060;" if error else "")

    def _need_session(self) -> CaseSession:
        if self.session is None:
            raise CtcurateError("open a case from the worklist first")
        return self.session

    def _choose_workspace(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "ctcurate workspace")
        if folder:
            self.set_workspace(Workspace.open(Path(folder)))

    def set_workspace(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.refresh_worklist()

    # -- worklist ---------------------------------------------------------------------------------------
    def _worklist_box(self) -> QGroupBox:
        box = QGroupBox("worklist")
        layout = QVBoxLayout(box)
        self.filter = QComboBox()
        self.filter.addItems(FILTERS)
        self.filter.currentTextChanged.connect(lambda _: self._run(self.refresh_worklist))
        self.worklist = table(["case", "status", "claimed by", "findings"])
        self.worklist.cellDoubleClicked.connect(lambda row, _: self._run(self.open_selected))
        self.open_button = QPushButton("Open")
        self.open_button.clicked.connect(lambda: self._run(self.open_selected))
        row = QHBoxLayout()
        row.addWidget(QLabel("show"))
        row.addWidget(self.filter)
        row.addWidget(self.open_button)
        layout.addLayout(row)
        layout.addWidget(self.worklist)
        return box

    def refresh_worklist(self) -> None:
        if self.workspace is None:
            raise CtcurateError("choose a workspace (Workspace…)")
        from annotator.effort import worklist_summary

        cases = worklist_summary(self.workspace, self.database_url).cases
        who = self.annotator.text().strip()
        chosen = self.filter.currentText()
        if chosen == "mine":
            cases = cases[(cases["claimant"] == who) | (cases["annotator"] == who)]
        elif chosen == "to do":
            cases = cases[cases["status"].isin(["todo", "in_progress"])]
        elif chosen == "flagged":
            cases = cases[cases["findings"] > 0]
        fill(self.worklist, [(str(r.case_id), str(r.status), str(r.claimant), str(r.findings))
                             for r in cases.itertuples()])

    def open_selected(self) -> None:
        self.open_case(selected_text(self.worklist, "case in the worklist"))

    def open_case(self, case_id: str) -> None:
        """Claim and show a case (read-only if someone else holds it)."""
        if self.workspace is None:
            raise CtcurateError("choose a workspace (Workspace…)")
        self.close_case()
        session = CaseSession(self.workspace, case_id, self.annotator.text(), database_url=self.database_url)
        self.session = session
        label_set = session.label_set
        ct = self.viewer.add_image(session.ct.array, name=f"{case_id} CT", affine=session.affine, colormap="gray",
                                   contrast_limits=WINDOWS["soft tissue"])
        from napari.utils.colormaps import DirectLabelColormap

        colors: dict[int | None, Any] = {None: (0, 0, 0, 0), 0: (0, 0, 0, 0)}
        colors.update({c.index: (*np.asarray(c.color) / 255.0, 1.0) for c in label_set})
        features = pd.DataFrame({"index": [0, *(c.index for c in label_set)],
                                 "name": ["background", *(c.name for c in label_set)]})
        labels = self.viewer.add_labels(session.labels, name=f"{case_id} labels", affine=session.affine,
                                        colormap=DirectLabelColormap(color_dict=colors), features=features,
                                        opacity=0.5)
        labels.editable = not session.read_only
        labels.events.paint.connect(lambda _: session.note_activity())
        self.layers = {"ct": ct, "labels": labels}
        self.refresh_structures()
        recovery = session.recovery()
        self.restore_button.setEnabled(recovery is not None)
        if session.read_only:
            self.show_message(f"{case_id}: read-only. {session.read_only_reason}")
        elif recovery is not None:
            self.show_message(f"{case_id}: unsaved edits from {recovery['time']} can be restored (Restore)")
        else:
            self.show_message(f"{case_id}: revision {session.parent} open for {session.annotator}")
        if not session.read_only and self.workspace is not None:
            self.autosave_timer.start(1000 * self.workspace.settings.annotation.autosave_seconds)
        self.refresh_worklist()

    def finish(self) -> None:
        """When the viewer has closed: keep unsaved edits in the recovery slot and release the claim."""
        if self.session is not None:
            self.session.autosave()
            self.session.close()
            self.session = None

    def close_case(self) -> None:
        if self.session is None:
            return
        self.session.autosave()
        self.session.close()
        self.session = None
        self._drop_layers()

    # -- case -------------------------------------------------------------------------------------------
    def _case_box(self) -> QGroupBox:
        box = QGroupBox("case")
        grid = QGridLayout(box)
        self.comment = QLineEdit()
        self.comment.setPlaceholderText("comment")
        self.save_button = QPushButton("Save revision")
        self.save_button.clicked.connect(lambda: self._run(self.save))
        self.restore_button = QPushButton("Restore")
        self.restore_button.setEnabled(False)
        self.restore_button.clicked.connect(lambda: self._run(self.restore))
        done = QPushButton("Mark done")
        done.clicked.connect(lambda: self._run(self.mark_done))
        self.reason = QComboBox()
        for code, wording in EXCLUSION_REASONS.items():
            self.reason.addItem(wording, code)
        exclude = QPushButton("Exclude case")
        exclude.clicked.connect(lambda: self._run(self.exclude))
        grid.addWidget(self.comment, 0, 0, 1, 3)
        grid.addWidget(self.save_button, 1, 0)
        grid.addWidget(self.restore_button, 1, 1)
        grid.addWidget(done, 1, 2)
        grid.addWidget(self.reason, 2, 0, 1, 2)
        grid.addWidget(exclude, 2, 2)
        return box

    def save(self) -> int:
        session = self._need_session()
        revision = session.save(self.comment.text())
        self.comment.clear()
        changed = sum(revision.changes.values())
        self.show_message(f"{session.case_id}: saved revision {revision.number} ({changed} voxels changed)")
        self.refresh_structures()
        self.refresh_worklist()
        return revision.number

    def _autosave(self) -> None:
        if self.session is not None and self.session.autosave() is not None:
            log.info("case %s: autosaved", self.session.case_id)

    def restore(self) -> None:
        session = self._need_session()
        changed = session.restore_recovery()
        self.layers["labels"].refresh()
        self.refresh_structures()
        self.restore_button.setEnabled(False)
        self.show_message(f"{session.case_id}: restored {changed} unsaved voxels; save to keep them")

    def mark_done(self) -> None:
        session = self._need_session()
        session.mark_done(self.comment.text())
        self._ended(f"{session.case_id}: done")

    def exclude(self) -> None:
        session = self._need_session()
        session.exclude(str(self.reason.currentData()), self.comment.text())
        self._ended(f"{session.case_id}: excluded ({self.reason.currentText()})")

    def _ended(self, message: str) -> None:
        self.session = None
        self._drop_layers()
        self.show_message(message)
        self.refresh_worklist()

    def _drop_layers(self) -> None:
        self.autosave_timer.stop()
        for layer in self.layers.values():
            if layer in self.viewer.layers:
                self.viewer.layers.remove(layer)
        self.layers = {}


def make_dock(napari_viewer: Any) -> CtcurateDock:
    """napari widget contribution: the dock without a workspace yet (choose one with Workspace…)."""
    return CtcurateDock(napari_viewer)
