"""Group scanned files into patient -> study -> series (keys: :mod:`curation.catalog.keys`) and summarise each
series: header facts, file states and slice geometry, computed for all series at once.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import pandas as pd

from curation.dicom.geometry import slice_stacks
from curation.dicom.header import READABLE_STATUSES

from .keys import IOP, IPP, assign_keys, patients_per_study_uid

__all__ = ["summarise_series", "build_catalog"]

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
    series["n_no_position"] = count(images & work[IPP].isna().any(axis=1))
    codes = grouped.ngroup().to_numpy()
    series["file_status"] = [";".join(f"{state}:{n}" for state, n in found) for found in _counted(codes, status)]
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
    folders = [[str(folder) for folder, _ in found] for found in _counted(codes, work["folder"])]
    series["folder"] = [f[0] if len(f) == 1 else os.path.commonpath(f) for f in folders]
    uids = work.loc[work["sop_instance_uid"] != "", ["series_key", "sop_instance_uid"]]
    series["duplicate_sop_instances"] = count(uids.duplicated()).reindex(series.index, fill_value=0)
    series["number_of_frames"] = grouped["number_of_frames"].max().fillna(1)
    series["slice_thickness"] = grouped["slice_thickness"].median()
    series["slice_thickness_min"] = grouped["slice_thickness"].min()
    series["slice_thickness_max"] = grouped["slice_thickness"].max()
    series["gantry_tilt"] = work["gantry_tilt"].abs().groupby(key).max()
    series["gantry_tilt_tag"] = grouped["gantry_tilt"].first()
    slices = _slices(work, codes)
    medians = pd.DataFrame(slices[1]).groupby(slices[0]).median().reindex(range(len(series)))  # NaN where unknown
    for i, column in enumerate(IOP):
        series[column] = medians[i].to_numpy()
    valid = ~work[IOP].isna().any(axis=1)
    distinct = work.loc[valid, ["series_key"]].join(work.loc[valid, IOP].round(3)).drop_duplicates()
    series["n_orientations"] = distinct.groupby("series_key").size().reindex(series.index, fill_value=0)
    series = series.join(_geometry(*slices, len(series)).set_axis(series.index))
    series = series.reset_index().rename(columns={"index": "series_key"})
    series["study_uid_patients"] = series["study_uid"].map(patients_per_study_uid(files)).fillna(0).astype(int)
    series["study_year"] = pd.to_numeric(series["study_date"].str[:4], errors="coerce")
    series["contrast_delay_s"] = series["series_key"].map(_contrast_delays(work))
    return series


def _counted(codes: np.ndarray, values: pd.Series) -> list[list[tuple[Any, int]]]:
    """For each group ``0 .. codes.max()``: its distinct values with their counts, the most frequent first (ties in
    the order first met)."""
    value, distinct = pd.factorize(values)
    n_groups = int(codes.max()) + 1 if len(codes) else 0
    pairs, first_met, counts = np.unique(codes * len(distinct) + value, return_index=True, return_counts=True)
    group = pairs // max(1, len(distinct))
    found: list[list[tuple[Any, int]]] = [[] for _ in range(n_groups)]
    for k in np.lexsort((first_met, -counts, group)):
        found[group[k]].append((distinct[pairs[k] % len(distinct)], int(counts[k])))
    return found


def _slices(work: pd.DataFrame, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(series code, orientation, position) of every slice: a classic file is one slice, an enhanced (multi-frame)
    file one slice per frame with its own position; each file's slices in its place."""
    iop, ipp = work[IOP].to_numpy(float), work[IPP].to_numpy(float)
    frames = work["frame_positions"].fillna("").tolist() if "frame_positions" in work else []
    if not any(frames):
        return codes, iop, ipp
    per_file = [json.loads(text) if text else [] for text in frames]
    repeat = np.repeat(np.arange(len(work)), [len(positions) or 1 for positions in per_file])
    positions = [p for i, own in enumerate(per_file) for p in (own or [ipp[i].tolist()])]
    return codes[repeat], iop[repeat], np.asarray(positions, float).reshape(-1, 3)


def _geometry(codes: np.ndarray, iop: np.ndarray, ipp: np.ndarray, n_series: int) -> pd.DataFrame:
    """Slice geometry of each series (row ``k`` for code ``k``) from its slices with known orientation and
    position, sorted along the normal of their median orientation; empty facts where there are none."""
    valid = ~(np.isnan(iop).any(axis=1) | np.isnan(ipp).any(axis=1))
    codes, ipp = codes[valid], ipp[valid]
    orientation = pd.DataFrame(iop[valid]).groupby(codes).median().reindex(range(n_series)).to_numpy()
    stacks = slice_stacks(codes, orientation, ipp)
    positions, owner = stacks.positions, codes[stacks.order]
    rounded = np.round(positions, 3)
    within = owner[1:] == owner[:-1]  # consecutive slices of one series
    first_of_value = np.ones(len(positions), dtype=bool)
    first_of_value[1:] = (rounded[1:] != rounded[:-1]) | ~within
    steps = np.diff(positions)
    spacing = (pd.Series(steps[within]).groupby(owner[1:][within]).agg(["median", "min", "max"])
               .reindex(range(n_series)))
    start, stop, ok = stacks.start, stacks.stop, stacks.valid
    extent, filled = np.zeros(n_series), stop > start
    extent[filled] = positions[stop[filled] - 1] - positions[start[filled]]
    listed, gap_list = rounded.tolist(), np.round(steps, 4).tolist()
    table = pd.DataFrame({
        "n_positions": np.where(ok, np.bincount(owner[first_of_value], minlength=n_series), 0),
        "spacing_median": spacing["median"].to_numpy(), "spacing_min": spacing["min"].to_numpy(),
        "spacing_max": spacing["max"].to_numpy(),
        "z_extent_mm": np.where(ok, extent, np.nan), "tilt_deg": stacks.tilt_deg, "obliquity_deg": stacks.obliquity_deg,
        "axis": stacks.axis.astype(str).tolist(),
        "gaps": [_json_list(gap_list[a:b - 1]) if k else "[]" for a, b, k in zip(start, stop, ok, strict=True)],
        "positions": [_json_list(listed[a:b]) if k else "[]" for a, b, k in zip(start, stop, ok, strict=True)],
        "normal_0": stacks.normal[:, 0], "normal_1": stacks.normal[:, 1], "normal_2": stacks.normal[:, 2],
    })
    table.loc[~ok, ["spacing_median", "spacing_min", "spacing_max"]] = np.nan
    return table


def _json_list(values: list[float]) -> str:
    """``json.dumps(values)`` of finite floats, without the encoder's per-call cost."""
    return "[" + ", ".join(map(repr, values)) + "]"


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
