"""Read the pixels of a sorted CT series into a :class:`~curation.image.volume.Volume` in HU.

Slices are decoded one at a time into a preallocated int16 array (compressed transfer syntaxes
through pylibjpeg and GDCM), so loading holds one copy of the volume plus one slice.
"""

from __future__ import annotations

import functools
import logging
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pydicom
import pydicom.pixels
from pydicom.dataset import FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from curation.errors import ConversionError
from curation.image.volume import Volume

from .enhanced import frame_facts, is_enhanced_ct
from .geometry import slice_stack
from .header import read_header
from .reading import lenient_reading

__all__ = ["read_slice_hu", "read_dataset", "load_series", "check_decodable"]

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
    header: pydicom.Dataset | None = None
    try:
        ds = header = read_dataset(path)
        pixels = ds.pixel_array
    except Exception as exc:  # pydicom and its plugins raise many types for bad pixel data
        raise ConversionError(_decode_failure(path, "pixel data", header, exc)) from None
    if pixels.ndim != 2:
        raise ConversionError(
            f"{path}: expected one grayscale frame, found pixel array of shape {pixels.shape}; "
            "multi-frame and colour images are not CT slices"
        )
    slope = float(ds.get("RescaleSlope", 1) or 1)
    intercept = float(ds.get("RescaleIntercept", 0) or 0)
    return pixels.astype(np.float32) * np.float32(slope) + np.float32(intercept), ds


def check_decodable(path: str) -> str:
    """Empty string when the slice (or an enhanced object's first frame) decodes, else the reason."""
    try:
        if is_enhanced_ct(read_header(path).get("sop_class_uid")):
            _enhanced_frames(path, first_only=True)
        else:
            read_slice_hu(path)
    except ConversionError as exc:
        return str(exc)
    return ""


def _header_numbers(record: dict, prefix: str, n: int, path: str, keyword: str) -> np.ndarray:
    values = [record.get(f"{prefix}_{i}") for i in range(n)]
    if any(v is None or np.isnan(v) for v in values):
        raise ConversionError(f"{path}: {keyword} missing or malformed; expected {n} numbers")
    return np.asarray(values, dtype=float)


@dataclass(frozen=True)
class _Slice:
    """One slice to place: its geometry and how to get its HU values."""

    label: str                      # the file (and frame) it comes from, for messages
    iop: np.ndarray
    ipp: np.ndarray
    pixel_spacing: np.ndarray       # (row spacing, column spacing)
    shape: tuple[int, int]
    read: Callable[[], np.ndarray]  # float32 HU


def _classic_slices(paths: Sequence[str], headers: Sequence[dict]) -> list[_Slice]:
    if len(paths) < 2:
        raise ConversionError(f"series of {len(paths)} file(s): a volume needs at least 2 slices")
    out = []
    rescaled = []
    for path, h in zip(paths, headers, strict=True):
        rescaled.append(h.get("rescale_intercept") is not None and not np.isnan(h["rescale_intercept"]))
        out.append(_Slice(path, _header_numbers(h, "iop", 6, path, "ImageOrientationPatient"),
                          _header_numbers(h, "ipp", 3, path, "ImagePositionPatient"),
                          _spacing_or_nan(h), (int(h["rows"] or 0), int(h["columns"] or 0)),
                          functools.partial(_classic_hu, path)))
    if any(rescaled) and not all(rescaled):
        lacking = paths[rescaled.index(False)]
        raise ConversionError(f"{lacking}: no RescaleIntercept/RescaleSlope while other slices of its series have "
                              "them; its values would not be HU: exclude the series or repair the file")
    return out


def read_dataset(path: str) -> pydicom.Dataset:
    """The whole data set of a file, also without preamble or file meta (as the scan reads it): its transfer
    syntax is then the encoding pydicom found."""
    try:
        return pydicom.dcmread(path)
    except InvalidDicomError:
        ds = pydicom.dcmread(path, force=True)
    if "TransferSyntaxUID" not in getattr(ds, "file_meta", {}):
        implicit, little = ds.original_encoding
        ds.file_meta = getattr(ds, "file_meta", None) or FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = (ImplicitVRLittleEndian if implicit else
                                          ExplicitVRLittleEndian if little else ExplicitVRBigEndian)
    return ds


def _decode_failure(path: str, what: str, ds: pydicom.Dataset | None, exc: Exception) -> str:
    """The one-line reason pixels cannot be decoded; a missing decoder names the transfer syntax and the fix."""
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    text = f"{type(exc).__name__}: {exc}".splitlines()
    missing = isinstance(exc, NotImplementedError) or "plugins" in str(exc) or "no pixel data handler" in str(exc)
    if missing and syntax is not None:
        return (f"{path}: no decoder installed for its transfer syntax {syntax.name} ({syntax}); install one "
                "pydicom can use (pylibjpeg with its plugins, python-gdcm) or convert the files to an uncompressed "
                "syntax (e.g. 'gdcmconv --raw'), then filter again")
    return f"{path}: cannot decode {what} ({' '.join(t.strip() for t in text)[:300]})"


