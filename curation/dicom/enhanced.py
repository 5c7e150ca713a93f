"""Enhanced (multi-frame) CT: the per-frame facts of Enhanced CT and Legacy Converted Enhanced CT objects.

One file holds every slice of a series as frames. Where a classic slice keeps its position, orientation,
pixel spacing, rescale and image type in its own header, an enhanced object keeps them in functional groups:
shared by every frame (``SharedFunctionalGroupsSequence``) or per frame
(``PerFrameFunctionalGroupsSequence``), the per-frame value winning. :func:`frame_facts` reads them so the
catalog, the rules and the converter treat each frame as the slice it is.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pydicom

from .reading import lenient_reading

__all__ = ["ENHANCED_CT_SOP_CLASSES", "FrameFacts", "frame_facts", "is_enhanced_ct", "enhanced_record_facts",
           "dataset_facts"]

ENHANCED_CT_SOP_CLASSES = frozenset({"1.2.840.10008.5.1.4.1.1.2.1", "1.2.840.10008.5.1.4.1.1.2.2"})


def is_enhanced_ct(sop_class_uid: str | None) -> bool:
    return str(sop_class_uid or "") in ENHANCED_CT_SOP_CLASSES


@dataclass(frozen=True)
class FrameFacts:
    """The facts of every frame of an enhanced object, in frame order."""

    positions: np.ndarray        # (n, 3) ImagePositionPatient per frame (NaN where missing)
    orientations: np.ndarray     # (n, 6) ImageOrientationPatient per frame
    pixel_spacing: np.ndarray    # (n, 2)
    slice_thickness: np.ndarray  # (n,)
    slopes: np.ndarray           # (n,)
    intercepts: np.ndarray       # (n,)
    frame_types: list[str]       # FrameType per frame, backslash joined

    @property
    def n_frames(self) -> int:
        return len(self.positions)


def _item(ds: Any, sequence: str) -> Any:
    value = ds.get(sequence)
    return value[0] if value else None


def _lookup(frame: Any, shared: Any, sequence: str, keyword: str) -> Any:
    for group in (frame, shared):
        if group is None:
            continue
        item = _item(group, sequence)
        if item is not None and keyword in item and item.get(keyword) not in (None, ""):
            return item.get(keyword)
    return None


def _numbers(value: Any, n: int) -> list[float]:
    try:
        values = [float(v) for v in (value if isinstance(value, list | tuple | pydicom.multival.MultiValue)
                                     else [value])]
    except (TypeError, ValueError):
        return [float("nan")] * n
    return values[:n] if len(values) >= n else [float("nan")] * n


def frame_facts(ds: pydicom.Dataset) -> FrameFacts:
    """Per-frame geometry, rescale and frame type of an enhanced data set (header only is enough)."""
    with lenient_reading():
        shared = _item(ds, "SharedFunctionalGroupsSequence")
        per_frame = list(ds.get("PerFrameFunctionalGroupsSequence") or [])
        n = int(ds.get("NumberOfFrames") or len(per_frame) or 1)
        frames = per_frame + [None] * (n - len(per_frame))
        positions, orientations, spacings, thickness, slopes, intercepts, types = [], [], [], [], [], [], []
        for frame in frames[:n]:
            positions.append(_numbers(_lookup(frame, shared, "PlanePositionSequence", "ImagePositionPatient"), 3))
            orientations.append(_numbers(_lookup(frame, shared, "PlaneOrientationSequence",
                                                 "ImageOrientationPatient"), 6))
            spacings.append(_numbers(_lookup(frame, shared, "PixelMeasuresSequence", "PixelSpacing"), 2))
            thickness.append(_numbers(_lookup(frame, shared, "PixelMeasuresSequence", "SliceThickness"), 1)[0])
            slope = _lookup(frame, shared, "PixelValueTransformationSequence", "RescaleSlope")
            intercept = _lookup(frame, shared, "PixelValueTransformationSequence", "RescaleIntercept")
            slopes.append(float(slope) if slope not in (None, "") else float(ds.get("RescaleSlope", 1) or 1))
            intercepts.append(float(intercept) if intercept not in (None, "")
                              else float(ds.get("RescaleIntercept", 0) or 0))
            frame_type = _lookup(frame, shared, "CTImageFrameTypeSequence", "FrameType")
            types.append("\\".join(str(t) for t in frame_type) if isinstance(frame_type, list | tuple |
                                                                               pydicom.multival.MultiValue)
                         else str(frame_type or ""))
    return FrameFacts(np.array(positions, float).reshape(-1, 3), np.array(orientations, float).reshape(-1, 6),
                      np.array(spacings, float).reshape(-1, 2), np.array(thickness, float),
                      np.array(slopes, float), np.array(intercepts, float), types)


def enhanced_record_facts(path: str, record: dict[str, Any],
                          fill: Callable[[pydicom.Dataset, dict[str, Any]], None] | None = None) -> None:
    """Fill a catalog record of an enhanced CT file from its functional groups (see :func:`dataset_facts`)."""
    dataset_facts(pydicom.dcmread(path, stop_before_pixels=True, force=True), record, fill)


def dataset_facts(ds: pydicom.Dataset, record: dict[str, Any],
                  fill: Callable[[pydicom.Dataset, dict[str, Any]], None] | None = None) -> None:
    """Fill a catalog record from an enhanced data set's functional groups (a file's header, or the PACS's
    metadata): the first frame's geometry in the usual columns, every frame's position in ``frame_positions``
    (JSON), the frame type as image type when the object has none, ``frame_orientations`` when frames differ.
    ``fill(item, record)`` fills the columns still empty from a data set: it is given the attributes a legacy
    conversion keeps unassigned (kVp, kernel, tilt, ...), the first frame's before the shared ones."""
    facts = frame_facts(ds)
    if not facts.n_frames:
        return
    for i in range(3):
        record[f"ipp_{i}"] = _finite(facts.positions[0, i])
    for i in range(6):
        record[f"iop_{i}"] = _finite(facts.orientations[0, i])
    for i in range(2):
        record[f"pixel_spacing_{i}"] = _finite(facts.pixel_spacing[0, i])
    record["slice_thickness"] = _finite(facts.slice_thickness[0])
    record["rescale_slope"], record["rescale_intercept"] = float(facts.slopes[0]), float(facts.intercepts[0])
    if not record.get("image_type"):
        record["image_type"] = facts.frame_types[0]
    record["frame_positions"] = json.dumps([[round(float(v), 4) for v in p] for p in facts.positions
                                            if not np.isnan(p).any()])
    distinct = np.unique(np.round(facts.orientations[~np.isnan(facts.orientations).any(axis=1)], 4), axis=0)
    if len(distinct) > 1:
        record["frame_orientations"] = json.dumps(distinct.tolist())
    shared = _item(ds, "SharedFunctionalGroupsSequence")
    first = (ds.get("PerFrameFunctionalGroupsSequence") or [None])[0]
    if fill is not None:
        for group, sequence in ((first, "UnassignedPerFrameConvertedAttributesSequence"),
                                (shared, "UnassignedSharedConvertedAttributesSequence")):
            item = _item(group, sequence) if group is not None else None
            if item is not None:
                fill(item, record)
    for column, sequence, keyword in (("kvp", "CTXRayDetailsSequence", "KVP"),
                                      ("kernel", "CTReconstructionSequence", "ConvolutionKernel"),
                                      ("gantry_tilt", "CTAcquisitionDetailsSequence", "GantryDetectorTilt")):
        value = _lookup(first, shared, sequence, keyword)
        if value is not None and record.get(column) in (None, ""):
            if column == "kernel":
                record[column] = "\\".join(str(v) for v in value) if isinstance(value, list | tuple |
                                                                                  pydicom.multival.MultiValue) \
                    else str(value)
            else:
                record[column] = _numbers(value, 1)[0]
    localizer = [t for t in facts.frame_types if "LOCALIZER" in t.upper()]
    if localizer and "LOCALIZER" not in str(record.get("image_type", "")).upper():
        record["image_type"] = f"{record.get('image_type', '')}\\{localizer[0]}".strip("\\")


def _finite(value: float) -> float | None:
    return None if np.isnan(value) else float(value)
