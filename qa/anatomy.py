"""Anatomical checks of one case, computed from its :class:`~qa.labelstats.LabelStats`.

Field of view (empty / truncated / expected / tiny), fragmentation and far islands, holes (background
enclosed by one structure), laterality, spine order and gaps, rib levels, and CT intensity
(:mod:`qa.intensity`). Positions are LPS
(x grows to the patient's left, z upwards).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from curation import Volume
from curation.labels.labelset import Category, LabelClass, LabelSet, Laterality

from .findings import Check, Finding, Severity
from .fragments import fragment_findings
from .intensity import intensity_findings
from .labelstats import LabelStats
from .thresholds import AnatomySettings

__all__ = ["AnatomySettings", "check_anatomy", "class_rows", "truncated_sides", "midline_x", "BORDER_AXIS"]


def _world_extent(stats: LabelStats, labels: Volume, label: int) -> np.ndarray:
    """(min, max) LPS corner coordinates of a class's bounding box, shape (2, 3)."""
    z0, z1, y0, y1, x0, x1 = stats.bbox[label]
    corners = np.array([[x, y, z] for x in (x0, x1) for y in (y0, y1) for z in (z0, z1)], dtype=float)
    world = labels.index_to_world(corners)
    return np.stack([world.min(axis=0), world.max(axis=0)])


#: the array axis (z, y, x) each border side of :func:`truncated_sides` lies across
BORDER_AXIS = {"first slice": 0, "last slice": 0, "row edge": 1, "column edge": 2}


def _touches(stats: LabelStats, label: int) -> list[str]:
    z0, z1, y0, y1, x0, x1 = stats.bbox[label]
    nz, ny, nx = stats.shape
    sides = []
    for name, lo, hi, n in (("first slice", z0, z1, nz), ("row edge", y0, y1, ny), ("column edge", x0, x1, nx)):
        if lo == 0:
            sides.append(name if name != "first slice" else "first slice")
        if hi == n - 1:
            sides.append("last slice" if name == "first slice" else name)
    return sides


def truncated_sides(stats: LabelStats, label_set: LabelSet, present: set[str]) -> dict[str, list[str]]:
    """The volume borders each present structure touches (only those that touch one)."""
    return {c.name: sides for c in label_set if c.name in present and (sides := _touches(stats, c.index))}


def midline_x(stats: LabelStats, label_set: LabelSet) -> float | None:
    xs = [stats.centroid_world[c.index][0] for c in label_set
          if c.spine_level is not None and c.index < len(stats.voxels) and stats.voxels[c.index] > 0]
    return float(np.median(xs)) if xs else None


def check_anatomy(case: str, labels: Volume, stats: LabelStats, label_set: LabelSet, settings: AnatomySettings,
                  *, image: np.ndarray | None = None, checked: set[str] | None = None,
                  per_class_files: bool = False) -> list[Finding]:
    """All anatomical findings of one case.

    ``checked`` names the classes whose labels were read on the right grid (others are not judged
    as empty); ``per_class_files`` says the labels came as one file per class (then an empty file
    is worth an info finding).
    """
    out: list[Finding] = []
    n = len(stats.voxels)
    present = {c.name for c in label_set if c.index < n and stats.voxels[c.index] > 0}
    truncated = truncated_sides(stats, label_set, present)
    out += _fov(case, stats, label_set, settings, present, truncated, checked, per_class_files)
    out += fragment_findings(case, labels, stats, label_set, settings, present, set(truncated), image)
    for cls in label_set:
        if cls.name in present and cls.index in stats.holes:
            voxels = stats.holes[cls.index]
            ml = voxels * stats.voxel_volume_ml
            # bone masks may leave out a little marrow; any other structure is filled
            limit = settings.hole_ml if cls.category is Category.BONE else settings.hole_ml_soft
            if ml >= limit and voxels >= settings.hole_min_voxels:
                out.append(Finding(case, Check.HOLES, Severity.WARNING,
                                   f"{cls.name}: {ml:.2f} ml ({voxels} voxels) of background enclosed inside it; a "
                                   "structure's mask has no holes", structure=cls.name,
                                   values={"hole_ml": ml, "hole_voxels": voxels}))
    midline = midline_x(stats, label_set)
    out += _laterality(case, stats, label_set, settings, present, midline, truncated)
    out += _spine(case, labels, stats, label_set, settings, present)
    out += _ribs(case, labels, stats, label_set, settings, present, truncated, midline)
    out += _rib_gaps(case, stats, label_set, settings, present)
    out += _abrupt_ends(case, labels, stats, label_set, settings, present)
    if stats.hu_hist is not None:
        out += intensity_findings(case, stats, label_set, settings.min_voxels, settings.air_fraction, present)
    return out


