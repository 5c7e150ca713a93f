"""The ctcurate dock in napari: live worklist, structure panel, correction tools, review, save / done / exclude,
side views and shortcuts.

All logic lives in :class:`annotator.session.CaseSession`; this widget shows its state and forwards
clicks to it. Every action runs through :meth:`CtcurateDock._run`, which shows an error in the dock
(red line) instead of raising into napari. Brush strokes and the tools share the labels layer's one undo
history (the session writes through ``data_setitem``).
"""

from __future__ import annotations

import contextlib
import getpass
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from qtpy.QtCore import QEvent, QObject, Qt, QTimer
from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from annotator.session import WINDOWS, CaseSession
from curation import Workspace
from curation.annotation.worklist import EXCLUSION_REASONS
from curation.errors import CtcurateError

from .keys import bind_shortcuts, help_text
from .panels import fill, selected_text
from .review import ReviewPanel
from .views import OrthoViews, cursor_text
from .worklist import WorklistPanel

__all__ = ["CtcurateDock", "make_dock"]

log = logging.getLogger(__name__)
#: answers to closing the window with unsaved edits
CLOSE_ANSWERS = ("save", "keep", "discard", "cancel")


class _CloseGuard(QObject):
    """Closing the window: unsaved edits are saved, kept or discarded as the user says (or the window stays);
    then the session ends and the side views close with it."""

    def __init__(self, dock: CtcurateDock) -> None:
        super().__init__()
        self.dock = dock

    def eventFilter(self, watched: Any, event: Any) -> bool:  # noqa: N802 (Qt's name)
        if event.type() == QEvent.Type.Close:
            if not self.dock._run(self.dock.confirm_close):
                event.ignore()
                return True
            self.dock.finish()
        return False


