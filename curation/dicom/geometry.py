"""Slice geometry of a series: order along the slice normal, gaps, tilt, obliquity.

Conventions: DICOM patient coordinates are LPS (x to the patient's left, y posterior, z superior).
``iop`` is ImageOrientationPatient (row cosine, then column cosine); the slice normal is their cross
product. Gaps are differences of slice positions projected on the normal, in mm.

One computation serves one series (:func:`slice_stack`, for conversion) and many at once
(:func:`slice_stacks`, for the catalog's thousands of series without a Python loop over them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SliceStack", "SliceStacks", "slice_stack", "slice_stacks", "slice_normal"]

_MIN_NORM = 1e-6     # row and column cosines closer to parallel than this give no normal
_MIN_LINE_MM = 1e-3  # slice origins closer than this give no direction to measure a tilt against
_AXES = ("sagittal", "coronal", "axial")


def slice_normal(iop: np.ndarray) -> np.ndarray:
    """Unit normal of the image plane from the six ImageOrientationPatient values."""
    iop = np.asarray(iop, dtype=float)
    normal = np.cross(iop[:3], iop[3:6])
    norm = np.linalg.norm(normal)
    if norm < _MIN_NORM:
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


@dataclass(frozen=True)
class SliceStacks:
    """The slices of many series, each sorted along its own normal (series numbered ``0 .. n_series - 1``).

    Attributes
    ----------
    order : ndarray of int
        Indices that sort the input slices by series, then by position along the series' normal (ties keep
        their input order).
    positions : ndarray of float
        The slices' positions along their series' normal (mm), in ``order``.
    start, stop : ndarray of int
        Series ``k`` holds ``positions[start[k]:stop[k]]``.
    normal : ndarray of float, shape (n_series, 3)
        Unit slice normals (NaN where ``valid`` is false).
    valid : ndarray of bool
        Whether the series' orientation gives a normal (known, row and column cosines not parallel).
    tilt_deg, obliquity_deg : ndarray of float
        As in :class:`SliceStack`, per series.
    axis : ndarray of str
        As in :class:`SliceStack`, per series ('' where not valid).
    """

    order: np.ndarray
    positions: np.ndarray
    start: np.ndarray
    stop: np.ndarray
    normal: np.ndarray
    valid: np.ndarray
    tilt_deg: np.ndarray
    obliquity_deg: np.ndarray
    axis: np.ndarray

    def of(self, k: int) -> SliceStack:
        """Series ``k`` alone (``order`` then indexes the series' own slices, in their input order)."""
        if not self.valid[k]:
            raise ValueError(f"series {k}: its orientation gives no slice normal")
        span = slice(int(self.start[k]), int(self.stop[k]))
        positions = self.positions[span]
        own = np.argsort(np.argsort(self.order[span], kind="stable"), kind="stable")  # input index -> own index
        return SliceStack(order=own, positions=positions, gaps=np.diff(positions),
                          normal=self.normal[k], tilt_deg=float(self.tilt_deg[k]),
                          obliquity_deg=float(self.obliquity_deg[k]), axis=str(self.axis[k]))


def slice_stacks(series: np.ndarray, iop: np.ndarray, ipp: np.ndarray) -> SliceStacks:
    """Sort the slices of many series at once.

    Parameters
    ----------
    series : ndarray of int, shape (n,)
        The series (``0 .. n_series - 1``) of each slice.
    iop : ndarray, shape (n_series, 6)
        One orientation per series (NaN where unknown: that series is not valid).
    ipp : ndarray, shape (n, 3)
        The slices' origins (no NaN).
    """
    series = np.asarray(series, dtype=np.int64)
    iop = np.asarray(iop, dtype=float).reshape(-1, 6)
    ipp = np.asarray(ipp, dtype=float).reshape(-1, 3)
    n_series = len(iop)
    normal = np.cross(iop[:, :3], iop[:, 3:6])
    norm = np.linalg.norm(normal, axis=1)
    valid = norm >= _MIN_NORM  # False where NaN too
    normal = normal / np.where(valid, norm, np.nan)[:, None]
    along = (ipp * normal[series]).sum(axis=1)
    order = np.lexsort((along, series))  # a stable sort: equal positions keep their input order
    positions = along[order]
    start = np.searchsorted(series[order], np.arange(n_series), side="left")
    stop = np.searchsorted(series[order], np.arange(n_series), side="right")
    count = stop - start
    if len(order):
        line = ipp[order[np.maximum(stop - 1, 0)]] - ipp[order[np.minimum(start, len(order) - 1)]]
    else:
        line = np.zeros((n_series, 3))
    length = np.linalg.norm(line, axis=1)
    measured = (count > 1) & (length > _MIN_LINE_MM) & valid
    with np.errstate(invalid="ignore", divide="ignore"):
        cosine = np.abs((line * normal).sum(axis=1)) / length
        tilt = np.where(measured, np.degrees(np.arccos(np.minimum(1.0, cosine))), 0.0)
        dominant = np.argmax(np.abs(np.nan_to_num(normal)), axis=1)
        obliquity = np.degrees(np.arccos(np.minimum(1.0, np.abs(normal[np.arange(n_series), dominant]))))
    axis = np.where(valid, np.asarray(_AXES, dtype=object)[dominant], "")
    return SliceStacks(order=order, positions=positions, start=start, stop=stop, normal=normal, valid=valid,
                       tilt_deg=np.where(valid, tilt, np.nan), obliquity_deg=obliquity, axis=axis)


def slice_stack(iop: np.ndarray, ipp: np.ndarray) -> SliceStack:
    """Sort slices with origins ``ipp`` (n, 3) of one orientation ``iop`` (6,) along the normal."""
    slice_normal(iop)  # names the orientation when it gives no normal
    ipp = np.asarray(ipp, dtype=float).reshape(-1, 3)
    return slice_stacks(np.zeros(len(ipp), dtype=np.int64), np.asarray(iop, dtype=float).reshape(1, 6), ipp).of(0)