def _fov(case: str, stats: LabelStats, label_set: LabelSet, settings: AnatomySettings, present: set[str],
         truncated: dict[str, list[str]], checked: set[str] | None, per_class_files: bool) -> list[Finding]:
    out = []
    for cls in label_set:
        if checked is not None and cls.name not in checked:
            continue
        if cls.name in present:
            ml = float(stats.voxels[cls.index] * stats.voxel_volume_ml)
            if cls.name in truncated:
                out.append(Finding(case, Check.TRUNCATED, Severity.INFO,
                                   f"{cls.name}: touches the volume border ({', '.join(truncated[cls.name])}); cut by "
                                   "the field of view", structure=cls.name,
                                   values={"volume_ml": ml, "borders": truncated[cls.name]}))
            elif ml < settings.tiny_ml:
                out.append(Finding(case, Check.TINY, Severity.WARNING,
                                   f"{cls.name}: only {int(stats.voxels[cls.index])} voxels ({ml:.3f} ml) inside the "
                                   "field of view", structure=cls.name, values={"volume_ml": ml}))
            continue
        other = cls.counterpart
        if other and other in present and other not in truncated and \
                stats.voxels[label_set.by_name(other).index] * stats.voxel_volume_ml >= settings.tiny_ml * 10:
            out.append(Finding(case, Check.EXPECTED, Severity.WARNING,
                               f"{cls.name}: empty although {other} lies wholly inside the field of view",
                               structure=cls.name, values={"counterpart": other}))
        elif per_class_files:
            out.append(Finding(case, Check.EMPTY, Severity.INFO, f"{cls.name}: empty (outside the field of view?)",
                               structure=cls.name))
    return out


def _pair_size(case: str, stats: LabelStats, left: LabelClass, right: LabelClass, truncated: dict[str, list[str]],
               settings: AnatomySettings) -> list[Finding]:
    """Left and right of a pair are of similar size (compared over the slices both span when the field of view
    cuts them at the top or bottom); far apart, the smaller is the suspect."""
    sizes = {c.name: float(stats.voxels[c.index]) for c in (left, right)}
    cut = set(truncated.get(left.name, [])) | set(truncated.get(right.name, []))
    if cut:
        if cut - {"first slice", "last slice"} or stats.slice_voxels is None:
            return []  # cut in-plane: the parts in view are not comparable
        a, b = stats.slice_voxels[left.index], stats.slice_voxels[right.index]
        span_a, span_b = np.flatnonzero(a), np.flatnonzero(b)
        lo, hi = max(span_a[0], span_b[0]), min(span_a[-1], span_b[-1])
        if hi - lo < 2:
            return []
        sizes = {left.name: float(a[lo:hi + 1].sum()), right.name: float(b[lo:hi + 1].sum())}
    small, large = sorted((left, right), key=lambda c: sizes[c.name])
    if sizes[small.name] == 0:
        return []
    ratio = sizes[large.name] / sizes[small.name]
    if ratio <= settings.pair_ratio:
        return []
    ml = stats.voxel_volume_ml
    where = " over the slices both span" if cut else ""
    return [Finding(case, Check.PAIR_SIZE, Severity.WARNING,
                    f"{small.name}: {sizes[small.name] * ml:.1f} ml against {large.name} {sizes[large.name] * ml:.1f} "
                    f"ml{where} ({ratio:.1f}x); a pair is of similar size: one of them is under- or over-segmented "
                    "(or diseased)", structure=small.name, values={"ratio": ratio, "counterpart": large.name})]


def _laterality(case: str, stats: LabelStats, label_set: LabelSet, settings: AnatomySettings, present: set[str],
                midline: float | None, truncated: dict[str, list[str]]) -> list[Finding]:
    out = []

    def usable(name: str) -> bool:
        return name in present and stats.voxels[label_set.by_name(name).index] >= settings.min_voxels

    for cls in label_set:
        if cls.laterality is not Laterality.LEFT or not usable(cls.name):
            continue
        x_left = stats.centroid_world[cls.index][0]
        if cls.counterpart and usable(cls.counterpart):
            x_right = stats.centroid_world[label_set.by_name(cls.counterpart).index][0]
            if x_left <= x_right:
                out.append(Finding(case, Check.LATERALITY, Severity.ERROR,
                                   f"{cls.name} lies to the right of {cls.counterpart} (x {x_left:.1f} vs "
                                   f"{x_right:.1f} mm, LPS: left is +x); left and right are swapped",
                                   structure=cls.name, values={"x_left": x_left, "x_right": x_right,
                                                               "counterpart": cls.counterpart}))
                continue
            out += _pair_size(case, stats, cls, label_set.by_name(cls.counterpart), truncated, settings)
    if midline is None:
        return out
    for cls in label_set:
        if cls.laterality is Laterality.NONE or not cls.body_side or not usable(cls.name):
            continue
        x = stats.centroid_world[cls.index][0]
        offset = (x - midline) if cls.laterality is Laterality.LEFT else (midline - x)
        if offset < -settings.midline_margin_mm:
            out.append(Finding(case, Check.MIDLINE, Severity.WARNING,
                               f"{cls.name}: centre lies {-offset:.0f} mm on the wrong side of the midline "
                               f"(spine at x = {midline:.1f} mm)", structure=cls.name,
                               values={"x": x, "midline_x": midline}))
    return out


