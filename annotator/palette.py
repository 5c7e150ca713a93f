"""Colours that tell touching structures apart.

A label set's own colours follow convention (organs reddish, bones pale), so structures that touch can
share a hue: in total_v2 liver and spleen are both green. :func:`contrast_palette` colours the structures
of one case so that any two that touch in it (or that the label set names as neighbours, or a left/right
pair) lie far apart in CIELAB: a greedy colouring of the contact graph, most-connected structures first,
each taking the candidate colour furthest from its coloured neighbours. The viewer offers it beside the
label set's colours, one click apart.
"""

from __future__ import annotations

import colorsys

import numpy as np
from skimage.color import rgb2lab

from curation.labels.labelset import LabelSet

__all__ = ["contacts", "contrast_palette", "colour_distance"]

Colour = tuple[int, int, int]


def contacts(labels: np.ndarray, *, max_voxels: int = 8_000_000) -> set[tuple[int, int]]:
    """Pairs of label values (low, high) whose voxels touch face to face in a (z, y, x) label array; a larger
    array is looked at on every other voxel along each axis (pairs then touch within two voxels)."""
    values = labels
    while values.size > max_voxels:
        values = values[::2, ::2, ::2]
    pairs: set[tuple[int, int]] = set()
    for axis in range(values.ndim):
        first = values[(slice(None),) * axis + (slice(None, -1),)]
        second = values[(slice(None),) * axis + (slice(1, None),)]
        touching = (first != second) & (first > 0) & (second > 0)
        a, b = first[touching].astype(np.int64), second[touching].astype(np.int64)
        low, high = np.minimum(a, b), np.maximum(a, b)
        base = int(high.max(initial=0)) + 1
        for code in np.unique(low * base + high):
            pairs.add((int(code // base), int(code % base)))
    return pairs


def _candidates() -> tuple[list[Colour], np.ndarray]:
    """Saturated and muted colours around the hue circle (no greys: a grey mask vanishes on the CT)."""
    colours: list[Colour] = []
    for saturation, value in ((0.95, 1.0), (0.7, 0.8), (1.0, 0.6), (0.45, 1.0)):
        for step in range(18):
            r, g, b = colorsys.hsv_to_rgb(step / 18, saturation, value)
            colours.append((round(r * 255), round(g * 255), round(b * 255)))
    lab = rgb2lab(np.array(colours, dtype=float)[None] / 255.0)[0]
    return colours, lab


def colour_distance(a: Colour, b: Colour) -> float:
    """CIE76 distance (delta E) between two RGB colours."""
    lab = rgb2lab(np.array([a, b], dtype=float)[None] / 255.0)[0]
    return float(np.linalg.norm(lab[0] - lab[1]))


def contrast_palette(label_set: LabelSet, labels: np.ndarray | None = None) -> dict[int, Colour]:
    """A colour per class of ``label_set`` such that classes touching in ``labels`` (and the set's neighbours
    and left/right pairs) differ strongly; deterministic for the same input."""
    indices = [c.index for c in label_set]
    edges: dict[int, set[int]] = {i: set() for i in indices}
    for a, b in contacts(labels) if labels is not None else set():
        if a in edges and b in edges:
            edges[a].add(b)
            edges[b].add(a)
    for c in label_set:
        related = set(label_set.neighbours(c.name)) | ({c.counterpart} if c.counterpart else set())
        for name in related:
            if name in label_set:
                other = label_set.by_name(name).index
                edges[c.index].add(other)
                edges[other].add(c.index)
    colours, lab = _candidates()
    used = np.zeros(len(colours), dtype=int)
    chosen: dict[int, int] = {}
    for index in sorted(indices, key=lambda i: (-len(edges[i]), i)):
        taken = [chosen[n] for n in edges[index] if n in chosen]
        if taken:
            nearest = np.min(np.linalg.norm(lab[:, None, :] - lab[taken][None, :, :], axis=2), axis=1)
        else:
            nearest = np.full(len(colours), np.inf)
        # furthest from the coloured neighbours; among near-equals, the least used colour
        best = np.flatnonzero(nearest >= nearest.max() - 1e-6 if np.isinf(nearest.max()) else
                              nearest >= 0.9 * nearest.max())
        pick = int(best[np.argmin(used[best])])
        chosen[index] = pick
        used[pick] += 1
    return {index: colours[pick] for index, pick in chosen.items()}
