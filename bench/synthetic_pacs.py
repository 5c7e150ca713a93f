"""A synthetic PACS export at the reference dataset's scale, for the scale rehearsal and the benchmarks.

The reference dataset was sampled from a hospital PACS: 1,368 CT exams, 8 sites, adult patients of all ages,
several scanner vendors and models, every contrast phase, slice thicknesses from 0.5 to 5 mm, and a share of
exams to exclude (extremities, missing slices, anatomy distorted by abnormality). This generator writes an export
with the same make-up, drawn from the distributions in :data:`SITES` and :data:`DRAWS` (approximations of what the
reference publication reports; each draw is seeded per exam, so the export is the same on every run and on any
number of processes).

Every exam holds the series a real one holds: a localizer, a thin and a thick axial reconstruction, often a dose
screen stored as CT (a screenshot). Some exams hold only series the filter must exclude: an extremity, a series
with missing slices, a tilted head series, a bolus-tracking series too short for a volume. An exam marked
``distorted`` looks normal to the filter: its anatomy is distorted by abnormality, which only a physician sees,
so the rehearsal excludes it as an annotator would.

Pixel grids are small (40 x 40 pixels, a 30 mm field of view, a body shortened 4 times along z), so that the whole
export fits on disk while slice counts, thicknesses and headers stay realistic; ``--full-size N`` also writes N
exams at full size (512 x 512 pixels, 300+ slices) for per-case costs. ``truth.csv`` lists each exam's draws and
the series written (a full-size exam holds one 1.25 mm series: its ``thick_mm`` is 0).

Usage: ``.venv/bin/python bench/synthetic_pacs.py OUT [--exams 1520] [--seed 0] [--full-size 8] [--workers 2]``.
"""

from __future__ import annotations

import csv
import multiprocessing
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from bench_args import OneLineParser, at_least
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

__all__ = ["DRAWS", "SITES", "Exam", "draw_exams", "write_exam", "build_export", "at_least"]

_PREFIX = "1.2.826.0.1.3680043.10.1437.9."  # the rehearsal's UID root


@dataclass(frozen=True)
class Site:
    institution: str
    station: str
    manufacturer: str
    model: str
    share: float  # of the exams


SITES: tuple[Site, ...] = (
    Site("University Hospital, Radiology Main", "CTMAIN1", "SIEMENS", "SOMATOM Definition AS+", 0.30),
    Site("University Hospital, Emergency", "CTER1", "SIEMENS", "SOMATOM Definition Flash", 0.20),
    Site("University Hospital, Oncology", "CTONC1", "SIEMENS", "SOMATOM Force", 0.15),
    Site("University Hospital, Nuclear Medicine", "PETCT1", "SIEMENS", "Biograph128", 0.08),
    Site("University Hospital, Cardiology", "CTCARD1", "SIEMENS", "SOMATOM Edge Plus", 0.08),
    Site("City Hospital", "CTCITY1", "Philips", "iCT 256", 0.08),
    Site("Regional Hospital", "CTREG1", "GE MEDICAL SYSTEMS", "Revolution CT", 0.06),
    Site("Outpatient Clinic", "CTOUT1", "TOSHIBA", "Aquilion ONE", 0.05),
)

# name -> (values, weights): the make-up of the exams
DRAWS: dict[str, tuple[tuple[Any, ...], tuple[float, ...]]] = {
    "sex": (("M", "F"), (0.57, 0.43)),
    "year": ((2012, 2016, 2020), (0.3, 0.33, 0.37)),
    "kvp": ((80, 100, 120, 140), (0.03, 0.27, 0.55, 0.15)),
    "phase": (("native", "arterial", "portal_venous", "late"), (0.37, 0.13, 0.42, 0.08)),
    # body region and its real craniocaudal coverage in mm
    "region": (("thorax_abdomen_pelvis", "abdomen_pelvis", "thorax", "whole_body", "neck", "head", "pelvis"),
               (0.30, 0.25, 0.20, 0.06, 0.07, 0.07, 0.05)),
    "thin_mm": ((0.5, 0.6, 0.75, 1.0, 1.25, 1.5), (0.08, 0.10, 0.12, 0.45, 0.15, 0.10)),
    "thick_mm": ((2.0, 3.0, 5.0), (0.25, 0.45, 0.30)),
    # what is wrong with the exam (its series the filter keeps out, or what only a physician sees)
    "defect": (("", "extremity", "missing_slices", "tilted", "too_short", "distorted"),
               (0.885, 0.045, 0.025, 0.015, 0.010, 0.020)),
}
COVERAGE_MM = {"thorax_abdomen_pelvis": 650, "abdomen_pelvis": 450, "thorax": 320, "whole_body": 1000, "neck": 220,
               "head": 160, "pelvis": 260, "extremity": 400}
