"""Volumes and their NRRD files.

A :class:`Volume` holds an array indexed (z, y, x) and its geometry in ITK's (x, y, z) order, as
SimpleITK does: ``spacing[0]`` is the spacing along the array's last axis, and column ``i`` of
``direction`` is the LPS unit vector of index axis ``i``. The world (LPS, mm) position of voxel
``array[k, j, i]`` is ``origin + direction @ (spacing * (i, j, k))``.

NRRD files are written by a streaming writer (header, then gzip-compressed slabs), so writing
never holds a second copy of the volume; they are read with pynrrd.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import nrrd
import numpy as np
import SimpleITK as sitk

from curation.atomic import atomic_open, atomic_path
from curation.errors import ConversionError

__all__ = ["Volume", "write_nrrd", "read_nrrd", "read_nrrd_grid",
           "read_volume", "write_volume", "resample_isotropic", "resample_image",
           "VOLUME_SUFFIXES", "volume_suffix", "nifti_nonfinite", "resample_labels"]

VOLUME_SUFFIXES = (".nrrd", ".nii.gz", ".nii")

_NRRD_TYPES = {np.dtype("int16"): "int16", np.dtype("uint8"): "uint8", np.dtype("int32"): "int32",
               np.dtype("float32"): "float", np.dtype("uint16"): "uint16", np.dtype("int8"): "int8"}


@dataclass(frozen=True)
class Volume:
    """An image volume with LPS geometry.

    Parameters
    ----------
    array : ndarray
        Voxels, indexed (z, y, x).
    spacing : tuple of 3 floats
        Voxel size in mm along (x, y, z) index axes.
    origin : tuple of 3 floats
        LPS position (mm) of the centre of voxel (0, 0, 0).
    direction : ndarray (3, 3)
        Columns are the LPS unit vectors of the x, y, z index axes.
    """

    array: np.ndarray
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: np.ndarray

    def __post_init__(self) -> None:
        if self.array.ndim != 3:
            raise ConversionError(f"volume: expected a 3-D (z, y, x) array, found shape {self.array.shape}")
        spacing = tuple(float(s) for s in self.spacing)
        if len(spacing) != 3 or min(spacing) <= 0:
            raise ConversionError(f"volume: expected 3 positive spacings, found {self.spacing}")
        direction = np.asarray(self.direction, dtype=float).reshape(3, 3)
        if not np.allclose(direction.T @ direction, np.eye(3), atol=1e-4):
            raise ConversionError(f"volume: direction {direction.tolist()} is not orthonormal")
        object.__setattr__(self, "spacing", spacing)
        object.__setattr__(self, "origin", tuple(float(o) for o in self.origin))
        object.__setattr__(self, "direction", direction)

    @property
    def size(self) -> tuple[int, int, int]:
        """Size along (x, y, z)."""
        z, y, x = self.array.shape
        return x, y, z

    def index_to_world(self, ijk: np.ndarray) -> np.ndarray:
        """LPS positions of continuous (i, j, k) = (x, y, z) indices, shape (n, 3)."""
        ijk = np.atleast_2d(np.asarray(ijk, dtype=float))
        return np.asarray(self.origin) + (ijk * np.asarray(self.spacing)) @ self.direction.T

    def corners(self) -> np.ndarray:
        """LPS positions of the 8 outer corners of the voxel grid (not voxel centres), shape (8, 3)."""
        lo = np.full(3, -0.5)
        hi = np.asarray(self.size, dtype=float) - 0.5
        pts = np.array([[a, b, c] for a in (lo[0], hi[0]) for b in (lo[1], hi[1]) for c in (lo[2], hi[2])])
        return self.index_to_world(pts)

    def to_sitk(self) -> sitk.Image:
        """A SimpleITK image (a copy of the array) with this geometry."""
        image = sitk.GetImageFromArray(self.array)
        image.SetSpacing(self.spacing)
        image.SetOrigin(self.origin)
        image.SetDirection(tuple(self.direction.flatten()))
        return image

    @classmethod
    def from_sitk(cls, image: sitk.Image) -> Volume:
        return cls(array=sitk.GetArrayFromImage(image), spacing=image.GetSpacing(), origin=image.GetOrigin(),
                   direction=np.asarray(image.GetDirection()).reshape(3, 3))


def _vector(v: np.ndarray) -> str:
    return "(" + ",".join(repr(float(x)) for x in v) + ")"


def write_nrrd(path: str | Path, volume: Volume, *, compression_level: int = 1, slab: int = 8,
               threads: int | None = None, fields: dict[str, str] | None = None) -> None:
    """Write ``volume`` as a gzip NRRD with LPS space directions and origin, atomically.

    Slabs of ``slab`` slices are compressed on ``threads`` threads (default: the threads SimpleITK may use in
    this process, at most 4: a pool's worker gets its share of the cores, see ``curation.workspace.threads``). The gzip
    stream carries no timestamp, so the same volume always gives the same bytes. ``fields`` are
    written as NRRD key/value pairs (``key:=value``), as 3D Slicer's segmentation files use.
    """
    dtype = volume.array.dtype.newbyteorder("<") if volume.array.dtype.byteorder == ">" else volume.array.dtype
    if np.dtype(dtype) not in _NRRD_TYPES:
        raise ConversionError(f"{path}: cannot write voxel type {volume.array.dtype} to NRRD")
    directions = volume.direction * np.asarray(volume.spacing)  # column i scaled by spacing i
    x, y, z = volume.size
    header = (
        "NRRD0004\n"
        "# Complete NRRD file format specification at:\n"
        "# http://teem.sourceforge.net/nrrd/format.html\n"
        f"type: {_NRRD_TYPES[np.dtype(dtype)]}\n"
        "dimension: 3\n"
        "space: left-posterior-superior\n"
        f"sizes: {x} {y} {z}\n"
        f"space directions: {_vector(directions[:, 0])} {_vector(directions[:, 1])} {_vector(directions[:, 2])}\n"
        "kinds: domain domain domain\n"
        "endian: little\n"
        f"encoding: {'gzip' if compression_level else 'raw'}\n"
        f"space origin: {_vector(np.asarray(volume.origin))}\n"
    )
    for key, value in (fields or {}).items():
        if any(c in key for c in ":\n") or "\n" in value:
            raise ConversionError(f"{path}: NRRD field {key!r} must not contain ':' or newlines")
        header += f"{key}:={value}\n"
    header += "\n"
    little = np.dtype(dtype).newbyteorder("<")
    slabs = [np.ascontiguousarray(volume.array[start : start + slab], dtype=little) for start in range(0, z, slab)]
    with atomic_open(path, "wb") as handle:
        handle.write(header.encode("ascii"))
        if not compression_level:
            for chunk in slabs:
                handle.write(memoryview(chunk.data).cast("B"))
        else:
            threads = threads or min(4, sitk.ProcessObject.GetGlobalDefaultNumberOfThreads())
            _write_gzip(handle, slabs, compression_level, threads)


def _deflate(chunk: np.ndarray, level: int, last: bool) -> bytes:
    compressor = zlib.compressobj(level, zlib.DEFLATED, -15)
    data = memoryview(chunk.data).cast("B")
    return compressor.compress(data) + compressor.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)


def _write_gzip(handle: IO[bytes], slabs: list[np.ndarray], level: int, threads: int) -> None:
    """One gzip member whose deflate stream is made of slabs compressed in parallel (as pigz does):
    each slab ends on a sync flush, so the concatenation is one valid stream. No timestamp is stored."""
    handle.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff")
    crc, size = 0, 0
    with ThreadPoolExecutor(max_workers=threads) as pool:
        pending = []
        for index, chunk in enumerate(slabs):
            pending.append(pool.submit(_deflate, chunk, level, index == len(slabs) - 1))
            crc = zlib.crc32(memoryview(chunk.data).cast("B"), crc)
            size += chunk.nbytes
            while len(pending) > threads or (index == len(slabs) - 1 and pending):
                handle.write(pending.pop(0).result())
    handle.write(struct.pack("<II", crc & 0xFFFFFFFF, size & 0xFFFFFFFF))


def read_nrrd(path: str | Path) -> Volume:
    """Read a 3-D NRRD file into a :class:`Volume` (space must be LPS or RAS)."""
    return read_nrrd_with_header(path)[0]


def read_nrrd_with_header(path: str | Path, check_header: Callable[[dict[str, Any]], None] | None = None
                          ) -> tuple[Volume, dict[str, Any]]:
    """:func:`read_nrrd`, and the header's fields (read once: a segmentation's segments are described there);
    ``check_header`` may refuse the file (by raising) before its voxels are read."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            header = nrrd.read_header(handle)
            if check_header is not None:
                check_header(header)
            data = nrrd.read_data(header, handle, str(path), index_order="C")
    except (OSError, nrrd.NRRDError, ValueError) as exc:
        raise ConversionError(f"{path}: cannot read NRRD ({exc})") from None
    if data.ndim != 3:
        raise ConversionError(f"{path}: expected a 3-D volume, found {data.ndim} dimensions")
    spacing, origin, direction = _nrrd_geometry(path, header)
    return Volume(array=data, spacing=spacing, origin=origin, direction=direction), header


