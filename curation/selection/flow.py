"""The exclusion flow diagram: sampled exams -> excluded by reason -> included (PNG and SVG), with its counts
beside it (JSON). A figure whose counts did not change is not drawn again (convert redraws it after every run).
"""

from __future__ import annotations

import io
import json
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

from curation.atomic import atomic_write_bytes, atomic_write_text

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["draw_flow"]


def _box(ax: Axes, x: float, y: float, w: float, h: float, text: str, colour: str) -> None:
    from matplotlib.patches import FancyBboxPatch

    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.01", fc=colour, ec="#333"))
    ax.text(x, y, text, ha="center", va="center", fontsize=9, wrap=True)


def _arrow(ax: Axes, start: tuple[float, float], end: tuple[float, float]) -> None:
    ax.annotate("", xy=end, xytext=start, arrowprops={"arrowstyle": "->", "color": "#333"})


def draw_flow(sampled: int, excluded: dict[str, int], included: int, out_stem: Path,
              *, title: str = "Exam selection") -> tuple[Path, Path]:
    """Draw the flow figure and write ``<out_stem>.png`` and ``<out_stem>.svg`` atomically, and its counts as
    ``<out_stem>.json`` (last: a figure is drawn again unless both files and the same counts are there).

    Parameters
    ----------
    sampled : int
        Exams drawn.
    excluded : dict
        Excluded exams per reason label, in display order.
    included : int
        Exams kept.
    """
    png, svg, counts_file = (out_stem.with_suffix(suffix) for suffix in (".png", ".svg", ".json"))
    counts = json.dumps({"title": title, "sampled": sampled, "excluded": excluded, "included": included}, indent=1)
    if png.exists() and svg.exists() and counts_file.exists() and counts_file.read_text() == counts:
        return png, svg
    import matplotlib
    from matplotlib.figure import Figure

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
    for path, fmt in ((png, "png"), (svg, "svg")):
        buffer = io.BytesIO()
        metadata = {"Date": None} if fmt == "svg" else {"Software": None}
        with matplotlib.rc_context({"svg.hashsalt": "ctcurate"}):  # the same figure, the same bytes
            fig.savefig(buffer, format=fmt, dpi=150, bbox_inches="tight", metadata=metadata)
        atomic_write_bytes(path, buffer.getvalue())
    atomic_write_text(counts_file, counts)
    return png, svg
