"""Acceptance 5: canary strings planted in every identifying tag never reach the releasable part."""

from pathlib import Path

import pydicom

from curation.cases.convert import convert
from curation.workspace.executor import SerialExecutor

CANARY_UID = "1.2.826.0.1.3680043.10.1437.4242"
CANARIES = {
    "PatientName": "Canaryname^Zqxjv",
    "PatientID": "CANARYID9931",
    "PatientBirthDate": "19230407",
    "StudyDate": "19990823",
    "SeriesDate": "19990824",
    "AcquisitionDate": "19990825",
    "ContentDate": "19990826",
    "StudyTime": "235959.123456",
    "SeriesTime": "235958.654321",
    "AcquisitionTime": "235957.111111",
    "ContentTime": "235956.222222",
    "InstitutionName": "Canary Institute Zqxjv",
    "InstitutionAddress": "Canarystreet 7 Zqxjv",
    "ReferringPhysicianName": "Canarydoc^Wkzq",
    "AccessionNumber": "CANACC7731",
    "StationName": "CANARYSTN",
    "StudyID": "CANSTUDY42",
}


def test_no_canary_under_releasable(copy_series, filtered_workspace) -> None:
    export = copy_series("totalsegmentator/example_ct_dicom")
    uids = []
    for i, path in enumerate(sorted((export / "example_ct_dicom").iterdir())):
        ds = pydicom.dcmread(path)
        for keyword, value in CANARIES.items():
            setattr(ds, keyword, value)
        ds.StudyInstanceUID = f"{CANARY_UID}.1"
        ds.SeriesInstanceUID = f"{CANARY_UID}.2"
        ds.FrameOfReferenceUID = f"{CANARY_UID}.3"
        ds.SOPInstanceUID = f"{CANARY_UID}.100.{i}"
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        uids.append(ds.SOPInstanceUID)
        ds.save_as(path)
    ws = filtered_workspace(export)
    result = convert(ws, executor=SerialExecutor())
    assert result.converted == ("s0001",)
    needles = [v.encode() for v in CANARIES.values()] + [CANARY_UID.encode()]
    needles += [part.encode() for v in CANARIES.values() for part in v.split("^") if len(part) > 4]
    released = [p for p in Path(ws.releasable).rglob("*") if p.is_file()]
    assert any(p.name == "ct.nrrd" for p in released) and any(p.name == "meta.csv" for p in released)
    for path in released:
        data = path.read_bytes()
        for needle in needles:
            assert needle not in data, f"{needle!r} found in {path}"
            assert needle.lower() not in data.lower(), f"{needle!r} found in {path}"
    # the private part does keep the linkage
    assert b"CANARYID9931" in ws.linkage_table.read_bytes()