def read_nrrd_grid(path: str | Path) -> Volume:
    """The grid of a 3-D NRRD file from its header alone; the array is a zero-memory view of zeros."""
    path = Path(path)
    try:
        header = nrrd.read_header(str(path))
    except (OSError, nrrd.NRRDError, ValueError) as exc:
        raise ConversionError(f"{path}: cannot read NRRD ({exc})") from None
    sizes = [int(n) for n in header.get("sizes", [])]
    if len(sizes) != 3:
        raise ConversionError(f"{path}: expected a 3-D volume, found {len(sizes)} dimensions")
    spacing, origin, direction = _nrrd_geometry(path, header)
    return Volume(array=np.broadcast_to(np.uint8(0), tuple(sizes[::-1])), spacing=spacing, origin=origin,
                  direction=direction)


def _nrrd_geometry(path: Path, header: dict[str, Any]) -> tuple[Any, Any, np.ndarray]:
    directions = np.asarray(header.get("space directions", np.eye(3)), dtype=float)  # rows per NRRD axis
    origin = np.asarray(header.get("space origin", np.zeros(3)), dtype=float)
    space = str(header.get("space", "left-posterior-superior")).lower()
    if space in ("right-anterior-superior", "ras"):
        flip = np.diag([-1.0, -1.0, 1.0])
        directions = directions @ flip
        origin = flip @ origin
    elif space not in ("left-posterior-superior", "lps"):
        raise ConversionError(f"{path}: unsupported NRRD space {space!r}; expected LPS or RAS")
    spacing = np.linalg.norm(directions, axis=1)
    return tuple(spacing), tuple(origin), (directions / spacing[:, None]).T


