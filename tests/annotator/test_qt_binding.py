"""The Qt binding the project pins keeps Python's None intact: PySide6 6.12.0 released None once too often on
every call returning nothing, and a long annotation session aborted ("none_dealloc: deallocating None")."""

from __future__ import annotations

import sys


def test_calls_returning_nothing_leave_none_alone(qtbot) -> None:
    from qtpy.QtCore import QTimer
    from qtpy.QtWidgets import QLabel

    label, timer = QLabel("HU"), QTimer()
    qtbot.addWidget(label)
    before = sys.getrefcount(None)
    for step in range(20_000):
        label.setText(str(step))
        timer.setInterval(step % 100 + 1)
    assert sys.getrefcount(None) >= before - 100, "the Qt binding drops references to None; pin another version"
