"""Thresholds of the anatomical checks (:mod:`qa.anatomy`, :mod:`qa.fragments`)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AnatomySettings"]


@dataclass(frozen=True)
class AnatomySettings:
    """Thresholds of the anatomical checks."""

    min_voxels: int = 20            # fewer voxels: too small to judge intensity, side or position
    tiny_ml: float = 0.1            # a present structure smaller than this (and not cut by the FOV) is suspicious
    largest_fraction: float = 0.9   # below: the structure is fragmented
    far_island_mm: float = 30.0     # an island this far from the main part is misplaced
    min_island_voxels: int = 5
    island_measured_voxels: int = 10  # islands this big whose boxes lie near the main part's are measured exactly
    islands_measured: int = 20
    stray_measured_share: float = 0.02  # pieces of a structure in several this big are measured exactly too
    stray_fraction: float = 0.05    # islands of multi-piece classes smaller than this share are strays
    far_stray_fraction: float = 0.25  # ... and up to this share when further than far_stray_mm from every piece
    far_stray_mm: float = 60.0
    piece_tissue_voxels: int = 10   # a separate piece this big is judged by its tissue
    piece_tissue_margin_hu: float = 50.0  # beyond the main part's 2nd..98th percentile HU by this: other tissue
    pair_ratio: float = 2.5         # left and right of a pair, both whole, differ more than this in volume
    abrupt_share: float = 0.3       # an end slice holding this share of the largest cross-section is cut off
    hole_ml: float = 0.5            # background enclosed by a bone mask
    hole_ml_soft: float = 0.05      # background enclosed by any other structure
    hole_min_voxels: int = 4
    spine_gap_mm: float = 15.0      # adjacent vertebrae further apart than this along z
    midline_margin_mm: float = 10.0
    air_fraction: float = 0.2       # voxels below -500 HU in a structure that holds no air