def volume_suffix(path: str | Path) -> str | None:
    """The volume file ending of ``path`` (``.nrrd``, ``.nii.gz`` or ``.nii``), or None."""
    name = Path(path).name.lower()
    return next((s for s in VOLUME_SUFFIXES if name.endswith(s)), None)


def read_volume(path: str | Path) -> Volume:
    """Read a NRRD or NIfTI (``.nii``, ``.nii.gz``) volume; the voxel type is kept as stored."""
    path = Path(path)
    suffix = volume_suffix(path)
    if suffix == ".nrrd":
        return read_nrrd(path)
    if suffix is None:
        raise ConversionError(f"{path}: unknown volume file type; expected one of {', '.join(VOLUME_SUFFIXES)}")
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[-1] if str(exc).strip() else "unreadable"
        raise ConversionError(f"{path}: cannot read NIfTI ({first})") from None
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise ConversionError(f"{path}: expected a 3-D scalar volume, found {image.GetDimension()}-D with "
                              f"{image.GetNumberOfComponentsPerPixel()} component(s)")
    return Volume.from_sitk(image)


def nifti_nonfinite(path: str | Path) -> int:
    """Count NaN and infinite voxels of a floating-point NIfTI file (0 for integer files).

    ITK's NIfTI reader turns NaN into 0, so a reader that goes through SimpleITK cannot see them;
    this reads the voxels itself (NIfTI-1 and NIfTI-2, gzip or not).
    """
    import gzip

    path = Path(path)
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as handle:
        data = handle.read()
    for order in ("<", ">"):
        size = struct.unpack(order + "i", data[:4])[0]
        if size in (348, 540):
            break
    else:
        raise ConversionError(f"{path}: not a NIfTI file (header size field {data[:4]!r})")
    if size == 348:
        datatype = struct.unpack(order + "h", data[70:72])[0]
        offset = int(struct.unpack(order + "f", data[108:112])[0])
    else:
        datatype = struct.unpack(order + "h", data[12:14])[0]
        offset = int(struct.unpack(order + "q", data[168:176])[0])
    kinds = {16: "f4", 64: "f8"}
    if datatype not in kinds:
        return 0
    values = np.frombuffer(data, dtype=order + kinds[datatype], offset=max(offset, size))
    return int((~np.isfinite(values)).sum())