def _classic_hu(path: str) -> np.ndarray:
    return read_slice_hu(path)[0]


def _frame_hu(pixels: np.ndarray, k: int, slope: np.float32, intercept: np.float32) -> np.ndarray:
    return pixels[k].astype(np.float32) * slope + intercept


def _spacing_or_nan(record: dict) -> np.ndarray:
    return np.asarray([np.nan if record.get(f"pixel_spacing_{i}") is None else record[f"pixel_spacing_{i}"]
                       for i in range(2)], dtype=float)


def _enhanced_frames(path: str, *, first_only: bool = False) -> list[_Slice]:
    """The frames of an Enhanced or Legacy Converted Enhanced CT object as slices (pixels decoded once)."""
    with lenient_reading(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        header: pydicom.Dataset | None = None
        try:
            ds = header = read_dataset(path)
            facts = frame_facts(ds)
            pixels = pydicom.pixels.pixel_array(ds, index=0)[np.newaxis] if first_only else ds.pixel_array
        except Exception as exc:  # pydicom and its plugins raise many types for bad pixel data
            raise ConversionError(_decode_failure(path, "the frames", header, exc)) from None
        finally:
            for note in dict.fromkeys(str(w.message) for w in caught):
                log.warning("%s: %s", path, note)
    if pixels.ndim == 2:
        pixels = pixels[np.newaxis]
    if pixels.ndim != 3:
        raise ConversionError(f"{path}: expected grayscale frames, found pixel array of shape {pixels.shape}")
    out = []
    for k in range(len(pixels)):
        label = f"{path} frame {k + 1}"
        for what, values in (("ImagePositionPatient", facts.positions[k]),
                             ("ImageOrientationPatient", facts.orientations[k])):
            if np.isnan(values).any():
                raise ConversionError(f"{label}: {what} missing in its functional groups")
        slope, intercept = np.float32(facts.slopes[k]), np.float32(facts.intercepts[k])
        out.append(_Slice(label, facts.orientations[k], facts.positions[k], facts.pixel_spacing[k],
                          (int(pixels.shape[1]), int(pixels.shape[2])),
                          functools.partial(_frame_hu, pixels, k, slope, intercept)))
    return out


def load_series(paths: Sequence[str], *, max_tilt_deg: float = 1.0, spacing_tolerance: float = 0.05,
                on_slice: Callable[[int], None] | None = None) -> Volume:
    """Load a single-orientation series as an int16 HU volume with LPS geometry: classic slices (one per
    file) or the frames of Enhanced / Legacy Converted Enhanced CT objects.

    Raises
    ------
    ConversionError
        If a slice cannot be decoded, the slices differ in size or orientation, the stack is tilted,
        or the slice spacing is irregular.
    """
    headers = [read_header(p) for p in paths]  # the catalog's fast reader: a few KiB per file
    if any(is_enhanced_ct(h.get("sop_class_uid")) for h in headers):
        slices = [s for path in paths for s in _enhanced_frames(path)]
        if len(slices) < 2:
            raise ConversionError(f"{paths[0]}: {len(slices)} frame(s): a volume needs at least 2 slices")
    else:
        slices = _classic_slices(paths, headers)
    iops = np.array([s.iop for s in slices])
    ipps = np.array([s.ipp for s in slices])
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
    first = slices[stack.order[0]]
    rows, cols = first.shape
    if not rows or not cols:
        raise ConversionError(f"{first.label}: Rows/Columns missing; not an image slice")
    if np.isnan(first.pixel_spacing).any():
        raise ConversionError(f"{first.label}: PixelSpacing missing or malformed; expected 2 numbers")
    array = np.empty((len(slices), rows, cols), dtype=np.int16)
    for k, index in enumerate(stack.order):
        hu = slices[index].read()
        if hu.shape != (rows, cols):
            raise ConversionError(f"{slices[index].label}: slice is {hu.shape}, expected {(rows, cols)} like the "
                                  "others")
        np.clip(np.rint(hu, out=hu), _INT16.min, _INT16.max, out=hu)
        array[k] = hu
        if on_slice:
            on_slice(k)
    direction = np.column_stack([iops[0][:3], iops[0][3:], stack.normal])
    # PixelSpacing is (row spacing = along y/columns direction, column spacing = along x/row direction)
    spacing = (float(first.pixel_spacing[1]), float(first.pixel_spacing[0]), spacing_z)
    origin = ipps[stack.order[0]]
    return Volume(array=array, spacing=spacing, origin=tuple(origin), direction=direction)