def _spine(case: str, labels: Volume, stats: LabelStats, label_set: LabelSet, settings: AnatomySettings,
           present: set[str]) -> list[Finding]:
    out = []
    levels = sorted((c for c in label_set if c.spine_level is not None), key=lambda c: c.spine_level or 0)
    found = [c for c in levels if c.name in present and stats.voxels[c.index] >= settings.min_voxels]
    for upper, lower in zip(found, found[1:], strict=False):
        z_up, z_low = stats.centroid_world[upper.index][2], stats.centroid_world[lower.index][2]
        if z_up <= z_low:
            out.append(Finding(case, Check.SPINE_ORDER, Severity.ERROR,
                               f"{upper.name} lies below {lower.name} (centre z {z_up:.1f} vs {z_low:.1f} mm); "
                               "vertebra labels are out of order", structure=upper.name,
                               values={"z_upper": z_up, "z_lower": z_low, "lower": lower.name}))
        missing = [c.name for c in levels if (upper.spine_level or 0) < (c.spine_level or 0) < (lower.spine_level or 0)]
        if missing:
            out.append(Finding(case, Check.SPINE_GAP, Severity.ERROR,
                               f"{', '.join(missing)} missing between {upper.name} and {lower.name}; a level is "
                               "labelled as its neighbour or left out", structure=missing[0],
                               values={"missing": missing, "upper": upper.name, "lower": lower.name}))
        else:
            top_of_lower = _world_extent(stats, labels, lower.index)[1, 2]
            gap = float(_world_extent(stats, labels, upper.index)[0, 2] - top_of_lower)
            if gap > settings.spine_gap_mm:
                out.append(Finding(case, Check.SPINE_DISTANCE, Severity.WARNING,
                                   f"{upper.name} and {lower.name} are {gap:.0f} mm apart along z; adjacent "
                                   "vertebrae touch or nearly touch", structure=upper.name,
                                   values={"gap_mm": gap, "lower": lower.name}))
    return out


def _ribs(case: str, labels: Volume, stats: LabelStats, label_set: LabelSet, settings: AnatomySettings,
          present: set[str], truncated: dict[str, list[str]], midline: float | None) -> list[Finding]:
    """Each rib's medial end (its head, at the spine) must lie at the level of its thoracic vertebra."""
    if midline is None:
        return []
    thoracic = {c.spine_level: c for c in label_set if c.spine_level is not None and c.name in present
                and c.name not in truncated and stats.voxels[c.index] >= settings.min_voxels}
    out = []
    for cls in label_set:
        if cls.rib is None or cls.name not in present or cls.name in truncated:
            continue
        own = next((c for c in thoracic.values() if c.name.endswith(f"_T{cls.rib}")), None)
        if own is None or not thoracic:
            continue
        z0, z1, y0, y1, x0, x1 = stats.bbox[cls.index]
        zz, yy, xx = np.nonzero(labels.array[z0:z1 + 1, y0:y1 + 1, x0:x1 + 1] == cls.index)
        world = labels.index_to_world(np.stack([xx + x0, yy + y0, zz + z0], axis=1))
        distance = np.abs(world[:, 0] - midline)
        head = world[distance <= np.quantile(distance, 0.05)]
        head_z = float(head[:, 2].mean())
        nearest = min(thoracic.values(), key=lambda c: abs(stats.centroid_world[c.index][2] - head_z))
        step = (nearest.spine_level or 0) - (own.spine_level or 0)
        if abs(step) >= 2:
            out.append(Finding(case, Check.RIB_LEVEL, Severity.ERROR,
                               f"{cls.name}: its head lies at the level of {nearest.name}, {abs(step)} levels "
                               f"{'below' if step > 0 else 'above'} {own.name}; ribs or vertebrae are numbered off",
                               structure=cls.name, values={"head_z": head_z, "nearest": nearest.name,
                                                           "expected": own.name}))
    return out


