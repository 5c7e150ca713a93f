"""Read the catalog facts of one DICOM file from its header, touching as few bytes as possible.

A small parser walks the top-level elements of little-endian files (explicit or implicit VR) and
reads only the elements the catalog keeps (:mod:`curation.dicom.tags`); large values (private
blobs, sequences of defined length) are skipped by seeking, and parsing stops at Pixel Data. Files
the fast path cannot handle (big endian, deflated, no preamble, odd encodings) go through pydicom
with ``stop_before_pixels``; both paths give the same record.

Every outcome is a record: ``status`` is ``ok``, ``non_image``, ``no_pixel_data``, ``truncated``,
``unparseable`` or ``not_dicom``, with a human ``detail``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
import warnings
from typing import Any

import pydicom
import pydicom.charset
from pydicom.errors import InvalidDicomError

from .enhanced import dataset_facts, enhanced_record_facts, is_enhanced_ct
from .reading import lenient_reading
from .tags import (
    CHARSET_TAG,
    FIELDS,
    PIXEL_TAGS,
    TAG_TO_FIELD,
    convert_value,
    empty_record,
    is_image_sop_class,
    sop_class_name,
)

__all__ = ["read_header", "header_from_dataset", "new_record", "STATUSES", "READABLE_STATUSES"]

log = logging.getLogger(__name__)

STATUSES = ("ok", "non_image", "no_pixel_data", "truncated", "unparseable", "not_dicom")
READABLE_STATUSES = ("ok", "non_image", "no_pixel_data", "truncated")

_CHUNK = 8192  # one read holds the whole header of most CT slices
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
_UNDEFINED = 0xFFFFFFFF
_ITEM, _ITEM_END, _SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_EXPLICIT_LE = {"1.2.840.10008.1.2.1"}
_IMPLICIT_LE = "1.2.840.10008.1.2"
_SEQ_DELIMITER = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
_SHORT_VRS = frozenset(v.encode() for v in ("AE", "AS", "AT", "CS", "DA", "DS", "DT", "FD", "FL", "IS", "LO", "LT",
                                             "PN", "SH", "SL", "SS", "ST", "TM", "UI", "UL", "US"))
_EXPLICIT_HEAD = struct.Struct("<HH2sH")  # group, element, VR, 16-bit length
_IMPLICIT_HEAD = struct.Struct("<HHI")    # group, element, 32-bit length
_KEPT = frozenset(TAG_TO_FIELD) | {CHARSET_TAG}
_TEXT = frozenset(("str", "text"))
_SINGLE = frozenset(("str", "text", "multi", "float", "int"))  # kinds whose one value needs no splitting
_SEVERAL = {kind: int(kind[7:]) for _tag, _name, kind in FIELDS if kind.startswith("floats:")}
_COLUMNS = {name: [f"{name}_{i}" for i in range(int(kind[7:]))] for _tag, name, kind in FIELDS
            if kind.startswith("floats:")}
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_TAG = struct.Struct("<HH")
_TAG_BE = struct.Struct(">HH")
# pixels per sample group: 4:2:2 colour stores two samples per pixel on average (Y for each, Cb and Cr shared)
_SUBSAMPLED = {"YBR_FULL_422": 2, "YBR_PARTIAL_422": 2}


class _FallbackError(Exception):
    """The fast parser cannot handle this file; use pydicom."""


class _EndOfFileError(Exception):
    def __init__(self, position: int) -> None:
        super().__init__(position)
        self.position = position


class _Window:
    """Reads a file through small windows and counts the bytes it reads."""

    def __init__(self, handle: Any, size: int) -> None:
        self.handle = handle
        self.size = size
        self.start = 0
        self.buf = b""
        self.bytes_read = 0

    def get(self, pos: int, n: int) -> bytes:
        if pos < self.start or pos + n > self.start + len(self.buf):
            if pos + n > self.size:
                raise _EndOfFileError(pos)
            self.handle.seek(pos)
            self.buf = self.handle.read(max(n, _CHUNK))
            self.bytes_read += len(self.buf)
            self.start = pos
            if len(self.buf) < n:
                raise _EndOfFileError(pos)
        offset = pos - self.start
        return self.buf[offset : offset + n]


def _element_header(win: _Window, pos: int, explicit: bool) -> tuple[int, bytes, int, int]:
    """Return (tag, vr, value length, header length) of the element at ``pos``."""
    head = win.get(pos, 8)
    group, elem = _TAG.unpack_from(head, 0)
    tag = (group << 16) | elem
    if group == 0xFFFE:  # item and delimiters never carry a VR
        return tag, b"", _U32.unpack_from(head, 4)[0], 8
    if not explicit:
        return tag, b"", _U32.unpack_from(head, 4)[0], 8
    vr = head[4:6]
    if vr in _LONG_VRS:
        return tag, vr, _U32.unpack_from(win.get(pos + 8, 4), 0)[0], 12
    if not (65 <= vr[0] <= 90 and 65 <= vr[1] <= 90):
        raise _FallbackError(f"bad VR {vr!r} at byte {pos}")
    return tag, vr, _U16.unpack_from(head, 6)[0], 8


def _skip_undefined(win: _Window, pos: int, explicit: bool) -> int:
    """Skip the items of an undefined-length sequence starting at ``pos``; return the position after it."""
    while True:
        tag, _vr, length, hlen = _element_header(win, pos, explicit)
        pos += hlen
        if tag == _SEQ_END:
            return pos
        if tag != _ITEM:
            raise _FallbackError(f"expected an item at byte {pos - hlen}")
        if length != _UNDEFINED:
            pos += length
            continue
        while True:  # item of undefined length: walk its elements until the item delimiter
            tag, vr, length, hlen = _element_header(win, pos, explicit)
            pos += hlen
            if tag == _ITEM_END:
                break
            if length == _UNDEFINED:
                pos = _skip_undefined(win, pos, explicit and vr != b"UN")
            else:
                pos += length


def _decode_text(raw: bytes, encodings: list[str] | None) -> str:
    if encodings:
        if len(encodings) == 1 and b"\x1b" not in raw:  # one character set, no code extensions: Python's codec
            with contextlib.suppress(UnicodeDecodeError, LookupError):
                return raw.decode(encodings[0])
        return str(pydicom.charset.decode_bytes(raw, encodings, set()))
    return raw.decode("latin-1")


def _fast_parse(handle: Any, size: int, record: dict[str, Any]) -> int:
    """Fill ``record`` from the file; return the number of bytes read."""
    win = _Window(handle, size)
    if size < 132 or win.get(128, 4) != b"DICM":
        raise _FallbackError("no DICM preamble")
    pos = 132
    # file meta group: always explicit VR little endian
    ts = ""
    while True:
        tag, vr, length, hlen = _element_header(win, pos, True)  # a file ending in its file meta is cut short
        if tag >> 16 != 0x0002:
            break
        if length == _UNDEFINED:
            raise _FallbackError("undefined length in file meta")
        if tag == 0x00020010:
            ts = win.get(pos + hlen, length).decode("ascii", "replace").strip(" \x00")
        elif tag == 0x00020002 and not record["sop_class_uid"]:
            record["sop_class_uid"] = win.get(pos + hlen, length).decode("ascii", "replace").strip(" \x00")
        pos += hlen + length
    if ts == _IMPLICIT_LE:
        explicit = False
    elif ts in _EXPLICIT_LE or (ts.startswith("1.2.840.10008.1.2.4") or ts == "1.2.840.10008.1.2.5"):
        explicit = True
    else:
        raise _FallbackError(f"transfer syntax {ts!r}")
    record["transfer_syntax"] = ts
    raw_values: dict[int, bytes] = {}
    meta_sop_class = record["sop_class_uid"]
    try:
        _walk(win, pos, size, explicit, record, raw_values)
    finally:  # a file cut short keeps every fact read before the cut
        _decode_into(record, raw_values)
        record["sop_class_uid"] = record["sop_class_uid"] or meta_sop_class  # an empty one in the data set
    return win.bytes_read


def _walk(win: _Window, pos: int, size: int, explicit: bool, record: dict[str, Any],
          raw_values: dict[int, bytes]) -> None:
    """Walk the data set's top-level elements up to Pixel Data, keeping the raw values the catalog wants.

    The loop reads element headers straight from the window's buffer while they lie inside it (the common case);
    near its end, and for items and odd VRs, :func:`_element_header` reads them through the window."""
    explicit_head, implicit_head, u32 = _EXPLICIT_HEAD.unpack_from, _IMPLICIT_HEAD.unpack_from, _U32.unpack_from
    short_vrs, long_vrs, kept, undefined = _SHORT_VRS, _LONG_VRS, _KEPT, _UNDEFINED
    buf, base = win.buf, win.start
    end = base + len(buf) - 12  # element headers that start up to here lie wholly in the buffer
    while pos < size:
        if pos < base or pos > end:
            tag, vr, length, hlen = _element_header(win, pos, explicit)
            buf, base = win.buf, win.start
            end = base + len(buf) - 12
        elif explicit:
            group, element, vr, length = explicit_head(buf, pos - base)
            tag = (group << 16) | element
            if vr in short_vrs and group != 0xFFFE:
                hlen = 8
            elif vr in long_vrs and group != 0xFFFE:
                hlen, length = 12, u32(buf, pos - base + 8)[0]
            else:  # items and delimiters, odd VRs
                tag, vr, length, hlen = _element_header(win, pos, explicit)
                buf, base = win.buf, win.start
                end = base + len(buf) - 12
        else:
            group, element, length = implicit_head(buf, pos - base)
            tag, vr, hlen = (group << 16) | element, b"", 8
        if tag >= 0x7FE00008:  # pixel data, the end of the data set, or an item or delimiter
            if tag in PIXEL_TAGS:
                record["has_pixel_data"] = True
                record["pixel_offset"] = pos
                record["pixel_length"] = -1 if length == undefined else length
                break
            if tag >> 16 == 0xFFFE:  # stray item or delimiter at top level: step over it
                pos += hlen + (length if tag == _ITEM and length != undefined else 0)
                continue
            if tag > 0x7FE00010:
                break
        if length == undefined:
            if not explicit or vr in (b"SQ", b"UN"):
                pos = _skip_undefined(win, pos + hlen, explicit and vr != b"UN")
                buf, base = win.buf, win.start
                end = base + len(buf) - 12
                continue
            raise _FallbackError(f"undefined length for VR {vr!r}")
        if tag in kept:
            value_at = pos + hlen - base
            if value_at >= 0 and value_at + length <= len(buf):
                raw_values[tag] = buf[value_at : value_at + length]
            else:
                raw_values[tag] = win.get(pos + hlen, length)
                buf, base = win.buf, win.start
                end = base + len(buf) - 12
        if pos + hlen + length > size:  # the last element's value runs past the end of the file
            raise _EndOfFileError(pos)
        pos += hlen + length


def _decode_into(record: dict[str, Any], raw_values: dict[int, bytes]) -> None:
    encodings = None
    if CHARSET_TAG in raw_values:
        names = [v.strip(" \x00") for v in raw_values[CHARSET_TAG].decode("ascii", "replace").split("\\")]
        if any(n and n != "ISO_IR 6" for n in names):
            encodings = pydicom.charset.convert_encodings(names)
    for tag, raw in raw_values.items():
        if tag == CHARSET_TAG:
            continue
        name, kind = TAG_TO_FIELD[tag]
        if kind == "us":  # binary: the first unsigned short
            if len(raw) >= 2:
                record[name] = raw[0] | raw[1] << 8
            continue
        value = _decode_text(raw, encodings) if kind == "text" else raw.decode("latin-1")
        if kind in _TEXT and "\\" not in value:  # the common case, inline
            record[name] = value.strip(" \x00")
        else:
            _store(record, name, kind, value)



def _store(record: dict[str, Any], name: str, kind: str, value: Any) -> None:
    if isinstance(value, str) and "\\" not in value and kind in _SINGLE:  # the common case, without the general
        text = value.strip(" \x00")                                       # conversion's splitting and joining
        if kind in ("str", "text"):
            record[name] = text
        elif kind == "multi":
            record[name] = text.upper()
        elif text:
            with contextlib.suppress(ValueError):
                record[name] = float(text) if kind == "float" else int(float(text))
        return
    if isinstance(value, str) and kind in _SEVERAL:  # n numbers into n columns, all empty unless n are there
        parts = [p for p in (part.strip(" \x00") for part in value.split("\\")) if p]
        try:
            numbers = [float(p) for p in parts] if len(parts) == _SEVERAL[kind] else []
        except ValueError:
            numbers = []
        for i, column in enumerate(_COLUMNS[name]):
            record[column] = numbers[i] if numbers else None
        return
    try:
        converted = convert_value(kind, value)
    except (ValueError, TypeError):
        converted = None
    if kind.startswith("floats:"):
        n = int(kind.split(":")[1])
        for i in range(n):
            record[f"{name}_{i}"] = converted[i] if converted else None
    elif converted is not None:
        record[name] = converted


def _pydicom_parse(path: str, record: dict[str, Any]) -> None:
    """Fill ``record`` using pydicom (the slow, general path); its warnings are kept with the file."""
    with lenient_reading(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            _pydicom_fill(path, record)
        finally:
            notes = list(dict.fromkeys(str(w.message) for w in caught))
            if notes:
                record["warnings"] = "; ".join(notes)[:1000]
                log.info("%s: %s", path, record["warnings"])


def _pydicom_fill(path: str, record: dict[str, Any]) -> None:
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
    except InvalidDicomError:
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
        groups = {tag.group for tag in ds.keys()}  # noqa: SIM118 (iterating a Dataset decodes elements)
        if not groups & {0x0008, 0x0010, 0x0020, 0x0028} or any(g > 0x7FE0 for g in groups):
            raise InvalidDicomError("no DICOM preamble and no plausible data elements") from None
    _fill_from_dataset(ds, record)
    with open(path, "rb") as handle:
        # Bits Allocated and Pixel Representation resolve the VR of implicit-VR Pixel Data
        ds2 = pydicom.dcmread(handle, force=True, specific_tags=[0x00280100, 0x00280103, 0x7FE00010])
        elem = ds2.get(0x7FE00010)
        if elem is not None:
            record["has_pixel_data"] = True
            record["pixel_offset"] = -1
            record["pixel_length"] = -1 if elem.is_undefined_length else len(elem.value or b"")


def _fill_from_dataset(ds: pydicom.Dataset, record: dict[str, Any]) -> None:
    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        record["transfer_syntax"] = str(meta.get("TransferSyntaxUID", "") or "")
        if "MediaStorageSOPClassUID" in meta:
            record["sop_class_uid"] = str(meta.MediaStorageSOPClassUID)
    for tag, name, kind in FIELDS:
        elem = ds.get(tag)
        if elem is None or elem.value is None:
            continue
        value = elem.value
        if kind in ("str", "text", "multi") and not isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
            value = str(value)
        _store(record, name, kind, list(value) if isinstance(value, pydicom.multival.MultiValue) else value)
    if not record["sop_class_uid"] and meta is not None and meta.get("MediaStorageSOPClassUID"):
        record["sop_class_uid"] = str(meta.MediaStorageSOPClassUID)  # the data set's is empty: the file meta's


def _fill_missing(ds: pydicom.Dataset, record: dict[str, Any]) -> None:
    """Fill only the catalog columns still empty from ``ds`` (attributes an enhanced object keeps elsewhere)."""
    empty = {k for k, v in record.items() if v is None or v == ""}
    found = new_record(str(record.get("path", "")))
    _fill_from_dataset(ds, found)
    for key, value in found.items():
        if key in empty and value not in (None, ""):
            record[key] = value


_NATIVE = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"}


def _check_pixels(handle: Any, size: int, record: dict[str, Any]) -> int:
    """Check that the pixel data element is whole; return the bytes read for the check."""
    offset, length = record["pixel_offset"], record["pixel_length"]
    if offset is None or offset < 0:
        return 0
    header = 12 if record["transfer_syntax"] != _IMPLICIT_LE else 8
    present = size - offset - header
    rows, cols, bits = record["rows"], record["columns"], record["bits_allocated"]
    if record["transfer_syntax"] in _NATIVE and rows and cols and bits:
        frames = max(int(record["number_of_frames"] or 1), 1)
        samples = max(int(record["samples_per_pixel"] or 1), 1)
        samples = _SUBSAMPLED.get(str(record.get("photometric") or "").strip().upper(), samples)
        expected = (rows * cols * frames * samples * bits + 7) // 8
        available = present if length < 0 else min(length, present)
        if available < expected:
            record["status"] = "truncated"
            record["detail"] = (
                f"pixel data holds {available} bytes, {expected} expected for {rows}x{cols}x{frames} "
                f"at {bits} bit"
            )
        return 0
    if length >= 0:
        if length > present:
            record["status"] = "truncated"
            record["detail"] = f"pixel data needs {length} bytes from byte {offset + header}, file ends at {size}"
        return 0
    tail = min(size, 1024)
    handle.seek(size - tail)
    end = handle.read(tail)
    if _SEQ_DELIMITER not in end:
        record["status"] = "truncated"
        record["detail"] = "encapsulated pixel data has no end delimiter: the file is cut short"
    return tail


def _plausible_raw_dataset(handle: Any) -> bool:
    """True when a file without preamble starts like a DICOM data set (group 0002 or 0008, little or big endian)."""
    handle.seek(0)
    head = handle.read(8)
    if len(head) < 8:
        return False
    little, _elem = _TAG.unpack_from(head, 0)
    big, _elem = _TAG_BE.unpack_from(head, 0)
    return little in (0x0002, 0x0008) or big in (0x0002, 0x0008)


def new_record(path: str) -> dict[str, Any]:
    """An empty catalog record for ``path``: every column present, status ``ok``, nothing read yet."""
    record = dict(_EMPTY)
    record["path"] = path
    return record


_EMPTY = {**empty_record(), "path": "", "size": 0, "mtime_ns": 0, "status": "ok", "detail": "", "transfer_syntax": "",
          "sop_class": "", "has_pixel_data": False, "pixel_offset": None, "pixel_length": None, "bytes_read": 0,
          "warnings": "", "frame_positions": "", "frame_orientations": ""}


def read_header(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read one file's header into a catalog record (never raises for bad files).

    Parameters
    ----------
    path : str or PathLike
        The file to read.

    Returns
    -------
    dict
        Catalog columns (see :data:`curation.dicom.tags.FIELDS`) plus ``path``, ``size``,
        ``mtime_ns``, ``status``, ``detail``, ``sop_class``, ``has_pixel_data``, ``pixel_offset``,
        ``pixel_length``, ``transfer_syntax`` and ``bytes_read``.
    """
    path = os.fspath(path)
    record = new_record(path)
    try:
        st = os.stat(path)
    except OSError as exc:
        record.update(status="not_dicom", detail=f"cannot stat: {exc.strerror}")
        return record
    record.update(size=st.st_size, mtime_ns=st.st_mtime_ns)
    try:
        with open(path, "rb", buffering=0) as handle:
            try:
                record["bytes_read"] = _fast_parse(handle, st.st_size, record)
            except _FallbackError:
                if not _plausible_raw_dataset(handle) and handle.seek(128) == 128 and handle.read(4) != b"DICM":
                    record.update(status="not_dicom", detail="not a DICOM file (no DICM marker, no data set)",
                                  bytes_read=min(st.st_size, 132))
                    return record
                record.update(empty_record(), transfer_syntax="", has_pixel_data=False, pixel_offset=None,
                              pixel_length=None)
                _pydicom_parse(path, record)
                record["bytes_read"] = st.st_size
            except _EndOfFileError as eof:
                record.update(status="truncated", detail=f"file ends inside the header at byte {eof.position}",
                              bytes_read=st.st_size)
                return _finish(record)
            record["bytes_read"] += _check_pixels(handle, st.st_size, record)
    except InvalidDicomError as exc:
        record.update(status="not_dicom", detail=f"not a DICOM file ({exc})", bytes_read=st.st_size)
        return record
    except (OSError, EOFError, ValueError, KeyError, struct.error, TypeError, AttributeError,
            NotImplementedError, IndexError, OverflowError) as exc:
        record.update(status="unparseable", detail=f"{type(exc).__name__}: {exc}", bytes_read=st.st_size)
        return record
    if is_enhanced_ct(record["sop_class_uid"]) and record["status"] == "ok":
        try:  # the frames' positions and orientation live in functional groups
            enhanced_record_facts(path, record, _fill_missing)
        except (OSError, ValueError, TypeError, AttributeError, KeyError, IndexError, InvalidDicomError) as exc:
            record.update(status="unparseable", detail=f"functional groups unreadable ({type(exc).__name__}: {exc})")
            return record
    return _finish(record)