# BodyPartExamined of each region (DICOM's defined terms)
BODY_PART = {"thorax_abdomen_pelvis": "CHESTABDPELVIS", "abdomen_pelvis": "ABDOMENPELVIS", "thorax": "CHEST",
             "whole_body": "WHOLEBODY", "neck": "NECK", "head": "HEAD", "pelvis": "PELVIS", "extremity": "KNEE"}
Z_SCALE = 4  # the small exams' body is this much shorter along z than a real one
SMALL_GRID, SMALL_PIXEL_MM = 40, 0.75
FULL_GRID, FULL_PIXEL_MM = 512, 0.78
_DELAY_S = {"native": None, "arterial": 35, "portal_venous": 70, "late": 300}


@dataclass(frozen=True)
class Exam:
    """One exam's draws (a row of truth.csv)."""

    index: int
    site: int
    patient: str
    sex: str
    age: int
    year: int
    kvp: int
    phase: str
    region: str
    thin_mm: float
    thick_mm: float
    defect: str
    screenshot: bool
    full_size: bool = False
    seed: int = 0

    @property
    def study_uid(self) -> str:
        return _uid("study", self.seed, self.index, self.full_size)


def _uid(*parts: object) -> str:
    return str(generate_uid(_PREFIX, entropy_srcs=[str(p) for p in parts]))


def _pick(rng: np.random.Generator, name: str) -> Any:
    values, weights = DRAWS[name]
    return values[int(rng.choice(len(values), p=np.asarray(weights) / sum(weights)))]


def draw_exams(n: int, seed: int, *, full_size: int = 0) -> list[Exam]:
    """``n`` exams (and ``full_size`` more at full size), about one patient in ten with a second exam."""
    exams: list[Exam] = []
    shares = np.asarray([s.share for s in SITES])
    patients: list[tuple[str, str, int]] = []
    for index in range(n + full_size):
        rng = np.random.default_rng([seed, index])
        full = index >= n
        if patients and not full and rng.random() < 0.1:  # a patient seen again
            patient, sex, age = patients[int(rng.integers(len(patients)))]
        else:
            patient, sex = f"PAT{seed:02d}{index:06d}", str(_pick(rng, "sex"))
            age = int(np.clip(rng.normal(64, 16), 18, 95))
            patients.append((patient, sex, age))
        defect = "" if full else str(_pick(rng, "defect"))
        region = "extremity" if defect == "extremity" else ("head" if defect == "tilted" else str(_pick(rng, "region")))
        if full:
            region = "abdomen_pelvis"
        exam = Exam(index=index, site=int(rng.choice(len(SITES), p=shares / shares.sum())), patient=patient,
                    sex=sex, age=age, year=int(_pick(rng, "year")), kvp=int(_pick(rng, "kvp")),
                    phase=str(_pick(rng, "phase")), region=region, thin_mm=float(_pick(rng, "thin_mm")),
                    thick_mm=float(_pick(rng, "thick_mm")), defect=defect, screenshot=bool(rng.random() < 0.6),
                    full_size=full, seed=seed)
        # a full-size exam holds one series of 1.25 mm (360 slices), no thick one
        exams.append(replace(exam, thin_mm=1.25, thick_mm=0.0) if full else exam)
    return exams


