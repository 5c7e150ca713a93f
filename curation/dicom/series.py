"""Read the pixels of a sorted CT series into a :class:`~curation.image.volume.Volume` in HU.

Slices are decoded one at a time into a preallocated int16 array (compressed transfer syntaxes
through pylibjpeg and GDCM), so loading holds one copy of the volume plus one slice.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import pydicom

from curation.errors import ConversionError
from curation.image.volume import Volume

from .geometry import slice_stack
from .header import read_header
from .reading import lenient_reading

__all__ = ["read_slice_hu", "load_series", "check_decodable"]

_INT16 = np.iinfo(np.int16)

log = logging.getLogger(__name__)


def read_slice_hu(path: str) -> tuple[np.ndarray, pydicom.Dataset]:
    """Decode one single-frame slice and apply rescale slope/intercept; returns (float32 HU, header).

    Warnings of pydicom and its decoders are logged with the file's name, not printed without it."""
    with lenient_reading(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            return _read_slice_hu(path)
        finally:
            for note in dict.fromkeys(str(w.message) for w in caught):
                log.warning("%s: %s", path, note)


def _read_slice_hu(path: str) -> tuple[np.ndarray, pydicom.Dataset]:
    try:
        ds = pydicom.dcmread(path)
        pixels = ds.pixel_array
    except Exception as exc:  # pydicom and its plugins raise many types for bad pixel data
        raise ConversionError(f"{path}: cannot decode pixel data ({type(exc).__name__}: {exc})") from None
    if pixels.ndim != 2:
        raise ConversionError(
            f"{path}: expected one grayscale frame, found pixel array of shape {pixels.shape}; "
            "multi-frame and colour images are not CT slices"
        )
    slope = float(ds.get("RescaleSlope", 1) or 1)
    intercept = float(ds.get("RescaleIntercept", 0) or 0)
    return pixels.astype(np.float32) * np.float32(slope) + np.float32(intercept), ds


def check_decodable(path: str) -> str:
    """Empty string when the slice decodes, else the reason."""
    try:
        read_slice_hu(path)
    except ConversionError as exc:
        return str(exc)
    return ""


def _header_numbers(record: dict, prefix: str, n: int, path: str, keyword: str) -> np.ndarray:
    values = [record.get(f"{prefix}_{i}") for i in range(n)]
    if any(v is None or np.isnan(v) for v in values):
        raise ConversionError(f"{path}: {keyword} missing or malformed; expected {n} numbers")
    return np.asarray(values, dtype=float)


def load_series(paths: Sequence[str], *, max_tilt_deg: float = 1.0, spacing_tolerance: float = 0.05,
                on_slice: Callable[[int], None] | None = None) -> Volume:
    """Load a single-orientation series of CT slices as an int16 HU volume with LPS geometry.

    Raises
    ------
    ConversionError
        If a slice cannot be decoded, the slices differ in size or orientation, the stack is tilted,
        or the slice spacing is irregular.
    """
    if len(paths) < 2:
        raise ConversionError(f"series of {len(paths)} file(s): a volume needs at least 2 slices")
    headers = [read_header(p) for p in paths]  # the catalog's fast reader: a few KiB per file
    iops = np.array([_header_numbers(h, "iop", 6, p, "ImageOrientationPatient") for h, p in zip(headers, paths,
                                                                                                strict=True)])
    ipps = np.array([_header_numbers(h, "ipp", 3, p, "ImagePositionPatient") for h, p in zip(headers, paths,
                                                                                             strict=True)])
    if np.abs(iops - iops[0]).max() > 1e-3:
        raise ConversionError(f"{paths[0]}: slices of this series differ in orientation; split or exclude it")
    stack = slice_stack(iops[0], ipps)
    if stack.tilt_deg > max_tilt_deg:
        raise ConversionError(
            f"{paths[0]}: slice stack is tilted by {stack.tilt_deg:.1f} deg (gantry tilt); a sheared volume "
            "cannot be stored with an orthogonal grid: exclude the series"
        )
    gaps = stack.gaps
    spacing_z = float(np.median(gaps))
    if spacing_z <= 0 or np.abs(gaps - spacing_z).max() > max(spacing_tolerance, 0.02 * spacing_z):
        raise ConversionError(
            f"{paths[0]}: irregular slice spacing (gaps {np.round(gaps.min(), 3)} to {np.round(gaps.max(), 3)} mm); "
            "run 'ctcurate filter' to exclude such series"
        )
    first = headers[stack.order[0]]
    if not first["rows"] or not first["columns"]:
        raise ConversionError(f"{paths[stack.order[0]]}: Rows/Columns missing; not an image slice")
    rows, cols = int(first["rows"]), int(first["columns"])
    pixel_spacing = _header_numbers(first, "pixel_spacing", 2, paths[stack.order[0]], "PixelSpacing")
    array = np.empty((len(paths), rows, cols), dtype=np.int16)
    for k, index in enumerate(stack.order):
        hu, _ds = read_slice_hu(paths[index])
        if hu.shape != (rows, cols):
            raise ConversionError(f"{paths[index]}: slice is {hu.shape}, expected {(rows, cols)} like the others")
        np.clip(np.rint(hu, out=hu), _INT16.min, _INT16.max, out=hu)
        array[k] = hu
        if on_slice:
            on_slice(k)
    direction = np.column_stack([iops[0][:3], iops[0][3:], stack.normal])
    # PixelSpacing is (row spacing = along y/columns direction, column spacing = along x/row direction)
    spacing = (float(pixel_spacing[1]), float(pixel_spacing[0]), spacing_z)
    origin = ipps[stack.order[0]]
    return Volume(array=array, spacing=spacing, origin=tuple(origin), direction=direction)