class CtcurateDock(WorklistPanel, ReviewPanel, QWidget):
    """Dock widget: pick a case, correct it structure by structure, save revisions, review others' cases."""

    def __init__(self, viewer: Any, workspace: Workspace | None = None, annotator: str | None = None,
                 database_url: str | None = None) -> None:
        super().__init__()
        self.viewer, self.workspace, self.database_url = viewer, workspace, database_url
        self.session: CaseSession | None = None
        self.layers: dict[str, Any] = {}
        content = QWidget()  # in a scroll area: the dock fits any window height
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(content)
        QVBoxLayout(self).addWidget(scroll)
        self.content = content
        layout = QVBoxLayout(content)
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
        self.cursor_readout = QLabel("")
        self.cursor_readout.setToolTip("HU and structure under the mouse, in every mode")
        layout.addWidget(self.cursor_readout)
        layout.addWidget(self._worklist_box())
        layout.addWidget(self._structure_box())
        layout.addWidget(self._tools_box())
        layout.addWidget(self._review_box())
        layout.addWidget(self._case_box())
        self.help = QLabel(help_text(self))
        self.help.setStyleSheet("font-family: monospace;")
        self.help.setWordWrap(True)
        self.help.setVisible(False)
        help_button = QPushButton("Help: shortcuts (F1)")
        help_button.clicked.connect(lambda: self._run(self.toggle_help))
        layout.addWidget(help_button)
        layout.addWidget(self.help)
        self.autosave_timer = QTimer(self)
        self.autosave_timer.timeout.connect(lambda: self._run(self._autosave))
        self.worklist_timer = QTimer(self)  # the worklist follows the store: other seats' claims and saves
        self.worklist_timer.timeout.connect(lambda: self._run(self.refresh_worklist))
        self.counts_timer = QTimer(self)  # voxel counts follow the strokes, a few times a second at most
        self.counts_timer.setSingleShot(True)
        self.counts_timer.setInterval(250)
        self.counts_timer.timeout.connect(lambda: self._run(self._edited))
        self.views: OrthoViews | None = None
        window = getattr(viewer, "window", None)
        if window is not None and hasattr(window, "add_dock_widget"):
            self.views = OrthoViews(viewer)
            window.add_dock_widget(self.views, name="coronal and sagittal", area="bottom")
            # the dock keeps the window's full height; the side views sit under the axial view
            window._qt_window.setCorner(Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)
            self._close_guard = _CloseGuard(self)  # closing the window asks about unsaved edits first
            window._qt_window.installEventFilter(self._close_guard)  # napari's main window receives the close
        viewer.mouse_move_callbacks.append(self._cursor_moved)
        bind_shortcuts(self, viewer)
        if workspace is not None:
            self._run(self.refresh_worklist)
            self._start_worklist_timer()

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
        self._start_worklist_timer()
        self.help.setText(help_text(self))

    def windows(self) -> dict[str, tuple[float, float]]:
        """CT window presets: soft tissue, bone, lung, then the workspace's own (setting annotation.windows)."""
        own = self.workspace.settings.annotation.window_presets() if self.workspace is not None else {}
        return {**WINDOWS, **own}

    def toggle_help(self) -> None:
        self.help.setVisible(self.help.isHidden())

    def label_layers(self) -> list[Any]:
        side = self.views.label_layers() if self.views is not None else []
        return ([self.layers["labels"]] if "labels" in self.layers else []) + side

    def image_layers(self) -> list[Any]:
        side = self.views.image_layers() if self.views is not None else []
        return ([self.layers["ct"]] if "ct" in self.layers else []) + side

    def _cursor_moved(self, viewer: Any, event: Any) -> None:
        if self.session is not None and "ct" in self.layers:
            self.cursor_readout.setText(cursor_text(self.session, self.layers["ct"], viewer.cursor.position))

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
        features = pd.DataFrame({"index": [0, *(c.index for c in label_set)],
                                 "name": ["background", *(c.name for c in label_set)]})
        labels = self.viewer.add_labels(session.labels, name=f"{case_id} labels", affine=session.affine,
                                        features=features, opacity=0.5)
        labels.editable = not session.read_only
        labels.events.paint.connect(lambda _: self._painted())
        session.writer = labels.data_setitem  # the tools' changes join the brush strokes' undo history
        self.layers = {"ct": ct, "labels": labels}
        if self.views is not None:  # the side views fill in just after the axial view is up
            QTimer.singleShot(0, lambda: self._run(self._show_side_views, session))
        self.apply_colours()
        bind_shortcuts(self, self.viewer, labels)
        self.refresh_structures()
        self.show_review_state()
        recovery = session.recovery()
        self.restore_button.setEnabled(recovery is not None)
        comments = session.comments()
        if session.read_only:
            self.show_message(f"{case_id}: read-only. {session.read_only_reason}")
        elif recovery is not None:
            self.show_message(f"{case_id}: unsaved edits from {recovery['time']} can be restored (Restore)")
        else:
            self.show_message(f"{case_id}: revision {session.parent} open for {session.annotator}"
                              + (f"; comments on {', '.join(comments)}" if comments else ""))
        if not session.read_only and self.workspace is not None:
            self.autosave_timer.start(1000 * self.workspace.settings.annotation.autosave_seconds)
        self.refresh_worklist()

    def _show_side_views(self, session: CaseSession) -> None:
        if self.views is not None and self.session is session and "ct" in self.layers:
            self.views.show_case(self.layers["ct"], self.layers["labels"])
            self.apply_colours()

    def _painted(self) -> None:
        if self.session is not None:
            self.session.note_activity()
        self.counts_timer.start()

    def finish(self) -> None:
        """When the viewer has closed: keep unsaved edits in the recovery slot and release the claim."""
        for timer in (self.autosave_timer, self.worklist_timer, self.counts_timer):
            with contextlib.suppress(RuntimeError):  # deleted with the window already
                timer.stop()
        if self.session is not None:
            self.session.autosave()
            self.session.close()
            self.session = None
        if self.views is not None:
            self.views.close_viewers()

    def confirm_close(self, answer: str | None = None) -> bool:
        """Closing the window: with unsaved edits, ask whether to save them, keep them for recovery (offered on
        the next open) or discard them; False when the user cancels. ``answer`` skips the question."""
        session = self.session
        if session is None or session.read_only or not session.changed():
            return True
        if answer is None:
            voxels = sum(session.changed().values())
            box = QMessageBox(QMessageBox.Icon.Question, "ctcurate",
                              f"{session.case_id}: {voxels:,} voxels edited and not saved.")
            buttons: dict[Any, str] = {box.addButton("Save revision", QMessageBox.ButtonRole.AcceptRole): "save",
                       box.addButton("Keep for recovery", QMessageBox.ButtonRole.ActionRole): "keep",
                       box.addButton("Discard", QMessageBox.ButtonRole.DestructiveRole): "discard",
                       box.addButton("Cancel", QMessageBox.ButtonRole.RejectRole): "cancel"}
            box.exec()
            answer = buttons.get(box.clickedButton(), "cancel")
        if answer not in CLOSE_ANSWERS:
            raise CtcurateError(f"closing: answer {answer!r}: expected one of {', '.join(CLOSE_ANSWERS)}")
        if answer == "cancel":
            return False
        if answer == "save" and self._run(self.save) is None:
            return False  # the save failed: the message says why; the window stays
        if answer == "discard":
            session.discard()
        if answer == "keep":
            session.autosave()
        return True

    def close_case(self) -> None:
        if self.session is None:
            return
        self.session.autosave()
        self.session.close()
        self.session = None
        self._drop_layers()
        self.show_review_state()

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
        self.counts_timer.stop()
        if self.views is not None:
            self.views.clear()
        for layer in self.layers.values():
            if layer in self.viewer.layers:
                self.viewer.layers.remove(layer)
        self.layers = {}
        self.cursor_readout.setText("")
        fill(self.structures, [])  # no case open: no structures shown
        self.show_review_state()


def make_dock(napari_viewer: Any) -> CtcurateDock:
    """napari widget contribution: the dock without a workspace yet (choose one with Workspace…)."""
    return CtcurateDock(napari_viewer)