def header_from_dataset(ds: pydicom.Dataset, path: str) -> dict[str, Any]:
    """The catalog record of a data set known only by its header (e.g. DICOMweb metadata).

    ``path`` is where the file will be once retrieved; ``size``, ``mtime_ns`` and ``bytes_read``
    are 0, and pixel data counts as present when the header names it (inline or as bulk data).
    """
    with lenient_reading():
        return _record_from_dataset(ds, path)


def _record_from_dataset(ds: pydicom.Dataset, path: str) -> dict[str, Any]:
    record = new_record(path)
    _fill_from_dataset(ds, record)
    if is_enhanced_ct(record["sop_class_uid"]):
        dataset_facts(ds, record, _fill_missing)  # the frames' positions, as the retrieved file's scan finds them
    # servers may leave bulk data out of metadata (Orthanc does for compressed pixels): an image object
    # with a matrix size is taken to have pixels; the scan of the retrieved file checks it
    record["has_pixel_data"] = any(tag in ds for tag in PIXEL_TAGS) or bool(
        is_image_sop_class(record["sop_class_uid"]) and record["rows"] and record["columns"])
    return _finish(record)


def _finish(record: dict[str, Any]) -> dict[str, Any]:
    uid = record["sop_class_uid"]
    record["sop_class"] = sop_class_name(uid) if uid else ""
    if record["status"] != "ok":
        return record
    if uid and not is_image_sop_class(uid):
        record.update(status="non_image", detail=f"non-image object: {record['sop_class']}")
    elif not record["has_pixel_data"]:
        # a header-only object, or a file cut exactly between two elements: nothing tells them apart
        ends = f", or a file cut short at byte {record['size']}" if record.get("size") else ""
        record.update(status="no_pixel_data", detail=f"no Pixel Data element (a header only{ends})")
    return record
