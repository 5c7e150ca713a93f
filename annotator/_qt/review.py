"""The reviewer's part of the dock (a mixin of :class:`CtcurateDock`): a second physician approves or rejects a
done case with a comment and comments on single structures."""

from __future__ import annotations

from qtpy.QtWidgets import QGridLayout, QGroupBox, QLabel, QLineEdit, QPushButton

from .panels import ToolsPanel

__all__ = ["ReviewPanel"]


class ReviewPanel(ToolsPanel):
    """Approve, reject, comment; the two-person rule is the session's (and the store's)."""

    def _review_box(self) -> QGroupBox:
        box = QGroupBox("review (second physician)")
        grid = QGridLayout(box)
        self.review_comment = QLineEdit()
        self.review_comment.setPlaceholderText("comment (needed to reject, or on the selected structure)")
        self.approve_button = QPushButton("Approve case")
        self.approve_button.setToolTip("Approve the done case's latest revision (not your own)")
        self.approve_button.clicked.connect(lambda: self._run(self.review_case, "approved"))
        self.reject_button = QPushButton("Reject case")
        self.reject_button.setToolTip("Send the case back to the annotators with the comment")
        self.reject_button.clicked.connect(lambda: self._run(self.review_case, "rejected"))
        comment = QPushButton("Comment on structure")
        comment.clicked.connect(lambda: self._run(self.comment_structure))
        self.review_state = QLabel("")
        grid.addWidget(self.review_comment, 0, 0, 1, 3)
        grid.addWidget(self.approve_button, 1, 0)
        grid.addWidget(self.reject_button, 1, 1)
        grid.addWidget(comment, 1, 2)
        grid.addWidget(self.review_state, 2, 0, 1, 3)
        return box

    def review_case(self, status: str) -> None:
        session = self._need_session()
        revision = session.review(status, self.review_comment.text())
        self.review_comment.clear()
        self._ended(f"{session.case_id}: revision {revision.number} by {revision.author} {status} by "
                    f"{session.annotator}")

    def comment_structure(self) -> None:
        session = self._need_session()
        name = self.selected_structure()
        text = self.review_comment.text()
        session.comment(name, text)
        self.review_comment.clear()
        self.refresh_structures()
        self.show_message(f"{session.case_id}: comment on {name} kept")

    def show_review_state(self) -> None:
        """Under the review buttons: the latest revision's review history of the open case."""
        session = self.session
        if session is None:
            self.review_state.setText("")
            return
        reviews = session.store.reviews(session.case_id)
        latest = session.store.latest(session.case_id)
        mine = [r for r in reviews if latest is not None and r["number"] == latest.number]
        if latest is None:
            text = "no revision yet"
        elif not mine:
            text = f"revision {latest.number} by {latest.author}: not reviewed"
        else:
            last = mine[-1]
            text = (f"revision {latest.number} by {latest.author}: {last['status']} by {last['reviewer']}"
                    + (f" ({last['comment']})" if last["comment"] else ""))
        self.review_state.setText(text)
