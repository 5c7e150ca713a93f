"""A small synthetic PACS export for ``ctcurate demo``, the tests and the benchmarks.

The export holds a few patients and exams with CT series of a simple phantom (body, lungs,
spine, liver) written with realistic headers, plus the edge cases curation must catch: a missing
slice, a tilted head series, a localizer, a knee series, a dose screen stored as CT, and a
corrupt file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

__all__ = ["DEMO_PATIENTS", "build_demo_export", "phantom_slice", "write_ct_series"]

_ROOT = "1.2.826.0.1.3680043.10.1437."  # demo UID prefix


def _uid(*parts: object) -> str:
    """A UID derived from ``parts``: the demo export is the same on every run, so a rerun resumes."""
    return str(generate_uid(_ROOT, entropy_srcs=[str(p) for p in parts]))


def phantom_slice(z_mm: float, rows: int, cols: int, pixel_mm: float, *, kind: str = "trunk") -> np.ndarray:
    """HU image of the phantom at height ``z_mm`` (LPS, superior positive)."""
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    x = (xx - cols / 2) * pixel_mm
    y = (yy - rows / 2) * pixel_mm
    image = np.full((rows, cols), -1000.0, dtype=np.float32)
    if kind == "knee":
        for cx in (-60.0, 60.0):
            image[((x - cx) / 45) ** 2 + (y / 45) ** 2 <= 1] = 30
            image[((x - cx) / 15) ** 2 + (y / 15) ** 2 <= 1] = 900
        return image
    if kind == "head":
        image[(x / 80) ** 2 + (y / 95) ** 2 <= 1] = 900
        image[(x / 72) ** 2 + (y / 87) ** 2 <= 1] = 35
        return image
    image[(x / 150) ** 2 + (y / 110) ** 2 <= 1] = 40
    if z_mm > 0:  # lungs above the diaphragm
        for cx in (-70.0, 70.0):
            image[((x - cx) / 50) ** 2 + ((y + 5) / 70) ** 2 <= 1] = -850
    elif z_mm > -30:  # upper abdomen: liver on the patient's right (-x in LPS), spleen on the left
        image[((x + 60) / 70) ** 2 + ((y + 5) / 55) ** 2 <= 1] = 60
        image[((x - 85) / 30) ** 2 + ((y - 10) / 35) ** 2 <= 1] = 45
        if z_mm < -5:  # kidneys beside the spine
            for cx in (-50.0, 50.0):
                image[((x - cx) / 15) ** 2 + ((y - 50) / 25) ** 2 <= 1] = 30
    else:  # pelvis: urinary bladder
        image[(x / 35) ** 2 + ((y + 40) / 30) ** 2 <= 1] = 10
    image[(x / 18) ** 2 + ((y - 70) / 18) ** 2 <= 1] = 700  # vertebral body
    return image


def _base(patient: dict[str, str], study: dict[str, str]) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.PatientName = patient["name"]
    ds.PatientID = patient["id"]
    ds.PatientBirthDate = patient["birth"]
    ds.PatientSex = patient["sex"]
    ds.PatientAge = patient["age"]
    ds.StudyInstanceUID = study["uid"]
    ds.StudyDate = study["date"]
    ds.StudyTime = "101500"
    ds.AccessionNumber = study["accession"]
    ds.StudyDescription = study["description"]
    ds.StudyID = "1"
    ds.InstitutionName = study["institution"]
    ds.StationName = "CTSTATION1"
    ds.ReferringPhysicianName = "Referrer^Demo"
    ds.Manufacturer = "ctcurate-phantom"
    ds.ManufacturerModelName = "Phantom CT 64"
    return ds


def _write(ds: Dataset, sop_class: Any, path: Path) -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def write_ct_series(folder: Path, patient: dict[str, str], study: dict[str, str], number: int, *,
                    description: str, n_slices: int = 40, spacing: float = 2.5, kind: str = "trunk",
                    tilt_deg: float = 0.0, drop: tuple[int, ...] = (), image_type: str = "ORIGINAL\\PRIMARY\\AXIAL",
                    body_part: str = "ABDOMEN", rows: int = 128, pixel_mm: float = 2.7) -> None:
    """Write one synthetic CT series of the phantom (``drop`` leaves slices out; ``tilt_deg`` tilts it).

    ``patient`` and ``study`` are dicts like :data:`DEMO_PATIENTS` and the demo's studies.
    """
    series_uid = _uid("series", study["uid"], number)
    frame_uid = _uid("frame", study["uid"], number)
    tilt = np.radians(tilt_deg)
    row_dir = np.array([1.0, 0.0, 0.0])
    col_dir = np.array([0.0, np.cos(tilt), -np.sin(tilt)])
    origin0 = np.array([-(rows / 2) * pixel_mm, -(rows / 2) * pixel_mm, -spacing * n_slices / 2])
    for k in range(n_slices):
        if k in drop:
            continue
        z = origin0[2] + k * spacing
        ds = _base(patient, study)
        ds.Modality = "CT"
        ds.SeriesInstanceUID = series_uid
        ds.SeriesNumber = number
        ds.SeriesDescription = description
        ds.ProtocolName = description
        ds.BodyPartExamined = body_part
        ds.FrameOfReferenceUID = frame_uid
        ds.SOPInstanceUID = _uid("sop", study["uid"], number, k)
        ds.InstanceNumber = k + 1
        ds.AcquisitionNumber = 1
        ds.ImageType = image_type.split("\\")
        ds.ImageOrientationPatient = [f"{v:.6f}" for v in (*row_dir, *col_dir)]
        ds.ImagePositionPatient = [f"{origin0[0]:.4f}", f"{origin0[1]:.4f}", f"{z:.4f}"]
        ds.GantryDetectorTilt = f"{tilt_deg:.1f}"
        ds.SliceThickness = f"{spacing:.2f}"
        ds.PixelSpacing = [f"{pixel_mm:.4f}", f"{pixel_mm:.4f}"]
        ds.KVP = "120"
        ds.ConvolutionKernel = "B30f"
        ds.ContrastBolusAgent = "Iomeprol 350" if kind == "trunk" and number % 2 else ""
        ds.Rows = ds.Columns = rows
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1
        ds.RescaleIntercept = "-1024"
        ds.RescaleSlope = "1"
        ds.BurnedInAnnotation = "NO"
        hu = phantom_slice(z, rows, rows, pixel_mm, kind=kind)
        ds.PixelData = (np.rint(hu) + 1024).astype("<i2").tobytes()
        _write(ds, CTImageStorage, folder / f"IM{k + 1:05d}.dcm")


def _single_image(patient: dict[str, str], study: dict[str, str], number: int, description: str,
                  image_type: list[str]) -> Dataset:
    ds = _base(patient, study)
    ds.Modality = "CT"
    ds.SeriesInstanceUID = _uid("series", study["uid"], number)
    ds.SeriesNumber = number
    ds.SeriesDescription = description
    ds.SOPInstanceUID = _uid("sop", study["uid"], number, 0)
    ds.ImageType = image_type
    return ds


def _localizer(folder: Path, patient: dict[str, str], study: dict[str, str]) -> None:
    ds = _single_image(patient, study, 1, "Topogram 0.6 T20f", ["ORIGINAL", "PRIMARY", "LOCALIZER"])
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "0", "-1"]
    ds.ImagePositionPatient = ["-250", "0", "300"]
    ds.PixelSpacing = ["1", "1"]
    ds.Rows, ds.Columns = 64, 64
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.PixelData = np.full((64, 64), 1000, dtype="<u2").tobytes()
    _write(ds, CTImageStorage, folder / "IM00001.dcm")


def _dose_screen(folder: Path, patient: dict[str, str], study: dict[str, str]) -> None:
    ds = _single_image(patient, study, 999, "Dose Report", ["DERIVED", "SECONDARY", "OTHER"])
    ds.Rows, ds.Columns = 64, 96
    ds.SamplesPerPixel = 3
    ds.PlanarConfiguration = 0
    ds.PhotometricInterpretation = "RGB"
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.BurnedInAnnotation = "YES"
    ds.PixelData = np.full((64, 96, 3), 200, dtype=np.uint8).tobytes()
    _write(ds, SecondaryCaptureImageStorage, folder / "IM00001.dcm")


DEMO_PATIENTS = (
    {"name": "Demo^Alice", "id": "DEMO0001", "birth": "19610412", "sex": "F", "age": "058Y"},
    {"name": "Demo^Bruno", "id": "DEMO0002", "birth": "19750903", "sex": "M", "age": "044Y"},
    {"name": "Demo^Carla", "id": "DEMO0003", "birth": "19480121", "sex": "F", "age": "072Y"},
    {"name": "Demo^Dario", "id": "DEMO0004", "birth": "19900630", "sex": "M", "age": "029Y"},
    {"name": "Demo^Elena", "id": "DEMO0005", "birth": "19830215", "sex": "F", "age": "037Y"},
)


def build_demo_export(folder: str | Path) -> Path:
    """Write the synthetic export under ``folder`` (nested per patient/study/series) and return it."""
    root = Path(folder)
    studies = []
    for i, patient in enumerate(DEMO_PATIENTS):
        for j in range(2 if i == 0 else 1):
            studies.append((patient, {
                "uid": _uid("study", patient["id"], j), "date": f"{2019 + j + i % 2}0{3 + i}1{j}",
                "accession": f"ACC{i}{j}77", "description": "CT ABDOMEN" if i != 3 else "CT KNEE RIGHT",
                "institution": "Demo University Hospital" if i % 2 == 0 else "Demo City Clinic",
            }, f"P{i + 1}/ST{j + 1}"))
    (p1a, s1a, d1a), (p1b, s1b, d1b), (p2, s2, d2), (p3, s3, d3), (p4, s4, d4), (p5, s5, d5) = studies
    _localizer(root / d1a / "SE1", p1a, s1a)
    write_ct_series(root / d1a / "SE2", p1a, s1a, 2, description="Abdomen 2.5 B30f")
    _dose_screen(root / d1a / "SE999", p1a, s1a)
    write_ct_series(root / d1b / "SE2", p1b, s1b, 2, description="Thorax-Abdomen 2.5", n_slices=48)
    write_ct_series(root / d2 / "SE2", p2, s2, 2, description="Abdomen 2.5 B30f", drop=(17,))
    write_ct_series(root / d2 / "SE3", p2, s2, 3, description="Abdomen 3.0 B30f", spacing=3.0, n_slices=36)
    write_ct_series(root / d3 / "SE2", p3, s3, 2, description="Head seq 5mm", kind="head", tilt_deg=15.0,
               spacing=5.0, n_slices=24, body_part="HEAD")
    write_ct_series(root / d4 / "SE2", p4, s4, 2, description="Knee right 1.0", kind="knee", body_part="KNEE",
               n_slices=30, spacing=2.0)
    write_ct_series(root / d5 / "SE2", p5, s5, 2, description="Abdomen 2.5 B30f", drop=(10, 11))
    (root / "corrupt.dcm").write_bytes(b"\x00" * 128 + b"DICM" + bytes(range(256)) * 3)
    return root
