"""Case-level verdicts: one cause behind many findings, named in one line at the top of the case.

- **flipped**: the map mirrored along an axis. Front-back and head-feet flips put most voxels on the wrong
  tissue, and the flipped-back map fits the CT far better (share of voxels in their class's HU range, the
  label set's ``hu``); a left-right flip keeps the tissue (the body is nearly symmetric), so it is found by
  the sides: most left/right pairs swapped.
- **transposed**: two axes of the map exchanged, found the same way (a map whose size is a permutation of
  the CT's, or a square grid whose transposed map fits far better).
- **other grid**: the whole map is on another grid than the CT (origin, spacing, size or direction), so
  nothing can be judged against the CT.
- **shifted** (labels moved as a whole) comes from the trial shifts of :mod:`qa.fit`.
- **label set**: the values fit another built-in label set far better (a total_v1 map checked as total_v2).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from functools import partial
from itertools import permutations

import numpy as np

from curation import Volume
from curation.labels.labelset import LabelClass, LabelSet, Laterality, builtin_label_sets, load_label_set

from .findings import Check, Finding, Severity
from .fit import grid_step
from .labelstats import LabelStats

__all__ = ["hu_agreement", "flip_verdicts", "grid_verdict"]

_AXES = ("head-feet (z)", "front-back (y)", "left-right (x)")
MIN_GAIN = 0.2          # a transformed map must put this much larger a share of voxels in their HU range
MIN_SIDED_PAIRS = 2     # left/right pairs needed to call a whole map mirrored
SWAPPED_SHARE = 0.75


def _tables(label_set: LabelSet, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    low = np.zeros(n, dtype=np.float32)
    high = np.zeros(n, dtype=np.float32)
    judged = np.zeros(n, dtype=bool)
    for cls in label_set:
        if cls.hu is not None and cls.index < n:
            low[cls.index], high[cls.index], judged[cls.index] = cls.hu[0], cls.hu[1], True
    return low, high, judged


def hu_agreement(labels: np.ndarray, image: np.ndarray, label_set: LabelSet) -> float:
    """Share of the voxels of classes with an HU range (label set ``hu``) that lie in that range (nan: none)."""
    n = max(label_set.max_index, int(labels.max(initial=0))) + 1
    low, high, judged = _tables(label_set, n)
    lab = labels.astype(np.intp, copy=False)
    counted = judged[lab]
    total = int(np.count_nonzero(counted))
    if total == 0:
        return float("nan")
    inside = counted & (image >= low[lab]) & (image <= high[lab])
    return float(np.count_nonzero(inside) / total)


def _subsample(array: np.ndarray, spacing_zyx: tuple[float, float, float]) -> np.ndarray:
    step = grid_step(spacing_zyx, 3.0)
    return array[::step[0], ::step[1], ::step[2]]


def flip_verdicts(case: str, labels: Volume, image: np.ndarray | None, stats: LabelStats, label_set: LabelSet,
                  present: set[str], min_voxels: int) -> list[Finding]:
    """A verdict when the map as a whole is mirrored or transposed against the CT (on the same grid; without
    the CT only a left-right mirror can be told, by the sides)."""
    spacing = stats.spacing_zyx
    lab = _subsample(labels.array, spacing)
    img = _subsample(image, spacing) if image is not None else None
    here = hu_agreement(lab, img, label_set) if img is not None else float("nan")
    candidates: list[tuple[str, Check, Callable[[np.ndarray], np.ndarray]]] = [
        (f"mirrored {_AXES[axis]}", Check.FLIPPED, partial(np.flip, axis=axis)) for axis in (0, 1)]
    for a, b in ((1, 2), (0, 1), (0, 2)):
        if lab.shape[a] == lab.shape[b]:
            candidates.append((f"axes {'zyx'[a]} and {'zyx'[b]} exchanged", Check.TRANSPOSED,
                               partial(np.swapaxes, axis1=a, axis2=b)))
    out: list[Finding] = []
    if img is not None and np.isfinite(here):
        other = _better_label_set(lab, img, label_set, here)
        if other is not None:
            name, score = other
            return [Finding(case, Check.LABEL_SET, Severity.ERROR,
                            f"the label values fit label set {name!r} far better than {label_set.name!r} ({score:.0%} "
                            f"against {here:.0%} of voxels in their structure's HU range): the map was made with "
                            f"{name!r}; check with --label-set {name} (or map it with the label mapping)",
                            values={"label_set": name, "fit_other": score, "fit_as_given": here})]
        best = max(((hu_agreement(move(lab), img, label_set), what, check) for what, check, move in candidates),
                   key=lambda t: t[0], default=None)
        if best is not None and best[0] - here >= MIN_GAIN:
            score, what, check = best
            out.append(Finding(case, check, Severity.ERROR,
                               f"label map {what} against the CT: {score:.0%} of voxels lie in their structure's HU "
                               f"range once undone, {here:.0%} as stored; fix the file's orientation (the findings "
                               "below follow from it)", values={"fit_as_stored": here, "fit_undone": score,
                                                               "transform": what}))
            return out
    if _upside_down(stats, label_set, present, min_voxels):
        out.append(Finding(case, Check.FLIPPED, Severity.ERROR,
                           "label map mirrored head-feet against the CT: the vertebrae (and the ribs) run in reverse "
                           "order from top to bottom; fix the file's orientation - the order findings below follow "
                           "from it", values={"transform": f"mirrored {_AXES[0]}"}))
        return out
    swapped, pairs = _sides(stats, label_set, present, min_voxels)
    if pairs >= MIN_SIDED_PAIRS and swapped >= SWAPPED_SHARE * pairs:
        out.append(Finding(case, Check.FLIPPED, Severity.ERROR,
                           f"label map mirrored left-right against the CT: {swapped} of {pairs} left/right pairs lie "
                           "on the wrong side; fix the file's orientation (or the CT's) - the laterality findings "
                           "below follow from it", values={"swapped_pairs": swapped, "pairs": pairs,
                                                           "transform": "mirrored left-right (x)"}))
    return out


@functools.cache
def _builtin(name: str) -> LabelSet:
    return load_label_set(name)


def _better_label_set(lab: np.ndarray, img: np.ndarray, label_set: LabelSet, here: float) -> tuple[str, float] | None:
    """A built-in label set under which the map's values fit the CT far better (a map checked with the wrong set)."""
    scores = [(name, hu_agreement(lab, img, _builtin(name))) for name in builtin_label_sets() if name != label_set.name]
    name, score = max(scores, key=lambda t: t[1] if np.isfinite(t[1]) else -1.0, default=("", float("nan")))
    return (name, score) if np.isfinite(score) and score - here >= MIN_GAIN else None


