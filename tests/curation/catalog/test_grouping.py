"""Grouping files into series cannot fail: whatever the headers hold or lack, every file lands in one series."""

from __future__ import annotations

from typing import Any

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from curation.catalog.grouping import build_catalog
from curation.catalog.scan import records_to_frame
from curation.dicom.header import STATUSES, new_record

CT, US = "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.6.1"
AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)

_maybe_text = st.sampled_from(["", "A", "B"])
_file = st.fixed_dictionaries({
    "folder": st.sampled_from(["a", "b", "c/d"]),
    "status": st.sampled_from(("ok", "ok", "ok", *STATUSES)),
    "patient_id": _maybe_text, "patient_name": _maybe_text, "patient_birth_date": st.sampled_from(["", "19700101"]),
    "study_uid": st.sampled_from(["", "1.2.3", "1.2.4"]), "study_date": st.sampled_from(["", "20150101"]),
    "series_uid": st.sampled_from(["1.2.3.1", "1.2.3.1", "1.2.3.1", "", "1.2.3.2"]),
    "series_number": st.sampled_from([None, 1, 2]),
    "sop_instance_uid": st.sampled_from(["", "1.9.1", "1.9.2", "1.9.3"]),
    "sop_class_uid": st.sampled_from([CT, CT, "", US, "1.2.3.4.5"]),
    "modality": st.sampled_from(["", "CT", "US", "OT"]),
    "rows": st.sampled_from([512, 512, None, 0, 100]), "columns": st.sampled_from([512, 512, None, 100]),
    "orientation": st.sampled_from([AXIAL, AXIAL, None, (0.0, 1.0, 0.0, 0.0, 0.0, -1.0), (float("nan"),) * 6]),
    "z": st.sampled_from([None, None, None, 0.0, 2.5, 5.0, float("nan")]),
    "acquisition_number": st.sampled_from([None, 1, 2]),
    "number_of_frames": st.sampled_from([None, 1, 2]),
    "slice_thickness": st.sampled_from([None, 0.0, 2.5]),
    "gantry_tilt": st.sampled_from([None, 0.0, -12.0]),
    "acquisition_time": st.sampled_from(["", "120000", "25", "xx"]),
    "contrast_start_time": st.sampled_from(["", "115900.5"]),
})


def _record(i: int, drawn: dict[str, Any]) -> dict[str, Any]:
    record = new_record(f"/export/{drawn['folder']}/{i}.dcm")
    record.update({k: v for k, v in drawn.items() if k not in ("folder", "orientation", "z")})
    if drawn["orientation"] is not None:
        record.update({f"iop_{k}": v for k, v in enumerate(drawn["orientation"])})
    if drawn["z"] is not None:
        record.update(ipp_0=-100.0, ipp_1=-100.0, ipp_2=drawn["z"])
    return record


@settings(max_examples=200, deadline=None)
@given(st.lists(_file, min_size=1, max_size=14))
def test_every_file_lands_in_exactly_one_series(drawn: list[dict[str, Any]]) -> None:
    files = records_to_frame([_record(i, d) for i, d in enumerate(drawn)])
    keyed, series = build_catalog(files)
    assert len(keyed) == len(files) and keyed["path"].is_unique
    assert keyed["series_key"].map(lambda k: isinstance(k, str) and len(k) == 16).all()
    assert set(series["series_key"]) == set(keyed["series_key"])
    assert int(series["n_files"].sum()) == len(files)
    counts = keyed["series_key"].value_counts()
    assert (series.set_index("series_key")["n_files"] == counts.reindex(series["series_key"]).to_numpy()).all()


def test_copies_of_an_image_without_positions_in_two_folders_are_two_series() -> None:
    """Two folders each hold a copy of one ultrasound image (no ImagePositionPatient): grouping splits them."""
    records = []
    for folder in ("copy1", "copy2"):
        record = new_record(f"/export/{folder}/us.dcm")
        record.update(patient_id="P", study_uid="1.2", series_uid="1.2.1", sop_instance_uid="1.2.1.1",
                      sop_class_uid=US, modality="US", rows=480, columns=640, status="ok")
        records.append(record)
    keyed, series = build_catalog(records_to_frame(records))
    assert keyed["series_key"].nunique() == 2 and list(series["n_files"]) == [1, 1]
    assert pd.Series(keyed["folder"]).tolist() == ["/export/copy1", "/export/copy2"]


def test_a_negative_zero_in_the_orientation_does_not_split_a_series() -> None:
    """Keys are hashed once per distinct combination of the facts behind them, each number compared by its bits
    (-0.0 is not 0.0 there); the orientation's text is made once per orientation, -0.0 the same as 0.0 (a vendor
    writing '-0' for some of a series' files)."""
    from curation.catalog.keys import assign_keys

    records = []
    for i, zero in enumerate((0.0, 0.0, -0.0)):
        record = _record(i, {"folder": "a", "status": "ok", "patient_id": "A", "patient_name": "",
                             "patient_birth_date": "", "study_uid": "1.2.3", "study_date": "", "series_uid": "1.2.3.1",
                             "series_number": 1, "sop_instance_uid": f"1.9.{i}", "sop_class_uid": CT,
                             "modality": "CT", "rows": 512, "columns": 512,
                             "orientation": (1.0, zero, 0.0, 0.0, 1.0, 0.0), "z": float(i),
                             "acquisition_number": None, "number_of_frames": None, "slice_thickness": None,
                             "gantry_tilt": None, "acquisition_time": "", "contrast_start_time": ""})
        records.append(record)
    keys = assign_keys(records_to_frame(records))["series_key"].tolist()
    assert keys[0] == keys[1] == keys[2]