def _phantom(z_mm: float, grid: int, pixel_mm: float, region: str, scale: float, phase: str) -> np.ndarray:
    """HU of an axial slice of a simple body at height ``z_mm`` (0 at the diaphragm, superior positive)."""
    half = grid * pixel_mm / 2
    axis = np.linspace(-half, half, grid, dtype=np.float32)
    y, x = np.meshgrid(axis, axis, indexing="ij")
    r = half * 0.9  # the body fills the field of view
    image = np.full((grid, grid), -1000.0, dtype=np.float32)
    if region == "extremity":
        for cx in (-0.45 * r, 0.45 * r):
            image[((x - cx) / (0.35 * r)) ** 2 + (y / (0.35 * r)) ** 2 <= 1] = 40
            image[((x - cx) / (0.12 * r)) ** 2 + (y / (0.12 * r)) ** 2 <= 1] = 900
        return image
    contrast = {"native": 0, "arterial": 250, "portal_venous": 150, "late": 80}[phase]
    image[(x / r) ** 2 + (y / (0.75 * r)) ** 2 <= 1] = 40
    z = z_mm * scale  # the real height this slice stands for
    if region == "head" or z > 350:
        image[(x / (0.8 * r)) ** 2 + (y / (0.9 * r)) ** 2 <= 1] = 900
        image[(x / (0.7 * r)) ** 2 + (y / (0.8 * r)) ** 2 <= 1] = 35
        return image
    if z > 0:
        for cx in (-0.45 * r, 0.45 * r):
            image[((x - cx) / (0.32 * r)) ** 2 + ((y + 0.03 * r) / (0.45 * r)) ** 2 <= 1] = -850
    elif z > -200:
        image[((x + 0.4 * r) / (0.45 * r)) ** 2 + ((y + 0.03 * r) / (0.35 * r)) ** 2 <= 1] = 60 + contrast * 0.4
    else:
        image[(x / (0.22 * r)) ** 2 + ((y + 0.25 * r) / (0.2 * r)) ** 2 <= 1] = 10
    image[((x + 0.05 * r) / (0.06 * r)) ** 2 + ((y - 0.15 * r) / (0.06 * r)) ** 2 <= 1] = 40 + contrast  # aorta
    image[(x / (0.12 * r)) ** 2 + ((y - 0.45 * r) / (0.12 * r)) ** 2 <= 1] = 700  # vertebral body
    return image


_SYLLABLES = ("ka", "lo", "mi", "ren", "sa", "tor", "vel", "zan", "qui", "bro", "dun", "fel")


def _name(seed: str) -> str:
    """An invented 'Family^Given' name, the same for the same seed."""
    rng = np.random.default_rng(int.from_bytes(seed.encode()[-8:], "little"))
    family, given = ("".join(rng.choice(_SYLLABLES, size=n)).title() for n in (3, 2))
    return f"{family}^{given}"


def _base(exam: Exam) -> Dataset:
    site = SITES[exam.site]
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.PatientName = _name(exam.patient)
    ds.PatientID = exam.patient
    ds.PatientBirthDate = f"{exam.year - exam.age}0615"
    ds.PatientSex = exam.sex
    ds.PatientAge = f"{exam.age:03d}Y"
    ds.StudyInstanceUID = exam.study_uid
    ds.StudyDate = f"{exam.year}{1 + exam.index % 12:02d}{1 + exam.index % 28:02d}"
    ds.StudyTime = "101500"
    ds.AccessionNumber = f"A{exam.index:08d}"
    ds.StudyDescription = f"CT {exam.region.replace('_', ' ').upper()}"
    ds.StudyID = "1"
    ds.InstitutionName = site.institution
    ds.StationName = site.station
    ds.ReferringPhysicianName = _name(f"referrer{exam.site}")
    ds.Manufacturer = site.manufacturer
    ds.ManufacturerModelName = site.model
    ds.Modality = "CT"
    return ds


def _save(ds: Dataset, sop_class: str, path: Path) -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.save_as(path, enforce_file_format=True)