def _upside_down(stats: LabelStats, label_set: LabelSet, present: set[str], min_voxels: int) -> bool:
    """Every pair of neighbouring vertebrae in reverse order along z, with three or more of them, or with two and
    the ribs of each side (four or more) running the wrong way too (a swap of two vertebrae keeps the ribs)."""
    def usable(cls: LabelClass) -> bool:
        return cls.name in present and stats.voxels[cls.index] >= min_voxels

    spine = sorted((c for c in label_set if c.spine_level is not None and usable(c)), key=lambda c: c.spine_level or 0)
    if len(spine) < 2:
        return False
    z = [float(stats.centroid_world[c.index][2]) for c in spine]
    if not all(upper < lower for upper, lower in zip(z, z[1:], strict=False)):
        return False
    if len(spine) >= 3:
        return True
    sides = []
    for side in (Laterality.LEFT, Laterality.RIGHT):
        ribs = sorted((c for c in label_set if c.rib is not None and c.laterality is side and usable(c)),
                      key=lambda c: c.rib or 0)
        if len(ribs) >= 4:
            heights = [float(stats.centroid_world[c.index][2]) for c in ribs]
            sides.append(float(np.corrcoef(np.arange(len(ribs)), np.argsort(np.argsort(heights)))[0, 1]))
    return bool(sides) and all(r > 0.5 for r in sides)


def _sides(stats: LabelStats, label_set: LabelSet, present: set[str], min_voxels: int) -> tuple[int, int]:
    """(swapped, judged) left/right pairs: a left structure whose centre lies right of its counterpart's."""
    swapped = pairs = 0
    for cls in label_set:
        if cls.laterality is not Laterality.LEFT or not cls.counterpart or cls.name not in present \
                or cls.counterpart not in present:
            continue
        other = label_set.by_name(cls.counterpart)
        if stats.voxels[cls.index] < min_voxels or stats.voxels[other.index] < min_voxels:
            continue
        pairs += 1
        if stats.centroid_world[cls.index][0] <= stats.centroid_world[other.index][0]:
            swapped += 1
    return swapped, pairs


def grid_verdict(case: str, labels: Volume, image: Volume, label_set: LabelSet, diff: dict, file: str) -> Finding:
    """The verdict for a whole label map on another grid than the CT: transposed when its size is a permutation
    of the CT's and the permuted map fits the CT; else on another grid (saying whether the voxels would line up
    if the header were ignored)."""
    lab_shape, ct_shape = labels.array.shape, image.array.shape
    if lab_shape != ct_shape and sorted(lab_shape) == sorted(ct_shape):
        img = _subsample(image.array, image.spacing[::-1])
        tried = []
        for order in permutations(range(3)):
            moved = np.transpose(labels.array, order)
            if moved.shape == ct_shape:
                tried.append((hu_agreement(_subsample(moved, image.spacing[::-1]), img, label_set), order))
        score, order = max(tried, key=lambda t: t[0] if np.isfinite(t[0]) else -1)
        if np.isfinite(score) and score >= 0.5:
            swapped = [f"{'zyx'[a]}" for a in range(3) if order[a] != a]
            return Finding(case, Check.TRANSPOSED, Severity.ERROR,
                           f"label map axes {' and '.join(swapped)} exchanged: its size {list(labels.size)} is the "
                           f"CT's {list(image.size)} reordered, and reordered back {score:.0%} of its voxels lie in "
                           "their structure's HU range; write the map in the CT's axis order", file=file,
                           values={**diff, "fit_undone": score, "order_zyx": list(order)})
    hint = ""
    if lab_shape == ct_shape:
        score = hu_agreement(_subsample(labels.array, image.spacing[::-1]), _subsample(image.array,
                                                                                      image.spacing[::-1]), label_set)
        if np.isfinite(score):
            hint = (f"; voxel for voxel, ignoring the header, {score:.0%} of voxels lie in their structure's HU range"
                    + (" (the voxels line up: fix the header)" if score >= 0.6 else ""))
    parts = []
    if "origin_shift_mm" in diff:
        parts.append(f"origin {diff['origin_shift_mm']:.1f} mm away")
    for key in ("size", "spacing", "direction"):
        if key in diff:
            parts.append(f"{key} differs")
    return Finding(case, Check.OTHER_GRID, Severity.ERROR,
                   f"label map on another grid than the CT ({', '.join(parts)}){hint}; nothing was judged against the "
                   "CT - regenerate or fix the labels on the CT's grid", file=file, values=diff)
