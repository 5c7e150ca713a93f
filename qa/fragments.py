"""Pieces of a structure: fragmented masks and islands far from the main part.

A structure that is one piece in a healthy body (the label set's ``pieces``) and comes in several, or any
structure with a piece far from its main part, holds mislabelled voxels or a second structure. Distances are
those between bounding boxes, measured exactly (a distance map of the main part) where the boxes of a long or
curved structure enclose the island.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import cc3d
import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from curation import Volume
from curation.labels.labelset import Category, LabelClass, LabelSet

from .findings import Check, Finding, Severity
from .labelstats import LabelStats
from .thresholds import AnatomySettings

__all__ = ["fragment_findings"]


def _box_gap_mm(a: np.ndarray, b: np.ndarray, spacing_zyx: tuple[float, float, float]) -> float:
    """Distance (mm) between two [z0, z1, y0, y1, x0, x1] boxes, 0 when they overlap."""
    gaps = []
    for axis in range(3):
        lo_a, hi_a, lo_b, hi_b = a[2 * axis], a[2 * axis + 1], b[2 * axis], b[2 * axis + 1]
        gap = max(lo_b - hi_a - 1, lo_a - hi_b - 1, 0)
        gaps.append(gap * spacing_zyx[axis])
    return float(np.linalg.norm(gaps))


def _island_gaps(labels: Volume, stats: LabelStats, label: int, near: list[int], *, from_main: bool
                 ) -> dict[int, float]:
    """True distances (mm) from the islands ``near`` (component ranks whose bounding boxes lie close, so that the
    boxes cannot tell) to the main part (``from_main``) or to the nearest other piece: between surface voxels."""
    z0, z1, y0, y1, x0, x1 = stats.bbox[label]
    crop = labels.array[z0:z1 + 1, y0:y1 + 1, x0:x1 + 1] == label
    parts = cc3d.connected_components(crop, connectivity=26)
    sizes = np.bincount(parts.ravel())
    sizes[0] = 0
    surface = crop & ~ndimage.binary_erosion(crop)
    points = np.argwhere(surface) * np.asarray(stats.spacing_zyx)
    owner = parts[surface]
    main = int(np.argmax(sizes))
    out = {}
    for rank in near:
        cz, cy, cx = (int(round(v)) for v in stats.component_centroids[label][rank])
        piece = int(parts[cz - z0, cy - y0, cx - x0])
        if not piece or piece == main and not from_main:
            continue
        mine = points[owner == piece]
        others = points[owner == main] if from_main else points[owner != piece]
        if piece == main or not len(mine) or not len(others):
            continue
        out[rank] = float(cKDTree(others).query(mine)[0].min())
    return out


def fragment_findings(case: str, labels: Volume, stats: LabelStats, label_set: LabelSet, settings: AnatomySettings,
                      present: set[str], truncated: Collection[str] = (), image: np.ndarray | None = None
                      ) -> list[Finding]:
    """Fragmented structures, islands far from their main part and, with the CT (``image``), pieces lying on
    other tissue than the structure's (thresholds: :class:`AnatomySettings`)."""
    out = []
    for cls in label_set:
        if cls.name not in present:
            continue
        sizes = stats.components[cls.index]
        boxes = stats.component_boxes[cls.index]
        total = int(sizes.sum())
        largest = float(sizes[0] / total)
        one_piece = cls.one_piece
        values: dict[str, Any] = {"components": len(sizes), "largest_fraction": largest,
                                  "islands": int((sizes[1:] < settings.min_island_voxels).sum())}
        if largest < settings.largest_fraction and len(sizes) > 1:
            # the field of view may cut a structure into parts
            cut = cls.name in truncated
            out.append(Finding(case, Check.FRAGMENTED, Severity.WARNING if one_piece and not cut else Severity.INFO,
                               f"{cls.name}: {len(sizes)} separate parts; the largest holds {largest:.0%} of the "
                               "voxels" + (" (cut by the field of view)" if cut else ""),
                               structure=cls.name, values=values))
        if one_piece:
            gaps = [_box_gap_mm(boxes[0], box, stats.spacing_zyx) for box in boxes[1:]]
            # boxes of a long or curved structure can enclose an island far from its tissue: measure those
            near = [rank for rank in range(1, len(sizes)) if sizes[rank] >= settings.island_measured_voxels
                    and gaps[rank - 1] <= settings.far_island_mm][:settings.islands_measured]
            for rank, gap in (_island_gaps(labels, stats, cls.index, near, from_main=True) if near else {}).items():
                gaps[rank - 1] = max(gaps[rank - 1], gap)
        else:  # pieces of a structure in several (bowel loops, cartilages, vessels) lie near one another
            gaps = [min(_box_gap_mm(box, other, stats.spacing_zyx) for k, other in enumerate(boxes) if k != rank)
                    for rank, box in enumerate(boxes) if rank > 0]
            near = [rank for rank in range(1, len(sizes)) if sizes[rank] >= settings.stray_measured_share * total
                    and gaps[rank - 1] <= settings.far_stray_mm][:settings.islands_measured]
            for rank, gap in (_island_gaps(labels, stats, cls.index, near, from_main=False) if near else {}).items():
                gaps[rank - 1] = max(gaps[rank - 1], gap)
        # a piece the field of view cuts off at the volume border is not a stray
        edge = [bool(box[0] == 0 or box[2] == 0 or box[4] == 0 or box[1] == stats.shape[0] - 1
                     or box[3] == stats.shape[1] - 1 or box[5] == stats.shape[2] - 1) for box in boxes]
        # a piece at the volume border may be a part the field of view cut off: a stray only when further than
        # far_stray_mm, and a warning
        near_edge = settings.far_stray_mm - settings.far_island_mm
        gaps = [gap - near_edge if edge[rank] else gap for rank, gap in enumerate(gaps, 1)]
        # a class that may be several pieces (bowel, vessels) is only suspicious for small stray pieces
        # (a larger piece far away is a stray too)
        limit = total if one_piece else settings.stray_fraction * total
        far = [(rank, int(sizes[rank]), gaps[rank - 1]) for rank in range(1, len(sizes))
               if settings.min_island_voxels <= sizes[rank]
               and (sizes[rank] <= limit and gaps[rank - 1] > settings.far_island_mm
                    or sizes[rank] <= settings.far_stray_fraction * total and gaps[rank - 1] > settings.far_stray_mm)]
        if far:
            rank, size, gap = max(far, key=lambda t: t[2])
            gap += near_edge if edge[rank] else 0.0
            at = labels.index_to_world(stats.component_centroids[cls.index][rank][::-1][None])[0]
            severity = Severity.ERROR if one_piece and not edge[rank] else Severity.WARNING
            out.append(Finding(case, Check.FAR_ISLAND, severity,
                               f"{cls.name}: {len(far)} island(s) far from the main part (largest gap {gap:.0f} mm, "
                               f"{size} voxels); mislabelled voxels or a second structure under this label",
                               structure=cls.name, values={**values, "far_islands": len(far), "gap_mm": gap,
                                                           "island_voxels": size, "at_lps": at.round(1).tolist()}))
        elif image is not None and len(sizes) > 1:
            out += _other_tissue(case, labels, image, stats, cls, settings)
    return out