def _abrupt_ends(case: str, labels: Volume, stats: LabelStats, label_set: LabelSet, settings: AnatomySettings,
                 present: set[str]) -> list[Finding]:
    """An organ or muscle tapers towards its ends; one whose first or last slice inside the volume still holds a
    large part of its largest cross-section was cut off there (a deleted slab, a mask drawn on some slices only)."""
    if stats.slice_voxels is None:
        return []
    out = []
    nz = stats.shape[0]
    for cls in label_set:
        if cls.name not in present or cls.category not in (Category.ORGAN, Category.MUSCLE) \
                or stats.voxels[cls.index] < settings.min_voxels:
            continue
        profile = stats.slice_voxels[cls.index]
        slices = np.flatnonzero(profile)
        if len(slices) < 3:
            continue
        largest = int(profile.max())
        for end in (int(slices[0]), int(slices[-1])):
            area = int(profile[end])
            if end in (0, nz - 1) or area < settings.abrupt_share * largest or area < settings.min_voxels:
                continue
            z = float(labels.index_to_world(np.array([[0.0, 0.0, end]]))[0, 2])
            at = stats.centroid_world[cls.index].copy()
            at[2] = z
            out.append(Finding(case, Check.ABRUPT_END, Severity.WARNING,
                               f"{cls.name}: ends abruptly at slice {end} (z = {z:.0f} mm) with {area / largest:.0%} "
                               "of its largest cross-section, inside the field of view: cut off there or left "
                               "unlabelled beyond", structure=cls.name,
                               values={"slice": end, "share": area / largest, "at_lps": at.round(1).tolist()}))
    return out


def _rib_gaps(case: str, stats: LabelStats, label_set: LabelSet, settings: AnatomySettings,
              present: set[str]) -> list[Finding]:
    """On each side, a rib missing between two present ribs (a rib may be missing only at the ends: the 12th,
    or a field of view that ends there)."""
    out = []
    for side in (Laterality.LEFT, Laterality.RIGHT):
        ribs = sorted((c for c in label_set if c.rib is not None and c.laterality is side), key=lambda c: c.rib or 0)
        found = [c for c in ribs if c.name in present and stats.voxels[c.index] >= settings.min_voxels]
        for upper, lower in zip(found, found[1:], strict=False):
            missing = [c.name for c in ribs if (upper.rib or 0) < (c.rib or 0) < (lower.rib or 0)
                       and c.name not in present]
            if missing:
                out.append(Finding(case, Check.SPINE_GAP, Severity.ERROR,
                                   f"{', '.join(missing)} missing between {upper.name} and {lower.name}; a rib is "
                                   "labelled as its neighbour or left out", structure=missing[0],
                                   values={"missing": missing, "upper": upper.name, "lower": lower.name}))
    return out


def class_rows(case: str, labels: Volume, stats: LabelStats, label_set: LabelSet) -> list[dict[str, Any]]:
    """One row of statistics per present class (the label statistics table)."""
    midline = midline_x(stats, label_set)
    spine = [c.index for c in label_set if c.spine_level is not None and c.index < len(stats.voxels)
             and stats.voxels[c.index] > 0]
    spine_y = float(np.median(stats.centroid_world[spine][:, 1])) if spine else float("nan")
    rows = []
    for cls in label_set:
        if cls.index >= len(stats.voxels) or not stats.voxels[cls.index]:
            continue
        k = cls.index
        sizes = stats.components[k]
        extent = _world_extent(stats, labels, k)
        x, y, z = stats.centroid_world[k]
        rows.append({
            "case": case, "structure": cls.name, "index": k, "category": str(cls.category),
            "voxels": int(stats.voxels[k]), "volume_ml": float(stats.voxels[k] * stats.voxel_volume_ml),
            "components": len(sizes), "largest_fraction": float(sizes[0] / sizes.sum()),
            "centroid_x": float(x), "centroid_y": float(y), "centroid_z": float(z),
            "extent_z_mm": float(extent[1, 2] - extent[0, 2]),
            "offset_x": float(x - midline) if midline is not None else float("nan"),
            "offset_y": float(y - spine_y),
            "hu_mean": stats.hu_mean(k), "hu_median": stats.hu_median(k),
            "holes_ml": float(stats.holes.get(k, 0) * stats.voxel_volume_ml),
            "truncated": bool(_touches(stats, k)),
        })
    return rows
