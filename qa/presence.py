"""Where structures must be and where they sit: expected presence, level, side and relations to neighbours.

The field of view is measured on the label set's vertebral-level scale (``levels``, C1 = 1 ... L5 = 24,
S1 = 25): the vertebrae present map height (z, mm) to level; with one vertebra a typical level height is
used; with none nothing is expected. Then:

- a structure the label set calls ``required`` whose span (less a margin for normal variation) lies in
  the field of view but that is empty is expected: a warning, an error when every neighbour named in its
  relations (and its counterpart) is present;
- a present structure whose centre lies far outside its span of levels is misplaced;
- an unpaired structure with a ``side`` lying on the other side of the midline is misplaced;
- each stated relation (above, below, in front of, behind, right of, left of a neighbour) must hold
  between the centres of the two structures when both are present and whole.

Positions are LPS (x to the patient's left, y to the back, z up).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np

from curation import Volume
from curation.labels.anatomy import PHRASES, RELATION_AXES
from curation.labels.labelset import LabelClass, LabelSet

from .anatomy import BORDER_AXIS
from .findings import Check, Finding, Severity
from .labelstats import LabelStats

__all__ = ["PresenceSettings", "LevelScale", "level_scale", "presence_findings", "area_profile"]

_NAMES = {**{k: f"C{k}" for k in range(1, 8)}, **{k: f"T{k - 7}" for k in range(8, 20)},
          **{k: f"L{k - 19}" for k in range(20, 25)}, 25: "S1"}


@dataclass(frozen=True)
class PresenceSettings:
    """Margins of the presence and position checks (levels are vertebral levels)."""

    span_margin: float = 1.0       # a span is shrunk by this at both ends before it must be in view
    fov_margin: float = 0.5        # and the field of view by this
    level_margin: float = 2.5      # a centre this far outside its span is misplaced
    level_height_mm: float = 25.0  # a typical vertebral level, when only one vertebra is present
    min_overlap: float = 0.5       # levels a structure's span (less its margins) shares with the field of view
    unsure_margin: float = 0.25    # measured on cut vertebrae: the field of view's ends are held in this much more
    side_margin_mm: float = 10.0
    min_island_voxels: int = 5
    min_voxels: int = 20


@dataclass(frozen=True)
class LevelScale:
    """Height z (mm, LPS) to vertebral level: level = intercept + slope * z (slope < 0: levels count down)."""

    intercept: float
    slope: float
    whole: bool = True  # measured on whole vertebrae (else on cut ones: positions only, no expected presence)

    def level(self, z: float) -> float:
        return self.intercept + self.slope * z


def level_name(level: float) -> str:
    k = int(round(level))
    return _NAMES.get(k, f"level {level:.1f}")


def level_scale(stats: LabelStats, label_set: LabelSet, whole: set[str], settings: PresenceSettings
                ) -> LevelScale | None:
    """The scale from the vertebrae present and whole (not cut by the field of view), else from the cut ones;
    None without any."""
    def measured(names: set[str]) -> list[tuple[float, float]]:
        return [(float(c.spine_level or 0), float(stats.centroid_world[c.index][2])) for c in label_set
                if c.spine_level is not None and c.name in names and c.spine_level <= 25
                and c.index < len(stats.voxels) and stats.voxels[c.index] >= settings.min_voxels]

    # whole vertebrae first; a thin slab may hold only cut ones, whose centres are off by less than a level
    points = measured(whole)
    from_whole = bool(points)
    present = {c.name for c in label_set if c.index < len(stats.voxels) and stats.voxels[c.index] > 0}
    points = points or measured(present)
    if not points:
        return None
    levels, zs = np.array(points).T
    if len(points) == 1 or np.ptp(zs) < 1.0 or not from_whole:  # cut vertebrae's centres are too close together
        slope = -1.0 / settings.level_height_mm
    else:
        slope = float(np.polyfit(zs, levels, 1)[0])
        # a sane height per level (about 12 to 45 mm); else the labels themselves are out of order
        slope = float(np.clip(slope, -1 / 12.0, -1 / 45.0)) if slope < 0 else -1.0 / settings.level_height_mm
    intercept = float(np.median(levels - slope * zs))
    return LevelScale(intercept, slope, from_whole)


def _fov_levels(labels: Volume, scale: LevelScale) -> tuple[float, float]:
    zs = labels.corners()[:, 2]
    top, bottom = scale.level(float(zs.max())), scale.level(float(zs.min()))
    return min(top, bottom), max(top, bottom)


def area_profile(labels: Volume, stats: LabelStats, index: int, scale: LevelScale) -> dict[str, float]:
    """A structure's cross-section area (mm2) per half vertebral level, from its voxels per slice: the
    same level in two people holds comparable anatomy, whatever the field of view cuts off."""
    if stats.slice_voxels is None:
        return {}
    per_slice = stats.slice_voxels[index]
    slices = np.flatnonzero(per_slice)
    if not len(slices):
        return {}
    pixel_mm2 = float(labels.spacing[0] * labels.spacing[1])
    zs = labels.index_to_world(np.stack([np.zeros(len(slices)), np.zeros(len(slices)), slices], axis=1))[:, 2]
    bins = np.round(np.array([scale.level(float(z)) for z in zs]) * 2) / 2
    out: dict[str, float] = {}
    for level in np.unique(bins):
        out[f"{level:g}"] = round(float(per_slice[slices[bins == level]].mean() * pixel_mm2), 1)
    return out


def presence_findings(case: str, labels: Volume, stats: LabelStats, label_set: LabelSet, present: set[str],
                      truncated: dict[str, list[str]], settings: PresenceSettings, *, scale: LevelScale | None,
                      checked: set[str] | None = None, midline_x: float | None = None,
                      drawn: Collection[str] = ()) -> list[Finding]:
    """Expected-but-empty structures, misplaced levels and sides, and broken relations of one case (``scale``:
    :func:`level_scale` of the case; ``drawn``: structures whose mask file holds voxels that other masks
    took over - not empty, their overlap is the finding)."""
    whole = present - set(truncated)
    usable = {n for n in present if stats.voxels[label_set.by_name(n).index] >= settings.min_voxels}
    out: list[Finding] = []
    if scale is not None:
        fov_top, fov_bottom = _fov_levels(labels, scale)
        for cls in label_set:
            if cls.levels is None:
                continue
            if cls.name not in present:
                if cls.required and (checked is None or cls.name in checked) and cls.name not in drawn:
                    out += _expected(case, cls, label_set, present, (fov_top, fov_bottom), settings, scale.whole)
            else:
                out += _stray_levels(case, labels, stats, cls, scale, settings)
            if cls.name in whole & usable and cls.spine_level is None:
                level = scale.level(float(stats.centroid_world[cls.index][2]))
                top, bottom = cls.levels
                if level < top - settings.level_margin or level > bottom + settings.level_margin:
                    out.append(Finding(case, Check.LEVEL, Severity.WARNING,
                                       f"{cls.name}: its centre lies at {level_name(level)} (level {level:.1f}); "
                                       f"expected between {level_name(top)} and {level_name(bottom)}: mislabelled "
                                       "or misplaced", structure=cls.name,
                                       values={"level": level, "expected": [top, bottom],
                                               "at_lps": stats.centroid_world[cls.index].round(1).tolist()}))
    if midline_x is not None:
        for cls in label_set:
            if cls.side is None or cls.name not in usable:
                continue
            x = float(stats.centroid_world[cls.index][0])
            offset = (midline_x - x) if cls.side == "right" else (x - midline_x)
            if offset < -settings.side_margin_mm:
                out.append(Finding(case, Check.MIDLINE, Severity.WARNING,
                                   f"{cls.name}: lies {-offset:.0f} mm on the wrong side of the midline (expected on "
                                   f"the {cls.side}; spine at x = {midline_x:.1f} mm)", structure=cls.name,
                                   values={"x": x, "midline_x": midline_x}))
    out += _relations(case, labels, stats, label_set, usable, truncated)
    return out


def _stray_levels(case: str, labels: Volume, stats: LabelStats, cls: LabelClass, scale: LevelScale,
                  settings: PresenceSettings) -> list[Finding]:
    """Pieces of a structure (besides its main one) lying at levels where it never is."""
    assert cls.levels is not None
    sizes = stats.components.get(cls.index)
    if sizes is None or len(sizes) < 2:
        return []
    top, bottom = cls.levels
    centres = labels.index_to_world(stats.component_centroids[cls.index][1:, ::-1])
    strays = [(int(size), scale.level(float(centre[2])), centre) for size, centre in zip(sizes[1:], centres,
                                                                                         strict=True)
              if size >= settings.min_island_voxels]
    strays = [s for s in strays if s[1] < top - settings.level_margin or s[1] > bottom + settings.level_margin]
    if not strays:
        return []
    size, level, centre = max(strays, key=lambda s: s[0])
    return [Finding(case, Check.FAR_ISLAND, Severity.WARNING,
                    f"{cls.name}: {len(strays)} piece(s) at levels where it never lies (largest {size} voxels at "
                    f"{level_name(level)}; expected {level_name(top)} to {level_name(bottom)}): mislabelled voxels",
                    structure=cls.name, values={"pieces": len(strays), "island_voxels": size, "level": level,
                                                "at_lps": centre.round(1).tolist()})]


def _expected(case: str, cls: LabelClass, label_set: LabelSet, present: set[str], fov: tuple[float, float],
              settings: PresenceSettings, sure: bool) -> list[Finding]:
    """``sure``: the field of view was measured on whole vertebrae; else (a thin slab, cut vertebrae only) its
    ends are less certain and held further in."""
    assert cls.levels is not None
    top, bottom = cls.levels[0] + settings.span_margin, cls.levels[1] - settings.span_margin
    if top > bottom:  # a short structure: its middle
        top = bottom = (cls.levels[0] + cls.levels[1]) / 2
    margin = settings.fov_margin + (0.0 if sure else settings.unsure_margin)
    fov_top, fov_bottom = fov[0] + margin, fov[1] - margin
    if fov_top > fov_bottom:  # a slab thinner than the margins: its middle
        fov_top = fov_bottom = (fov[0] + fov[1]) / 2
    # a span must share min_overlap levels with the field of view, or all of it when the field is thinner
    needed = min(settings.min_overlap, fov_bottom - fov_top) if top < bottom else 0.0
    if min(bottom, fov_bottom) - max(top, fov_top) < needed - 1e-9:
        return []
    neighbours = sorted({n for names in cls.relations.values() for n in names} | (
        {cls.counterpart} if cls.counterpart else set()))
    there = [n for n in neighbours if n in present]
    severity = Severity.ERROR if len(neighbours) >= 2 and len(there) == len(neighbours) else Severity.WARNING
    around = f"; its neighbours {', '.join(there)} are there" if there else ""
    return [Finding(case, Check.EXPECTED, severity,
                    f"{cls.name}: empty although its levels ({level_name(cls.levels[0])} to "
                    f"{level_name(cls.levels[1])}) lie in the field of view ({level_name(fov[0])} to "
                    f"{level_name(fov[1])}){around}: missing, or labelled as another structure", structure=cls.name,
                    values={"levels": list(cls.levels), "fov_levels": [fov[0], fov[1]], "neighbours": there})]




def _cut_axes(labels: Volume, truncated: dict[str, list[str]]) -> dict[str, set[int]]:
    """The LPS axes (0 x, 1 y, 2 z) along which the field of view cuts each structure."""
    lps = [int(np.argmax(np.abs(labels.direction[:, 2 - a]))) for a in range(3)]
    return {name: {lps[BORDER_AXIS[side]] for side in sides if side in BORDER_AXIS}
            for name, sides in truncated.items()}


def _relations(case: str, labels: Volume, stats: LabelStats, label_set: LabelSet, usable: set[str],
               truncated: dict[str, list[str]]) -> list[Finding]:
    """Stated relations between the centres of two structures, judged along an axis on which the field of view
    cuts neither of them."""
    cut = _cut_axes(labels, truncated)
    out = []
    for cls in label_set:
        if cls.name not in usable:
            continue
        mine = stats.centroid_world[cls.index]
        for relation, names in cls.relations.items():
            axis, sign = RELATION_AXES[relation]
            if axis in cut.get(cls.name, set()):
                continue
            for other in names:
                if other not in usable or axis in cut.get(other, set()):
                    continue
                theirs = stats.centroid_world[label_set.by_name(other).index]
                if sign * (mine[axis] - theirs[axis]) <= 0:
                    out.append(Finding(case, Check.RELATION, Severity.WARNING,
                                       f"{cls.name}: should lie {PHRASES[relation]} {other} but does not (centre "
                                       f"{'xyz'[axis]} {mine[axis]:.0f} vs {theirs[axis]:.0f} mm, LPS); one of them is "
                                       "mislabelled or misplaced", structure=cls.name,
                                       values={"relation": relation, "other": other, "axis": "xyz"[axis],
                                               "self_mm": float(mine[axis]), "other_mm": float(theirs[axis])}))
    return out
