"""Slice geometry of a series: order along the slice normal, gaps, tilt, obliquity.

Conventions: DICOM patient coordinates are LPS (x to the patient's left, y posterior, z superior).
``iop`` is ImageOrientationPatient (row cosine, then column cosine); the slice normal is their cross
product. Gaps are differences of slice positions projected on the normal, in mm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SliceStack", "slice_stack", "slice_normal"]


def slice_normal(iop: np.ndarray) -> np.ndarray:
    """Unit normal of the image plane from the six ImageOrientationPatient values."""
    iop = np.asarray(iop, dtype=float)
    normal = np.cross(iop[:3], iop[3:6])
    norm = np.linalg.norm(normal)
    if norm < 1e-6:
        raise ValueError(f"ImageOrientationPatient {iop.tolist()} has parallel row and column cosines")
    return normal / norm


@dataclass(frozen=True)
class SliceStack:
    """Slices of one series sorted along the slice normal.

    Attributes
    ----------
    order : ndarray of int
        Indices that sort the input slices by their position along the normal.
    positions : ndarray of float
        Sorted positions along the normal (mm).
    gaps : ndarray of float
        Differences of consecutive sorted positions (mm); length ``n - 1``.
    normal : ndarray of float
        Unit slice normal (LPS).
    tilt_deg : float
        Angle between the line through the slice origins and the normal: 0 for a rectilinear stack,
        the gantry tilt for a tilted acquisition (whatever the vendor's sign convention of the tag).
    obliquity_deg : float
        Angle between the normal and the nearest patient axis.
    axis : str
        Patient axis nearest the normal: ``"axial"``, ``"coronal"`` or ``"sagittal"``.
    """

    order: np.ndarray
    positions: np.ndarray
    gaps: np.ndarray
    normal: np.ndarray
    tilt_deg: float
    obliquity_deg: float
    axis: str

    @property
    def extent_mm(self) -> float:
        return float(self.positions[-1] - self.positions[0]) if len(self.positions) else 0.0

    @property
    def median_gap(self) -> float:
        positive = self.gaps[self.gaps > 0]
        return float(np.median(positive)) if len(positive) else 0.0


_AXES = ("sagittal", "coronal", "axial")


def slice_stack(iop: np.ndarray, ipp: np.ndarray) -> SliceStack:
    """Sort slices with origins ``ipp`` (n, 3) of one orientation ``iop`` (6,) along the normal."""
    ipp = np.asarray(ipp, dtype=float).reshape(-1, 3)
    normal = slice_normal(iop)
    along = ipp @ normal
    order = np.argsort(along, kind="stable")
    positions = along[order]
    gaps = np.diff(positions)
    tilt = 0.0
    line = ipp[order[-1]] - ipp[order[0]]
    length = np.linalg.norm(line)
    if len(ipp) > 1 and length > 1e-3:
        cosine = abs(float(line @ normal)) / length
        tilt = float(np.degrees(np.arccos(min(1.0, float(cosine)))))
    dominant = int(np.argmax(np.abs(normal)))
    obliquity = float(np.degrees(np.arccos(min(1.0, float(abs(normal[dominant]))))))
    return SliceStack(order=order, positions=positions, gaps=gaps, normal=normal, tilt_deg=tilt,
                      obliquity_deg=obliquity, axis=_AXES[dominant])
