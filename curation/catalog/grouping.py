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

__all__ = ["assign_keys", "summarise_series", "build_catalog"]
_IOP = [f"iop_{i}" for i in range(6)]
_IPP = [f"ipp_{i}" for i in range(3)]


def _key(*parts: Any) -> str:
    text = "\x1f".join("" if p is None or (isinstance(p, float) and np.isnan(p)) else str(p) for p in parts)
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def _col(frame: pd.DataFrame, name: str) -> pd.Series:
    column = frame[name]
    return column.astype(str).where(column.notna(), "")


def assign_keys(files: pd.DataFrame) -> pd.DataFrame:
    """Add ``patient_key``, ``study_key``, ``series_key`` and ``folder`` columns to a files table."""
    files = files.copy()
    files["folder"] = files["path"].map(os.path.dirname)
    readable = files["status"].isin(READABLE_STATUSES)
    pid = _col(files, "patient_id")
    fallback_patient = _col(files, "patient_name") + "|" + _col(files, "patient_birth_date")
    patient_src = pid.where(pid != "", fallback_patient.where(fallback_patient != "|", "unknown"))
    files["patient_key"] = [_key("p", p) for p in patient_src]
    suid = _col(files, "study_uid")
    study_fallback = (files["patient_key"] + "|" + _col(files, "study_date") + "|" + _col(files, "study_time")
                      + "|" + _col(files, "accession_number"))
    files["study_key"] = [_key("st", s) for s in suid.where(suid != "", study_fallback)]
    seuid = _col(files, "series_uid")
    series_fallback = (files["study_key"] + "|" + _col(files, "series_number") + "|" + _col(files, "modality")
                       + "|" + _col(files, "series_description") + "|" + files["folder"])
    base = seuid.where(seuid != "", series_fallback)
    iop_text = [",".join("" if np.isnan(v) else f"{v:.2f}" for v in row) for row in files[_IOP].to_numpy(float)]
    geometry = (_col(files, "sop_class_uid") + "|" + pd.Series(iop_text, index=files.index)
                + "|" + _col(files, "rows") + "x" + _col(files, "columns"))
    files["series_key"] = [_key("se", b, g) for b, g in zip(base, geometry, strict=True)]
    _keep_cut_files_in_their_series(files, base)
    files.loc[~readable, ["patient_key", "study_key"]] = ""
    files.loc[~readable, "series_key"] = [_key("file", p) for p in files.loc[~readable, "path"]]
    files = _split_duplicate_instances(files)
    return _split_repeated_acquisitions(files)


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
    each folder is its own series: the export holds the series twice."""
    for key, group in files.groupby("series_key"):
        if group["folder"].nunique() < 2:
            continue
        uids = _by_folder(group["sop_instance_uid"].tolist(), group["folder"].tolist())
        positions = [tuple(row) if not np.isnan(row).any() else None
                     for row in np.round(group[_IPP].to_numpy(float), 3)]
        if _sets_overlap(uids) or _sets_overlap(_by_folder(positions, group["folder"].tolist())):
            files.loc[group.index, "series_key"] = [_key(key, f) for f in group["folder"]]
    return files


def _by_folder(values: list[Any], folders: list[str]) -> list[set[Any]]:
    """The known values (not empty, not missing) of each folder."""
    out: dict[str, set[Any]] = {}
    for value, folder in zip(values, folders, strict=True):
        if value is None or value == "" or (isinstance(value, float) and np.isnan(value)):
            continue
        out.setdefault(folder, set()).add(value)
    return list(out.values())


def _sets_overlap(sets: list[set[Any]]) -> bool:
    seen: set[Any] = set()
    for values in sets:
        if seen & values:
            return True
        seen |= values
    return False


def _split_repeated_acquisitions(files: pd.DataFrame) -> pd.DataFrame:
    """Split a series whose acquisitions each form a clean stack over the same positions."""
    for key, group in files.groupby("series_key"):
        if len(group) < 4 or group["acquisition_number"].isna().all():
            continue
        pos = group[_IPP].round(3)
        if not pos.duplicated().any():
            continue
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
    "pixel_spacing_1", "frame_of_reference_uid",
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
    series["n_unreadable"] = grouped["status"].agg(lambda s: int((~s.isin(_READABLE_SET)).sum()))
    series["n_truncated"] = grouped["status"].agg(lambda s: int((s == "truncated").sum()))
    series["n_no_pixels"] = grouped["status"].agg(lambda s: int((s == "no_pixel_data").sum()))
    images = work["status"] == "ok"
    series["n_no_rescale"] = (images & work["rescale_intercept"].isna()).groupby(work["series_key"]).sum() \
        if "rescale_intercept" in work else 0
    series["n_no_position"] = (images & work[_IPP].isna().any(axis=1)).groupby(work["series_key"]).sum()
    series["file_status"] = grouped["status"].agg(
        lambda s: ";".join(f"{k}:{int(v)}" for k, v in s.value_counts().items()))
    series["status_detail"] = grouped["detail"].agg(lambda d: next((x for x in d if x), ""))
    damaged: dict[str, list[dict[str, str]]] = {}
    bad = work["status"].isin(["truncated", "unparseable", "not_dicom", "no_pixel_data"])
    for row in work.loc[bad, ["series_key", "path", "detail", "status"]].itertuples(index=False):
        if len(damaged.setdefault(str(row.series_key), [])) < 5:
            damaged[str(row.series_key)].append({"file": str(row.path), "detail": str(row.detail),
                                                 "status": str(row.status)})
    series["damaged_files"] = [json.dumps(damaged.get(str(k), [])) for k in series.index]
    series["folder"] = grouped["folder"].agg(lambda f: os.path.commonpath(list(f)))
    series["duplicate_sop_instances"] = grouped["sop_instance_uid"].agg(
        lambda u: int(u[u != ""].duplicated().sum()))
    series["number_of_frames"] = grouped["number_of_frames"].max().fillna(1)
    series["slice_thickness"] = grouped["slice_thickness"].median()
    series["slice_thickness_min"] = grouped["slice_thickness"].min()
    series["slice_thickness_max"] = grouped["slice_thickness"].max()
    series["gantry_tilt"] = grouped["gantry_tilt"].agg(lambda t: t.abs().max())
    series["gantry_tilt_tag"] = grouped["gantry_tilt"].first()
    iop = work[_IOP].to_numpy(float)
    ipp = work[_IPP].to_numpy(float)
    frames = work["frame_positions"].tolist() if "frame_positions" in work else [""] * len(work)
    geometry: dict[str, dict[str, Any]] = {}
    orientations: dict[str, int] = {}
    for group, index in grouped.indices.items():
        key = str(group)
        rows_iop, rows_ipp = _slices_of(iop, ipp, frames, np.asarray(index))
        geometry[key] = _geometry(rows_iop, rows_ipp)
        valid = rows_iop[~np.isnan(rows_iop).any(axis=1)]
        orientations[key] = int(len(np.unique(np.round(valid, 3), axis=0))) if len(valid) else 0
        for i, name in enumerate(_IOP):
            values = rows_iop[:, i]
            geometry[key][name] = float(np.nanmedian(values)) if not np.isnan(values).all() else np.nan
    series["n_orientations"] = pd.Series(orientations)
    series = series.join(pd.DataFrame.from_dict(geometry, orient="index"))
    series = series.reset_index().rename(columns={"index": "series_key"})
    series["study_year"] = pd.to_numeric(series["study_date"].str[:4], errors="coerce")
    delays = {str(key): _contrast_delay(group) for key, group in grouped}
    series["contrast_delay_s"] = series["series_key"].map(delays)
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


def _contrast_delay(group: pd.DataFrame) -> float:
    """Median seconds from the contrast bolus start to each image's acquisition (over midnight too)."""
    if "contrast_start_time" not in group or "acquisition_time" not in group:
        return float("nan")
    start = group["contrast_start_time"].map(_seconds).to_numpy(float)
    acquired = group["acquisition_time"].map(_seconds).to_numpy(float)
    delay = (acquired - start) % 86400
    delay = delay[np.isfinite(delay) & (delay < 3 * 3600)]  # hours apart: the tags are not about this scan
    return float(np.median(delay)) if len(delay) else float("nan")


def build_catalog(files: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (files with keys, series summary) for a raw files table."""
    keyed = assign_keys(files)
    return keyed, summarise_series(keyed)