def write_volume(path: str | Path, volume: Volume) -> None:
    """Write ``volume`` as NRRD (our streaming writer) or NIfTI (SimpleITK), atomically."""
    suffix = volume_suffix(path)
    if suffix == ".nrrd":
        write_nrrd(path, volume)
    elif suffix is None:
        raise ConversionError(f"{path}: unknown volume file type; expected one of {', '.join(VOLUME_SUFFIXES)}")
    else:
        with atomic_path(path) as tmp:
            sitk.WriteImage(volume.to_sitk(), str(tmp), useCompression=True)


def _grid(size_xyz: tuple[int, ...], spacing: tuple[float, ...], origin: tuple[float, ...], direction: np.ndarray,
          spacing_mm: float | tuple[float, float, float]) -> tuple[tuple[int, int, int], tuple[float, float, float]]:
    """Size and origin of a grid with the given spacing and direction, centred on the same extent."""
    target = np.broadcast_to(np.asarray(spacing_mm, dtype=float), (3,))
    extent = np.asarray(size_xyz, dtype=float) * np.asarray(spacing)
    size = np.maximum(1, np.round(extent / target)).astype(int)
    corner = -0.5 * np.asarray(spacing)  # index-space offset of the outer corner, in mm
    start = corner + 0.5 * target + 0.5 * (extent - size * target)  # centred: same extent +- spacing/2
    out = np.asarray(origin) + direction @ start
    return (int(size[0]), int(size[1]), int(size[2])), (float(out[0]), float(out[1]), float(out[2]))


def resample_isotropic(volume: Volume, spacing_mm: float, *, default_value: float = -1024.0) -> Volume:
    """Resample to ``spacing_mm`` isotropic voxels with linear interpolation, same direction and extent.

    The result is rounded to the input's integer type.
    """
    return resample_image(volume.to_sitk(), spacing_mm, default_value=default_value)


def resample_image(image: sitk.Image, spacing_mm: float | tuple[float, float, float], *,
                   default_value: float = -1024.0) -> Volume:
    """:func:`resample_isotropic` for a SimpleITK image (lets a caller free its NumPy copy first).

    ``spacing_mm`` may also be (x, y, z) spacings for an anisotropic grid.
    """
    target = tuple(float(v) for v in np.broadcast_to(np.asarray(spacing_mm, dtype=float), (3,)))
    if min(target) <= 0:
        raise ConversionError(f"resample: expected a positive spacing, found {spacing_mm}")
    direction = np.asarray(image.GetDirection()).reshape(3, 3)
    size, origin = _grid(image.GetSize(), image.GetSpacing(), image.GetOrigin(), direction, spacing_mm)
    resampler = sitk.ResampleImageFilter()
    resampler.SetOutputSpacing(target)
    resampler.SetSize(size)
    resampler.SetOutputOrigin(origin)
    resampler.SetOutputDirection(image.GetDirection())
    resampler.SetInterpolator(sitk.sitkLinear)
    resampler.SetDefaultPixelValue(default_value)
    resampler.SetOutputPixelType(sitk.sitkFloat32)
    resampled = resampler.Execute(image)
    values = np.rint(sitk.GetArrayViewFromImage(resampled))
    del resampled
    dtype = sitk.GetArrayViewFromImage(image).dtype
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        np.clip(values, info.min, info.max, out=values)
        values = values.astype(dtype)
    return Volume(array=values, spacing=target, origin=origin, direction=direction)  # type: ignore[arg-type]


def resample_labels(labels: Volume, grid: Volume) -> Volume:
    """A label volume carried onto another volume's grid by nearest neighbour, in world (LPS) coordinates."""
    reference = sitk.Image(list(grid.size), sitk.sitkUInt8)
    reference.SetSpacing(grid.spacing)
    reference.SetOrigin(grid.origin)
    reference.SetDirection(tuple(grid.direction.flatten()))
    out = sitk.Resample(labels.to_sitk(), reference, sitk.Transform(), sitk.sitkNearestNeighbor, 0)
    return Volume(sitk.GetArrayFromImage(out), grid.spacing, grid.origin, grid.direction)
