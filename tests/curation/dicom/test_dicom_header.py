import os
import shutil
from pathlib import Path

import pydicom
import pytest

from curation.dicom.header import READABLE_STATUSES, STATUSES, read_header
from curation.dicom.tags import FIELDS


def _all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_every_shared_file_gets_a_status(shared_data: Path) -> None:
    for path in _all_files(shared_data):
        record = read_header(path)
        assert record["status"] in STATUSES, path
        if record["status"] not in ("ok",):
            assert record["detail"], path


def test_known_bad_files(shared_data: Path) -> None:
    unparseable = read_header(shared_data / "fo_dicom/GH177_D_CLUNIE_CT1_IVRLE_BigEndian_undefined_length.dcm")
    assert unparseable["status"] == "unparseable"
    truncated = read_header(shared_data / "fo_dicom/GH1376.dcm")
    assert truncated["status"] == "truncated" and "9287460 expected" in truncated["detail"]
    assert read_header(shared_data / "fo_dicom/GH178.dcm")["status"] == "no_pixel_data"
    assert read_header(shared_data / "highdicom/sr_document.dcm")["status"] == "non_image"
    assert read_header(shared_data / "rt_utils/mock_data/rt.dcm")["status"] == "non_image"
    assert read_header(shared_data / "totalsegmentator/example_ct.nii.gz")["status"] == "not_dicom"
    acr_nema = read_header(shared_data / "fo_dicom/GH340.dcm")
    assert acr_nema["status"] in READABLE_STATUSES


def _pydicom_value(ds: pydicom.Dataset, tag: int):
    elem = ds.get(tag)
    return None if elem is None else elem.value


def test_fast_path_matches_pydicom(shared_data: Path) -> None:
    """The fast parser and pydicom agree on every kept tag of every readable image file."""
    checked = 0
    for path in _all_files(shared_data):
        record = read_header(path)
        if record["status"] != "ok" or record["bytes_read"] >= record["size"]:
            continue  # only files that went through the fast path
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        for tag, name, kind in FIELDS:
            value = _pydicom_value(ds, tag)
            if kind.startswith("floats:"):
                if value is None or len(value) != int(kind[7:]):
                    continue
                for i, v in enumerate(value):
                    assert record[f"{name}_{i}"] == pytest.approx(float(v)), (path, name)
            elif kind in ("float", "int") and value not in (None, ""):
                assert record[name] == pytest.approx(float(value)), (path, name)
            elif kind == "us" and value is not None:
                assert record[name] == int(value), (path, name)
            elif kind in ("str", "text") and value not in (None, ""):
                assert record[name] == str(value).strip(), (path, name)
        checked += 1
    assert checked > 100


def test_random_bytes_and_truncated_copy(tmp_path: Path, shared_data: Path) -> None:
    noise = tmp_path / "noise.dcm"
    noise.write_bytes(os.urandom(70_000))
    assert read_header(noise)["status"] == "not_dicom"
    source = shared_data / "dcm_qa_ct/In/GE/05.dcm"
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    record = read_header(cut)
    assert record["status"] == "truncated" and "expected" in record["detail"]
    header_cut = tmp_path / "header_cut.dcm"
    header_cut.write_bytes(source.read_bytes()[:600])
    assert read_header(header_cut)["status"] == "truncated"


def test_reads_few_bytes(shared_data: Path, tmp_path: Path) -> None:
    path = shared_data / "dcm_qa_ct/In/GE/05.dcm"  # 512 x 512 slice
    record = read_header(path)
    assert record["bytes_read"] <= record["size"] / 50


def test_missing_file_is_recorded(tmp_path: Path) -> None:
    record = read_header(tmp_path / "gone.dcm")
    assert record["status"] == "not_dicom" and "cannot stat" in record["detail"]


def test_copy_keeps_status(tmp_path: Path, shared_data: Path) -> None:
    shutil.copy(shared_data / "pylibjpeg_data/JPEGLS/CT1_JLSN.dcm", tmp_path / "x")
    assert read_header(tmp_path / "x")["transfer_syntax"].startswith("1.2.840.10008.1.2.4")


def test_sop_classes_are_named() -> None:
    from curation.dicom.tags import sop_class_name

    assert sop_class_name("1.2.840.10008.5.1.4.1.1.2") == "CT Image Storage"
    assert sop_class_name("1.2.840.10008.5.1.4.1.1.481.3") == "RT Structure Set Storage"  # from pydicom's table
    assert sop_class_name("1.2.3.4") == "1.2.3.4" and sop_class_name("") == "missing SOP class"


def _image(photometric: str, samples: int, pixels: bytes, **extra: object) -> pydicom.Dataset:
    from pydicom.dataset import Dataset
    from pydicom.uid import generate_uid

    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"  # Secondary Capture
    ds.SOPInstanceUID, ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid(), generate_uid()
    ds.Modality, ds.PatientID = "OT", "COLOUR"
    ds.Rows = ds.Columns = 100
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.SamplesPerPixel, ds.PhotometricInterpretation = samples, photometric
    for keyword, value in extra.items():
        setattr(ds, keyword, value)
    ds.PixelData = pixels
    return ds