def _other_tissue(case: str, labels: Volume, image: np.ndarray, stats: LabelStats, cls: LabelClass,
                  settings: AnatomySettings) -> list[Finding]:
    """A piece besides the main one that holds none of the structure's tissue (bone without bone, an airway
    without air, an organ piece on fat): mislabelled voxels, wherever the piece lies - also where the field of
    view cuts the structure, so that distance cannot tell."""
    z0, z1, y0, y1, x0, x1 = stats.bbox[cls.index]
    box = (slice(z0, z1 + 1), slice(y0, y1 + 1), slice(x0, x1 + 1))
    crop = labels.array[box] == cls.index
    parts = cc3d.connected_components(crop, connectivity=26)
    sizes = np.bincount(parts.ravel())
    sizes[0] = 0
    main = int(np.argmax(sizes))
    values = image[box]
    own = values[parts == main].astype(np.float64)
    hu = cls.hu
    worst: tuple[int, float, int] | None = None  # (piece, its HU, voxels)
    for piece in np.flatnonzero(sizes >= settings.piece_tissue_voxels):
        if piece == main:
            continue
        mine = values[parts == piece].astype(np.float64)
        if hu is not None and hu[0] >= 150:  # bone: some voxels of a cut bone piece are bone, despite partial volume
            level, wrong = float(np.quantile(mine, 0.9)), float(np.quantile(mine, 0.9)) < hu[0]
        elif hu is not None and hu[1] <= -400:  # air
            level, wrong = float(np.quantile(mine, 0.1)), float(np.quantile(mine, 0.1)) > hu[1]
        else:
            low, high = np.quantile(own, [0.02, 0.98])
            # contrast fills a vessel unevenly along its course
            margin = settings.piece_tissue_margin_hu * (2 if cls.category is Category.VESSEL else 1)
            level = float(np.median(mine))
            wrong = not low - margin <= level <= high + margin
        if wrong and (worst is None or sizes[piece] > worst[2]):
            worst = (int(piece), level, int(sizes[piece]))
    if worst is None:
        return []
    rank, level, size = worst
    centre = np.argwhere(parts == rank).mean(axis=0) + np.array([z0, y0, x0])
    at = labels.index_to_world(centre[::-1][None])[0]
    return [Finding(case, Check.PIECE_TISSUE, Severity.WARNING,
                    f"{cls.name}: a separate piece ({size} voxels) lies on other tissue (about {level:.0f} HU; its "
                    f"main part {np.median(own):.0f} HU); mislabelled voxels", structure=cls.name,
                    values={"island_voxels": size, "piece_hu": level, "main_hu": float(np.median(own)),
                            "at_lps": at.round(1).tolist()})]
