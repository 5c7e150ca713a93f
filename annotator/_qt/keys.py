"""Keyboard shortcuts of the ctcurate dock, bound on the napari viewer, and the help that lists them.

Keys are chosen so as not to take napari's own: its labels layer uses 1-7, E, P, F, L, Z, M, X, B, [ ],
- = and Ctrl+Z; its File menu takes Ctrl+S (save layers) and Alt+S (screenshot).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["Shortcut", "shortcuts", "bind_shortcuts", "help_text"]


class Shortcut:
    """One key of the dock: the napari key name, what it does, and the dock method it calls."""

    def __init__(self, key: str, label: str, action: Callable[[Any], Any]) -> None:
        self.key, self.label, self.action = key, label, action

    @property
    def shown(self) -> str:
        return self.key.replace("Control-", "Ctrl+").replace("Shift-", "Shift+")


def shortcuts(dock: Any) -> list[Shortcut]:
    """The dock's shortcuts, in the order the help lists them."""
    keys = [
        Shortcut("Shift-S", "save a revision", lambda d: d.save()),
        Shortcut("N", "next unreviewed structure", lambda d: d.next_structure(1)),
        Shortcut("Shift-P", "previous unreviewed structure", lambda d: d.next_structure(-1)),
        Shortcut("Shift-O", "structure ok, then the next", lambda d: d.mark_structure("ok")),
        Shortcut("Shift-C", "structure corrected, then the next", lambda d: d.mark_structure("corrected")),
        Shortcut("Shift-A", "structure absent (not in view), then the next",
                 lambda d: d.mark_structure("absent_in_fov")),
        Shortcut("Control-Z", "undo a brush stroke or tool", lambda d: d.undo()),
        Shortcut("Control-Shift-Z", "redo", lambda d: d.redo()),
        Shortcut("F1", "show or hide this help", lambda d: d.toggle_help()),
    ]
    for number, name in enumerate(dock.windows(), 2):
        if number <= 12:
            keys.append(Shortcut(f"F{number}", f"CT window {name}", _window(name)))
    return keys


def _window(name: str) -> Callable[[Any], Any]:
    return lambda dock: dock.set_window(name)


def bind_shortcuts(dock: Any, viewer: Any, layer: Any | None = None) -> None:
    """Bind every shortcut on the viewer (and on ``layer``, whose own keys come first when it is selected:
    undo and redo then also keep the counts and the other views up to date)."""
    for shortcut in shortcuts(dock):
        def call(_: Any, action: Callable[[Any], Any] = shortcut.action) -> None:
            dock._run(action, dock)

        viewer.bind_key(shortcut.key, call, overwrite=True)
        if layer is not None and shortcut.key in ("Control-Z", "Control-Shift-Z"):
            layer.bind_key(shortcut.key, call, overwrite=True)


def help_text(dock: Any) -> str:
    """The shortcuts as lines of 'key  what it does', plus the napari keys an annotator needs most."""
    lines = [f"{s.shown:<16} {s.label}" for s in shortcuts(dock)]
    lines += ["", "napari (labels layer selected):", f"{'2 / P':<16} paint", f"{'1 / E':<16} erase",
              f"{'4 / F':<16} fill", f"{'[ ]':<16} brush size", f"{'6 / Z':<16} pan and zoom",
              f"{'Space (hold)':<16} pan while painting"]
    return "\n".join(lines)
