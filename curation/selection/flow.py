"""The exclusion flow diagram: sampled exams -> excluded by reason -> included (PNG and SVG)."""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch

from curation.atomic import atomic_write_bytes

__all__ = ["draw_flow"]


def _box(ax: Axes, x: float, y: float, w: float, h: float, text: str, colour: str) -> None:
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.01", fc=colour, ec="#333"))
    ax.text(x, y, text, ha="center", va="center", fontsize=9, wrap=True)


def _arrow(ax: Axes, start: tuple[float, float], end: tuple[float, float]) -> None:
    ax.annotate("", xy=end, xytext=start, arrowprops={"arrowstyle": "->", "color": "#333"})


def draw_flow(sampled: int, excluded: dict[str, int], included: int, out_stem: Path,
              *, title: str = "Exam selection") -> tuple[Path, Path]:
    """Draw the flow figure and write ``<out_stem>.png`` and ``<out_stem>.svg`` atomically.

    Parameters
    ----------
    sampled : int
        Exams drawn.
    excluded : dict
        Excluded exams per reason label, in display order.
    included : int
        Exams kept.
    """
    n_excluded = sum(excluded.values())
    entries = [f"Excluded exams (n = {n_excluded})"] + [f"{label}: {count}" for label, count in excluded.items()]
    lines = [line for entry in entries for line in textwrap.wrap(entry, 44, subsequent_indent="    ")]  # fits the box
    height = max(2.0, 0.34 * len(lines) + 0.9)  # room for every line inside the box
    fig = Figure(figsize=(8, 3.2 + height * 0.6))
    ax = fig.subplots()
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 6 + height)
    ax.axis("off")
    top = 5 + height
    _box(ax, 3, top, 4.2, 0.9, f"CT exams sampled (n = {sampled})", "#dbe9f6")
    _box(ax, 3, 1, 4.2, 0.9, f"Exams included (n = {included})", "#d8f0d2")
    _box(ax, 7.6, (top + 1) / 2, 4.4, height, "\n".join(lines), "#f9e0d9")
    _arrow(ax, (3, top - 0.5), (3, 1.5))
    _arrow(ax, (3, (top + 1) / 2), (5.35, (top + 1) / 2))
    ax.set_title(title, fontsize=11)
    png, svg = out_stem.with_suffix(".png"), out_stem.with_suffix(".svg")
    for path, fmt in ((png, "png"), (svg, "svg")):
        buffer = io.BytesIO()
        metadata = {"Date": None} if fmt == "svg" else {"Software": None}
        with matplotlib.rc_context({"svg.hashsalt": "ctcurate"}):  # the same figure, the same bytes
            fig.savefig(buffer, format=fmt, dpi=150, bbox_inches="tight", metadata=metadata)
        atomic_write_bytes(path, buffer.getvalue())
    return png, svg
