"""Group scanned files into patient -> study -> series and summarise each series.

Keys are built from UIDs when present and from other header facts when not (some exports carry
empty UIDs), then hashed into short opaque ids. A series is split further where its files cannot
form one volume: different SOP class, orientation or image size, the same instance stored in two
folders, or repeated acquisitions over the same positions.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import numpy as np
import pandas as pd

from curation.dicom.geometry import slice_stack
from curation.dicom.header import READABLE_STATUSES

__all__ = ["assign_keys", "summarise_series", "build_catalog", "patients_per_study_uid"]
_IOP = [f"iop_{i}" for i in range(6)]
_IPP = [f"ipp_{i}" for i in range(3)]


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def _key(*parts: Any) -> str:
    return _digest("\x1f".join("" if p is None or (isinstance(p, float) and np.isnan(p)) else str(p) for p in parts))


def _keys(prefix: str, *parts: pd.Series) -> list[str]:
    """``_key(prefix, *row)`` of every row of the string columns ``parts``, each distinct row hashed once."""
    text = pd.Series(prefix, index=parts[0].index)
    for part in parts:
        text = text + "\x1f" + part
    return text.map({value: _digest(value) for value in text.unique()}).tolist()


def _col(frame: pd.DataFrame, name: str) -> pd.Series:
    column = frame[name]
    return column.astype(str).where(column.notna(), "")


def assign_keys(files: pd.DataFrame) -> pd.DataFrame:
    """Add ``patient_key``, ``study_key``, ``series_key`` and ``folder`` columns to a files table."""
    files = files.copy()
    if "folder" not in files:  # the scan's workers give it
        files["folder"] = files["path"].map(os.path.dirname)
    readable = files["status"].isin(READABLE_STATUSES)
    pid = _col(files, "patient_id")
    fallback_patient = _col(files, "patient_name") + "|" + _col(files, "patient_birth_date")
    patient_src = pid.where(pid != "", fallback_patient.where(fallback_patient != "|", "unknown"))
    files["patient_key"] = _keys("p", patient_src)
    suid = _col(files, "study_uid")
    study_fallback = (files["patient_key"] + "|" + _col(files, "study_date") + "|" + _col(files, "study_time")
                      + "|" + _col(files, "accession_number"))
    study_src = suid.where(suid != "", study_fallback)
    patients = patients_per_study_uid(files)
    shared = suid.isin(patients.index[patients > 1])
    # one Study UID under two patients (a merged or mistyped Patient ID): an exam each, flagged by the filter
    files["study_key"] = _keys("st", study_src.where(~shared, study_src + "|" + files["patient_key"]))
    seuid = _col(files, "series_uid")
    series_fallback = (files["study_key"] + "|" + _col(files, "series_number") + "|" + _col(files, "modality")
                       + "|" + _col(files, "series_description") + "|" + files["folder"])
    base = seuid.where(seuid != "", series_fallback)
    base = base.where(~shared, base + "|" + files["patient_key"])  # nor a series that spans two patients
    geometry = (_col(files, "sop_class_uid") + "|" + _orientation_text(files)
                + "|" + _col(files, "rows") + "x" + _col(files, "columns"))
    files["series_key"] = _keys("se", base, geometry)
    _keep_cut_files_in_their_series(files, base)
    files.loc[~readable, ["patient_key", "study_key"]] = ""
    files.loc[~readable, "series_key"] = [_key("file", p) for p in files.loc[~readable, "path"]]
    files = _split_duplicate_instances(files)
    return _split_repeated_acquisitions(files)


def patients_per_study_uid(files: pd.DataFrame) -> pd.Series:
    """How many Patient IDs each Study UID is found under, over the readable files (files without either are not
    counted); more than one: a merged or mistyped Patient ID, or one exam exported under two."""
    study_uids, patient_ids = _col(files, "study_uid"), _col(files, "patient_id")
    known = files["status"].isin(READABLE_STATUSES) & (study_uids != "") & (patient_ids != "")
    return patient_ids[known].groupby(study_uids[known]).nunique()


def _orientation_text(files: pd.DataFrame) -> pd.Series:
    """Each file's orientation to 2 decimals ('1.00,0.00,...'; empty parts where unknown), formatted once per
    distinct orientation."""
    iop = files[_IOP].astype(float)
    codes = iop.groupby(_IOP, dropna=False, sort=False).ngroup().to_numpy(dtype=np.int64)
    distinct = iop.groupby(codes).first().to_numpy()  # the rows of a group are equal, NaN where NaN
    texts = np.array([",".join("" if np.isnan(v) else f"{v:.2f}" for v in row) for row in distinct] or [""],
                     dtype=object)
    return pd.Series(texts[codes], index=files.index, dtype=object)


def _keep_cut_files_in_their_series(files: pd.DataFrame, base: pd.Series) -> None:
    """A file cut short may lack the facts that key its series (orientation, matrix, even its series UID): it
    joins the series of the same series UID in its folder, or, without a UID, the one series of its folder (and
    study, when known), so the series is judged with the damaged file in it."""
    cut = files["status"] == "truncated"
    if not cut.any():
        return
    whole = files[files["status"] == "ok"]  # whole images (not a DICOMDIR or a report beside them)
    by_base = (pd.DataFrame({"base": base[whole.index], "folder": whole["folder"], "key": whole["series_key"]})
               .groupby(["base", "folder"])["key"].agg(lambda k: k.value_counts().index[0]))
    by_folder = whole.groupby("folder")
    for index in files.index[cut]:
        folder = files.at[index, "folder"]
        found = by_base.get((base[index], folder))
        if found is None and not files.at[index, "series_uid"] and folder in by_folder.groups:
            siblings = by_folder.get_group(folder)
            study = files.at[index, "study_uid"]
            if study:
                siblings = siblings[siblings["study_uid"] == study]
            keys = siblings["series_key"].unique()
            found = keys[0] if len(keys) == 1 else None
        if found is not None:
            files.at[index, "series_key"] = found


def _split_duplicate_instances(files: pd.DataFrame) -> pd.DataFrame:
    """Where a series spans folders that each hold a copy (same instance UID or same slice position),
    each folder is its own series: the export holds the series twice. The folder first by name keeps the series'
    key (a copy added or removed later changes no converted case); a folder whose instances are all in that one
    is marked ``copy_of`` its key (the filter excludes it as a second copy)."""
    files["copy_of"] = ""
    spanning = files.groupby("series_key")["folder"].transform("nunique") > 1
    for key, group in files[spanning].groupby("series_key"):
        folders = group["folder"].tolist()
        uids = _by_folder(group["sop_instance_uid"].tolist(), folders)
        positions = [tuple(row) if not np.isnan(row).any() else None
                     for row in np.round(group[_IPP].to_numpy(float), 3)]
        if _sets_overlap(list(uids.values())) or _sets_overlap(list(_by_folder(positions, folders).values())):
            first = min(folders)
            files.loc[group.index, "series_key"] = [key if f == first else _key(key, f) for f in folders]
            copies = [f for f, own in uids.items() if f != first and own <= uids.get(first, set())]
            files.loc[group.index[group["folder"].isin(copies)], "copy_of"] = key
    return files


def _by_folder(values: list[Any], folders: list[str]) -> dict[str, set[Any]]:
    """The known values (not empty, not missing) of each folder that has any."""
    out: dict[str, set[Any]] = {}
    for value, folder in zip(values, folders, strict=True):
        if value is None or value == "" or (isinstance(value, float) and np.isnan(value)):
            continue
        out.setdefault(folder, set()).add(value)
    return out


def _sets_overlap(sets: list[set[Any]]) -> bool:
    seen: set[Any] = set()
    for values in sets:
        if seen & values:
            return True
        seen |= values
    return False


def _split_repeated_acquisitions(files: pd.DataFrame) -> pd.DataFrame:
    """Split a series whose acquisitions each form a clean stack over the same positions."""
    key_column = files["series_key"]
    repeated = (files[["series_key"]].join(files[_IPP].round(3)).duplicated()
                & (key_column.map(key_column.value_counts()) >= 4)
                & files["acquisition_number"].notna().groupby(key_column).transform("any"))
    candidates = files[key_column.isin(set(key_column[repeated]))]
    for key, group in candidates.groupby("series_key"):
        parts = group.groupby(group["acquisition_number"].fillna(-1))
        if parts.ngroups < 2:
            continue
        if all(len(p) >= 2 and not p[_IPP].round(3).duplicated().any() for _, p in parts):
            for acq, part in parts:
                files.loc[part.index, "series_key"] = _key(key, "acq", acq)
    return files


def _geometry(iop_rows: np.ndarray, ipp_rows: np.ndarray) -> dict[str, Any]:
    out: dict[str, Any] = {
        "n_positions": 0, "spacing_median": np.nan, "spacing_min": np.nan, "spacing_max": np.nan,
        "z_extent_mm": np.nan, "tilt_deg": np.nan, "obliquity_deg": np.nan, "axis": "", "gaps": "[]", "positions": "[]",
        "normal_0": np.nan, "normal_1": np.nan, "normal_2": np.nan,
    }
    valid = ~(np.isnan(iop_rows).any(axis=1) | np.isnan(ipp_rows).any(axis=1))
    if not valid.any():
        return out
    try:
        stack = slice_stack(np.median(iop_rows[valid], axis=0), ipp_rows[valid])
    except ValueError:
        return out
    gaps = stack.gaps
    out.update(
        n_positions=int(len(np.unique(np.round(stack.positions, 3)))),
        z_extent_mm=stack.extent_mm, tilt_deg=stack.tilt_deg, obliquity_deg=stack.obliquity_deg,
        axis=stack.axis, gaps=json.dumps([round(float(g), 4) for g in gaps]),
        positions=json.dumps([round(float(p), 3) for p in stack.positions]),
        normal_0=float(stack.normal[0]), normal_1=float(stack.normal[1]), normal_2=float(stack.normal[2]),
    )
    if len(gaps):
        out.update(spacing_median=float(np.median(gaps)), spacing_min=float(gaps.min()),
                   spacing_max=float(gaps.max()))
    return out


_FIRST_COLUMNS = (
    "study_key", "patient_key", "series_uid", "study_uid", "patient_id", "patient_name", "patient_birth_date",
    "patient_sex", "patient_age", "study_date", "study_time", "accession_number", "institution_name",
    "station_name", "referring_physician", "modality", "sop_class_uid", "sop_class", "image_type",
    "series_description", "study_description", "body_part", "protocol_name", "manufacturer", "model", "kvp",
    "kernel", "series_number", "transfer_syntax", "contrast_agent", "contrast_route", "burned_in_annotation",
    "photometric", "samples_per_pixel", "rows", "columns", "bits_allocated", "pixel_spacing_0",
    "pixel_spacing_1", "frame_of_reference_uid", "copy_of",
)
_READABLE_SET = frozenset(READABLE_STATUSES)


def summarise_series(files: pd.DataFrame) -> pd.DataFrame:
    """One row per ``series_key`` with header facts and slice geometry."""
    if files.empty:
        return pd.DataFrame()
    work = files.copy()
    text_columns = [c for c in _FIRST_COLUMNS if c in work and work[c].dtype != float]
    work[text_columns] = work[text_columns].replace("", np.nan)
    grouped = work.groupby("series_key", sort=True)
    series = grouped[[c for c in _FIRST_COLUMNS if c in work]].first()
    for column in text_columns:
        series[column] = series[column].fillna("").astype(str)
    series["n_files"] = grouped.size()
    key = work["series_key"]
    status = work["status"]

    def count(mask: pd.Series) -> pd.Series:
        return mask.groupby(key).sum().astype(int)

    series["n_unreadable"] = count(~status.isin(_READABLE_SET))
    series["n_truncated"] = count(status == "truncated")
    series["n_no_pixels"] = count(status == "no_pixel_data")
    images = status == "ok"
    series["n_no_rescale"] = count(images & work["rescale_intercept"].isna()) if "rescale_intercept" in work else 0
    series["n_no_position"] = count(images & work[_IPP].isna().any(axis=1))
    counts = work.groupby(["series_key", "status"], sort=False).size().reset_index(name="n")
    counts = counts.sort_values(["series_key", "n"], ascending=[True, False], kind="stable")
    series["file_status"] = (counts["status"] + ":" + counts["n"].astype(str)).groupby(counts["series_key"]).agg(
        ";".join)
    detail = work["detail"].fillna("")
    series["status_detail"] = detail[detail != ""].groupby(key[detail != ""]).first().reindex(series.index,
                                                                                              fill_value="")
    damaged: dict[str, list[dict[str, str]]] = {}
    bad = status.isin(["truncated", "unparseable", "not_dicom", "no_pixel_data"])
    for row in work.loc[bad, ["series_key", "path", "detail", "status"]].itertuples(index=False):
        if len(damaged.setdefault(str(row.series_key), [])) < 5:
            damaged[str(row.series_key)].append({"file": str(row.path), "detail": str(row.detail),
                                                 "status": str(row.status)})
    series["damaged_files"] = [json.dumps(damaged.get(str(k), [])) for k in series.index]
    folders = grouped["folder"].unique()
    series["folder"] = [str(f[0]) if len(f) == 1 else os.path.commonpath(list(f)) for f in folders]
    uids = work.loc[work["sop_instance_uid"] != "", ["series_key", "sop_instance_uid"]]
    series["duplicate_sop_instances"] = count(uids.duplicated()).reindex(series.index, fill_value=0)
    series["number_of_frames"] = grouped["number_of_frames"].max().fillna(1)
    series["slice_thickness"] = grouped["slice_thickness"].median()
    series["slice_thickness_min"] = grouped["slice_thickness"].min()
    series["slice_thickness_max"] = grouped["slice_thickness"].max()
    series["gantry_tilt"] = work["gantry_tilt"].abs().groupby(key).max()
    series["gantry_tilt_tag"] = grouped["gantry_tilt"].first()
    iop = work[_IOP].to_numpy(float)
    ipp = work[_IPP].to_numpy(float)
    frames = work["frame_positions"].tolist() if "frame_positions" in work else [""] * len(work)
    geometry: dict[str, dict[str, Any]] = {}
    per_frame: dict[str, list[float]] = {}  # series of multi-frame files: a slice per frame, not per file
    for group, index in grouped.indices.items():
        name = str(group)
        rows_iop, rows_ipp = _slices_of(iop, ipp, frames, np.asarray(index))
        geometry[name] = _geometry(rows_iop, rows_ipp)
        if len(rows_iop) != len(index):
            per_frame[name] = [float(np.nanmedian(v)) if not np.isnan(v).all() else np.nan for v in rows_iop.T]
    medians = grouped[_IOP].median()  # of the files' orientations (NaN where none is known)
    for i, column in enumerate(_IOP):
        series[column] = [per_frame[k][i] if k in per_frame else v for k, v in medians[column].items()]
    valid = ~work[_IOP].isna().any(axis=1)
    distinct = work.loc[valid, ["series_key"]].join(work.loc[valid, _IOP].round(3)).drop_duplicates()
    series["n_orientations"] = distinct.groupby("series_key").size().reindex(series.index, fill_value=0)
    series = series.join(pd.DataFrame.from_dict(geometry, orient="index"))
    series = series.reset_index().rename(columns={"index": "series_key"})
    series["study_uid_patients"] = series["study_uid"].map(patients_per_study_uid(files)).fillna(0).astype(int)
    series["study_year"] = pd.to_numeric(series["study_date"].str[:4], errors="coerce")
    series["contrast_delay_s"] = series["series_key"].map(_contrast_delays(work))
    return series


def _slices_of(iop: np.ndarray, ipp: np.ndarray, frames: list[Any], index: np.ndarray) -> tuple[np.ndarray,
                                                                                                np.ndarray]:
    """Orientation and position of every slice of the files at ``index``: a classic file is one slice, an
    enhanced (multi-frame) file one slice per frame with its own position."""
    if not any(frames[i] for i in index):
        return iop[index], ipp[index]
    orientations, positions = [], []
    for i in index:
        per_frame = json.loads(frames[i]) if frames[i] else []
        for position in per_frame or [ipp[i].tolist()]:
            orientations.append(iop[i])
            positions.append(position)
    return np.asarray(orientations, float).reshape(-1, 6), np.asarray(positions, float).reshape(-1, 3)


def _seconds(value: Any) -> float:
    """DICOM TM (HHMMSS.FFFFFF, parts optional) as seconds after midnight; NaN when empty or malformed."""
    text = str(value or "").strip()
    digits, _, fraction = text.partition(".")
    if not digits.isdigit() or len(digits) not in (2, 4, 6) or (fraction and not fraction.isdigit()):
        return float("nan")
    parts = [int(digits[i:i + 2]) for i in range(0, len(digits), 2)] + [0, 0]
    return parts[0] * 3600 + parts[1] * 60 + parts[2] + (float("0." + fraction) if fraction else 0.0)


def _contrast_delays(files: pd.DataFrame) -> pd.Series:
    """Median seconds from the contrast bolus start to each image's acquisition (over midnight too), per series."""
    if "contrast_start_time" not in files or "acquisition_time" not in files:
        return pd.Series(dtype=float)

    def seconds(column: pd.Series) -> np.ndarray:
        values = column.fillna("").astype(str)
        return values.map({v: _seconds(v) for v in values.unique()}).to_numpy(float)

    delay = (seconds(files["acquisition_time"]) - seconds(files["contrast_start_time"])) % 86400
    valid = np.isfinite(delay) & (delay < 3 * 3600)  # hours apart: the tags are not about this scan
    return pd.Series(delay[valid]).groupby(files["series_key"].to_numpy()[valid]).median()


def build_catalog(files: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (files with keys, series summary) for a raw files table."""
    keyed = assign_keys(files)
    return keyed, summarise_series(keyed)