def _axial(folder: Path, exam: Exam, number: int, thickness: float, *, grid: int, pixel_mm: float, scale: float,
           coverage_mm: float, drop: tuple[int, ...] = (), tilt_deg: float = 0.0, description: str = "") -> int:
    """One axial series; returns the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    n = max(2, int(round(coverage_mm / scale / thickness)))
    series_uid, frame_uid = _uid("series", exam.study_uid, number), _uid("frame", exam.study_uid)
    tilt = np.radians(tilt_deg)
    col = (0.0, float(np.cos(tilt)), float(-np.sin(tilt)))
    top = 0.25 * coverage_mm / scale  # the series ends a quarter of its coverage above the diaphragm
    delay = _DELAY_S[exam.phase]
    pixels_hu = None
    written = 0
    for k in range(n):
        if k in drop:
            continue
        z = top - k * thickness
        ds = _base(exam)
        ds.SeriesInstanceUID = series_uid
        ds.SeriesNumber = number
        ds.SeriesDescription = description
        ds.ProtocolName = ds.StudyDescription
        ds.BodyPartExamined = BODY_PART[exam.region]
        ds.FrameOfReferenceUID = frame_uid
        ds.SOPInstanceUID = _uid("sop", series_uid, k)
        ds.InstanceNumber = k + 1
        ds.AcquisitionNumber = 1
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.ImageOrientationPatient = [1, 0, 0, *col]
        ds.ImagePositionPatient = [-grid * pixel_mm / 2, -grid * pixel_mm / 2, z]  # tilted: along z all the same
        ds.GantryDetectorTilt = tilt_deg
        ds.SliceThickness = thickness
        ds.PixelSpacing = [pixel_mm, pixel_mm]
        ds.KVP = exam.kvp
        ds.ConvolutionKernel = "Br40" if thickness >= 2 else "Br36"
        seconds = 10 * 3600 + 15 * 60 + (delay if delay is not None else 120)  # the bolus starts at 10:15:00
        ds.AcquisitionTime = f"{seconds // 3600:02d}{seconds // 60 % 60:02d}{seconds % 60:02d}"
        if delay is not None:
            ds.ContrastBolusAgent = "Iopromide 300"
            ds.ContrastBolusRoute = "IV"
            ds.ContrastBolusStartTime = "101500"
        ds.Rows = ds.Columns = grid
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1
        ds.RescaleIntercept = -1024
        ds.RescaleSlope = 1
        ds.BurnedInAnnotation = "NO"
        if pixels_hu is None or grid > SMALL_GRID or k % 4 == 0:  # small slices: a new picture every 4th
            pixels_hu = _phantom(z, grid, pixel_mm, exam.region, scale, exam.phase)
        ds.PixelData = (np.rint(pixels_hu) + 1024).astype("<i2").tobytes()
        _save(ds, CTImageStorage, folder / f"IM{k + 1:05d}.dcm")
        written += 1
    return written


def _localizer(folder: Path, exam: Exam) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    ds = _base(exam)
    ds.SeriesInstanceUID = _uid("series", exam.study_uid, 1)
    ds.SeriesNumber = 1
    ds.SeriesDescription = "Topogram 0.6 T20f"
    ds.SOPInstanceUID = _uid("sop", ds.SeriesInstanceUID, 0)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]
    ds.ImagePositionPatient = [-250, 0, 300]
    ds.PixelSpacing = [1, 1]
    ds.Rows, ds.Columns = 64, 32
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
    ds.KVP = 120
    ds.SliceThickness = 0.6
    ds.BodyPartExamined = BODY_PART[exam.region]
    ds.PixelData = np.full((64, 32), 1000, dtype="<u2").tobytes()
    _save(ds, CTImageStorage, folder / "IM00001.dcm")
    return 1


def _screenshot(folder: Path, exam: Exam) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    ds = _base(exam)
    ds.SeriesInstanceUID = _uid("series", exam.study_uid, 999)
    ds.SeriesNumber = 999
    ds.SeriesDescription = "Dose Report"
    ds.SOPInstanceUID = _uid("sop", ds.SeriesInstanceUID, 0)
    ds.ImageType = ["DERIVED", "SECONDARY", "OTHER"]
    ds.Rows, ds.Columns = 48, 64
    ds.SamplesPerPixel = 3
    ds.PlanarConfiguration = 0
    ds.PhotometricInterpretation = "RGB"
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.BurnedInAnnotation = "YES"
    ds.PixelData = np.full((48, 64, 3), 200, dtype=np.uint8).tobytes()
    _save(ds, SecondaryCaptureImageStorage, folder / "IM00001.dcm")
    return 1


def write_exam(root: Path, exam: Exam) -> int:
    """Write one exam's series under ``root``; returns the files written."""
    folder = root / ("full" if exam.full_size else f"site{exam.site + 1}") / exam.patient / f"ST{exam.index:06d}"
    grid, pixel_mm, scale = (FULL_GRID, FULL_PIXEL_MM, 1.0) if exam.full_size else (SMALL_GRID, SMALL_PIXEL_MM,
                                                                                  float(Z_SCALE))
    coverage = COVERAGE_MM[exam.region]
    geometry = {"grid": grid, "pixel_mm": pixel_mm, "scale": scale, "coverage_mm": coverage}
    n = _localizer(folder / "SE1", exam)
    if exam.screenshot:
        n += _screenshot(folder / "SE999", exam)
    if exam.full_size:  # one series of 300+ slices, the per-case cost of a real exam
        return n + _axial(folder / "SE2", exam, 2, exam.thin_mm, description="Abdomen 1.25 Br36", **geometry)
    if exam.defect == "too_short":  # a bolus-tracking exam: a few slices over one level
        return n + _axial(folder / "SE2", exam, 2, 5.0, description="Bolus tracking", grid=grid, pixel_mm=pixel_mm,
                          scale=scale, coverage_mm=5.0 * scale * 4)
    tilt = 15.0 if exam.defect == "tilted" else 0.0
    for number, thickness in ((2, exam.thin_mm), (3, exam.thick_mm)):
        count = max(2, int(round(coverage / scale / thickness)))
        drop = (count // 2, count // 2 + 1) if exam.defect == "missing_slices" else ()
        n += _axial(folder / f"SE{number}", exam, number, thickness, drop=drop, tilt_deg=tilt,
                    description=f"{exam.region.replace('_', ' ').title()} {thickness:g} "
                                f"{'Br36' if thickness < 2 else 'Br40'}", **geometry)
    return n


def _write_many(args: tuple[Path, list[Exam]]) -> int:
    root, exams = args
    return sum(write_exam(root, exam) for exam in exams)


def build_export(out: Path, exams: int = 1520, *, seed: int = 0, full_size: int = 0, workers: int = 2) -> Path:
    """Write the export under ``out/export`` and the draws to ``out/truth.csv``; returns the export folder."""
    drawn = draw_exams(exams, seed, full_size=full_size)
    export = out / "export"
    export.mkdir(parents=True, exist_ok=True)
    chunks = [drawn[i::max(1, workers * 8)] for i in range(max(1, workers * 8))]
    if workers > 1:
        with multiprocessing.get_context("forkserver").Pool(workers) as pool:
            files = sum(pool.map(_write_many, [(export, chunk) for chunk in chunks]))
    else:
        files = sum(_write_many((export, chunk)) for chunk in chunks)
    with (out / "truth.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[*asdict(drawn[0]), "study_uid"])
        writer.writeheader()
        for exam in drawn:
            writer.writerow({**asdict(exam), "study_uid": exam.study_uid})
    (out / "files.txt").write_text(f"{files}\n")
    return export


def main() -> None:
    parser = OneLineParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("out", type=Path, help="New (or empty) folder for export/, truth.csv and files.txt.")
    parser.add_argument("--exams", type=at_least(0), default=1520, help="Exams on small grids (default 1520).")
    parser.add_argument("--seed", type=at_least(0), default=0, help="Seed of the draws (default 0).")
    parser.add_argument("--full-size", type=at_least(0), default=8, help="Exams at full size, 512 x 512 (default 8).")
    parser.add_argument("--workers", type=at_least(1), default=2, help="Processes writing files (default 2).")
    args = parser.parse_args()
    if args.exams + args.full_size == 0:
        parser.error("--exams and --full-size are both 0: nothing to write; ask for at least one exam")
    if args.out.exists() and not args.out.is_dir():
        parser.error(f"{args.out}: is a file; the export is written into a folder: choose a new folder")
    if args.out.exists() and any(args.out.iterdir()):
        parser.error(f"{args.out}: exists and is not an empty folder; a second export there would mix with the "
                     "first (its truth.csv would no longer match the folders): choose a new folder or remove it")
    start = time.perf_counter()
    try:
        export = build_export(args.out, args.exams, seed=args.seed, full_size=args.full_size, workers=args.workers)
    except OSError as exc:
        sys.exit(f"error: {args.out}: cannot write the export ({exc.strerror or exc}); choose a writable folder")
    files = (args.out / "files.txt").read_text().strip()
    print(f"{export}: {args.exams} exams + {args.full_size} at full size, {files} files, "
          f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
