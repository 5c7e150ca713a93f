"""The worklist part of the dock (a mixin of :class:`CtcurateDock`): cases with status, claimant, QA findings and
review, filtered; refreshed from the store every few seconds; a claim broken with a recorded reason."""

from __future__ import annotations

from typing import Any

from qtpy.QtWidgets import QComboBox, QGroupBox, QHBoxLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout

from curation import Workspace
from curation.errors import CtcurateError

from .panels import fill, selected_text, table

__all__ = ["WorklistPanel", "FILTERS"]

FILTERS = ("all", "mine", "to do", "awaiting review", "flagged")


class WorklistPanel:
    """Worklist table, filter, open and break-claim buttons; the dock supplies the rest."""

    workspace: Workspace | None
    database_url: str | None
    annotator: QLineEdit
    worklist_timer: Any
    _run: Any
    show_message: Any
    open_selected: Any

    def _start_worklist_timer(self) -> None:
        if self.workspace is not None:
            self.worklist_timer.start(1000 * self.workspace.settings.annotation.worklist_refresh_seconds)

    # -- worklist ---------------------------------------------------------------------------------------
    def _worklist_box(self) -> QGroupBox:
        box = QGroupBox("worklist")
        layout = QVBoxLayout(box)
        self.filter = QComboBox()
        self.filter.addItems(FILTERS)
        self.filter.currentTextChanged.connect(lambda _: self._run(self.refresh_worklist))
        self.worklist = table(["case", "status", "claimed by", "findings", "review"])
        self.worklist.cellDoubleClicked.connect(lambda row, _: self._run(self.open_selected))
        self.worklist.setMinimumHeight(9 * self.worklist.verticalHeader().defaultSectionSize())
        self.open_button = QPushButton("Open")
        self.open_button.clicked.connect(lambda: self._run(self.open_selected))
        row = QHBoxLayout()
        row.addWidget(QLabel("show"))
        row.addWidget(self.filter)
        row.addWidget(self.open_button)
        self.claim_reason = QLineEdit()
        self.claim_reason.setPlaceholderText("reason to break the selected case's claim")
        break_button = QPushButton("Break claim")
        break_button.setToolTip("Free a case someone else holds open; your name and the reason are recorded")
        break_button.clicked.connect(lambda: self._run(self.break_claim))
        claims = QHBoxLayout()
        claims.addWidget(self.claim_reason)
        claims.addWidget(break_button)
        layout.addLayout(row)
        layout.addWidget(self.worklist)
        layout.addLayout(claims)
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
        elif chosen == "awaiting review":
            cases = cases[cases["review"] == "awaiting"]
        elif chosen == "flagged":
            cases = cases[cases["findings"] > 0]
        rows = self.worklist.selectionModel().selectedRows()
        first = self.worklist.item(rows[0].row(), 0) if rows else None
        kept = first.text() if first is not None else None
        fill(self.worklist, [(str(r.case_id), str(r.status), str(r.claimant), str(r.findings), str(r.review))
                             for r in cases.itertuples()])
        if kept is not None:
            for row in range(self.worklist.rowCount()):
                item = self.worklist.item(row, 0)
                if item is not None and item.text() == kept:
                    self.worklist.blockSignals(True)
                    self.worklist.selectRow(row)
                    self.worklist.blockSignals(False)

    def break_claim(self) -> None:
        """Break the selected case's claim with the reason typed beside the button."""
        if self.workspace is None:
            raise CtcurateError("choose a workspace (Workspace…)")
        from curation.annotation.worklist import Worklist

        case_id = selected_text(self.worklist, "case in the worklist")
        holder = Worklist(self.workspace, self.database_url).break_claim(case_id, self.annotator.text(),
                                                                          self.claim_reason.text())
        self.claim_reason.clear()
        self.show_message(f"{case_id}: claim of {holder.claimant} broken" if holder else
                          f"{case_id}: nobody held it")
        self.refresh_worklist()