@pytest.mark.parametrize(("photometric", "samples", "n_bytes", "extra"), [
    ("YBR_FULL_422", 3, 20000, {"PlanarConfiguration": 0}),     # 4:2:2: two samples per pixel on average
    ("RGB", 3, 30000, {"PlanarConfiguration": 1}),              # planar: the same bytes, other order
    ("PALETTE COLOR", 1, 10000, {}),                            # one index per pixel
])
def test_pixel_data_size_follows_the_colour_layout(tmp_path: Path, photometric: str, samples: int, n_bytes: int,
                                                   extra: dict) -> None:
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    path = tmp_path / "colour.dcm"
    ds = _image(photometric, samples, bytes(n_bytes), **extra)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.save_as(path, enforce_file_format=True)
    record = read_header(path)
    assert record["status"] == "ok", record["detail"]
    short = tmp_path / "short.dcm"
    short.write_bytes(path.read_bytes()[:-200])
    assert read_header(short)["status"] == "truncated"


def test_a_big_endian_file_without_file_meta_is_read(tmp_path: Path) -> None:
    """No preamble, no file meta, explicit VR big endian: pydicom reads it with force=True, and so does ctcurate."""
    import numpy as np

    ds = _image("MONOCHROME2", 1, np.arange(10000, dtype=">u1").tobytes())
    ds.Modality = "CT"
    path = tmp_path / "big_endian_raw.dcm"
    ds.save_as(path, implicit_vr=False, little_endian=False, enforce_file_format=False)
    assert path.read_bytes()[:2] == b"\x00\x08"
    record = read_header(path)
    assert record["status"] == "ok" and record["patient_id"] == "COLOUR" and record["rows"] == 100
    assert record["modality"] == "CT" and record["has_pixel_data"]


def test_pydicom_warnings_are_kept_with_the_file(tmp_path: Path) -> None:
    """File meta says explicit VR, the data set is implicit: pydicom warns and reads it; the warning is kept in
    the record (and logged with the file's name) instead of printed without it."""
    import warnings

    from pydicom.dataset import FileMetaDataset
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset, write_file_meta_info
    from pydicom.uid import ExplicitVRLittleEndian

    ds = _image("MONOCHROME2", 1, bytes(10000))
    meta_ds = FileMetaDataset()
    meta_ds.TransferSyntaxUID = ExplicitVRLittleEndian
    meta_ds.MediaStorageSOPClassUID, meta_ds.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    meta, body = DicomBytesIO(), DicomBytesIO()
    meta.is_little_endian, meta.is_implicit_VR = True, False
    body.is_little_endian, body.is_implicit_VR = True, True
    write_file_meta_info(meta, meta_ds, enforce_standard=True)
    write_dataset(body, ds)
    path = tmp_path / "mismatch.dcm"
    path.write_bytes(b"\0" * 128 + b"DICM" + meta.getvalue() + body.getvalue())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing escapes to the user's terminal
        record = read_header(path)
    assert record["status"] == "ok" and record["has_pixel_data"] and record["patient_id"] == "COLOUR"
    assert "Expected explicit VR, but found implicit VR" in record["warnings"]


def test_pixels_without_an_installed_decoder_name_the_syntax_and_the_fix(tmp_path: Path) -> None:
    from pydicom.dataset import FileMetaDataset
    from pydicom.encaps import encapsulate
    from pydicom.uid import UID

    from curation.dicom.series import check_decodable

    ds = _image("MONOCHROME2", 1, b"")
    ds.Modality = "CT"
    ds.PixelData = encapsulate([bytes(100)])
    ds["PixelData"].VR = "OB"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = UID("1.2.840.10008.1.2.4.100")  # MPEG2: no decoder for it here
    path = tmp_path / "video.dcm"
    pydicom.dcmwrite(path, ds, enforce_file_format=True, implicit_vr=False, little_endian=True)
    reason = check_decodable(str(path))
    assert "no decoder installed for its transfer syntax MPEG2 Main Profile / Main Level" in reason
    assert "gdcmconv --raw" in reason and "\n" not in reason


def test_an_empty_sop_class_in_the_data_set_falls_back_to_the_file_meta(shared_data: Path) -> None:
    """The TotalSegmentator example series stores an empty SOPClassUID; its file meta names CT Image Storage."""
    path = next((shared_data / "totalsegmentator/example_ct_dicom").iterdir())
    assert pydicom.dcmread(path, stop_before_pixels=True).SOPClassUID == ""
    record = read_header(path)
    assert record["sop_class_uid"] == "1.2.840.10008.5.1.4.1.1.2" and record["sop_class"] == "CT Image Storage"
