"""Keys of patients, studies and series of a files table.

Keys are built from UIDs when present and from other header facts when not (some exports carry
empty UIDs), then hashed into short opaque ids. A series is split further where its files cannot
form one volume: different SOP class, orientation or image size, the same instance stored in two
folders, or repeated acquisitions over the same positions. Each distinct combination of the facts
behind a key is hashed once, so the cost grows with the files' count only through table operations.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from curation.dicom.header import READABLE_STATUSES

__all__ = ["assign_keys", "patients_per_study_uid", "IOP", "IPP"]
IOP = [f"iop_{i}" for i in range(6)]
IPP = [f"ipp_{i}" for i in range(3)]

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


def _distinct(frame: pd.DataFrame, columns: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(code of each row, position of the first row of each code) over ``columns``: rows of equal values share a
    code (NaN equals NaN; numbers compare by their bits, so -0.0, whose text differs, is not 0.0)."""
    code = np.zeros(len(frame), dtype=np.int64)
    for column in columns:
        values = frame[column]
        bits = values.to_numpy().view(np.int64) if values.dtype == np.float64 else values
        part, uniques = pd.factorize(bits, use_na_sentinel=False)
        code, _ = pd.factorize(code * (len(uniques) + 1) + part)
    _, first = np.unique(code, return_index=True)
    return code, first


def _per_distinct(frame: pd.DataFrame, columns: Sequence[str], keys: Callable[[pd.DataFrame], list[str]]
                  ) -> tuple[list[str], np.ndarray, np.ndarray]:
    """``keys`` of each row of ``frame``, called on one row per distinct combination of ``columns`` (every fact
    ``keys`` reads); also the rows' codes and those rows' positions."""
    code, first = _distinct(frame, columns)
    return np.asarray(keys(frame[list(columns)].iloc[first]), dtype=object)[code].tolist(), code, first


_PATIENT_FACTS = ("patient_id", "patient_name", "patient_birth_date")
_STUDY_FACTS = ("patient_key", "study_uid", "study_date", "study_time", "accession_number")
_SERIES_FACTS = ("study_key", "patient_key", "study_uid", "series_uid", "series_number", "modality",
                 "series_description", "folder", "sop_class_uid", *IOP, "rows", "columns")


def assign_keys(files: pd.DataFrame) -> pd.DataFrame:
    """Add ``patient_key``, ``study_key``, ``series_key`` and ``folder`` columns to a files table."""
    files = files.copy()
    if "folder" not in files:  # the scan's workers give it
        files["folder"] = files["path"].map(os.path.dirname)
    readable = files["status"].isin(READABLE_STATUSES)
    patients = patients_per_study_uid(files)
    # one Study UID under two patients (a merged or mistyped Patient ID): an exam each, flagged by the filter
    shared_uids = patients.index[patients > 1]

    def patient_keys(rows: pd.DataFrame) -> list[str]:
        pid = _col(rows, "patient_id")
        fallback = _col(rows, "patient_name") + "|" + _col(rows, "patient_birth_date")
        return _keys("p", pid.where(pid != "", fallback.where(fallback != "|", "unknown")))

    def study_source(rows: pd.DataFrame) -> pd.Series:
        suid = _col(rows, "study_uid")
        fallback = (rows["patient_key"] + "|" + _col(rows, "study_date") + "|" + _col(rows, "study_time")
                    + "|" + _col(rows, "accession_number"))
        source = suid.where(suid != "", fallback)
        return source.where(~suid.isin(shared_uids), source + "|" + rows["patient_key"])

    def series_base(rows: pd.DataFrame) -> pd.Series:
        seuid = _col(rows, "series_uid")
        fallback = (rows["study_key"] + "|" + _col(rows, "series_number") + "|" + _col(rows, "modality")
                    + "|" + _col(rows, "series_description") + "|" + rows["folder"])
        base = seuid.where(seuid != "", fallback)
        return base.where(~_col(rows, "study_uid").isin(shared_uids), base + "|" + rows["patient_key"])

    def series_keys(rows: pd.DataFrame) -> list[str]:
        geometry = (_col(rows, "sop_class_uid") + "|" + _orientation_text(rows)
                    + "|" + _col(rows, "rows") + "x" + _col(rows, "columns"))
        return _keys("se", series_base(rows), geometry)

    files["patient_key"] = _per_distinct(files, _PATIENT_FACTS, patient_keys)[0]
    files["study_key"] = _per_distinct(files, _STUDY_FACTS, lambda rows: _keys("st", study_source(rows)))[0]
    files["series_key"], code, first = _per_distinct(files, _SERIES_FACTS, series_keys)
    if (files["status"] == "truncated").any():
        base = pd.Series(series_base(files[list(_SERIES_FACTS)].iloc[first]).to_numpy()[code], index=files.index)
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
    iop = files[IOP].astype(float)
    codes = iop.groupby(IOP, dropna=False, sort=False).ngroup().to_numpy(dtype=np.int64)
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
    series, keys_found = pd.factorize(files["series_key"])
    folder, folders_found = pd.factorize(files["folder"])
    n_folders = max(1, len(folders_found))
    pairs = np.unique(series * n_folders + folder)  # each (series, folder) once
    spanning = np.bincount(pairs // n_folders, minlength=len(keys_found))[series] > 1
    for key, group in files[spanning].groupby("series_key"):
        folders = group["folder"].tolist()
        uids = _by_folder(group["sop_instance_uid"].tolist(), folders)
        positions = [tuple(row) if not np.isnan(row).any() else None
                     for row in np.round(group[IPP].to_numpy(float), 3)]
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
    series, keys_found = pd.factorize(files["series_key"])
    n_files = np.bincount(series, minlength=len(keys_found))
    with_acquisition = np.bincount(series, weights=files["acquisition_number"].notna().to_numpy(),
                                   minlength=len(keys_found)) > 0
    repeated = (pd.DataFrame({"series": series}, index=files.index).join(files[IPP].round(3)).duplicated().to_numpy()
                & (n_files[series] >= 4) & with_acquisition[series])
    candidates = files[np.isin(series, series[repeated])]
    for key, group in candidates.groupby("series_key"):
        parts = group.groupby(group["acquisition_number"].fillna(-1))
        if parts.ngroups < 2:
            continue
        if all(len(p) >= 2 and not p[IPP].round(3).duplicated().any() for _, p in parts):
            for acq, part in parts:
                files.loc[part.index, "series_key"] = _key(key, "acq", acq)
    return files
