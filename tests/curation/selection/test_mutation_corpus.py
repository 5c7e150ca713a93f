"""A corpus of real DICOM damaged in the ways exports are: scan, sample and filter never fail, and every file
ends in a series with a verdict, every exclusion with a reason of the registry.

The corpus (at least 300 files, seeded) is made from the shared data: tags dropped, files cut at random
offsets, transfer syntaxes changed, instances copied into two folders, positions removed, frames stacked
into one file, files of other kinds (SEG, SR, colour, non-DICOM) mixed in.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
from pydicom.uid import ExplicitVRBigEndian, ImplicitVRLittleEndian, RLELossless

from curation.catalog.scan import scan
from curation.reasons import REASONS
from curation.selection.filter import run_filter
from curation.selection.sample import sample
from curation.workspace import Workspace
from curation.workspace.executor import SerialExecutor

SOURCES = ("dcm_qa_ct/In/Philips/S21570/S2010", "dcm_qa_ct/In/GE", "totalsegmentator/example_ct_dicom")
DROPPABLE = ("ImagePositionPatient", "ImageOrientationPatient", "SeriesInstanceUID", "StudyInstanceUID", "PatientID",
             "Modality", "Rows", "PixelSpacing", "SOPInstanceUID", "SliceThickness", "RescaleSlope", "ImageType",
             "SOPClassUID", "BitsAllocated", "PhotometricInterpretation", "StudyDate")


def _slices(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name != "DIRFILE")


def _write(ds: pydicom.Dataset, path: Path, **kwargs: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, **kwargs)  # type: ignore[arg-type]


def build_corpus(shared: Path, out: Path, seed: int = 14) -> int:
    rng = random.Random(seed)
    n = 0
    for number, relative in enumerate(SOURCES):
        slices = _slices(shared / relative)
        base = out / f"src{number}"
        # the series as it is, then mutated copies of its slices, each mutation in its own series folder
        shutil.copytree(shared / relative, base / "original")
        n += len(list((base / "original").iterdir()))
        for round_, i, path in ((r, i, p) for r in range(3) for i, p in enumerate(slices)):
            ds = pydicom.dcmread(path)
            if ds.file_meta.TransferSyntaxUID.is_compressed:
                ds.decompress()  # mutate native pixels; compression is one of the mutations
            kind = (i + 2 * round_) % 6
            target = base / f"r{round_}m{kind}" / f"{i:03d}.dcm"
            target.parent.mkdir(parents=True, exist_ok=True)
            if kind == 0:  # a tag dropped
                for keyword in rng.sample(DROPPABLE, 2):
                    if keyword in ds:
                        delattr(ds, keyword)
                _write(ds, target)
            elif kind == 1:  # cut at a random offset
                data = path.read_bytes()
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data[: rng.randrange(1, len(data))])
            elif kind == 2:  # another transfer syntax
                syntax = rng.choice((ImplicitVRLittleEndian, ExplicitVRBigEndian, RLELossless))
                try:
                    if syntax == RLELossless:
                        ds.compress(RLELossless, encoding_plugin="pydicom")
                    else:
                        ds.file_meta.TransferSyntaxUID = syntax
                        ds.PixelData = ds.pixel_array.astype(ds.pixel_array.dtype.newbyteorder(
                            ">" if syntax == ExplicitVRBigEndian else "<")).tobytes()
                        ds["PixelData"].VR = "OW"
                    _write(ds, target, enforce_file_format=True)
                except (ValueError, NotImplementedError, RuntimeError, AttributeError, TypeError):
                    shutil.copy(path, target)
            elif kind == 3:  # the same instance in two folders
                for copy in ("copy_a", "copy_b"):
                    (base / f"r{round_}{copy}").mkdir(parents=True, exist_ok=True)
                    shutil.copy(path, base / f"r{round_}{copy}" / path.name)
                n += 1
            elif kind == 4:  # positions removed
                for keyword in ("ImagePositionPatient", "SliceLocation"):
                    if keyword in ds:
                        delattr(ds, keyword)
                _write(ds, target)
            else:  # several frames stacked in one classic CT object
                frames = np.stack([ds.pixel_array] * 3)
                ds.NumberOfFrames = 3
                ds.PixelData = frames.tobytes()
                _write(ds, target)
            n += 1
    extras = out / "other"
    extras.mkdir()
    for relative in ("highdicom/seg_image_ct_binary.dcm", "highdicom/sr_document.dcm", "fo_dicom/GH1728.dcm",
                     "fo_dicom/GH177_D_CLUNIE_CT1_IVRLE_BigEndian_undefined_length.dcm", "fo_dicom/GH1376.dcm"):
        shutil.copy(shared / relative, extras / Path(relative).name)
        n += 1
    (extras / "notes.txt").write_text("not DICOM")
    (extras / "noise.dcm").write_bytes(bytes(rng.randrange(256) for _ in range(5000)))
    return n + 2


def test_a_mutated_corpus_is_scanned_sampled_and_filtered(shared_data: Path, tmp_path: Path) -> None:
    export = tmp_path / "export"
    n = build_corpus(shared_data, export)
    assert n >= 300
    ws = Workspace.create(tmp_path / "ws")
    result = scan(ws, [export], executor=SerialExecutor())
    assert result.n_files == n == sum(1 for p in export.rglob("*") if p.is_file())
    sample(ws, n=0, seed=3)
    run_filter(ws)
    files = pd.read_parquet(ws.files_table)
    verdicts = pd.read_parquet(ws.verdicts_table)
    merged = files.merge(verdicts[["series_key", "included", "reasons", "primary_reason"]], on="series_key",
                         how="left")
    assert merged["included"].notna().all()  # every file has a verdict
    excluded = merged[~merged["included"].astype(bool)]
    codes = {code for reasons in excluded["reasons"] for code in reasons.split(";")}
    assert (excluded["reasons"] != "").all() and codes <= set(REASONS)
    assert {"corrupt_file", "unreadable", "non_image", "secondary_capture", "not_ct", "too_short"} <= codes
    assert (merged.loc[merged["status"] == "truncated", "primary_reason"] == "corrupt_file").all()
    assert set(merged.loc[merged["status"].isin(["not_dicom", "unparseable"]), "primary_reason"]) == {"unreadable"}
    assert merged["included"].astype(bool).any()  # the untouched series still pass
