"""The napari plugin's Qt widgets (private): everything here only shows and forwards to :mod:`annotator.session`."""

from .dock import CtcurateDock, make_dock

__all__ = ["CtcurateDock", "make_dock"]
